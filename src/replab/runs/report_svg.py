"""The story figure of a run, as one inline SVG drawn from its timeline (no plotting library, no network).

Top to bottom on one shared time axis: the phases; a labelled marker for every fault, heal and first
replication error; one state lane per node (running / OUT / paused / not answering / cut off / SQL stopped
with its error number); rows per node (the primary drawn on top); rows behind the primary per replica,
with each catch-up annotated; replication lag in ms. Elements carry ids and data attributes
(``lane-<node>``, ``data-lane``, ``marker`` with ``data-kind``) so tests can find them in the rendered page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from ..faults.nemesis import catch_up_phrase
from .timeline import STOPPED, Timeline

W = 1120
LEFT, RIGHT = 112, 24
PLOT_W = W - LEFT - RIGHT
NODE_COLORS = ["#222222", "#1f6fd1", "#e8710a", "#2a9d3c", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b"]
LANE_COLORS = {"running": ("#cdebd0", "#1d5e27"), "OUT": ("#4a4a4a", "#ffffff"), "paused": ("#f6cf4a", "#5a4500"),
               "not answering": ("#f4a261", "#5a2a00"), "cut off": ("#9b7fd1", "#ffffff"),
               "SQL stopped": ("#d62728", "#ffffff"), "IO stopped": ("#e377c2", "#ffffff"),
               "replication stopped": ("#d62728", "#ffffff"),
               # group members and Galera nodes that do not serve
               "RECOVERING": ("#f6cf4a", "#5a4500"), "Joiner": ("#f6cf4a", "#5a4500"),
               "Joined": ("#f6cf4a", "#5a4500"), "Donor/Desynced": ("#f6cf4a", "#5a4500"),
               "UNREACHABLE": ("#9b7fd1", "#ffffff"), "non-Primary": ("#9b7fd1", "#ffffff"),
               "ERROR": ("#d62728", "#ffffff"), "OFFLINE": ("#4a4a4a", "#ffffff")}
PROXY_COLORS = {"write pool": ("#1f6fd1", "#ffffff"), "read pool": ("#a9d1f5", "#0b3d6e"),
                "write+read pools": ("#8e44ad", "#ffffff"), "down": ("#4a4a4a", "#ffffff"),
                "drained": ("#f6cf4a", "#5a4500")}  # "proxy stopped/paused/unreachable": the default red
READ_MARK_COLORS = {"read-your-writes": "#d62728", "monotonic": "#8e44ad"}
MARKER_COLORS = {"fault": "#c62828", "heal": "#2e7d32", "error": "#8b0000", "action": "#1f4e9c"}  # action: elections
FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ticks(lo: float, hi: float, target: int = 8) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v / 1000:g}k" if v % 1000 == 0 else f"{v:,.0f}"
    return f"{v:g}"


class _Fig:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1.0)
        self.parts: list[str] = []
        self.y = 8

    def x(self, t: float) -> float:
        return round(LEFT + (t - self.t0) / (self.t1 - self.t0) * PLOT_W, 1)

    def add(self, s: str) -> None:
        self.parts.append(s)


def story_svg(tl: Timeline) -> str:
    """The whole figure; an empty string when the timeline has no samples."""
    if not tl.samples:
        return ""
    tl = _trimmed(tl)
    nodes = tl.nodes()
    primary = tl.primary or nodes[0]
    colors = {n: NODE_COLORS[i % len(NODE_COLORS)] for i, n in enumerate(nodes)}
    t0 = min(s.t for s in tl.samples)
    fig = _Fig(t0, tl.end)
    _phases(fig, tl)
    labels = _marker_labels(fig, tl)
    _lanes(fig, tl, nodes)
    _proxy_lanes(fig, tl)
    _read_lanes(fig, tl)
    _rows_chart(fig, tl, nodes, colors, primary)
    _behind_chart(fig, tl, nodes, colors, primary)
    _lag_chart(fig, tl, nodes, colors, primary)
    bottom = fig.y
    _axis(fig, bottom)
    # marker lines last but below the labels, across lanes and charts
    lines = [f"<line x1='{x}' x2='{x}' y1='{y0}' y2='{bottom}' stroke='{c}' stroke-width='1.4' "
             f"stroke-dasharray='4 3' opacity='0.85'/>" for x, y0, c in labels]
    height = bottom + 34
    return (f"<svg id=story xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {height}' width='{W}' "
            f"height='{height}' {FONT} role='img' aria-label='timeline of the run'>"
            + "".join(fig.parts) + "".join(lines) + "</svg>")


def _trimmed(tl: Timeline) -> Timeline:
    """The timeline cut where the first node's sampling ended, so every lane ends at the same time."""
    end = min(max(s.t for s in tl.samples if s.node == n) for n in tl.nodes())
    out = Timeline(tl.started_at)
    out.primary, out.interval = tl.primary, tl.interval
    out.samples = [s for s in tl.samples if s.t <= end]
    out.events = [e for e in tl.events if e.t <= end + 0.5]
    out.proxy_samples = [p for p in tl.proxy_samples if p.t <= end]
    out.read_runs, out.read_marks = tl.read_runs, [m for m in tl.read_marks if m.t <= end]
    return out


