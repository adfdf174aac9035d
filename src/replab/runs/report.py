"""Reports of a run: ``report.json`` (everything), ``report.html`` (one self-contained page with plots)
and ``junit.xml`` (one test case per expectation), all from a ``RunReport``.

A ``RunReport`` is plain data (a timeline plus verdicts), so every writer here is testable on recorded or
synthetic data without servers. The schema of report.json is documented in docs/report-schema.md.
"""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..faults.nemesis import catch_up_phrase
from ..servers.flavor import server_name
from .report_svg import story_svg, table_svg
from .timeline import Timeline

SCHEMA = "replab.report/1"
PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass
class ExpectationResult:
    """One expectation of a scenario, evaluated: passed or not, and the evidence either way."""

    name: str
    description: str
    passed: bool
    evidence: list[str] = field(default_factory=list)
    duration_s: float = 0.0


@dataclass
class PhaseResult:
    """One phase of a run: its time span, row counts per node at its end, and what was noted."""

    name: str
    description: str = ""
    start: float = 0.0
    end: float | None = None
    rows: dict[str, int | None] = field(default_factory=dict)
    lag_ms: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """Everything a run produced: what ran, what was expected, what was seen, and the verdict."""

    scenario: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    expectations: list[ExpectationResult] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    # measured tables by name: {"columns": [...], "rows": [[...]], "plot": {"x", "y", "by", "bound", "title"}}
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    timeline: Timeline = field(default_factory=Timeline)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def verdict(self) -> str:
        """error (could not run), fail (an expectation failed) or pass."""
        if self.error:
            return ERROR
        if not self.expectations or not all(e.passed for e in self.expectations):
            return FAIL
        return PASS

    @property
    def failed(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "scenario": self.scenario,
            "description": self.description,
            "verdict": self.verdict,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": round((self.finished_at or self.started_at) - self.started_at, 3),
            "params": self.params,
            "cluster": self.cluster,
            "expectations": [asdict(e) for e in self.expectations],
            "phases": [asdict(p) for p in self.phases],
            "metrics": self.metrics,
            "diagnosis": self.diagnosis,
            "checks": self.checks,
            "final": self.final,
            "tables": self.tables,
            "proxy_lanes": {n: [{"start": g.start, "end": round(g.end, 3), "lane": g.lane, "why": g.why}
                                for g in self.timeline.proxy_segments(n)] for n in self.timeline.proxy_nodes()},
            "timeline": self.timeline.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a replab report (schema {data.get('schema')!r}, expected {SCHEMA})")
        return cls(
            scenario=data["scenario"], description=data.get("description", ""), params=data.get("params", {}),
            cluster=data.get("cluster", {}),
            expectations=[ExpectationResult(**e) for e in data.get("expectations", [])],
            phases=[PhaseResult(**p) for p in data.get("phases", [])], metrics=data.get("metrics", {}),
            diagnosis=list(data.get("diagnosis", [])), checks=data.get("checks", {}), final=data.get("final", {}),
            tables=data.get("tables", {}), error=data.get("error"),
            timeline=Timeline.from_dict(data.get("timeline", {})), started_at=data.get("started_at", 0.0),
            finished_at=data.get("finished_at"),
        )


# --- facts derived from the history ------------------------------------------------------------------
UNITS = (("_tx_s", "tx/s"), ("_kbit_s", "kbit/s"), ("_ms_per_s", "ms/s"), ("_bytes", "bytes"), ("_ms", "ms"),
         ("_s", "s"), ("_tx", "transactions"))


def with_unit(name: str, value: Any) -> str:
    """A metric's value with the unit its name ends in (``catch_up_s`` -> ``0.15 s``; writes -> rows)."""
    if value is None:
        return "not measured"
    unit = next((u for suffix, u in UNITS if name.endswith(suffix)), "rows" if name.startswith("writes_") else "")
    return f"{_fmt(value)} {unit}".strip()


def catch_up_lines(report: RunReport) -> list[str]:
    """One sentence per replica outage seen on the timeline: how long it was out, what it missed, how
    fast it caught up."""
    out = []
    for c in report.timeline.catch_ups():
        if c.seconds is None and not c.missed_tx:
            out.append(f"{c.node} out for {c.outage_s:g} s")
            continue
        what = catch_up_phrase(c.missed_tx, c.seconds, exact=c.exact)
        what = what.replace("not caught up", "not caught up during the run")
        out.append(f"{c.node} out for {c.outage_s:g} s, {what}")
    return out


def proxy_lane_lines(report: RunReport) -> list[str]:
    """One line per backend node: how the proxy routed to it over the run (write pool, read pool, down,
    drained), each stretch with its span."""
    tl = report.timeline
    width = max((len(n) for n in tl.proxy_nodes()), default=0)
    return [f"{node:<{width}}  " + "; ".join(f"{g.lane} {g.start:.1f}-{g.end:.1f} s" for g in tl.proxy_segments(node))
            for node in tl.proxy_nodes()]


def read_lines(report: RunReport) -> list[str]:
    """One line per read run: where it read, when, and per node its reads and violations, with the span of
    the violations in time."""
    tl = report.timeline
    out = []
    for run in tl.read_runs:
        per = []
        for node, n in run.nodes.items():
            marks = [m.t for m in tl.read_marks if m.run == run.label and m.node == node]
            when = f" at {min(marks):.1f}-{max(marks):.1f} s" if marks else ""
            per.append(f"{node} {n['reads']} reads: {n['read_your_writes']} read-your-writes, "
                       f"{n['monotonic']} monotonic{when}")
        out.append(f"{run.label} from {run.read_from}{' (causal)' if run.causal else ''} {run.start:.1f}-"
                   f"{run.end:.1f} s: " + ("; ".join(per) if per else f"no read completed ({run.errors} errors)"))
    return out


def last_check(report: RunReport) -> tuple[str | None, dict[str, Any]]:
    """(name, data) of the last consistency check of the run."""
    if not report.checks:
        return None, {}
    name = list(report.checks)[-1]
    data = report.checks[name]
    return name, data if isinstance(data, dict) else {}


def final_grid(report: RunReport, table: str = "events") -> list[dict[str, Any]]:
    """Per node at the end: role, state, rows (exact), checksum, columns (missing ones named), verdict."""
    check_name, chk = last_check(report)
    by_node = {n.get("name"): n for n in chk.get("nodes", []) if isinstance(n, dict)}
    problems: dict[str, list[dict[str, Any]]] = {}
    for p in chk.get("problems", []):
        if isinstance(p, dict) and p.get("node"):
            problems.setdefault(p["node"], []).append(p)
    # roles at the end: a failover or switchover changed them since the cluster was built
    roles = {n.get("name"): n.get("role") for n in report.cluster.get("nodes", []) if isinstance(n, dict)}
    roles.update({n: f["role"] for n, f in report.final.items() if isinstance(f, dict) and f.get("role")})
    if not any(isinstance(f, dict) and f.get("role") for f in report.final.values()) and report.timeline.samples:
        seen = {n: report.timeline.last_sample(str(n)) for n in roles}  # a report from before final roles
        roles.update({n: s.role for n, s in seen.items() if s is not None and s.role})
    names = [str(n) for n in roles] or list(report.final) or report.timeline.nodes()
    primary = next((n for n, r in roles.items() if r == "primary"), names[0] if names else None)
    reference = report.final.get(primary or "", {}).get("columns") or []
    grid = []
    for name in names:
        fin = report.final.get(name, {})
        node_chk: dict[str, Any] = by_node.get(name) or {}
        tinfo = (node_chk.get("tables") or {}).get(table) or {}
        last = report.timeline.last_sample(name)
        rows = fin.get("rows", tinfo.get("rows"))
        cols = fin.get("columns")
        missing = [c for c in reference if cols is not None and c not in cols]
        extra = [c for c in (cols or []) if c not in reference]
        mine = problems.get(name, [])
        state = fin.get("state") or (last.state if last else "unknown")
        if roles.get(name) == "demoted":
            verdict, ok = "demoted former primary, out of the cluster (not checked)", None
        elif state == "stopped":
            verdict, ok = "OUT", False
        elif last is not None and last.sql_running is False and last.sql_errno:
            verdict, ok = f"SQL stopped, error {last.sql_errno}", False
        elif mine:
            kinds = sorted({str(p.get("kind")) for p in mine})
            verdict, ok = f"{len(mine)} problem(s): {', '.join(kinds)}", False
        elif check_name is None:
            verdict, ok = "not checked", None
        else:
            verdict, ok = "consistent", True
        grid.append({"node": name, "role": roles.get(name, ""), "state": state, "rows": rows,
                     "checksum": tinfo.get("checksum"), "columns": cols, "reference": reference,
                     "missing": missing, "extra": extra, "verdict": verdict, "ok": ok,
                     "version": fin.get("version"), "check": check_name})
    return grid


# --- text summary ---------------------------------------------------------------------------------
def table_text(table: dict[str, Any]) -> list[str]:
    """A measured table as aligned text lines (for the terminal summary)."""
    cols = table["columns"]
    cells = [[("-" if v is None else str(v)) for v in row] for row in table["rows"]]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return lines


def summary(report: RunReport, notes: bool = True) -> str:
    """The readable summary the CLI prints: the count of every node at the end of each phase (the original
    task's ``mysql-s1 count: OUT``), measurements, the diagnosis (once), expectations, verdict.

    ``notes=False`` leaves out the phases' step sentences (the CLI printed them as they happened)."""
    lines = [f"scenario {report.scenario}: {report.description}"]
    for ph in report.phases:
        span = f"{ph.start:5.1f}-{ph.end:5.1f} s" if ph.end is not None else f"{ph.start:5.1f}-  ... s"
        rows = ", ".join(f"{n} count: {'OUT' if v is None else v}" for n, v in ph.rows.items())
        lines.append(f"  {ph.name:<14} {span}  {rows}")
        if notes:
            lines.extend(f"      {note.splitlines()[0]}" for note in ph.notes)
    measured = catch_up_lines(report) + [f"{k} = {with_unit(k, v)}" for k, v in report.metrics.items()]
    if measured:
        lines.append("  measured: " + "; ".join(measured))
    if report.timeline.proxy_samples:
        lines.append("  as the proxy routed to each node:")
        lines.extend(f"    {line}" for line in proxy_lane_lines(report))
    if report.timeline.read_runs:
        lines.append("  reads and their violations:")
        lines.extend(f"    {line}" for line in read_lines(report))
    for name, table in report.tables.items():
        lines.append(f"  {name}:")
        lines.extend(f"    {line}" for line in table_text(table))
    for d in report.diagnosis:
        first, *rest = d.splitlines() or [""]
        lines.append(f"  diagnosis: {first}")
        lines.extend(f"             {r.strip()}" for r in rest)
    lines.append("  expectations:")
    for e in report.expectations:
        lines.append(f"    [{'PASS' if e.passed else 'FAIL'}] {e.name}: {e.description}")
        lines.extend(f"           {line}" for line in _evidence(report, e))
    if report.error:
        lines.append(f"  could not run: {report.error}")
    lines.append(f"verdict: {report.verdict.upper()}"
                 + (f" ({len(report.failed)} expectation(s) failed: {', '.join(e.name for e in report.failed)})"
                    if report.verdict == FAIL and report.failed else ""))
    return "\n".join(lines)


def _evidence(report: RunReport, e: ExpectationResult) -> list[str]:
    """Evidence lines, a diagnosis already printed above shortened to a pointer (said once)."""
    out = []
    for ev in e.evidence:
        if len(ev.splitlines()) > 1 and any(ev.strip() in d or d in ev for d in report.diagnosis):
            out.append("(the diagnosis above)")
        else:
            out.extend(line.strip() for line in ev.splitlines())
    return list(dict.fromkeys(out))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


# --- writers --------------------------------------------------------------------------------------
def write_all(report: RunReport, directory: str | Path) -> dict[str, Path]:
    """Write report.json, report.html and junit.xml into ``directory`` (created); return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html", "junit": out / "junit.xml"}
    write_json(report, paths["json"])
    write_html(report, paths["html"])
    write_junit(report, paths["junit"])
    return paths


def write_json(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=1, default=str) + "\n")


def write_junit(report: RunReport, path: str | Path) -> None:
    """JUnit XML: one testsuite (the scenario), one testcase per expectation; an error case if it could
    not run."""
    suite = ET.Element("testsuite", name=f"replab.scenario.{report.scenario}",
                       tests=str(len(report.expectations) + (1 if report.error else 0)),
                       failures=str(len(report.failed)), errors="1" if report.error else "0",
                       time=f"{(report.finished_at or report.started_at) - report.started_at:.3f}")
    for e in report.expectations:
        case = ET.SubElement(suite, "testcase", classname=f"replab.{report.scenario}", name=e.name,
                             time=f"{e.duration_s:.3f}")
        if not e.passed:
            fail = ET.SubElement(case, "failure", message=e.description)
            fail.text = "\n".join(e.evidence)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(e.evidence)
    if report.error:
        case = ET.SubElement(suite, "testcase", classname=f"replab.{report.scenario}", name="run")
        err = ET.SubElement(case, "error", message=report.error.splitlines()[0] if report.error else "")
        err.text = report.error
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    Path(path).write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def write_html(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")


# --- HTML -----------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px auto;max-width:1160px;color:#222;
font-size:14px}
h1{font-size:24px;margin:0 0 2px} h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.verdict{padding:10px 16px;border-radius:6px;font-size:19px;font-weight:650;margin:10px 0}
.pass{background:#e5f5e5;color:#14611a;border:1px solid #9ccf9f}
.fail{background:#fde8e8;color:#8a1414;border:1px solid #e6a0a0}
.error{background:#fff3d6;color:#7a5300;border:1px solid #e5c77a}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13.5px} td,th{border:1px solid #ccc;padding:4px 9px;
text-align:left;vertical-align:top} th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#14611a;font-weight:650} .ko{color:#a01414;font-weight:650} .na{color:#7a5300;font-weight:650}
del.missing{color:#a01414;background:#fde8e8;text-decoration:line-through;padding:0 3px}
ins.extra{color:#7a5300;background:#fff3d6;text-decoration:none;padding:0 3px}
pre{background:#f7f7f7;padding:10px;border-radius:4px;white-space:pre-wrap;font-size:12.5px;margin:4px 0}
.muted{color:#666} .meta{color:#444;margin:2px 0 0} .figure{overflow-x:auto} details{margin:6px 0}
"""


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts)) if ts else "unknown date"


