"""The link scenarios end to end on MariaDB 10.11 and MySQL 9.7: each must pass its own expectations
(crash-vs-kill: kill + heal + failover loses nothing, crash + failover loses exactly the writes acknowledged
after the cut, by id; crash-semisync: nothing lost; one-way-partition: the IO thread's and the primary's
views of a link cut one way, nothing lost after heal)."""

from __future__ import annotations

import pytest
from catalogue import params, require

from replab.runs import builtin as builtin_scenarios
from replab.runs import scenarios


@pytest.mark.parametrize("server", params("mariadb-10.11", "mysql-9.7"))
@pytest.mark.parametrize("name", ["crash-vs-kill", "crash-semisync", "one-way-partition",
                                  "semi-sync-over-distance", "thin-link"])
def test_link_scenario_passes(name, server, tmp_path):
    require(server)
    report = scenarios.run(builtin_scenarios.get(name), home=tmp_path / "home", duration=4, rate=200, server=server)
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.expectations, \
        f"{report.error}\n" + "\n".join(f"{name}: {' | '.join(ev)}" for name, ev in failed)
    names = {e.name for e in report.expectations}
    if name == "crash-vs-kill":
        assert {"lost-after-kill", "lost-exactly-after-crash"} <= names
    elif name == "semi-sync-over-distance":
        table = report.tables["commits-over-distance"]
        assert [r[:2] for r in table["rows"]] == [[m, rtt] for m in ("semi-sync", "async") for rtt in (0, 10, 40, 80)]
        assert "semisync-bound" in names
    elif name == "one-way-partition":
        assert {"link-view-to-replica", "link-view-to-primary", "diagnosis-mysql-s1"} <= names
    elif name == "thin-link":
        assert "thin-link-lag" in names and report.metrics["lag_slope_ms_per_s"] > 0
    else:
        assert "lost-final" in names
