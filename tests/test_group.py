"""MySQL Group Replication (``--topology group``) on real MySQL 9.7 servers: the built-in scenarios (kill of the
primary under writes, conflicting increments on a multi-primary group), then status, feed --on all and check
on the cluster each scenario kept; and the bad input refused before anything is created."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from catalogue import require
from conftest import REPLAB, run_cli

from replab import Cluster
from replab.core.errors import ConfigError
from replab.engines import membernet
from replab.runs import builtin
from replab.runs.scenarios import run

SERVER = "mysql-9.7"


def test_bad_group_input(tmp_path):
    home = tmp_path / "h"
    for args, says in (({"topology": "group", "server": "mariadb-10.11"}, "--topology group needs MySQL"),
                       ({"topology": "chain", "multi_primary": True}, "--multi-primary is for --topology group only"),
                       ({"topology": "group", "server": SERVER, "nodes": 2}, "--nodes 2: a group has 3 to 9 nodes")):
        with pytest.raises(ConfigError) as err:
            Cluster.up(home=home, **args)
        assert says in str(err.value.render()), err.value.render()
        assert not home.exists()
    r = run_cli("up", "--topology", "group", "--server", "mariadb-10.11", home=home)  # the CLI: 2 lines, exit 2
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"(servers here that have it: {SERVER})" in r.stderr and "--topology galera" in r.stderr
    assert not home.exists()


def _passed(report) -> None:
    failed = [f"{e.name}: {e.evidence}" for e in report.expectations if not e.passed]
    assert report.error is None, report.error
    assert not failed, failed
    assert report.verdict == "pass"


def test_group_primary_kill(tmp_path):
    require(SERVER)
    home = tmp_path / "home"
    try:
        report = run(builtin.get("group-primary-kill"), home=home, duration=4, keep=True)
        _passed(report)
        metrics = report.to_dict()["metrics"]
        assert 0 < metrics["election_s"] <= metrics["write_outage_s"] < 70
        assert metrics["rejoin_s"] > 0
        # the report marks the election and draws each member's own state
        elected = [e for e in report.timeline.events if e.data.get("marker") == "election"]
        assert elected and elected[0].node != "mysql-m", [e.text for e in report.timeline.events]
        assert {s.member for s in report.timeline.samples if s.node == "mysql-s1" and s.member} >= {"ONLINE"}
        status = run_cli("status", "--json", home=home)
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        members = {n["name"]: n["group"] for n in data["nodes"]}
        assert {m["member_state"] for m in members.values()} == {"ONLINE"}
        primaries = [n for n, m in members.items() if m["member_role"] == "PRIMARY"]
        assert primaries == [data["primary"]] and data["primary"] != "mysql-m"  # the elected one stays
        assert len({m["view_id"] for m in members.values()}) == 1 and data["group"]["has_quorum"]
        _switchover_under_a_feed(home, members, data["primary"])
    finally:
        if Cluster.exists(home):
            Cluster.open(home).down()


def test_group_multi_primary_conflict(tmp_path):
    require(SERVER)
    home = tmp_path / "home"
    try:
        report = run(builtin.get("group-multi-primary-conflict"), home=home, duration=4, keep=True)
        _passed(report)
        metrics = report.to_dict()["metrics"]
        assert metrics["increments_failed"] > 0 and metrics["increments_acknowledged"] > 0
        assert [metrics[f"lost_increments_{n}"] for n in ("mysql-m", "mysql-s1", "mysql-s2")] == [0, 0, 0]
        fed = run_cli("feed", "--on", "all", "--rows", "20", home=home)
        assert fed.returncode == 0, fed.stderr
        for table in ("events_m", "events_s1", "events_s2"):
            for node in ("mysql-m", "mysql-s1", "mysql-s2"):
                assert f"{node} {table} count: 20" in fed.stdout, fed.stdout
        check = run_cli("check", home=home)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.startswith("CONSISTENT: group-multi-primary, 3 writer(s)")
        sw = run_cli("switchover", "mysql-s1", home=home)  # every member takes writes: refused, nothing changed
        assert sw.returncode == 2 and "Traceback" not in sw.stderr, sw.stderr
        assert "switchover is not defined for a group-multi-primary topology" in sw.stderr, sw.stderr
        assert "there is no primary to move" in sw.stderr, sw.stderr
    finally:
        if Cluster.exists(home):
            Cluster.open(home).down()


@pytest.mark.slow
def test_group_quorum_loss(tmp_path):
    require(SERVER)
    report = run(builtin.get("group-quorum-loss"), home=tmp_path / "home", duration=4)
    _passed(report)
    names = {e.name for e in report.expectations}
    assert {"write-blocked", "writes-stop-then-resume", "write-forced", "consistent-final"} <= names
    assert len([n for n in names if n.startswith("diagnosis-mysql-m")]) == 3


def test_group_minority_partition(tmp_path):
    require(SERVER)
    why = membernet.unusable()
    if why:
        pytest.skip(why)
    report = run(builtin.get("group-minority-partition"), home=tmp_path / "home", duration=4)
    _passed(report)
    metrics = report.to_dict()["metrics"]
    assert metrics["rejoin_s"] > 0 and metrics["noticed_s"] > 0


@pytest.mark.parametrize("shape", ["group", "group-multi-primary"])
def test_group_topology_rules(shape):
    from replab.topologies import get_topology

    topo = get_topology(shape)
    names = topo.node_names(3)
    assert names == ["mysql-m", "mysql-s1", "mysql-s2"] and topo.edges(names) == []
    assert all(topo.holders(w, names, []) == names for w in topo.writers(names))
    assert topo.writers(names) == (names if shape == "group-multi-primary" else names[:1])


def _switchover_under_a_feed(home, members, primary: str) -> None:
    """switchover moves the group's primary on purpose while a feed writes (which follows it; check finds
    every acknowledged write); the current primary and a member that is not ONLINE are refused."""
    secondaries = sorted(n for n, m in members.items() if m["member_role"] == "SECONDARY")
    target, other = secondaries
    feed = subprocess.Popen([*REPLAB, "feed", "--rate", "100", "--duration", "5"], env={**os.environ,
                            "REPLAB_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        sw = run_cli("switchover", target, home=home)
        assert sw.returncode == 0, sw.stderr
        assert f"switchover: {target} is the group's primary ({primary} is a SECONDARY)" in sw.stdout, sw.stdout
    finally:
        out, err = feed.communicate(timeout=120)
    assert feed.returncode == 0, err
    check = run_cli("check", home=home)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(run_cli("status", "--json", home=home).stdout)["primary"] == target
    again = run_cli("switchover", target, home=home)
    assert again.returncode == 2 and f"{target} is already the group's primary" in again.stderr, again.stderr
    assert run_cli("stop", other, home=home).returncode == 0
    down = run_cli("switchover", other, home=home)
    assert down.returncode == 2 and "a switchover needs an ONLINE member" in down.stderr, down.stderr
    assert json.loads(run_cli("status", "--json", home=home).stdout)["primary"] == target  # nothing changed

