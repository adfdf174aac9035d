"""Every shape on real servers (MariaDB 10.11, MySQL 9.7): up, feed on every writer, check consistent, and a
kill/start of a node of each role with the ledger proving nothing acknowledged was lost. One cluster per
shape and server, shared by the module's tests (each test leaves it running and consistent)."""

from __future__ import annotations

import re

import pytest
from catalogue import params, require
from conftest import run_cli, wait_for

from replab.cluster.cluster import Cluster, teardown_home
from replab.core.errors import ConfigError, NotSupported, ReplicationError
from replab.faults import nemesis
from replab.faults import repoint as rp
from replab.verify import checker
from replab.workload.feed import FeedGroup, FeedOptions, sample_nodes, writer_targets

SERVERS = params("mariadb-10.11", "mysql-9.7")


def _cluster(factory, shape: str, server: str) -> Cluster:
    require(server)
    home = factory.mktemp(f"topo-{shape}") / "home"
    return Cluster.up(home=home, topology=shape, server=server)


@pytest.fixture(scope="module", params=SERVERS)
def server(request):
    return request.param


@pytest.fixture(scope="module")
def clusters(tmp_path_factory, server):
    made: dict[str, Cluster] = {}

    def get(shape: str) -> Cluster:
        if shape not in made:
            made[shape] = _cluster(tmp_path_factory, shape, server)
        return made[shape]

    yield get
    for c in made.values():
        teardown_home(c.home)


def _feed(cluster: Cluster, rows: int = 200, on: list[str] | None = None):
    group = FeedGroup(cluster, FeedOptions(rows=rows, threads=2), writer_targets(cluster, on))
    group.start()
    result = group.wait(60)
    assert not group.running
    return group, result


def _consistent(cluster: Cluster, wait: float = 20.0) -> checker.ShapeReport:
    report = checker.check(cluster, wait=wait)
    assert isinstance(report, checker.ShapeReport)
    assert report.consistent, report.render()
    return report


def _count(cluster: Cluster, node: str, table: str) -> int | None:
    return next(s.rows for s in sample_nodes(cluster, table) if s.name == node)


def _acknowledged(report: checker.ShapeReport, writer: str) -> int:
    return int(report.reports[writer].facts.ledger.get("acknowledged", 0))


def test_chain_relay_down_then_back(clusters):
    c = clusters("chain")
    assert [(e.source, e.replica) for e in c.edges] == [("mysql-m", "mysql-s1"), ("mysql-s1", "mysql-s2")]
    _feed(c)
    _consistent(c)
    nemesis.kill(c, "mysql-s1")
    before = _count(c, "mysql-s2", "events")
    _, r = _feed(c, 300)
    assert r.ok == 300
    assert _count(c, "mysql-s2", "events") == before  # the tail stalls: its source is down
    lines = run_cli("status", home=c.home).stdout
    assert "mysql-s1 -> mysql-s2: not replicating" in lines and "mysql-m -> mysql-s1: not replicating: the " \
        "replica mysql-s1 is stopped" in lines
    nemesis.start(c, "mysql-s1")
    assert wait_for(lambda: _count(c, "mysql-s2", "events") == before + 300, 30)
    report = _consistent(c)
    assert report.reports["mysql-m"].facts.ledger_diffs["mysql-s2"]["missing_count"] == 0
    assert _acknowledged(report, "mysql-m") == 500


def test_chain_kill_primary_and_tail(clusters):
    c = clusters("chain")
    for node in ("mysql-m", "mysql-s2"):
        nemesis.kill(c, node)
        if node != "mysql-m":
            _feed(c, 100)
        nemesis.start(c, node)
        c.wait_edges()
        _feed(c, 100)
        _consistent(c)


def test_chain_repoint_and_its_refusals(clusters):
    c = clusters("chain")
    with pytest.raises(ConfigError, match="would make a loop"):
        rp.repoint(c, "mysql-s1", "mysql-s2")
    with pytest.raises(ConfigError, match="cannot switch over to mysql-s2 on this chain: it replicates from "
                                          "mysql-s1, not from the primary mysql-m"):
        from replab.faults import failover
        failover.switchover(c, "mysql-s2")  # the tail (tests/test_chain_roles.py: the role changes that apply)
    nemesis.kill(c, "mysql-s1")
    print(rp.repoint(c, "mysql-s2", "mysql-m"))
    assert [(e.source, e.replica) for e in c.edges] == [("mysql-m", "mysql-s1"), ("mysql-m", "mysql-s2")]
    assert Cluster.open(c.home).edges == c.edges  # stored in cluster.json
    _feed(c, 200)
    nemesis.start(c, "mysql-s1")
    _consistent(c)
    # mysql-s1 stops replicating; rows it lacks reach mysql-s2: moving mysql-s2 under it is refused, naming them
    c.sql("mysql-s1", c.flavor.stop_replica())
    _feed(c, 50)
    with pytest.raises(ReplicationError, match="mysql-s1 lacks transactions mysql-s2 has: ") as exc:
        rp.repoint(c, "mysql-s2", "mysql-s1")
    assert exc.value.hint and "--force" in exc.value.hint
    assert c.edges[1].source == "mysql-m"  # nothing changed
    c.sql("mysql-s1", c.flavor.start_replica())
    c.wait_holders()
    print(rp.repoint(c, "mysql-s2", "mysql-s1"))  # now it has them: back to a chain
    _feed(c, 50)
    _consistent(c)