def _phases(fig: _Fig, tl: Timeline) -> None:
    y, h = fig.y, 26
    fig.add(f"<text x='{LEFT - 8}' y='{y + 17}' text-anchor='end' font-size='12' fill='#555'>phase</text>")
    for i, (name, start, end) in enumerate(tl.phases()):
        x0, x1 = fig.x(start), fig.x(end if end is not None else fig.t1)
        fill = "#eef2f7" if i % 2 == 0 else "#dde5ef"
        fig.add(f"<g class=phase data-phase='{_e(name)}'><rect x='{x0}' y='{y}' width='{max(1.0, x1 - x0)}' "
                f"height='{h}' fill='{fill}'/><text x='{(x0 + x1) / 2}' y='{y + 17}' text-anchor='middle' "
                f"font-size='13' font-weight='600' fill='#223'>{_e(name)}</text></g>")
    fig.y += h + 6


def _marker_labels(fig: _Fig, tl: Timeline) -> list[tuple[float, int, str]]:
    """Labels for faults, heals and first errors, staggered in rows so none overlaps; returns (x, y, colour)
    of each marker line."""
    events = [e for e in tl.events if e.kind in ("fault", "heal") or e.data.get("marker") == "election"] + \
        tl.first_errors()
    events.sort(key=lambda e: e.t)
    row_end: list[float] = []
    placed = []
    for ev in events:
        if ev.kind == "error":
            errno = ev.data.get("errno")
            text = f"{ev.node}: error {errno}" if errno else f"{ev.node}: error"
        else:
            text = ev.text if (ev.node is None or ev.node in ev.text) else f"{ev.node}: {ev.text}"
        symbol = {"fault": "\u2716 ", "heal": "\u2714 ", "error": "\u26a0 ", "action": "\u2605 "}[ev.kind]
        label = symbol + text
        x = fig.x(ev.t)
        width = 7.2 * len(label) + 8
        anchor_start = x + width <= W - 4
        left = x if anchor_start else x - width
        row = next((i for i, end in enumerate(row_end) if left > end + 6), len(row_end))
        if row == len(row_end):
            row_end.append(0.0)
        row_end[row] = left + width
        placed.append((ev, label, x, row, anchor_start))
    rows = max(1, len(row_end))
    out = []
    for ev, label, x, row, anchor_start in placed:
        y = fig.y + row * 19 + 14
        color = MARKER_COLORS[ev.kind]
        title = ev.data.get("result") or ev.text
        anchor = "start" if anchor_start else "end"
        dx = 4 if anchor_start else -4
        fig.add(f"<g class=marker data-kind='{ev.kind}' data-node='{_e(ev.node or '')}' data-t='{ev.t}'>"
                f"<title>{_e(f'{ev.t:.2f} s: {title}')}</title>"
                f"<text x='{x + dx}' y='{y}' text-anchor='{anchor}' font-size='12.5' font-weight='600' "
                f"fill='{color}'>{_e(label)}</text></g>")
        out.append((x, y + 4, color))
    fig.y += rows * 19 + 8
    return out


