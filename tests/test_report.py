"""Report writers on a synthetic timeline (no servers), and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replab.runs.report import (
    ERROR,
    FAIL,
    PASS,
    ExpectationResult,
    PhaseResult,
    RunReport,
    render_html,
    summary,
    write_all,
)
from replab.runs.timeline import Event, Sample, Timeline


def synthetic_timeline() -> Timeline:
    """10 s of a 3-node run at 100 rows/s: mysql-s1 OUT from 3 s to 6 s, then catches up; from 8 s its SQL
    thread is stopped by error 1677. Replica samples are taken a little after the primary's (skew)."""
    tl = Timeline(started_at=1_700_000_000.0)
    tl.interval, tl.primary = 0.2, "mysql-m"
    s1_rows = 0
    for i in range(51):
        t = round(i * 0.2, 3)
        rows = int(t * 100)
        tl.samples.append(Sample(t, "mysql-m", "running", rows=rows, tx=rows, took=0.01))
        # sampled 0.05 s later than the primary: it may hold more rows than the primary's sample shows
        ahead = int((t + 0.05) * 100)
        tl.samples.append(Sample(t + 0.05, "mysql-s2", "running", rows=ahead, tx=ahead, lag_ms=40,
                                 io_running=True, sql_running=True, last_errno=0, took=0.01))
        if 3.0 <= t < 6.0:
            tl.samples.append(Sample(t + 0.02, "mysql-s1", "stopped"))
            continue
        if t >= 8.0:
            tl.samples.append(Sample(t + 0.02, "mysql-s1", "running", rows=s1_rows, tx=s1_rows,
                                     lag_ms=int((t - 8) * 1000), io_running=True, sql_running=False,
                                     last_errno=1677, sql_errno=1677, took=0.01))
            continue
        s1_rows = rows if t < 3.0 else min(rows, 290 + int((t - 6.0) * 600))
        tl.samples.append(Sample(t + 0.02, "mysql-s1", "running", rows=s1_rows, tx=s1_rows,
                                 lag_ms=(rows - s1_rows) * 10, io_running=True, sql_running=True, last_errno=0,
                                 took=0.01))
    tl.events = [
        Event(0.0, "phase_start", "load"), Event(3.0, "phase_end", "load"),
        Event(3.0, "phase_start", "s1-off"), Event(3.0, "fault", "stop mysql-s1", "mysql-s1"),
        Event(6.0, "heal", "start mysql-s1", "mysql-s1", {"result": "mysql-s1: started in 0.2s"}),
        Event(6.0, "phase_end", "s1-off"), Event(6.0, "phase_start", "s1-on"),
        Event(7.9, "fault", "drift mysql-s1: drop column events.name", "mysql-s1"),
        Event(8.0, "error", "SQL thread error 1677: Column 1 of table 'mydb.events' cannot be converted",
              "mysql-s1", {"errno": 1677, "thread": "sql"}),
        Event(10.0, "phase_end", "s1-on"),
    ]
    return tl


