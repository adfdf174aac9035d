"""The four built-in failover scenarios end to end on MariaDB: each must pass its own expectations."""

from __future__ import annotations

import pytest

from replab.runs import builtin as builtin_scenarios
from replab.runs import scenarios


@pytest.mark.parametrize("name", ["switchover", "failover-async", "failover-semisync", "old-primary-rejoin"])
def test_failover_scenario_passes(name, tmp_path):
    report = scenarios.run(builtin_scenarios.get(name), home=tmp_path / "home", duration=4, rate=200)
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.expectations, (report.error, failed)
    if name != "switchover":
        actions = [e.text for e in report.timeline.events if e.kind == "action"]
        assert any(t.startswith("failover: ") for t in actions)  # the role change is on the timeline