def test_fan_in_one_primary_down_stalls_only_its_channel(clusters):
    c = clusters("fan-in")
    assert [e.channel for e in c.edges] == ["m1", "m2"]
    _feed(c)
    _consistent(c)
    nemesis.kill(c, "mysql-m1")
    _, r = _feed(c, 200, on=["mysql-m2"])
    assert r.ok == 200
    assert wait_for(lambda: _count(c, "mysql-s1", "events_m2") == _count(c, "mysql-m2", "events_m2"), 20)
    edges = {e.channel: e for e in c.edge_status()}
    assert edges["m2"].io_running and edges["m2"].sql_running
    assert not edges["m1"].io_running
    nemesis.start(c, "mysql-m1")
    c.wait_edges()
    report = _consistent(c)
    assert _acknowledged(report, "mysql-m2") == 400 and _acknowledged(report, "mysql-m1") == 200
    # the aggregating replica down and back: it fetches both primaries' writes
    nemesis.kill(c, "mysql-s1")
    _feed(c, 100)
    nemesis.start(c, "mysql-s1")
    report = _consistent(c)
    assert report.holders == {"mysql-m1": ["mysql-m1", "mysql-s1"], "mysql-m2": ["mysql-m2", "mysql-s1"]}


def test_active_active_both_write_one_down(clusters):
    c = clusters("active-active")
    _feed(c)
    _consistent(c)
    with pytest.raises(NotSupported, match="failover is not defined for an active-active"):
        from replab.faults import failover
        failover.failover(c)
    nemesis.kill(c, "mysql-m2")
    _, r = _feed(c, 200, on=["mysql-m1"])
    assert r.ok == 200
    nemesis.start(c, "mysql-m2")
    c.wait_edges()
    _feed(c, 100)
    report = _consistent(c)
    assert _acknowledged(report, "mysql-m1") == 500 and _acknowledged(report, "mysql-m2") == 300


def test_ring_break_and_heal(clusters):
    c = clusters("ring")
    _feed(c)
    _consistent(c)
    nemesis.kill(c, "mysql-m2")
    base = _count(c, "mysql-m3", "events_m1")
    _, r = _feed(c, 200, on=["mysql-m1"])
    assert r.ok == 200
    assert _count(c, "mysql-m3", "events_m1") == base  # m1's writes stop at the cut: m2 carries them on
    status = run_cli("status", home=c.home).stdout
    assert "mysql-m2 -> mysql-m3: not replicating" in status
    _feed(c, 100, on=["mysql-m3"])  # m3's writes still reach m1 (m3 -> m1 is whole)
    nemesis.start(c, "mysql-m2")
    c.wait_edges()
    report = _consistent(c)
    assert _acknowledged(report, "mysql-m1") == 400 and _acknowledged(report, "mysql-m3") == 300


def test_cli_shapes_and_bad_input(clusters):
    c = clusters("fan-in")
    out = run_cli("status", "--json", home=c.home)
    assert out.returncode == 0, out.stderr
    assert '"shape": "fan-in"' in out.stdout and '"channel": "m2"' in out.stdout
    bad = run_cli("feed", "--on", "mysql-s1", "--rows", "5", home=c.home)
    assert bad.returncode == 2 and "mysql-s1 does not take writes in this fan-in" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = run_cli("repoint", "mysql-s1", "--to", "mysql-m1", home=c.home)
    assert bad.returncode == 2 and "repoint is not defined for a fan-in" in bad.stderr
    bad = run_cli("switchover", "mysql-s1", home=c.home)
    assert bad.returncode == 2 and "switchover is not defined for a fan-in" in bad.stderr
    ok = run_cli("feed", "--on", "mysql-m1,mysql-m2", "--rows", "20", home=c.home)
    assert ok.returncode == 0, ok.stderr
    assert "mysql-s1 events_m1 count:" in ok.stdout and "mysql-s1 events_m2 count:" in ok.stdout
    # the live view's last frame: each node's rows of every writer's table it must hold ('-': not its to hold)
    frame = ok.stdout.split("(final counts)", 1)[1]
    m1 = int(re.search(r"^mysql-s1 events_m1 count: (\d+)$", ok.stdout, re.M).group(1))
    m2 = int(re.search(r"^mysql-s1 events_m2 count: (\d+)$", ok.stdout, re.M).group(1))
    assert re.search(r"^node\s+source\s+events_m1\s+events_m2\s*$", frame, re.M), frame
    assert re.search(rf"^mysql-s1\s+mysql-m1, mysql-m2\s+{m1:,}\s+{m2:,}\s*$", frame, re.M), frame
    assert re.search(rf"^mysql-m1\s+-\s+{m1:,}\s+-\s*$", frame, re.M), frame
    assert re.search(rf"^mysql-m2\s+-\s+-\s+{m2:,}\s*$", frame, re.M), frame
    check = run_cli("check", home=c.home)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("CONSISTENT: fan-in, 2 writer(s)")


def test_bad_up(tmp_path):
    for args, says in ((["--topology", "mesh"], "unknown topology 'mesh'"),
                       (["--topology", "ring", "--nodes", "2"], "--nodes 2: a ring has 3 to 9 nodes"),
                       (["--topology", "fan-in", "--nodes", "2"], "--nodes 2: a fan-in has 3 to 9 nodes")):
        r = run_cli("up", *args, home=tmp_path / "h")
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "h").exists()


@pytest.mark.parametrize("name", ["chain-relay-down", "fan-in", "ring-break", "active-active-conflict"])
@pytest.mark.parametrize("server_name", SERVERS)
def test_shape_scenarios(name, server_name, tmp_path):
    from replab.runs import builtin
    from replab.runs.scenarios import run

    require(server_name)
    report = run(builtin.get(name), home=tmp_path / "home", duration=3, server=server_name)
    failed = [f"{e.name}: {e.evidence}" for e in report.expectations if not e.passed]
    assert report.error is None, report.error
    assert not failed, failed
    assert len(report.expectations) >= 5 and report.verdict == "pass"