def _lanes(fig: _Fig, tl: Timeline, nodes: Sequence[str]) -> None:
    h, gap = 24, 5
    for node in nodes:
        y = fig.y
        fig.add(f"<g id='lane-{_e(node)}' class=lane data-node='{_e(node)}'>")
        fig.add(f"<text x='{LEFT - 8}' y='{y + 16}' text-anchor='end' font-size='13' font-weight='600' "
                f"fill='#222'>{_e(node)}</text>")
        for seg in tl.segments(node):
            x0, x1 = fig.x(seg.start), fig.x(seg.end)
            fill, ink = LANE_COLORS.get(seg.lane, ("#d62728", "#ffffff"))
            w = max(1.0, x1 - x0)
            fig.add(f"<g class=seg data-lane='{_e(seg.lane)}' data-errno='{seg.errno or ''}'>"
                    f"<title>{_e(f'{node}: {seg.label}, {seg.start:.1f}-{seg.end:.1f} s')}</title>"
                    f"<rect x='{x0}' y='{y}' width='{w}' height='{h}' fill='{fill}'/>")
            if seg.lane != "running" and w >= 7.0 * len(seg.label) + 6:
                fig.add(f"<text x='{(x0 + x1) / 2}' y='{y + 16.5}' text-anchor='middle' font-size='12.5' "
                        f"font-weight='700' fill='{ink}'>{_e(seg.label)}</text>")
            fig.add("</g>")
        fig.add("</g>")
        fig.y += h + gap
    _lane_legend(fig, dict.fromkeys(seg.lane for node in nodes for seg in tl.segments(node)), LANE_COLORS)
    fig.y += 24


def _lane_legend(fig: _Fig, lanes: Iterable[str], colors: dict[str, tuple[str, str]]) -> None:
    """A row of colour swatches, one per lane, at the figure's current height."""
    x = float(LEFT)
    for lane in lanes:
        fill, _ink = colors.get(lane, ("#d62728", "#ffffff"))
        fig.add(f"<rect x='{x}' y='{fig.y + 2}' width='14' height='11' fill='{fill}' stroke='#999' "
                f"stroke-width='0.5'/><text x='{x + 18}' y='{fig.y + 12}' font-size='11.5' fill='#444'>"
                f"{_e(lane)}</text>")
        x += 7 * len(lane) + 40


def _title(fig: _Fig, text: str) -> None:
    """A section's or chart's title at the figure's current height."""
    fig.add(f"<text x='{LEFT}' y='{fig.y + 12}' font-size='13' font-weight='600' fill='#222'>{_e(text)}</text>")


def _heading(fig: _Fig, text: str) -> None:
    """A group of lanes' title; the lanes start below it."""
    _title(fig, text)
    fig.y += 18


def _proxy_lanes(fig: _Fig, tl: Timeline) -> None:
    """One lane per backend node as the proxy routed to it: in the write pool, in the read pool, down,
    drained (or the proxy itself stopped, paused, not answering)."""
    nodes = tl.proxy_nodes()
    if not nodes:
        return
    h, gap = 18, 4
    _heading(fig, "as the proxy routes to each node")
    seen: list[str] = []
    for node in nodes:
        y = fig.y
        fig.add(f"<g id='proxy-lane-{_e(node)}' class=proxy-lane data-node='{_e(node)}'>"
                f"<text x='{LEFT - 8}' y='{y + 13}' text-anchor='end' font-size='12' fill='#222'>{_e(node)}</text>")
        for seg in tl.proxy_segments(node):
            seen.append(seg.lane)
            x0, x1 = fig.x(seg.start), fig.x(seg.end)
            fill, ink = PROXY_COLORS.get(seg.lane, ("#d62728", "#ffffff"))
            w = max(1.0, x1 - x0)
            why = f" ({seg.why})" if seg.why else ""
            fig.add(f"<g class=seg data-lane='{_e(seg.lane)}' data-start='{seg.start}' data-end='{seg.end}'>"
                    f"<title>{_e(f'{node}: {seg.lane}{why}, {seg.start:.1f}-{seg.end:.1f} s')}</title>"
                    f"<rect x='{x0}' y='{y}' width='{w}' height='{h}' fill='{fill}'/>")
            if w >= 6.5 * len(seg.lane) + 6:
                fig.add(f"<text x='{(x0 + x1) / 2}' y='{y + 13}' text-anchor='middle' font-size='11.5' "
                        f"font-weight='600' fill='{ink}'>{_e(seg.lane)}</text>")
            fig.add("</g>")
        fig.add("</g>")
        fig.y += h + gap
    _lane_legend(fig, dict.fromkeys(seen), PROXY_COLORS)
    fig.y += 22


