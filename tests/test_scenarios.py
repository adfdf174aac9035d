"""Every built-in scenario runs on real servers (short feeds) and its outcome is asserted; the CLI's exit
codes; the HTML report of a real seed run renders in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalogue import params, require
from test_report import chromium, render_in_chromium

from replab.cluster.cluster import Cluster
from replab.faults.nemesis import catch_up_phrase, seconds_text
from replab.runs import builtin as builtin_scenarios
from replab.runs import scenarios as s
from replab.runs.report import FAIL, PASS, render_html, summary

DURATION = 4.0  # seconds of feed per scenario: the suite stays within a few minutes on 2 cores
# seed has its own tests below; the failover scenarios run in test_failover_scenarios.py and
# upgrade-rehearsal in test_servers_matrix.py, the shapes' scenarios in test_topologies.py (both servers)
ELSEWHERE = {"seed", "switchover", "failover-async", "failover-semisync", "old-primary-rejoin", "upgrade-rehearsal",
             "chain-relay-down", "fan-in", "active-active-conflict", "ring-break",
             "group-primary-kill", "group-multi-primary-conflict", "group-quorum-loss",
             "group-minority-partition"}  # test_group.py
NOT_SEED = [n for n in builtin_scenarios.builtin() if n not in ELSEWHERE]


def _servers_gone(report_params: dict) -> None:
    assert not Cluster.exists(report_params["home"]), "the scenario left its cluster behind"


@pytest.mark.parametrize("name", NOT_SEED)
def test_builtin_scenario_outcome(name: str, tmp_path: Path) -> None:
    report = s.run(builtin_scenarios.get(name), duration=DURATION, rate=200)
    detail = "\n".join(f"{e.name}: {e.passed} {e.evidence}" for e in report.expectations)
    assert report.error is None, report.error
    assert report.verdict == PASS, detail
    assert len(report.timeline.samples) > 3 * 10  # sampled all along, every node
    _servers_gone(report.params)
    by_name = {e.name: e for e in report.expectations}
    if name == "lag-under-load":
        assert report.metrics["peak_lag_ms"] >= 1000 and report.metrics["drain_s"] is not None
    if name in ("drop-middle-column", "drop-column-statement"):
        errno = 1677 if name == "drop-middle-column" else 1054
        (stop,) = [e for n, e in by_name.items() if n.startswith("error-") and n.endswith("-mysql-s1")]
        assert stop.passed and str(errno) in stop.name
        assert any(str(errno) in d for d in report.diagnosis)
    if name == "errant-transaction":
        assert any("errant" in d for d in report.diagnosis)


def test_custom_scenario_failing_expectation() -> None:
    """A custom scenario built from the pieces; an unmet expectation gives FAIL with the evidence."""
    mine = s.Scenario("custom", "two nodes, a short feed, an impossible catch-up limit", nodes=2, phases=[
        s.Phase("load", [s.start_feed(rate=100), s.hold(0.5), s.stop_feed(),
                         s.wait_caught_up(metric="catch_up_s"), s.check("final")]),
    ], expectations=[s.expect_consistent("final"), s.expect_metric_below("catch_up_s", -1)])
    report = s.run(mine, duration=2)
    assert report.verdict == FAIL
    assert [e.passed for e in report.expectations] == [True, False]
    assert "catch_up_s = " in report.expectations[1].evidence[0]


def test_cli_list_and_bad_input(cli) -> None:
    out = cli("scenario", "list", "--json")
    assert out.returncode == 0
    names = [x["name"] for x in json.loads(out.stdout)]
    assert names[0] == "seed" and "lag-under-load" in names and "upgrade-rehearsal" in names
    assert len(names) == len(set(names)) == 35  # 27 before Group Replication (4) and Galera (4)
    assert {"group-primary-kill", "group-minority-partition", "galera-node-kill", "galera-flow-control"} <= set(names)
    links = {"crash-vs-kill", "crash-semisync", "one-way-partition", "semi-sync-over-distance", "thin-link"}
    assert links <= set(names)
    assert {"read-your-writes", "monotonic-reads", "proxy-failover"} <= set(names)
    assert {"chain-relay-down", "fan-in", "ring-break", "active-active-conflict"} <= set(names)
    bad = cli("scenario", "run", "no-such-thing")
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("scenario", "run", "seed", "--rate", "-1")  # 0 is "as fast as possible", as in feed
    refused = "error: --rate must be between 0 (as fast as possible) and 100000 rows/s (got -1.0)"
    assert bad.returncode == 2 and refused in bad.stderr
    # docs/scenarios.md quotes that refusal and says what --rate 0 does (it said 0 was refused)
    doc = (Path(__file__).parents[1] / "docs" / "scenarios.md").read_text()
    assert f"`{refused}`" in doc and "`--rate 0` inserts as fast as possible" in doc


def test_seed_cli_report_renders(cli, tmp_path: Path) -> None:
    out_dir = tmp_path / "reports" / "seed"
    res = cli("scenario", "run", "seed", "--report", str(out_dir), "--duration", str(DURATION), timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verdict: PASS" in res.stdout and str(out_dir / "report.html") in res.stdout
    data = json.loads((out_dir / "report.json").read_text())
    assert data["verdict"] == "pass"
    assert [p["name"] for p in data["phases"]] == ["load", "s1-off", "s1-on", "drop-column"]
    assert any(e["kind"] == "fault" and e["node"] == "mysql-s1" for e in data["timeline"]["events"])
    assert any(e["kind"] == "error" and e["data"].get("errno") == 1677 for e in data["timeline"]["events"])
    gaps = _max_gap(data["timeline"]["samples"], "mysql-m")
    assert gaps <= 0.3, f"sampler gap {gaps}s on the primary"
    junit = (out_dir / "junit.xml").read_text()
    assert junit.count("<testcase") == len(data["expectations"]) >= 6
    if chromium() is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    shot = tmp_path / "seed-report.png"
    found = render_in_chromium(out_dir / "report.html", tmp_path, shot).splitlines()
    lanes = {line.split()[1]: line.split(" ", 2)[2].rsplit(" h=", 1)[0] for line in found if line.startswith("lane ")}
    assert lanes["mysql-m"] == "running"
    s1 = lanes["mysql-s1"].split(",")
    assert "OUT" in s1 and s1[-1] == "SQL stopped:1677" and s1.index("OUT") < s1.index("SQL stopped:1677")
    kinds = [line.split()[1:3] for line in found if line.startswith("marker ")]
    assert ["fault", "mysql-s1"] in kinds and ["heal", "mysql-s1"] in kinds and ["error", "mysql-s1"] in kinds
    assert any(line.startswith("catchup mysql-s1 mysql-s1 back after") for line in found)
    assert "grid mysql-s1 | SQL stopped, error 1677 | missing=name" in found
    assert "grid mysql-m | consistent | missing=" in found and "grid mysql-s2 | consistent | missing=" in found
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 40_000


def _max_gap(samples: list[dict], node: str) -> float:
    ts = sorted(x["t"] for x in samples if x["node"] == node)
    return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=0.0)


@pytest.mark.parametrize("server", params("mariadb-10.11", "mysql-9.7"))
def test_one_catch_up_one_figure(server: str, tmp_path: Path) -> None:
    """A replica killed under load and started again: `start`, the wait step, its metric, the summary and
    the report print one catch-up (the seed printed 0.34 s, 0.03 s and 0.41 s for one; a custom scenario's
    wait said 0.12 s and its metric 0.8 s)."""
    require(server)
    mine = s.Scenario("s2-kill", "kill -9 a replica under load", phases=[
        s.Phase("load", [s.start_feed(rate=300), s.hold(0.4)]),
        s.Phase("kill", [s.fault("kill", "mysql-s2"), s.hold(0.4), s.heal("start", "mysql-s2"),
                         s.wait_caught_up(metric="catch_up_s"), s.stop_feed()]),
    ], expectations=[s.expect_metric_below("catch_up_s", 30)])
    report = s.run(mine, duration=3, server=server)
    assert report.verdict == PASS, [(e.name, e.evidence) for e in report.expectations]
    (c,) = report.timeline.catch_ups()
    assert c.node == "mysql-s2" and c.missed_tx and c.missed_tx > 50 and c.seconds is not None
    phrase = catch_up_phrase(c.missed_tx, c.seconds)
    started, waited = report.phases[1].notes[1:3]
    assert started.startswith("mysql-s2: started in ") and f"; {phrase} (mysql-m's position" in started, started
    assert waited == f"mysql-s2 {phrase} after it came back; mysql-s1 applied everything the primary has too"
    assert report.metrics["catch_up_s"] == c.seconds
    text = summary(report)
    assert f"mysql-s2 out for {c.outage_s:g} s, {phrase}" in text
    assert f"catch_up_s = {seconds_text(c.seconds)} s" in text
    assert phrase in render_html(report)