def _server_versions(report: RunReport) -> str:
    versions = sorted({server_name(str(f["version"])) for f in report.final.values() if f.get("version")})
    if versions:
        return ", ".join(versions) + (" (every node)" if len(versions) == 1 and len(report.final) > 1 else "")
    return server_name(str(report.cluster.get("version") or "unknown server"))


def render_html(report: RunReport) -> str:
    """One self-contained page: verdict, run facts, the story figure (phases, markers, state lanes, rows,
    rows behind, lag), measurements, the final per-node grid, the diagnosis, expectations, phases."""
    v = report.verdict
    headline = {PASS: "PASS: everything happened as expected",
                FAIL: f"FAIL: {len(report.failed)} of {len(report.expectations)} expectation(s) not met",
                ERROR: "ERROR: the scenario could not run"}[v]
    c, p = report.cluster, report.params
    rate = p.get("rate")
    feed = (f"feed {_fmt(rate)} rows/s" if rate else "feed as fast as possible") if rate is not None else ""
    facts = [f"run {_when(report.started_at)}",
             f"{_fmt((report.finished_at or report.started_at) - report.started_at)} s in all",
             f"engine {c.get('engine', 'local')}", _server_versions(report),
             f"binlog_format {c.get('binlog_format', '?')}", f"{len(c.get('nodes', []))} nodes"]
    knobs = [x for x in (feed, f"{_fmt(p['duration'])} s of writes" if "duration" in p else "",
                         f"{p['threads']} threads" if "threads" in p else "",
                         f"seed {p['seed']}" if "seed" in p else "") if x]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>replab: {_esc(report.scenario)}"
             f" - {v.upper()}</title><style>{_CSS}</style></head><body>",
             f"<h1>Scenario <code>{_esc(report.scenario)}</code></h1>",
             f"<p class=meta id=facts>{' &middot; '.join(_esc(f) for f in facts)}</p>",
             f"<p class=meta id=params>{' &middot; '.join(_esc(k) for k in knobs)}</p>",
             f"<div class='verdict {v}' id=verdict>{_esc(headline)}</div>",
             f"<p class=muted>{_esc(report.description)}</p>"]
    if report.error:
        parts.append(f"<pre>{_esc(report.error)}</pre>")
    parts.append("<h2>What happened</h2>")
    svg = story_svg(report.timeline)
    parts.append(f"<div class=figure id=plot>{svg}</div>" if svg else "<p class=muted>no samples recorded</p>")
    parts.append(_measurements_html(report))
    parts.append(_tables_html(report))
    parts.append(_grid_html(report))
    if report.diagnosis:
        parts.append("<h2>Diagnosis</h2><pre id=diagnosis>" + _esc("\n".join(report.diagnosis)) + "</pre>")
    parts.append(_expectations_html(report))
    parts.append(_phases_html(report))
    parts.append(_checks_html(report))
    parts.append(_events_html(report))
    parts.append(f"<p class=muted>written by replab {_esc(report.cluster.get('replab', ''))} from report.json "
                 f"(same directory), which holds every sample and event</p></body></html>")
    return "\n".join(parts)