def _read_lanes(fig: _Fig, tl: Timeline) -> None:
    """One lane per node that answered reads: a grey span per read run (its label; causal runs hatched
    lighter) and a tick per violating read, red for read-your-writes, purple for monotonic reads."""
    nodes = tl.read_nodes()
    if not nodes:
        return
    h, gap = 18, 4
    _heading(fig, "reads: violations over time (red: read-your-writes, purple: monotonic)")
    for node in nodes:
        y = fig.y
        fig.add(f"<g id='reads-lane-{_e(node)}' class=reads-lane data-node='{_e(node)}'>"
                f"<text x='{LEFT - 8}' y='{y + 13}' text-anchor='end' font-size='12' fill='#222'>{_e(node)}</text>")
        for run in tl.read_runs:
            mine = run.nodes.get(node)
            if not mine:
                continue
            a = float(mine["first"]) if mine.get("first") is not None else run.start
            b = float(mine["last"]) if mine.get("last") is not None else run.end
            x0, x1 = fig.x(a), fig.x(max(b, a + (tl.interval or 0.2)))
            label = f"{run.label}{' (causal)' if run.causal else ''}: {mine['reads']} reads, " \
                    f"{mine['read_your_writes']} read-your-writes, {mine['monotonic']} monotonic"
            fig.add(f"<g class=read-run data-run='{_e(run.label)}' data-causal='{str(run.causal).lower()}' "
                    f"data-reads='{mine['reads']}' data-ryw='{mine['read_your_writes']}' "
                    f"data-monotonic='{mine['monotonic']}'><title>{_e(label)}</title>"
                    f"<rect x='{x0}' y='{y}' width='{max(1.0, x1 - x0)}' height='{h}' "
                    f"fill='{'#e4f1e4' if run.causal else '#e6e6e6'}'/>")
            text = f"{run.label}{' (causal)' if run.causal and 'causal' not in run.label else ''}"
            if x1 - x0 >= 6.5 * len(text) + 6:
                fig.add(f"<text x='{(x0 + x1) / 2}' y='{y + 13}' text-anchor='middle' font-size='11' "
                        f"fill='#555'>{_e(text)}</text>")
            fig.add("</g>")
        for m in tl.read_marks:
            if m.node != node:
                continue
            x = fig.x(m.t)
            stale = "" if m.kind != "read-your-writes" else \
                (f", visible after {m.staleness_ms:.0f} ms" if m.staleness_ms is not None else ", never visible")
            top, bottom = (y, y + h / 2) if m.kind == "read-your-writes" else (y + h / 2, y + h)
            fig.add(f"<line class=anomaly data-kind='{_e(m.kind)}' data-run='{_e(m.run)}' data-t='{m.t}' "
                    f"x1='{x}' x2='{x}' y1='{top}' y2='{bottom}' stroke='{READ_MARK_COLORS.get(m.kind, '#d62728')}' "
                    f"stroke-width='1.6'><title>{_e(f'{m.t:.2f} s {node}: {m.kind} violation{stale}')}</title>"
                    "</line>")
        fig.add("</g>")
        fig.y += h + gap
    fig.y += 8


