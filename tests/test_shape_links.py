"""Partition, heal and link shaping per edge on the shapes other than the star, and repair/sync there, on real
servers (MariaDB 10.11, MySQL 9.7): a chain of 4 with its middle edge cut (the nodes past the cut stop
receiving, the one before it goes on; heal, check consistent, the ledger proves nothing acknowledged lost);
a fan-in with one channel cut (the other goes on); rows deleted on a chain's tail and a fan-in's replica put
back by ``sync`` (against each writer) and by ``repair`` (from the node's own source; refused on a node of
several sources, nothing changed). One cluster per shape and server, shared by the module's tests."""

from __future__ import annotations

import json
import re
import time

import pytest
from catalogue import params, require
from conftest import run_cli, wait_for

from replab.cluster.cluster import Cluster, teardown_home
from replab.core.errors import ConfigError, NodeStateError, NotSupported
from replab.engines import relay
from replab.faults import nemesis
from replab.faults.repair import repair
from replab.faults.sync import sync
from replab.verify import checker
from replab.workload.feed import FeedGroup, FeedOptions, sample_nodes, writer_targets

SERVERS = params("mariadb-10.11", "mysql-9.7")
CUT = "cut both ways (packets silently dropped, no reset)"


@pytest.fixture(scope="module", params=SERVERS)
def server(request):
    return request.param


@pytest.fixture(scope="module")
def clusters(tmp_path_factory, server):
    made: dict[str, Cluster] = {}

    def get(shape: str, nodes: int | None = None) -> Cluster:
        if shape not in made:
            require(server)
            home = tmp_path_factory.mktemp(f"links-{shape}") / "home"
            made[shape] = Cluster.up(nodes, home=home, topology=shape, server=server)
        return made[shape]

    yield get
    for c in made.values():
        teardown_home(c.home)


def _feed(cluster: Cluster, rows: int, on: list[str] | None = None):
    group = FeedGroup(cluster, FeedOptions(rows=rows, threads=2), writer_targets(cluster, on))
    group.start()
    result = group.wait(60)
    assert not group.running
    return result


def _count(cluster: Cluster, node: str, table: str) -> int | None:
    return next(s.rows for s in sample_nodes(cluster, table) if s.name == node)


def _consistent(cluster: Cluster) -> checker.ShapeReport:
    report = checker.check(cluster, wait=30)
    assert isinstance(report, checker.ShapeReport)
    assert report.consistent, report.render()
    assert not report.problems
    return report


def _acked(report: checker.ShapeReport, writer: str) -> int:
    ledger = report.reports[writer].facts.ledger
    return int(ledger.get("acknowledged", 0)) if ledger else 0


def _with_rows(cluster: Cluster, rows: int = 50) -> None:
    """Every writer's table holds rows on every node, whatever ran before on this module's cluster (pytest may
    order the tests of a module-scoped, parametrized fixture differently from the file)."""
    writers = cluster.writers()
    if any((_count(cluster, w, cluster.writer_table(w)) or 0) < rows for w in writers):
        assert _feed(cluster, rows).ok > 0
        _consistent(cluster)


def _edge_links(cluster: Cluster) -> dict[str, list[str]]:
    data = json.loads(run_cli("status", "--json", home=cluster.home).stdout)
    return {f"{e['source']}>{e['replica']}": e["link"]["cut"] for e in data["edges"]}