def make_report(passed: bool = True, error: str | None = None) -> RunReport:
    return RunReport(
        scenario="seed", description="synthetic run", params={"duration": 10, "rate": 100, "threads": 2, "seed": 1},
        cluster={"flavor": "mariadb", "binlog_format": "ROW", "engine": "local",
                 "nodes": [{"name": "mysql-m", "role": "primary"}, {"name": "mysql-s1", "role": "replica"},
                           {"name": "mysql-s2", "role": "replica"}]},
        expectations=[
            ExpectationResult("no-write-lost", "every acknowledged write is on every node", True,
                              ["1000 acknowledged writes; 0 missing on mysql-s1, mysql-s2"]),
            ExpectationResult("caught-up", "mysql-s1 catches up within 10 s", passed,
                              ["caught up in 1.20 s" if passed else "still 12 rows behind after 10 s"]),
        ],
        phases=[PhaseResult("load", "inserts", 0.0, 3.0, {"mysql-m": 300, "mysql-s1": 295}),
                PhaseResult("s1-off", "mysql-s1 stopped", 3.0, 6.0, {"mysql-m": 600, "mysql-s1": None},
                            notes=["mysql-s1 stopped"])],
        metrics={"catch_up_s": 1.2, "peak_lag_ms": 3000},
        diagnosis=["mysql-s1: SQL thread stopped: error 1677\n  cause: column `name` dropped on this replica only"],
        checks={"final": {"consistent": passed, "text": "all nodes hold 1000 rows <script>",
                          "nodes": [{"name": "mysql-m", "tables": {"events": {"rows": 1000, "checksum": "c0ffee01"}}},
                                    {"name": "mysql-s1", "tables": {"events": {"rows": None, "checksum": None}}},
                                    {"name": "mysql-s2", "tables": {"events": {"rows": 1000, "checksum": "c0ffee01"}}}],
                          "problems": [{"node": "mysql-s1", "kind": "schema", "detail": "column name is missing"}]}},
        final={"mysql-m": {"state": "running", "rows": 1000, "version": "10.11.19-MariaDB-0+deb12u1",
                           "columns": ["id", "name", "counter", "description"]},
               "mysql-s1": {"state": "running", "rows": 790, "version": "10.11.19-MariaDB-0+deb12u1",
                            "columns": ["id", "counter", "description"]},
               "mysql-s2": {"state": "running", "rows": 1000, "version": "10.11.19-MariaDB-0+deb12u1",
                            "columns": ["id", "name", "counter", "description"]}},
        error=error, timeline=synthetic_timeline(), started_at=1_700_000_000.0, finished_at=1_700_000_010.0,
    )


def test_verdicts() -> None:
    assert make_report().verdict == PASS
    assert make_report(passed=False).verdict == FAIL
    assert make_report(error="could not start").verdict == ERROR
    assert RunReport("x", "no expectations").verdict == FAIL


def test_fault_windows_and_phases() -> None:
    tl = synthetic_timeline()
    windows = tl.fault_windows()
    assert [(w.node, w.start, w.end) for w in windows] == [("mysql-s1", 3.0, 6.0), ("mysql-s1", 7.9, None)]
    assert [p[0] for p in tl.phases()] == ["load", "s1-off", "s1-on"]
    peak, at = tl.peak_lag("mysql-s1", start=6.0, end=7.0)
    assert peak == 3100 and at == 6.02