def _chart_frame(fig: _Fig, title: str, h: int, ymax: float, unit: str) -> tuple[int, float]:
    """Axes of one chart; returns (top y, pixels per unit)."""
    top = fig.y + 18
    _title(fig, title)
    ymax = max(ymax, 1.0)
    scale = h / ymax
    for v in _ticks(0, ymax, 4):
        y = top + h - v * scale
        fig.add(f"<line x1='{LEFT}' x2='{LEFT + PLOT_W}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e3e3e3'/>"
                f"<text x='{LEFT - 8}' y='{y + 4:.1f}' text-anchor='end' font-size='11' fill='#555'>"
                f"{_fmt(v)}{unit}</text>")
    fig.add(f"<rect x='{LEFT}' y='{top}' width='{PLOT_W}' height='{h}' fill='none' stroke='#bbb'/>")
    return top, scale


def _polylines(fig: _Fig, pts: Sequence[tuple[float, float | None]], top: int, h: int, scale: float, color: str,
               width: float, dash: str = "", cls: str = "") -> None:
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 2 or (run and width):
            fig.add(f"<polyline class='{cls}' points='{' '.join(run)}' fill='none' stroke='{color}' "
                    f"stroke-width='{width}' stroke-linejoin='round'"
                    + (f" stroke-dasharray='{dash}'" if dash else "") + "/>")
        run.clear()

    for t, v in pts:
        if v is None:
            flush()
            continue
        run.append(f"{fig.x(t)},{top + h - v * scale:.1f}")
    flush()


def _legend(fig: _Fig, items: list[tuple[str, str, float]], y: int) -> None:
    x = float(LEFT + PLOT_W - 10)
    for name, color, width in reversed(items):
        w = 7.4 * len(name) + 30
        x -= w
        fig.add(f"<line x1='{x}' x2='{x + 20}' y1='{y - 4}' y2='{y - 4}' stroke='{color}' stroke-width='{width}'/>"
                f"<text x='{x + 24}' y='{y}' font-size='12' fill='#222'>{_e(name)}</text>")


def _rows_chart(fig: _Fig, tl: Timeline, nodes: Sequence[str], colors: dict[str, str], primary: str) -> None:
    h = 150
    ymax = float(max([s.rows for s in tl.samples if s.rows is not None] + [1]))
    top, scale = _chart_frame(fig, "rows in the table per node (primary on top)", h, ymax * 1.05, "")
    for node in [n for n in nodes if n != primary] + [primary]:
        pts = [(s.t, None if s.rows is None else float(s.rows)) for s in tl.of(node)]
        _polylines(fig, pts, top, h, scale, colors[node], 3.2 if node == primary else 2.0, cls=f"rows {node}")
    _legend(fig, [(n, colors[n], 3.2 if n == primary else 2.0) for n in nodes], top - 6)
    fig.y = top + h + 14