def test_chain_middle_edge_cut_then_healed(clusters):
    c = clusters("chain", 4)
    assert [(e.source, e.replica) for e in c.edges] == [("mysql-m", "mysql-s1"), ("mysql-s1", "mysql-s2"),
                                                      ("mysql-s2", "mysql-s3")]
    assert _feed(c, 200).ok == 200
    _consistent(c)
    # a node no edge feeds has no link of its own: refused, nothing changed
    bad = run_cli("partition", "mysql-m", home=c.home)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: mysql-m has no source on this chain: no replication edge comes into it, so it has no link of its "
        "own to partition", "hint: an edge it feeds is its replica's: replab partition mysql-s1"]
    bad = run_cli("partition", "mysql-s2", "--from", "mysql-m", home=c.home)
    assert bad.returncode == 2 and bad.stderr.splitlines()[0] == \
        "error: mysql-s2 does not replicate from mysql-m (its source: mysql-s1)"
    assert set(map(tuple, _edge_links(c).values())) == {()}

    t0 = time.monotonic()
    said = nemesis.partition(c, "mysql-s2")
    cut_s = time.monotonic() - t0
    assert said == (f"mysql-s2: partitioned: the link mysql-s1 -> mysql-s2 is {CUT}; the IO thread notices after "
                    "slave_net_timeout=10s; heal with: replab heal mysql-s2")
    assert _edge_links(c) == {"mysql-m>mysql-s1": [], "mysql-s1>mysql-s2": ["to-primary", "to-replica"],
                              "mysql-s2>mysql-s3": []}
    assert nemesis.partitioned(c) == ["mysql-s2"]
    with pytest.raises(NodeStateError, match="the link mysql-s1 -> mysql-s2 is already cut"):
        nemesis.partition(c, "mysql-s2")
    before = {n: _count(c, n, "events") for n in ("mysql-s2", "mysql-s3")}
    assert _feed(c, 300).ok == 300
    assert wait_for(lambda: _count(c, "mysql-s1", "events") == 500, 20)  # before the cut: it goes on
    time.sleep(1.0)
    assert {n: _count(c, n, "events") for n in ("mysql-s2", "mysql-s3")} == before == \
        {"mysql-s2": 200, "mysql-s3": 200}  # past the cut: nothing arrives, the tail included
    status = run_cli("status", home=c.home).stdout
    assert "mysql-s1 -> mysql-s2: not replicating: its link is cut both ways (heal with: replab heal mysql-s2)" \
        in status
    diag = run_cli("diagnose", "mysql-s2", home=c.home).stdout
    assert "not receiving over mysql-s1 -> mysql-s2: its link is cut both ways (replab partition)" in diag

    t0 = time.monotonic()
    healed = run_cli("heal", "mysql-s2", home=c.home)
    heal_s = time.monotonic() - t0
    assert healed.returncode == 0, healed.stderr
    assert healed.stdout.strip() == ("healed: the link mysql-s1 -> mysql-s2 carries traffic again; replication "
                                     "resumes where it stopped")
    t0 = time.monotonic()
    assert wait_for(lambda: _count(c, "mysql-s3", "events") == 500, 30)
    caught_s = time.monotonic() - t0
    report = _consistent(c)
    assert _acked(report, "mysql-m") == 500  # every acknowledged write on every node: 0 lost
    diffs = report.reports["mysql-m"].facts.ledger_diffs  # the ledger's verdict on each node
    assert {n: d["missing_count"] for n, d in diffs.items()} == {n: 0 for n in c.names}
    print(f"\nchain: partition {cut_s * 1000:.0f} ms, heal (CLI) {heal_s * 1000:.0f} ms, tail caught up "
          f"{caught_s * 1000:.0f} ms after heal")
    assert nemesis.heal(c) == "nothing to heal: no link is cut"


def test_chain_link_shaping_per_edge(clusters):
    c = clusters("chain", 4)
    said = nemesis.link(c, "mysql-s3", delay="30ms", direction="to-replica")
    port = relay.listen_port(c.home, "mysql-s3")
    assert said == ("the link mysql-s2 -> mysql-s3: to-replica 30ms (+30 ms to each round trip), by the user-space "
                    f"relay on 127.0.0.1:{port} (this engine does not use netem)")
    shown = run_cli("link", "mysql-s3", home=c.home)
    assert shown.stdout.strip() == "the link mysql-s2 -> mysql-s3: to-replica 30ms"
    data = json.loads(run_cli("link", "mysql-s3", "--json", home=c.home).stdout)
    assert data["links"][0]["conditions"] == {"to-replica": {"delay_ms": 30.0}}
    assert data["links"][0]["source"] == "mysql-s2"
    others = {e.replica: e.link for e in c.edge_status()}
    assert others["mysql-s1"]["conditions"] == {} and others["mysql-s3"]["conditions"] == {
        "to-replica": {"delay_ms": 30.0}}
    assert _feed(c, 50).ok == 50
    assert nemesis.link(c, "mysql-s3", clear=True).startswith("the link mysql-s2 -> mysql-s3: plain again")
    _consistent(c)
    with pytest.raises(ConfigError, match="mysql-m has no source on this chain"):
        nemesis.link(c, "mysql-m", delay="10ms")


