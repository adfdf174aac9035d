"""Reports of a run: ``report.json`` (everything), ``report.html`` (one self-contained page with plots)
and ``junit.xml`` (one test case per expectation), all from a ``RunReport``.

A ``RunReport`` is plain data (a timeline plus verdicts), so every writer here is testable on recorded or
synthetic data without servers. The schema of report.json is documented in docs/report-schema.md.
"""

from __future__ import annotations

import html
import io
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
            diagnosis=list(data.get("diagnosis", [])), checks=data.get("checks", {}), error=data.get("error"),
            timeline=Timeline.from_dict(data.get("timeline", {})), started_at=data.get("started_at", 0.0),
            finished_at=data.get("finished_at"),
        )


# --- text summary ---------------------------------------------------------------------------------
def summary(report: RunReport) -> str:
    """The readable summary the CLI prints: phases, metrics, expectations with evidence, verdict."""
    lines = [f"scenario {report.scenario}: {report.description}"]
    for ph in report.phases:
        span = f"{ph.start:6.1f}s-{ph.end:6.1f}s" if ph.end is not None else f"{ph.start:6.1f}s-   ..."
        rows = ", ".join(f"{n} count: {'OUT' if v is None else v}" for n, v in ph.rows.items())
        lines.append(f"  phase {ph.name:<22} {span}  rows: {rows}")
        lines.extend(f"      {note}" for note in ph.notes)
    if report.metrics:
        lines.append("  metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in report.metrics.items()))
    for d in report.diagnosis:
        first, *rest = d.splitlines() or [""]
        lines.append(f"  diagnosis: {first}")
        lines.extend(f"             {r.strip()}" for r in rest)
    lines.append("  expectations:")
    for e in report.expectations:
        lines.append(f"    [{'PASS' if e.passed else 'FAIL'}] {e.name}: {e.description}")
        lines.extend(f"           {line.strip()}" for ev in e.evidence for line in ev.splitlines())
    if report.error:
        lines.append(f"  could not run: {report.error}")
    lines.append(f"verdict: {report.verdict.upper()}"
                 + (f" ({len(report.failed)} expectation(s) failed: {', '.join(e.name for e in report.failed)})"
                    if report.verdict == FAIL and report.failed else ""))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
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


# --- plots ----------------------------------------------------------------------------------------
def plot_svg(timeline: Timeline) -> str:
    """Row counts and lag per node over time, fault windows shaded, phase starts marked, as inline SVG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    nodes = timeline.nodes()
    fig, (ax_rows, ax_lag) = plt.subplots(2, 1, figsize=(11, 6.4), sharex=True, constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, node in enumerate(nodes):
        color = colors[i % len(colors)]
        t, rows = timeline.series(node, "rows")
        ax_rows.plot(t, [float("nan") if r is None else r for r in rows], label=node, color=color, lw=1.6)
        t, lag = timeline.series(node, "lag_ms")
        if any(v is not None for v in lag):
            ax_lag.plot(t, [float("nan") if v is None else v for v in lag], label=node, color=color, lw=1.6)
    end = max([s.t for s in timeline.samples] + [e.t for e in timeline.events] + [1.0])
    for ax in (ax_rows, ax_lag):
        for w in timeline.fault_windows():
            ax.axvspan(w.start, w.end if w.end is not None else end, color="#d62728", alpha=0.12, lw=0)
        for _name, start, _ in timeline.phases():
            ax.axvline(start, color="#777", ls=":", lw=0.9)
        ax.grid(True, alpha=0.3)
    ymax = ax_rows.get_ylim()[1]
    for w in timeline.fault_windows():
        label = f"{w.node}: {w.text}" if w.node else w.text
        ax_rows.text(w.start, ymax, " " + label[:40], fontsize=7, va="top", ha="left", color="#a01010",
                     rotation=0, clip_on=True)
    for name, start, _ in timeline.phases():
        ax_lag.text(start, 1.0, " " + name, transform=ax_lag.get_xaxis_transform(), fontsize=7, va="top",
                    color="#555")
    ax_rows.set_ylabel("rows in table")
    ax_rows.set_title("Row count per node (red: fault in force)", fontsize=10, loc="left")
    ax_lag.set_ylabel("lag (ms)")
    ax_lag.set_title("Replication lag per replica (heartbeat)", fontsize=10, loc="left")
    ax_lag.set_xlabel("seconds since start")
    if nodes:
        ax_rows.legend(loc="lower right", fontsize=8)
    if ax_lag.get_legend_handles_labels()[0]:
        ax_lag.legend(loc="upper right", fontsize=8)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "replab"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


# --- HTML -----------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{padding:14px 18px;border-radius:6px;font-size:20px;font-weight:600;margin:12px 0}
.pass{background:#e5f5e5;color:#14611a;border:1px solid #9ccf9f}
.fail{background:#fde8e8;color:#8a1414;border:1px solid #e6a0a0}
.error{background:#fff3d6;color:#7a5300;border:1px solid #e5c77a}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px} td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f4f4f4}
.ok{color:#14611a;font-weight:600} .ko{color:#8a1414;font-weight:600}
pre{background:#f7f7f7;padding:8px;border-radius:4px;white-space:pre-wrap;font-size:12px}
.muted{color:#666;font-size:13px} .plot svg{width:100%;height:auto}
"""


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def render_html(report: RunReport) -> str:
    """One self-contained HTML page: verdict, expectations, phases, plots, diagnosis, evidence, events."""
    v = report.verdict
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>replab: {_esc(report.scenario)}"
             f" - {v.upper()}</title><style>{_CSS}</style></head><body>",
             f"<h1>Scenario <code>{_esc(report.scenario)}</code></h1><p class=muted>{_esc(report.description)}</p>"]
    headline = {PASS: "PASS: everything happened as expected",
                FAIL: f"FAIL: {len(report.failed)} of {len(report.expectations)} expectation(s) not met",
                ERROR: "ERROR: the scenario could not run"}[v]
    parts.append(f"<div class='verdict {v}' id=verdict>{_esc(headline)}</div>")
    if report.error:
        parts.append(f"<pre>{_esc(report.error)}</pre>")
    parts.append(_params_html(report))
    parts.append("<h2>Expectations</h2><table id=expectations><tr><th>result</th><th>expectation</th>"
                 "<th>evidence</th></tr>")
    for e in report.expectations:
        mark = "<span class=ok>PASS</span>" if e.passed else "<span class=ko>FAIL</span>"
        ev = "<br>".join(_esc(x).replace("\n", "<br>&nbsp;&nbsp;") for x in e.evidence)
        parts.append(f"<tr><td>{mark}</td><td><b>{_esc(e.name)}</b><br>{_esc(e.description)}</td><td>{ev}</td></tr>")
    parts.append("</table>")
    if report.metrics:
        parts.append("<h2>Measurements</h2><table id=metrics>")
        parts.extend(f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(val))}</td></tr>" for k, val in report.metrics.items())
        parts.append("</table>")
    parts.append("<h2>Timeline</h2>")
    if report.timeline.samples:
        parts.append(f"<div class=plot id=plot>{plot_svg(report.timeline)}</div>")
    else:
        parts.append("<p class=muted>no samples recorded</p>")
    parts.append(_phases_html(report))
    if report.diagnosis:
        parts.append("<h2>Diagnosis</h2><pre id=diagnosis>" + _esc("\n".join(report.diagnosis)) + "</pre>")
    parts.append(_checks_html(report))
    parts.append(_events_html(report))
    parts.append("<p class=muted>written by replab; the same data is in report.json</p></body></html>")
    return "\n".join(parts)


