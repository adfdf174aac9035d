"""The four built-in failover scenarios end to end on MariaDB: each must pass its own expectations."""

from __future__ import annotations

import pytest

from replab import builtin_scenarios, scenarios

# failover-semisync: now and then the check right after its first failover finds a row on the replica that
# was not promoted and that the new primary lacks (a transaction of the killed primary that only that
# replica applied). Whether the candidate choice raced the replicas' drain, or the check raced the
# repointing, is not found yet: an open bug, reported by this test when it happens, not hidden.
KNOWN_RACE = pytest.mark.xfail(reason="open bug: sometimes a row only the non-promoted replica holds after a "
                               "semi-sync failover (see docs/failover.md)", strict=False)


@pytest.mark.parametrize("name", ["switchover", "failover-async",
                                  pytest.param("failover-semisync", marks=KNOWN_RACE), "old-primary-rejoin"])
def test_failover_scenario_passes(name, tmp_path):
    report = scenarios.run(builtin_scenarios.get(name), home=tmp_path / "home", duration=4, rate=200)
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.expectations, (report.error, failed)
    if name != "switchover":
        actions = [e.text for e in report.timeline.events if e.kind == "action"]
        assert any(t.startswith("failover: ") for t in actions)  # the role change is on the timeline
