"""Report writers on a synthetic timeline (no servers), and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replab.report import (
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
from replab.timeline import Event, Sample, Timeline


def synthetic_timeline() -> Timeline:
    """10 s of a 3-node run: mysql-s1 stopped from 3 s to 6 s, then catches up."""
    tl = Timeline(started_at=1_700_000_000.0)
    tl.interval = 0.2
    for i in range(51):
        t = i * 0.2
        rows = int(t * 100)
        tl.samples.append(Sample(t, "mysql-m", "running", rows=rows))
        tl.samples.append(Sample(t, "mysql-s2", "running", rows=max(0, rows - 5), lag_ms=40, io_running=True,
                                 sql_running=True, last_errno=0))
        if 3.0 <= t < 6.0:
            tl.samples.append(Sample(t, "mysql-s1", "stopped"))
        else:
            behind = max(0, int((7.0 - t) * 300)) if t >= 6.0 else 5
            tl.samples.append(Sample(t, "mysql-s1", "running", rows=max(0, rows - behind),
                                     lag_ms=behind * 10, io_running=True, sql_running=True, last_errno=0))
    tl.events = [
        Event(0.0, "phase_start", "load"), Event(3.0, "phase_end", "load"),
        Event(3.0, "phase_start", "s1-off"), Event(3.0, "fault", "stop", "mysql-s1"),
        Event(6.0, "heal", "start", "mysql-s1"), Event(6.0, "phase_end", "s1-off"),
        Event(6.0, "phase_start", "s1-on"), Event(10.0, "phase_end", "s1-on"),
    ]
    return tl


def make_report(passed: bool = True, error: str | None = None) -> RunReport:
    return RunReport(
        scenario="seed", description="synthetic run", params={"duration": 10, "rate": 100},
        cluster={"flavor": "mariadb", "binlog_format": "ROW"},
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
        diagnosis=["mysql-s1: replicating normally"],
        checks={"final": {"consistent": passed, "text": "all nodes hold 1000 rows <script>"}},
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
    assert [(w.node, w.start, w.end) for w in windows] == [("mysql-s1", 3.0, 6.0)]
    assert [p[0] for p in tl.phases()] == ["load", "s1-off", "s1-on"]
    peak, at = tl.peak_lag("mysql-s1", start=6.0)
    assert peak == 3000 and at == 6.0


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
    assert page.count("<svg") == 1 and "<path" in page


def test_summary_names_failed_expectation() -> None:
    text = summary(make_report(passed=False))
    assert "[FAIL] caught-up" in text and "still 12 rows behind" in text
    assert text.splitlines()[-1].startswith("verdict: FAIL") and "caught-up" in text.splitlines()[-1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def render_in_chromium(page: Path, tmp: Path) -> tuple[str, bytes]:
    """(dumped DOM with a layout probe, screenshot PNG bytes) of a page in headless Chromium."""
    exe = chromium()
    assert exe
    probe = tmp / "probe.html"
    # A probe page that loads the report in an iframe-free way: copy it and append a script that writes the
    # rendered size of every plot into the DOM, which --dump-dom then shows.
    script = ("<script>for(const s of document.querySelectorAll('#plot svg')){"
              "const r=s.getBoundingClientRect();const d=document.createElement('div');d.className='probe';"
              "d.textContent='plotsize '+Math.round(r.width)+'x'+Math.round(r.height)+' paths '"
              "+s.querySelectorAll('path').length;document.body.appendChild(d)}</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    base = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90).stdout
    shot = tmp / "shot.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], capture_output=True,
                   timeout=90)
    return dom, shot.read_bytes() if shot.exists() else b""


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (apt-get install -y chromium)")
def test_html_plots_render_in_chromium(tmp_path: Path) -> None:
    paths = write_all(make_report(), tmp_path / "out")
    dom, png = render_in_chromium(paths["html"], tmp_path)
    m = re.search(r"plotsize (\d+)x(\d+) paths (\d+)", dom)
    assert m, "the plot SVG was not found in the rendered DOM"
    width, height, paths_n = map(int, m.groups())
    assert width > 600 and height > 300 and paths_n > 10
    assert "PASS: everything happened as expected" in dom
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a blank page compresses to a few KB