def _behind_chart(fig: _Fig, tl: Timeline, nodes: Sequence[str], colors: dict[str, str], primary: str) -> None:
    replicas = [n for n in nodes if n != primary]
    if not replicas:
        return
    h = 120
    series = {n: tl.rows_behind(n) for n in replicas}
    ymax = float(max([v for ts, vs in series.values() for v in vs if v is not None] + [10]))
    changes = tl.primary_changes()
    against = primary if len(changes) == 1 else "the primary (" + ", then ".join(
        n if i == 0 else f"{n} from {t:.1f} s" for i, (t, n) in enumerate(changes)) + ")"
    top, scale = _chart_frame(fig, f"rows behind {against} per replica (dashed: node down, count frozen)", h,
                              ymax * 1.15, "")
    for node in replicas:
        ts, vs = series[node]
        states = {s.t: s.state for s in tl.of(node)}
        live = [(t, None if v is None or states.get(t) != "running" else float(v))
                for t, v in zip(ts, vs, strict=True)]
        frozen = [(t, None if v is None or states.get(t) == "running" else float(v))
                  for t, v in zip(ts, vs, strict=True)]
        _polylines(fig, live, top, h, scale, colors[node], 2.0, cls=f"behind {node}")
        _polylines(fig, frozen, top, h, scale, colors[node], 2.0, dash="5 4", cls=f"behind-out {node}")
    for c in tl.catch_ups():
        if c.node not in series:
            continue
        ts, vs = series[c.node]
        at = next((v for t, v in zip(ts, vs, strict=True) if t >= c.back_at and v is not None), None)
        x = fig.x(c.back_at)
        y = top + h - (at or 0) * scale
        lines = [f"{c.node} back after {c.outage_s:g} s out"]
        if c.missed_tx is not None or c.seconds is not None:
            lines.append(catch_up_phrase(c.missed_tx, c.seconds, exact=c.exact))
        width = 7.0 * max(len(line) for line in lines)
        if x + 10 + width < LEFT + PLOT_W:
            tx, anchor = x + 10, "start"
        elif x - 10 - width > LEFT:
            tx, anchor = x - 10, "end"
        else:
            tx, anchor = float(LEFT + 6), "start"
        ty = min(max(top + 16, y - 8), top + h - 20)
        spans = "".join(f"<tspan x='{tx}' dy='{0 if i == 0 else 15}'>{_e(line)}</tspan>"
                        for i, line in enumerate(lines))
        fig.add(f"<g class=catchup data-node='{_e(c.node)}'><circle cx='{x}' cy='{y:.1f}' r='4.5' "
                f"fill='{colors[c.node]}'/><text x='{tx}' y='{ty:.1f}' text-anchor='{anchor}' font-size='12.5' "
                f"font-weight='600' fill='{colors[c.node]}' paint-order='stroke' stroke='#fff' stroke-width='3'>"
                f"{spans}</text></g>")
    _legend(fig, [(n, colors[n], 2.0) for n in replicas], top - 6)
    fig.y = top + h + 14


def _lag_chart(fig: _Fig, tl: Timeline, nodes: Sequence[str], colors: dict[str, str], primary: str) -> None:
    replicas = [n for n in nodes if n != primary]
    if not replicas:
        return
    h = 100
    series: dict[str, list[tuple[float, float | None, bool]]] = {}
    for node in replicas:
        pts: list[tuple[float, float | None, bool]] = []
        last: tuple[float, float] | None = None  # (t, lag ms) of the last running sample
        for s in tl.of(node):
            if s.lag_ms is not None:
                last = (s.t, float(s.lag_ms))
                pts.append((s.t, float(s.lag_ms), True))
            elif s.state == STOPPED or s.state == "paused":
                # a node that is down applies nothing: its lag grows with the clock from where it stopped
                pts.append((s.t, None if last is None else last[1] + (s.t - last[0]) * 1000, False))
            else:
                pts.append((s.t, None, True))
        series[node] = pts
    ymax = max([v for pts in series.values() for _, v, _ in pts if v is not None] + [100])
    top, scale = _chart_frame(fig, "replication lag per replica (heartbeat; dashed: growing while the node is down)",
                              h, ymax * 1.1, " ms")
    for node, pts in series.items():
        _polylines(fig, [(t, v if ok else None) for t, v, ok in pts], top, h, scale, colors[node], 2.0,
                   cls=f"lag {node}")
        _polylines(fig, [(t, v if not ok else None) for t, v, ok in pts], top, h, scale, colors[node], 2.0,
                   dash="5 4", cls=f"lag-out {node}")
    fig.y = top + h + 6


def _axis(fig: _Fig, y: int) -> None:
    for t in _ticks(fig.t0, fig.t1, 10):
        x = fig.x(t)
        fig.add(f"<line x1='{x}' x2='{x}' y1='{y}' y2='{y + 5}' stroke='#555'/><text x='{x}' y='{y + 18}' "
                f"text-anchor='middle' font-size='11.5' fill='#333'>{_fmt(t)} s</text>")
    fig.add(f"<text x='{LEFT + PLOT_W}' y='{y + 32}' text-anchor='end' font-size='11.5' fill='#555'>seconds "
            "since the run started</text>")


