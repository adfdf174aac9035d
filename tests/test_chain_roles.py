"""Switchover, failover and rejoin on a chain (mysql-m -> mysql-s1 -> mysql-s2), on real MariaDB 10.11 and
MySQL 9.7: the edges the chain declares for each change are the ones replication runs along afterwards (and
cluster.json stores them, so status and check compare the right pairs); acknowledged writes lost in a failover
are counted exactly by id from the ledger. One cluster per server, the tests run in order on it."""

from __future__ import annotations

import json
import re
import time

import pytest
from catalogue import params, require
from conftest import run_cli

from replab.cluster.cluster import Cluster, teardown_home
from replab.core.errors import ConfigError
from replab.faults import failover, nemesis
from replab.verify import checker
from replab.workload.feed import Feeder, feed

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
SERVERS = params("mariadb-10.11", "mysql-9.7")


@pytest.fixture(scope="module", params=SERVERS)
def chain(request, tmp_path_factory):
    require(request.param)
    c = Cluster.up(home=tmp_path_factory.mktemp("chain-roles") / "home", topology="chain", server=request.param)
    yield c
    teardown_home(c.home)


def _pairs(cluster: Cluster) -> list[tuple[str, str]]:
    return [(e.source, e.replica) for e in cluster.edges]


def _stored(cluster: Cluster) -> list[tuple[str, str]]:
    state = json.loads((cluster.home / "cluster.json").read_text())
    return [(e["source"], e["replica"]) for e in state["topology"]["edges"]]


def _status_edges(cluster: Cluster) -> list[tuple[str, str, bool]]:
    r = run_cli("status", "--json", home=cluster.home)
    assert r.returncode == 0, r.stderr
    return [(e["source"], e["replica"], bool(e["io_running"] and e["sql_running"]))
            for e in json.loads(r.stdout)["edges"]]


def _roles(cluster: Cluster) -> dict[str, str]:
    return {n["name"]: n["role"] for n in json.loads((cluster.home / "cluster.json").read_text())["nodes"]}


def _ids(cluster: Cluster, node: str) -> set[int]:
    return {int(r[0]) for r in cluster.sql(node, "SELECT id FROM mydb.events").rows}


def _check(cluster: Cluster) -> checker.ShapeReport:
    report = checker.check(cluster, wait=30)
    assert isinstance(report, checker.ShapeReport)
    assert report.consistent, report.render()
    return report


def test_switchover_under_a_feed_swaps_head_and_second(chain):
    c = chain
    assert _pairs(c) == [(M, S1), (S1, S2)]
    feed(c, rows=200)
    # the tail replicates from mysql-s1, not from the primary: refused, nothing changed
    before = (_roles(c), _stored(c))
    r = run_cli("switchover", S2, home=c.home)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert (f"cannot switch over to {S2} on this chain: it replicates from {S1}, not from the primary {M}; only "
            f"{M}'s own replicas ({S1}) can take its place") in r.stderr, r.stderr
    assert f"replab repoint {S2} --to {M}" in r.stderr
    r = run_cli("failover", "--force", "--to", S2, home=c.home)
    assert r.returncode == 2 and f"cannot promote {S2} on this chain" in r.stderr, r.stderr
    assert (_roles(c), _stored(c)) == before
    f = Feeder(c, rate=300, threads=2, duration=3.0).start()
    time.sleep(1.0)
    t0 = time.monotonic()
    change = failover.switchover(c, S1)
    took = time.monotonic() - t0
    res = f.wait(30)
    print(f"chain switchover {c.flavor.name}: write pause {change.write_pause_s:.3f}s, command {took:.2f}s, "
          f"feed ok={res.ok} failed={res.failed} unknown={res.unknown}")
    assert change.write_pause_s is not None and change.write_pause_s < 5
    assert change.sentence().startswith(f"switchover: {S1} is the primary; replication runs {S1} -> {M} -> {S2}; "
                                        "writes paused ")
    assert change.repointed == [M, S2]
    assert _roles(c) == {M: "replica", S1: "primary", S2: "replica"}
    assert _pairs(c) == _stored(c) == [(S1, M), (M, S2)]
    assert Cluster.open(c.home).edges == c.edges
    c.wait_holders(30)
    assert _status_edges(c) == [(S1, M, True), (M, S2, True)]
    report = _check(c)
    assert list(report.reports) == [S1] and report.holders == {S1: [M, S1, S2]}
    acked = report.reports[S1].facts.ledger["acknowledged"]
    assert res.ok > 0 and acked == 200 + res.ok and report.reports[S1].lost == []
    # the new tail is mysql-s2 again, under mysql-m now: still refused; switching back restores the chain
    with pytest.raises(ConfigError, match=f"it replicates from {M}, not from the primary {S1}"):
        failover.switchover(c, S2)
    feed(c, rows=20)
    back = failover.switchover(c, M)
    assert back.new_primary == M and _pairs(c) == _stored(c) == [(M, S1), (S1, S2)]
    c.wait_holders(30)
    assert _status_edges(c) == [(M, S1, True), (S1, S2, True)]
    _check(c)