def test_json_round_trip(tmp_path: Path) -> None:
    paths = write_all(make_report(passed=False), tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == "replab.report/1"
    assert data["verdict"] == "fail"
    assert {"t", "node", "state", "rows", "lag_ms", "io_running", "sql_running", "last_errno"} <= set(
        data["timeline"]["samples"][0])
    again = RunReport.from_dict(data)
    assert again.verdict == FAIL
    assert len(again.timeline.samples) == len(make_report().timeline.samples)
    assert again.timeline.fault_windows()[0].node == "mysql-s1"


def test_junit_one_case_per_expectation(tmp_path: Path) -> None:
    paths = write_all(make_report(passed=False), tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["no-write-lost", "caught-up"]
    failure = cases[1].find("failure")
    assert failure is not None and "12 rows behind" in (failure.text or "")
    err = write_all(make_report(error="mariadbd not found"), tmp_path / "e")
    esuite = ET.parse(err["junit"]).getroot().find("testsuite")
    assert esuite is not None and esuite.get("errors") == "1"


def test_html_is_self_contained_and_escaped() -> None:
    page = render_html(make_report(passed=False))
    assert page.index("id=verdict") < page.index("<svg")  # verdict first
    assert "FAIL: 1 of 2 expectation(s) not met" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing fetched from the network
    assert page.count("<svg") == 1 and "<polyline" in page


def test_summary_names_failed_expectation() -> None:
    text = summary(make_report(passed=False))
    assert "[FAIL] caught-up" in text and "still 12 rows behind" in text
    assert text.splitlines()[-1].startswith("verdict: FAIL") and "caught-up" in text.splitlines()[-1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


# Written into the rendered page by the probe script, then read back from --dump-dom: what a reader sees.
PROBE = """<script>
const out = [];
const svg = document.querySelector('#plot svg');
const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
out.push('plotsize ' + Math.round(r.width) + 'x' + Math.round(r.height));
for (const lane of document.querySelectorAll('g.lane')) {
  const segs = [...lane.querySelectorAll('g.seg')]
    .map(g => g.dataset.lane + (g.dataset.errno ? ':' + g.dataset.errno : ''));
  const h = Math.round(lane.getBoundingClientRect().height);
  out.push('lane ' + lane.dataset.node + ' ' + segs.join(',') + ' h=' + h);
}
for (const m of document.querySelectorAll('g.marker')) {
  out.push('marker ' + m.dataset.kind + ' ' + m.dataset.node + ' visible=' + (m.getBoundingClientRect().width > 20));
}
for (const c of document.querySelectorAll('g.catchup')) out.push('catchup ' + c.dataset.node + ' ' + c.textContent);
for (const tr of document.querySelectorAll('#final-grid tr.node-row')) {
  const missing = [...tr.querySelectorAll('del.missing')].map(d => d.dataset.missing).join(',');
  out.push('grid ' + tr.dataset.node + ' | ' + tr.dataset.verdict + ' | missing=' + missing);
}
out.push('lines ' + document.querySelectorAll('#plot polyline').length);
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = out.join('\\n');
document.body.appendChild(pre);
</script>"""


def render_in_chromium(page: Path, tmp: Path, shot: Path) -> str:
    """The probe's findings on the page rendered by headless Chromium; a full-page screenshot into ``shot``."""
    exe = chromium()
    assert exe
    probe = tmp / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    base = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90).stdout
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()], capture_output=True,
                   timeout=90)
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run in the rendered page"
    return html.unescape(m.group(1))


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (apt-get install -y chromium)")
def test_report_reads_in_chromium(tmp_path: Path) -> None:
    paths = write_all(make_report(), tmp_path / "out")
    shot = tmp_path / "report.png"
    found = render_in_chromium(paths["html"], tmp_path, shot)
    lines = found.splitlines()
    width, height = map(int, re.search(r"plotsize (\d+)x(\d+)", found).groups())  # type: ignore[union-attr]
    assert width > 1000 and height > 500
    lanes = {line.split()[1]: line.split(" ", 2)[2].rsplit(" h=", 1)[0] for line in lines if line.startswith("lane ")}
    assert lanes["mysql-m"] == "running"
    assert lanes["mysql-s1"] == "running,OUT,running,SQL stopped:1677"
    assert lanes["mysql-s2"] == "running"
    assert all(int(line.rsplit("h=", 1)[1]) >= 20 for line in lines if line.startswith("lane "))
    markers = [line for line in lines if line.startswith("marker ")]
    assert markers == ["marker fault mysql-s1 visible=true", "marker heal mysql-s1 visible=true",
                       "marker fault mysql-s1 visible=true", "marker error mysql-s1 visible=true"]
    catchup = next(line for line in lines if line.startswith("catchup "))
    # OUT from 3.02 s to 6.02 s; the primary had 600 transactions then, mysql-s1 280 before it went: 320
    # missed; it reached 600 in the sample that ended at 6.63 s
    assert catchup == ("catchup mysql-s1 mysql-s1 back after 3 s out"
                       "caught up in 0.61 s: 320 transactions missed, applied at ~525 tx/s")
    assert "grid mysql-m | consistent | missing=" in lines
    assert "grid mysql-s1 | SQL stopped, error 1677 | missing=name" in lines
    assert "grid mysql-s2 | consistent | missing=" in lines
    assert int(re.search(r"lines (\d+)", found).group(1)) >= 8  # type: ignore[union-attr]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 40_000  # a blank page compresses to a few KB