def table_svg(table: dict[str, object]) -> str:
    """A measured table's plot: ``y`` against ``x``, one line per value of ``by``, and the ``bound`` column as
    a dashed line (e.g. commits/s per connection against the round trip, with 1000/RTT)."""
    plot = dict(table.get("plot") or {})  # type: ignore[call-overload]
    cols = list(table["columns"])  # type: ignore[call-overload]
    rows = list(table["rows"])  # type: ignore[call-overload]
    xi, yi = cols.index(plot["x"]), cols.index(plot["y"])
    bi = cols.index(plot["bound"]) if plot.get("bound") in cols else None
    gi = cols.index(plot["by"]) if plot.get("by") in cols else None
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        series.setdefault(str(r[gi]) if gi is not None else str(plot["y"]), []).append((float(r[xi]), float(r[yi])))
    bound = sorted({(float(r[xi]), float(r[bi])) for r in rows if bi is not None and r[bi]})
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts] + [y for _, y in bound]
    if not xs or not ys:
        return ""
    w, h, left, bottom, top = 640, 300, 64, 40, 30
    log = bool(plot.get("log"))  # a log y axis: semi-sync's 12 commits/s and async's 1000 on one plot
    x1, y1 = max(xs) or 1.0, max(ys) * 1.1 or 1.0
    lo = 10 ** math.floor(math.log10(max(min(y for y in ys if y > 0), 1e-3))) if log and any(y > 0 for y in ys) \
        else 0.0

    def px(x: float) -> float:
        return round(left + x / x1 * (w - left - 20), 1)

    def py(y: float) -> float:
        if log and lo > 0:
            frac = (math.log10(max(y, lo)) - math.log10(lo)) / max(math.log10(y1) - math.log10(lo), 1e-9)
        else:
            frac = y / y1
        return round(h - bottom - frac * (h - bottom - top), 1)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' {FONT} font-size='11' "
             f"id='plot-{_e(plot.get('y'))}'>",
             f"<text x='{left}' y='16' font-size='13' font-weight='600'>{_e(plot.get('title', ''))}</text>",
             f"<line x1='{left}' y1='{h - bottom}' x2='{w - 20}' y2='{h - bottom}' stroke='#888'/>",
             f"<line x1='{left}' y1='{top}' x2='{left}' y2='{h - bottom}' stroke='#888'/>"]
    ticks = [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(y1)) + 1)
             if lo <= 10.0 ** k <= y1] if log and lo > 0 else _ticks(0, y1, 5)
    for t in ticks:
        parts.append(f"<text x='{left - 6}' y='{py(t) + 4}' text-anchor='end'>{_fmt(t)}</text>"
                     f"<line x1='{left}' y1='{py(t)}' x2='{w - 20}' y2='{py(t)}' stroke='#eee'/>")
    for x in sorted(set(xs)):
        parts.append(f"<text x='{px(x)}' y='{h - bottom + 16}' text-anchor='middle'>{_fmt(x)}</text>")
    parts.append(f"<text x='{(left + w) / 2}' y='{h - 6}' text-anchor='middle'>{_e(plot['x'])}</text>")
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = NODE_COLORS[(i + 1) % len(NODE_COLORS)]
        path = " ".join(f"{px(x)},{py(y)}" for x, y in sorted(pts))
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{path}' "
                     f"data-series='{_e(name)}'/>")
        parts.append(f"<text x='{w - 130}' y='{top + 14 * i + 10}' fill='{color}'>{_e(name)}</text>")
    if bound:
        parts.append("<polyline fill='none' stroke='#c62828' stroke-dasharray='4 3' points='"
                     + " ".join(f"{px(x)},{py(y)}" for x, y in bound) + "' data-series='bound'/>")
        parts.append(f"<text x='{w - 130}' y='{top + 14 * len(series) + 10}' fill='#c62828'>bound</text>")
    parts.append("</svg>")
    return "".join(parts)