def _params_html(report: RunReport) -> str:
    items = {**report.params, **{f"cluster.{k}": val for k, val in report.cluster.items() if k != "nodes"}}
    if not items:
        return ""
    cells = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(val)}</td></tr>" for k, val in items.items())
    return f"<table id=params>{cells}</table>"


def _phases_html(report: RunReport) -> str:
    out = ["<h2>Phases</h2>"]
    for ph in report.phases:
        span = f"{ph.start:.1f}s - {'...' if ph.end is None else f'{ph.end:.1f}s'}"
        out.append(f"<h3>{_esc(ph.name)} <span class=muted>({span})</span></h3>")
        if ph.description:
            out.append(f"<p class=muted>{_esc(ph.description)}</p>")
        nodes = list(ph.rows) or list(ph.lag_ms)
        if nodes:
            out.append("<table class=phase><tr><th>node</th><th>rows at end</th><th>lag at end (ms)</th></tr>")
            out.extend(f"<tr><td>{_esc(n)}</td><td>{_esc(ph.rows.get(n))}</td><td>{_esc(ph.lag_ms.get(n))}</td></tr>"
                       for n in nodes)
            out.append("</table>")
        if ph.notes:
            out.append("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in ph.notes) + "</ul>")
    return "\n".join(out)


def _checks_html(report: RunReport) -> str:
    if not report.checks:
        return ""
    out = ["<h2>Consistency checks and evidence</h2>"]
    for name, chk in report.checks.items():
        text = chk.get("text") if isinstance(chk, dict) else None
        ok = chk.get("consistent") if isinstance(chk, dict) else None
        mark = "" if ok is None else (" <span class=ok>consistent</span>" if ok else " <span class=ko>problems</span>")
        out.append(f"<h3>{_esc(name)}{mark}</h3>")
        out.append(f"<pre>{_esc(text if text else json.dumps(chk, indent=1, default=str))}</pre>")
    return "\n".join(out)


def _events_html(report: RunReport) -> str:
    evs = report.timeline.events
    if not evs:
        return ""
    rows = "".join(f"<tr><td>{e.t:.2f}</td><td>{_esc(e.kind)}</td><td>{_esc(e.node)}</td><td>{_esc(e.text)}</td></tr>"
                   for e in sorted(evs, key=lambda e: e.t))
    return (f"<h2>Events</h2><table id=events><tr><th>t (s)</th><th>kind</th><th>node</th><th>what</th></tr>"
            f"{rows}</table>")