def test_failover_with_nothing_cut_off_loses_nothing_and_the_old_head_rejoins_at_the_tail(chain):
    c = chain
    feed(c, rows=100)
    assert all(c.wait_holders(30).values())
    nemesis.kill(c, M)
    r = run_cli("failover", "--to", S2, home=c.home)
    assert r.returncode == 2 and f"cannot promote {S2} on this chain: it replicates from {S1}" in r.stderr, r.stderr
    r = run_cli("failover", "--json", home=c.home)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print(f"chain failover {c.flavor.name}: {out['to_writable_s']}s to writable, {out['seconds']}s in all")
    assert out["new_primary"] == S1 and out["repointed"] == [] and out["edges"] == f"{S1} -> {S2}"
    c = Cluster.open(c.home)
    assert _roles(c) == {M: "demoted", S1: "primary", S2: "replica"}
    assert _pairs(c) == [(S1, S2)]
    feed(c, rows=30)
    report = _check(c)
    assert report.holders == {S1: [S1, S2]} and report.reports[S1].lost == []  # nothing was cut off: 0 lost
    # the old head comes back: no errant transaction, it rejoins at the tail, nothing else moves
    r = run_cli("start", M, home=c.home)
    assert r.returncode == 0, r.stderr
    assert f"{M}: no errant transaction: everything it wrote reached {S1}; rejoined as a replica of {S2} " \
           f"(replication runs {S1} -> {S2} -> {M})" in r.stdout, r.stdout
    c = Cluster.open(c.home)
    assert _roles(c)[M] == "replica" and _pairs(c) == [(S1, S2), (S2, M)]
    feed(c, rows=30)
    c.wait_holders(30)
    assert _status_edges(c) == [(S1, S2, True), (S2, M, True)]
    report = _check(c)
    assert report.holders == {S1: [M, S1, S2]} and report.reports[S1].lost == []
    assert _ids(c, M) == _ids(c, S1)


def test_failover_counts_the_writes_cut_off_exactly_then_rebuild_at_the_tail(chain):
    c = Cluster.open(chain.home)
    assert _pairs(c) == [(S1, S2), (S2, M)] and c.primary.name == S1
    nemesis.partition(c, S2)                         # s1 -> s2 cut: s2 (the next head) stops receiving
    cut = feed(c, rows=25)                           # acknowledged by s1 only
    first = cut.first_id
    assert cut.ok == 25
    nemesis.kill(c, S1)
    change = failover.failover(c)
    assert change.new_primary == S2 and change.repointed == [] and _pairs(c) == [(S2, M)]
    c.engine.open_link(S2)  # s2's old link to s1 (healed only now: what it held would have reached s2)
    assert change.sentence().startswith(f"failover: {S2} is the primary (")
    assert f"; replication runs {S2} -> {M}; {S1} is demoted" in change.sentence()
    feed(c, rows=10)
    report = checker.check(c, wait=30)
    assert isinstance(report, checker.ShapeReport) and report.consistent, report.render()
    lost = report.reports[S2].lost
    print(f"chain failover {c.flavor.name} with s1 -> s2 cut: {change.to_writable_s}s to writable; lost ids "
          f"{[lw.ids for lw in lost]}")
    assert [(lw.acknowledged_by, lw.ids, lw.exact) for lw in lost] == [(S1, list(range(first, first + 25)), True)]
    assert lost[0].lost_at and lost[0].lost_at["new_primary"] == S2
    # the old head holds 25 writes the new primary never had: named, then rebuilt at the tail
    r = run_cli("start", S1, home=c.home)
    assert r.returncode == 0 and f"errant transaction(s) that {S2} never had" in r.stdout, r.stdout
    assert "--rebuild" in r.stdout
    d = json.loads(run_cli("diagnose", S1, "--json", home=c.home).stdout)[0]
    assert d["summary"] == f"demoted former primary: read-only and out of replication since {S2} was promoted", d
    assert d["next_writes"] == [f"rebuild it from {S2}: replab rejoin {S1} --rebuild (those transactions are "
                                "discarded)"], d
    r = run_cli("rejoin", S1, "--rebuild", home=c.home)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"rebuilt from {M} in [\d.]+s \(verified\): it replicates from {M} \(replication runs "
                     rf"{S2} -> {M} -> {S1}\)", r.stdout), r.stdout
    c = Cluster.open(c.home)
    assert _pairs(c) == [(S2, M), (M, S1)] and _roles(c) == {M: "replica", S1: "replica", S2: "primary"}
    feed(c, rows=10)
    c.wait_holders(30)
    assert _status_edges(c) == [(S2, M, True), (M, S1, True)]
    report = checker.check(c, wait=30)
    assert isinstance(report, checker.ShapeReport) and report.consistent, report.render()
    assert [lw.ids for lw in report.reports[S2].lost] == [list(range(first, first + 25))]
    assert set(range(first, first + 25)).isdisjoint(_ids(c, S1))  # its errant writes were discarded