def _measurements_html(report: RunReport) -> str:
    rows = [(line, "") for line in catch_up_lines(report)]
    rows += [(k.replace("_", " "), with_unit(k, val)) for k, val in report.metrics.items()]
    for node in report.timeline.nodes():
        peak, at = report.timeline.peak_lag(node)
        if peak and at is not None and node != report.timeline.primary:
            rows.append((f"{node} peak lag", f"{peak:,} ms at {at:.1f} s"))
    if not rows:
        return ""
    cells = "".join(f"<tr><th>{_esc(k)}</th><td class=num>{_esc(val)}</td></tr>" if val else
                    f"<tr><td colspan=2><b>{_esc(k)}</b></td></tr>" for k, val in rows)
    return f"<h2>Measurements</h2><table id=metrics>{cells}</table>"


def _tables_html(report: RunReport) -> str:
    """Each measured table, with its plot (y against x, one line per ``by`` value, and the ``bound``)."""
    out = []
    for name, t in report.tables.items():
        head = "".join(f"<th>{_esc(c)}</th>" for c in t["columns"])
        body = "".join("<tr>" + "".join(f"<td class=num>{_esc('-' if v is None else v)}</td>" for v in row) + "</tr>"
                       for row in t["rows"])
        out.append(f"<h2>{_esc(name)}</h2><table id='table-{_esc(name)}'><tr>{head}</tr>{body}</table>")
        if t.get("plot"):
            out.append(f"<div class=figure>{table_svg(t)}</div>")
    return "".join(out)


