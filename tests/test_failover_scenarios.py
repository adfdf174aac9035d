"""The four built-in failover scenarios end to end on MariaDB: each must pass its own expectations; and what
their reports say about roles after a failover, on MariaDB 10.11 and MySQL 9.7."""

from __future__ import annotations

import pytest
from catalogue import params, require

from replab.runs import builtin as builtin_scenarios
from replab.runs import scenarios
from replab.runs.report import final_grid, summary

M = "mysql-m"


@pytest.mark.parametrize("name", ["switchover", "failover-async", "failover-semisync", "old-primary-rejoin"])
def test_failover_scenario_passes(name, tmp_path):
    report = scenarios.run(builtin_scenarios.get(name), home=tmp_path / "home", duration=4, rate=200)
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.expectations, (report.error, failed)
    if name != "switchover":
        actions = [e.text for e in report.timeline.events if e.kind == "action"]
        assert any(t.startswith("failover: ") for t in actions)  # the role change is on the timeline


def _run(name: str, server: str, tmp_path):
    require(server)
    report = scenarios.run(builtin_scenarios.get(name), home=tmp_path / "home", duration=4, rate=200,
                           server=server)
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed, (report.error, failed)
    return report, {g["node"]: g for g in final_grid(report)}


@pytest.mark.parametrize("server", params("mariadb-10.11", "mysql-9.7"))
def test_failover_async_report_names_the_roles_at_the_end(server, tmp_path):
    """It listed the killed mysql-m as `primary ... consistent` and kept both replicas `cut off` to the end."""
    report, grid = _run("failover-async", server, tmp_path)
    new = report.timeline.final_primary
    other = next(n for n in ("mysql-s1", "mysql-s2") if n != new)
    assert {n: g["role"] for n, g in grid.items()} == {M: "demoted", new: "primary", other: "replica"}
    assert grid[M]["verdict"] == "demoted former primary, out of the cluster (not checked)"
    assert grid[new]["verdict"] == grid[other]["verdict"] == "consistent" and grid[new]["extra"] == []
    failover_at = report.timeline.primary_changes()[-1][0]
    for node in (new, other):
        lanes = report.timeline.segments(node)
        assert lanes[-1].label == "running", (node, lanes)
        cut = [seg for seg in lanes if seg.label == "cut off"]
        assert cut and all(seg.start < failover_at for seg in cut), (node, lanes)  # only while mysql-m was primary
    text = summary(report)
    assert "LOST IN FAILOVER: " in text
    assert "[PASS] consistent-final: every node: no acknowledged write lost" not in text  # item 11


@pytest.mark.parametrize("server", params("mariadb-10.11", "mysql-9.7"))
def test_failover_semisync_report_measures_against_the_new_primary(server, tmp_path):
    """It showed the last primary as `replica` with schema `+id, +name, ...`, and "rows behind mysql-m" at 0
    for the node that fell 450 rows behind the primary of the moment."""
    report, grid = _run("failover-semisync", server, tmp_path)
    last = report.timeline.final_primary
    assert last is not None and last != M and grid[last]["role"] == "primary"
    assert grid[last]["extra"] == [] and grid[last]["missing"] == [] and grid[last]["verdict"] == "consistent"
    assert [g["role"] for n, g in grid.items() if n != last] == ["demoted", "demoted"]
    lost = sum(len(lw["ids"]) for lw in report.checks["final"]["lost_in_failover"])
    ts, behind = report.timeline.rows_behind(last)
    assert lost > 50 and max(v for v in behind if v is not None) >= lost // 2, (lost, behind)
    assert "consistent-final: every node: no acknowledged write lost" not in summary(report)  # item 11
    # with both former primaries out, no replica is left: it said "topology: " (nothing after it) and "no replica
    # applied everything the primary has", as if replicas had failed to
    actions = [e.text for e in report.timeline.events if e.kind == "action"]
    others = ", ".join(f"{n} (demoted)" for n in grid if n != last)
    assert f"topology: primary {last}; no replica replicates from it; out of replication: {others}" in actions, actions
    assert "no replica to wait for: no other node replicates from the primary" in actions, actions
    assert not any(t.strip() == "topology:" or t.startswith("no replica applied") for t in actions), actions
    (topology,) = [e for e in report.expectations if e.name == "topology"]
    assert topology.evidence == [f"primary {last}; no replica replicates from it; out of replication: {others}"], \
        topology.evidence