def test_fan_in_one_channel_cut_the_other_goes_on(clusters):
    c = clusters("fan-in")
    assert _feed(c, 100).ok == 200
    _consistent(c)
    bad = run_cli("partition", "mysql-m1", home=c.home)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "error: mysql-m1 has no source on this fan-in: no replication edge comes into it, so it has no link of its "
        "own to partition", "hint: an edge it feeds is its replica's: replab partition mysql-s1 --from mysql-m1"]
    said = run_cli("partition", "mysql-s1", "--from", "mysql-m2", home=c.home)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == (f"mysql-s1: partitioned: the link mysql-m2 -> mysql-s1 (m2) is {CUT}; the IO "
                                   "thread notices after slave_net_timeout=10s; heal with: replab heal mysql-s1 "
                                   "--from mysql-m2")
    assert _edge_links(c) == {"mysql-m1>mysql-s1": [], "mysql-m2>mysql-s1": ["to-primary", "to-replica"]}
    m2_before = _count(c, "mysql-s1", "events_m2")
    assert _feed(c, 150).ok == 300
    assert wait_for(lambda: _count(c, "mysql-s1", "events_m1") == 250, 20)  # m1's channel goes on
    time.sleep(1.0)
    assert _count(c, "mysql-s1", "events_m2") == m2_before == 100  # m2's channel hears nothing
    edges = {e.channel: e for e in c.edge_status()}
    assert edges["m1"].io_running and edges["m1"].sql_running and edges["m1"].link["cut"] == []
    with pytest.raises(NodeStateError, match=r"the link mysql-m1 -> mysql-s1 is not partitioned"):
        nemesis.heal(c, "mysql-s1", source="mysql-m1")
    assert nemesis.heal(c, "mysql-s1", source="mysql-m2") == (
        "healed: the link mysql-m2 -> mysql-s1 (m2) carries traffic again; replication resumes where it stopped")
    report = _consistent(c)
    assert _acked(report, "mysql-m1") == 250 and _acked(report, "mysql-m2") == 250
    # every edge into it at once, one way, then healed all together
    said = nemesis.partition(c, "mysql-s1", direction="to-replica")
    assert said.startswith("mysql-s1: partitioned: the links mysql-m1 -> mysql-s1 (m1), mysql-m2 -> mysql-s1 (m2) "
                           "are cut toward the replica only: mysql-s1 hears nothing from mysql-m1 and mysql-m2")
    assert nemesis.partitioned(c) == ["mysql-s1"]
    assert _feed(c, 50).ok == 100
    time.sleep(1.0)
    assert (_count(c, "mysql-s1", "events_m1"), _count(c, "mysql-s1", "events_m2")) == (250, 250)
    assert nemesis.heal(c) == ("healed: the links mysql-m1 -> mysql-s1 (m1), mysql-m2 -> mysql-s1 (m2) carry "
                               "traffic again; replication resumes where it stopped")
    report = _consistent(c)
    assert _acked(report, "mysql-m1") == 300 and _acked(report, "mysql-m2") == 300


def test_ring_and_active_active_edges(clusters):
    ring = clusters("ring")
    assert ring.topology.link_faults >= {"partition", "heal", "link"}
    said = nemesis.partition(ring, "mysql-m1")  # the edge mysql-m3 -> mysql-m1 closes the ring
    assert said.startswith(f"mysql-m1: partitioned: the link mysql-m3 -> mysql-m1 is {CUT}")
    assert _feed(ring, 50, on=["mysql-m2"]).ok == 50
    assert wait_for(lambda: _count(ring, "mysql-m3", "events_m2") == 50, 20)
    time.sleep(1.0)
    assert _count(ring, "mysql-m1", "events_m2") == 0  # m2's writes reach m1 only over the cut edge
    nemesis.heal(ring, "mysql-m1")
    report = _consistent(ring)
    assert _acked(report, "mysql-m2") == 50
    # active-active: one way of one edge; the other primary's edge goes on
    aa = clusters("active-active")
    said = nemesis.partition(aa, "mysql-m2", direction="to-replica")
    assert said == ("mysql-m2: partitioned: the link mysql-m1 -> mysql-m2 is cut toward the replica only: mysql-m2 "
                    "hears nothing from mysql-m1, while mysql-m1 still receives what it sends (requests, "
                    "acknowledgements); the IO thread notices after slave_net_timeout=10s; heal with: replab heal "
                    "mysql-m2")
    assert _edge_links(aa) == {"mysql-m2>mysql-m1": [], "mysql-m1>mysql-m2": ["to-replica"]}
    assert _feed(aa, 40).ok == 80
    assert wait_for(lambda: _count(aa, "mysql-m1", "events_m2") == 40, 20)  # m2 -> m1 is whole
    time.sleep(1.0)
    assert _count(aa, "mysql-m2", "events_m1") == 0
    assert nemesis.heal(aa) == ("healed: the link mysql-m1 -> mysql-m2 carries traffic again; replication resumes "
                                "where it stopped")
    report = _consistent(aa)
    assert _acked(report, "mysql-m1") == 40 and _acked(report, "mysql-m2") == 40