def _grid_html(report: RunReport) -> str:
    grid = final_grid(report)
    if not grid:
        return ""
    check = grid[0]["check"]
    out = ["<h2>At the end, per node</h2>",
           f"<p class=muted>rows: exact COUNT(*) after the run; checksum and verdict: check "
           f"<code>{_esc(check)}</code>; schema: columns of mydb.events against the primary's</p>" if check else "",
           "<table id=final-grid><tr><th>node</th><th>role</th><th>rows</th><th>checksum</th><th>schema</th>"
           "<th>verdict</th></tr>"]
    for g in grid:
        if g["columns"] is None:
            schema = "<span class=muted>unknown</span>"
        else:
            cols = [f"<del class=missing data-missing='{_esc(c)}'>{_esc(c)}</del> missing" if c in g["missing"]
                    else _esc(c) for c in g["reference"]]
            cols += [f"<ins class=extra>+{_esc(c)}</ins>" for c in g["extra"]]
            schema = ", ".join(cols)
        cls = {True: "ok", False: "ko", None: "na"}[g["ok"]]
        rows = "OUT" if g["rows"] is None else f"{g['rows']:,}"
        checksum = g["checksum"] or ("not compared" if g["check"] else "-")
        out.append(f"<tr class=node-row data-node='{_esc(g['node'])}' data-verdict='{_esc(g['verdict'])}'>"
                   f"<td><b>{_esc(g['node'])}</b></td><td>{_esc(g['role'])}</td><td class=num>{_esc(rows)}</td>"
                   f"<td><code>{_esc(checksum)}</code></td><td>{schema}</td>"
                   f"<td class={cls}>{_esc(g['verdict'])}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _expectations_html(report: RunReport) -> str:
    out = ["<h2>Expectations</h2><table id=expectations><tr><th>result</th><th>expectation</th>"
           "<th>evidence</th></tr>"]
    for e in report.expectations:
        mark = "<span class=ok>PASS</span>" if e.passed else "<span class=ko>FAIL</span>"
        ev = "<br>".join(_esc(x) for x in _evidence(report, e))
        out.append(f"<tr><td>{mark}</td><td><b>{_esc(e.name)}</b><br>{_esc(e.description)}</td><td>{ev}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _phases_html(report: RunReport) -> str:
    if not report.phases:
        return ""
    nodes = list(dict.fromkeys(n for ph in report.phases for n in ph.rows))
    head = "".join(f"<th>{_esc(n)} count</th>" for n in nodes)
    out = [f"<h2>Phases</h2><table id=phases><tr><th>phase</th><th>time</th>{head}<th>what was done</th></tr>"]
    for ph in report.phases:
        span = f"{ph.start:.1f}-{'...' if ph.end is None else f'{ph.end:.1f}'} s"
        counts = "".join(f"<td class=num>{'OUT' if ph.rows.get(n) is None else ph.rows[n]}</td>" for n in nodes)
        notes = "<br>".join(_esc(n.splitlines()[0]) for n in ph.notes)
        desc = f"<span class=muted>{_esc(ph.description)}</span><br>" if ph.description else ""
        out.append(f"<tr><td><b>{_esc(ph.name)}</b></td><td>{span}</td>{counts}<td>{desc}{notes}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _checks_html(report: RunReport) -> str:
    if not report.checks:
        return ""
    out = ["<h2>Consistency checks</h2>"]
    for name, chk in report.checks.items():
        text = chk.get("text") if isinstance(chk, dict) else None
        ok = chk.get("consistent") if isinstance(chk, dict) else None
        mark = "" if ok is None else (" <span class=ok>consistent</span>" if ok else " <span class=ko>problems</span>")
        out.append(f"<details><summary><b>{_esc(name)}</b>{mark}</summary>"
                   f"<pre>{_esc(text if text else json.dumps(chk, indent=1, default=str))}</pre></details>")
    return "\n".join(out)


def _events_html(report: RunReport) -> str:
    evs = report.timeline.events
    if not evs:
        return ""
    rows = "".join(f"<tr><td class=num>{e.t:.2f}</td><td>{_esc(e.kind)}</td><td>{_esc(e.node)}</td>"
                   f"<td>{_esc(e.text.splitlines()[0] if e.text else '')}</td></tr>"
                   for e in sorted(evs, key=lambda e: e.t))
    return (f"<details><summary><b>All {len(evs)} events</b></summary><table id=events><tr><th>t (s)</th>"
            f"<th>kind</th><th>node</th><th>what</th></tr>{rows}</table></details>")