@pytest.mark.parametrize("via", ["replica", "primary"])
def test_sync_chain_tail_and_fan_in_replica(clusters, via):
    chain, fan = clusters("chain", 4), clusters("fan-in")
    _with_rows(chain)
    _with_rows(fan)
    base = _count(chain, "mysql-m", "events")
    nemesis.drift(chain, "mysql-s3", delete_rows="events:5")
    assert _count(chain, "mysql-s3", "events") == base - 5
    if via == "primary":  # the fix would stop at mysql-s1 (it logs rows, and has them all): refused
        bad = run_cli("sync", "mysql-s3", "--via", "primary", home=chain.home)
        assert bad.returncode == 2 and bad.stderr.splitlines() == [
            "error: --via primary writes the fix on mysql-m as statements; mysql-s3 gets mysql-m's writes through "
            "mysql-s2, which log(s) them as rows and leave(s) out the rows they already have, so the fix would not "
            "reach it", "hint: replab sync mysql-s3 --via replica"]
        assert _count(chain, "mysql-s3", "events") == base - 5
    done = sync(chain, "mysql-s3", via="replica")
    assert (done.fixed, done.verified, done.sources) == (5, True, ["mysql-m"])
    assert [(t.table, t.missing) for t in done.tables] == [("events", [1, 2, 3, 4, 5])]
    _consistent(chain)
    nemesis.drift(fan, "mysql-s1", delete_rows="events_m1:3")
    nemesis.drift(fan, "mysql-s1", delete_rows="events_m2:4")
    done = sync(fan, "mysql-s1", via=via)
    assert (done.fixed, done.verified, done.sources, done.via) == (7, True, ["mysql-m1", "mysql-m2"], via)
    assert [(t.table, t.missing) for t in done.tables] == [("events_m1", [1, 2, 3]), ("events_m2", [1, 2, 3, 4])]
    how = "through mysql-m1 and mysql-m2" if via == "primary" else "on the replica itself (sql_log_bin=0)"
    assert done.sentence() == (f"mysql-s1: synced 7 row(s) {how}; events_m1: 3 inserted, 0 deleted, 0 rewritten; "
                               "events_m2: 4 inserted, 0 deleted, 0 rewritten; verified: the rows now match "
                               "mysql-m1 and mysql-m2's")
    _consistent(fan)
    again = run_cli("sync", "mysql-s1", home=fan.home)
    assert again.stdout.strip() == "mysql-s1: nothing to sync: every row matches mysql-m1 and mysql-m2's"


def test_repair_chain_tail_from_its_source_and_fan_in_refused(clusters):
    chain, fan = clusters("chain", 4), clusters("fan-in")
    _with_rows(chain)
    _with_rows(fan)
    nemesis.drift(chain, "mysql-s3", delete_rows="events:10")
    before = _count(chain, "mysql-m", "events")
    report = repair(chain, "mysql-s3")
    assert (report.method, report.source, report.verified) == ("dump", "mysql-s2", True)
    assert report.steps[0] == "mysql-s3: rebuilding by dump of mysql-s2, its source on this chain"
    assert _count(chain, "mysql-s3", "events") == before
    # still the chain: the tail's link leads to mysql-s2, not to the primary
    assert relay.target_of(chain.home, "mysql-s3") == (chain.node("mysql-s2").host, chain.node("mysql-s2").port)
    assert _feed(chain, 100).ok == 100
    assert wait_for(lambda: _count(chain, "mysql-s3", "events") == before + 100, 20)
    _consistent(chain)
    with pytest.raises(ConfigError, match="mysql-m takes writes on this chain"):
        repair(chain, "mysql-m")
    # a fan-in's replica holds two primaries' writes: refused before anything changes
    nemesis.drift(fan, "mysql-s1", delete_rows="events_m2:2")
    gtid = fan.sql("mysql-s1", "SELECT @@GLOBAL.gtid_executed" if fan.flavor.name == "mysql"
                   else "SELECT @@GLOBAL.gtid_current_pos").rows
    out = run_cli("repair", "mysql-s1", home=fan.home)
    assert out.returncode == 2 and out.stderr.splitlines() == [
        "error: mysql-s1 replicates from 2 sources (mysql-m1, mysql-m2); a rebuild from one source's snapshot would "
        "lack the others' writes", "hint: fix its rows against each source instead: replab sync mysql-s1"]
    assert fan.sql("mysql-s1", "SELECT @@GLOBAL.gtid_executed" if fan.flavor.name == "mysql"
                   else "SELECT @@GLOBAL.gtid_current_pos").rows == gtid
    with pytest.raises(NotSupported, match="replicates from 2 sources"):
        repair(fan, "mysql-s1", method="dump")
    assert sync(fan, "mysql-s1").fixed == 2
    _consistent(fan)


def test_from_is_refused_on_the_star(clusters):
    star = clusters("star", 2)
    for args in (("partition", "mysql-s1", "--from", "mysql-m"), ("heal", "mysql-s1", "--from", "mysql-m"),
                 ("link", "mysql-s1", "--from", "mysql-m", "--delay", "10ms")):
        bad = run_cli(*args, home=star.home)
        assert bad.returncode == 2 and bad.stderr.splitlines() == [
            "error: --from applies to the chain, fan-in, active-active and ring shapes (a node with a source of its "
            "own); this is a star", f"hint: replab {args[0]} NODE, without --from"]
    assert nemesis.partitioned(star) == [] and nemesis.link_conditions(star, "mysql-s1") == {}
    # the star's own path, as before: its link named after the replica
    assert nemesis.partition(star, "mysql-s1").startswith("mysql-s1: partitioned: the link mysql-s1 <-> mysql-m is "
                                                          "cut both ways")
    assert nemesis.heal(star) == "healed: mysql-s1 can reach mysql-m again; replication resumes where it stopped"


def test_crash_of_a_chain_intermediate_under_a_feed(clusters):
    c = clusters("chain", 4)
    acked = _acked(_consistent(c), "mysql-m")
    group = FeedGroup(c, FeedOptions(rows=400, threads=2), writer_targets(c, None))
    group.start()
    assert wait_for(lambda: (_count(c, "mysql-s1", "events") or 0) > acked + 50, 20)
    said = nemesis.crash(c, "mysql-s1")
    assert RE_CRASH.match(said), said
    result = group.wait(60)
    assert result.ok == 400  # the primary goes on; only the nodes past mysql-s1 stall
    assert c.engine.state(c.node("mysql-s1")) == "stopped"
    nemesis.start(c, "mysql-s1")
    c.wait_edges()
    report = _consistent(c)
    assert _acked(report, "mysql-m") == acked + 400
    fan = clusters("fan-in")
    said = nemesis.crash(fan, "mysql-s1")
    assert said.startswith("mysql-s1: crashed (SIGKILL to pid ")
    assert "; the link(s) mysql-m1 -> mysql-s1 (m1), mysql-m2 -> mysql-s1 (m2) dropped " in said
    nemesis.start(fan, "mysql-s1")
    fan.wait_edges()
    _consistent(fan)


RE_CRASH = re.compile(
    r"^mysql-s1: crashed \(SIGKILL to pid \d+; the link\(s\) mysql-m -> mysql-s1, mysql-s1 -> mysql-s2 dropped \d+ "
    r"byte\(s\) from it that they had not delivered\); what it committed is in its binary log and reaches the nodes "
    r"downstream once it is back: replab start mysql-s1$")
