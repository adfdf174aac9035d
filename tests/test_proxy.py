"""A real HAProxy in front of real servers (`up --proxy haproxy`): the write endpoint reaches the primary
only, the read endpoint only replicas that replicate, both follow role changes without a restart, and an
application writing through the proxy during a failover loses no acknowledged write (semi-sync)."""

from __future__ import annotations

import json
import time
from typing import Any

import pymysql
import pytest
from catalogue import require

from replab.cluster import proxy, roles
from replab.engines import haproxy, mysql_router
from replab.faults import failover, nemesis
from replab.runs import builtin, scenarios
from replab.runs.report import summary
from replab.servers import db, router_tree, strays
from replab.verify import checker
from replab.workload.feed import Feeder
from replab.workload.reads import ReadOptions, Reads

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"


def _server_id(cluster, port: int) -> int:
    user, password = cluster.credentials(db.APP)
    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_id")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _ids(cluster) -> dict[int, str]:
    return {n.server_id: n.name for n in cluster.nodes}


def test_proxy_routes_by_role_follows_role_changes_and_loses_nothing(replab_cluster_factory, server):
    cluster = replab_cluster_factory(server=server, proxy="haproxy", semi_sync=True, semi_sync_timeout_ms=5000)
    home, names = cluster.home, _ids(cluster)
    state = cluster.state["proxy"]
    wport, rport = int(state["write_port"]), int(state["read_port"])

    # writes reach the primary only; reads spread over both replicas, never the primary
    assert [names[_server_id(cluster, wport)] for _ in range(3)] == [M, M, M]
    assert {names[_server_id(cluster, rport)] for _ in range(6)} == {S1, S2}

    # a replica whose SQL thread stopped leaves the read pool, and comes back when it runs again
    cluster.sql(S2, "STOP REPLICA SQL_THREAD" if cluster.flavor.name == "mysql" else "STOP SLAVE SQL_THREAD")
    assert haproxy.wait_serving(home, M, [S1], timeout=5) < 5
    assert {names[_server_id(cluster, rport)] for _ in range(4)} == {S1}
    why = {b.node: b.why for b in haproxy.backends(home) if b.pool == "read"}
    assert "replication stopped (IO Yes, SQL No)" in why[S2], why
    cluster.sql(S2, cluster.flavor.start_replica())
    haproxy.wait_serving(home, M, [S1, S2], timeout=5)

    # an application writes through the proxy during a switchover, then a failover
    pid = haproxy.pids(home)["haproxy"]
    f = Feeder(cluster, rate=200, threads=2, via="proxy").start()
    time.sleep(1.0)
    change = failover.switchover(cluster, S1)
    assert change.proxy_s is not None and change.proxy_s < 2, change
    assert names[_server_id(cluster, wport)] == S1
    time.sleep(1.0)
    nemesis.kill(cluster, S1)
    change = failover.failover(cluster)
    new = change.new_primary
    assert new in (M, S2) and change.proxy_s is not None, change
    assert names[_server_id(cluster, wport)] == new
    acked_before = f.result.ok
    time.sleep(1.0)
    result = f.stop()
    assert result.ok > acked_before, "no write was acknowledged through the proxy after the failover"
    assert haproxy.pids(home)["haproxy"] == pid, "the proxy was restarted"
    other = S2 if new == M else M
    assert cluster.wait_caught_up(20, names=[other])[other]
    rep = checker.check(cluster)
    assert rep.lost == [] and rep.consistent, rep.render()
    epochs = [e.primary for e in roles.read_epochs(home)]
    assert epochs[-3:] == [M, S1, new], epochs

    # the proxy is a node: kill it, the endpoints refuse; start it, they route again
    assert "killed" in nemesis.kill(cluster, proxy.PROXY_NODE)
    with pytest.raises(pymysql.MySQLError):
        _server_id(cluster, wport)
    assert "started" in nemesis.start(cluster, proxy.PROXY_NODE)
    assert names[_server_id(cluster, wport)] == new
    cluster.down()
    assert strays.find(home) == []


def test_proxy_bad_input_changes_nothing(cli, tmp_path):
    home = tmp_path / "h"
    for args, words in ((["--proxy", "nginx"], "unknown proxy 'nginx': choose one of haproxy"),
                        (["--proxy", "mysql-router"], "--proxy mysql-router needs MySQL (mariadb-10.11 is mariadb): "
                                                      "MySQL Router speaks to MySQL servers only"),
                        (["--proxy", "haproxy", "--engine", "compose"], "--proxy haproxy needs --engine local")):
        r = cli("up", *args, home=home)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and not home.exists()
    r = cli("servers", "add-router", "mariadb-10.11", home=home)
    assert r.returncode == 2 and "mariadb-10.11 is not a catalogue MySQL with a private tree" in r.stderr, r.stderr


def test_mysql_router_static_routes_follow_a_failover_by_restart(replab_cluster_factory, cli, tmp_path):
    """MySQL Router 9.7 with static routes on MySQL 9.7: writes reach the primary, reads both replicas; what it
    cannot do without metadata (a replica whose SQL thread stopped keeps serving reads; with the primary dead,
    writes go to the next node, read-only, and fail there); a failover rewrites its routes and restarts it,
    and an application writing through it loses no acknowledged write (semi-sync)."""
    require("mysql-9.7")
    if router_tree.program() is None:
        pytest.fail("no MySQL Router: make servers puts it into mysql-9.7's tree (replab servers add-router mysql-9.7)")
    r = cli("up", "--server", "mysql-9.7", "--topology", "group", "--proxy", "mysql-router", home=tmp_path / "g")
    assert r.returncode == 2 and "--proxy is for the star only (got --topology group)" in r.stderr, r.stderr
    assert not (tmp_path / "g").exists()
    cluster = replab_cluster_factory(server="mysql-9.7", proxy="mysql-router", semi_sync=True,
                                     semi_sync_timeout_ms=5000)
    home, names = cluster.home, _ids(cluster)
    state = cluster.state["proxy"]
    wport, rport = int(state["write_port"]), int(state["read_port"])
    assert state["routes"] == {"write": [M, S1, S2], "read": [S1, S2]}
    assert [names[_server_id(cluster, wport)] for _ in range(3)] == [M, M, M]
    assert sorted(names[_server_id(cluster, rport)] for _ in range(4)) == [S1, S1, S2, S2]

    # no metadata, no health: a replica whose SQL thread stopped still gets its share of the reads
    cluster.sql(S2, "STOP REPLICA SQL_THREAD")
    assert sorted(names[_server_id(cluster, rport)] for _ in range(4)) == [S1, S1, S2, S2]
    cluster.sql(S2, "START REPLICA")

    pid = mysql_router.pids(home)["mysql-router"]
    f = Feeder(cluster, rate=200, threads=2, via="proxy").start()
    time.sleep(1.0)
    nemesis.kill(cluster, M)
    # Router does not know roles: with the primary dead, a new write connection lands on mysql-s1, read-only
    user, password = cluster.credentials(db.APP)
    conn = pymysql.connect(host="127.0.0.1", port=wport, user=user, password=password, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_id")
            assert names[int(cur.fetchone()[0])] == S1
            with pytest.raises(pymysql.MySQLError) as err:
                cur.execute("INSERT INTO mydb.events (id, name, counter, description) "
                            "VALUES (999999999, 'router', 0, 'x')")
            assert err.value.args[0] in (1290, 1836), err.value.args
    finally:
        conn.close()
    change = failover.failover(cluster)
    assert change.new_primary in (S1, S2) and change.proxy_s is not None and change.proxy_s < 10, change
    print(f"router: restart to the first write on {change.new_primary}: {change.proxy_s:.2f}s; feed errors so far "
          f"{dict(f.result.error_kinds)}")
    new, other = change.new_primary, S2 if change.new_primary == S1 else S1
    assert names[_server_id(cluster, wport)] == new
    assert cluster.state["proxy"]["routes"] == {"write": [new, other], "read": [other]}
    assert mysql_router.pids(home)["mysql-router"] not in (None, pid), "Router was not restarted"
    acked = f.result.ok
    time.sleep(1.0)
    result = f.stop()
    assert result.ok > acked, "no write was acknowledged through Router after the failover"
    assert cluster.wait_caught_up(20, names=[other])[other]
    rep = checker.check(cluster)
    assert rep.lost == [] and rep.consistent, rep.render()
    st = proxy.status(cluster)
    assert st is not None and st["kind"] == "mysql-router" and st["state"] == "running" and st["static"]
    # the killed primary comes back as a replica: Router's routes list it again (another restart)
    text = failover.rejoin(cluster, M, rebuild=True)
    assert f"; MySQL Router restarted with {M} in its read route (" in text, text
    assert cluster.state["proxy"]["routes"] == {"write": [new, M, other], "read": [M, other]}
    assert sorted(names[_server_id(cluster, rport)] for _ in range(4)) == sorted([M, M, other, other])
    # Router is a node too: killed, both endpoints refuse; started, it routes by its routes again
    assert [s.what for s in strays.find(home) if s.what.startswith("proxy")] == ["proxy mysql-router"]
    assert "killed" in nemesis.kill(cluster, proxy.PROXY_NODE)
    with pytest.raises(pymysql.MySQLError):
        _server_id(cluster, wport)
    assert "started" in nemesis.start(cluster, proxy.PROXY_NODE)
    assert names[_server_id(cluster, wport)] == new
    cluster.down()
    assert strays.find(home) == []


def test_feed_via_proxy_without_a_proxy_is_refused(replab_cluster, cli):
    r = cli("feed", "--via", "proxy", "--rows", "5", home=replab_cluster.home)
    assert r.returncode == 2 and "--via proxy: this cluster has no proxy" in r.stderr, r.stderr
    r = cli("kill", "proxy", home=replab_cluster.home)
    assert r.returncode == 2 and "this cluster has no proxy" in r.stderr, r.stderr
    r = cli("endpoints", "--json", home=replab_cluster.home)
    assert r.returncode == 0
    assert [e["name"] for e in json.loads(r.stdout)["endpoints"]] == [M, S1, S2]


def test_read_anomalies_are_counted_exactly_and_causal_reads_remove_them(replab_cluster_factory, server):
    """mysql-s2 applies everything 1 s late (SOURCE_DELAY): every read of a session's own row there misses
    it, staleness about 1 s; the primary never misses; reads that alternate s1 (current) and s2 (1 s
    behind) go back in time on s2 only; causal reads show none, at the cost of the wait."""
    cluster = replab_cluster_factory(server=server, proxy="haproxy")
    cluster.set_replica_delay(S2, 1)
    feeder = Feeder(cluster, rate=100, threads=1).start()

    def run(read_from: str, causal: bool = False, seconds: float = 2.5) -> Any:
        r = Reads(cluster, ReadOptions(rate=40, read_from=read_from, causal=causal, sessions=2)).start()
        time.sleep(seconds)
        return r.stop()

    try:
        primary = run(M)
        assert primary.reads > 20 and primary.ryw == 0 and primary.monotonic == 0, primary.line()
        lagging = run(S2)
        assert lagging.reads > 0 and lagging.ryw == lagging.reads and lagging.monotonic == 0, lagging.line()
        # SOURCE_DELAY counts whole seconds of the event's timestamp: a row waits 0 to ~2 s, not exactly 1 s
        assert lagging.never_visible == 0 and max(lagging.staleness_ms) >= 500, lagging.line()
        mixed = run("replicas", seconds=4)
        s1, s2 = mixed.per_node[S1], mixed.per_node[S2]
        assert s1.monotonic == 0 and s2.monotonic > 0 and s2.ryw == s2.reads, mixed.line()
        through = run("proxy", seconds=4)
        assert set(through.per_node) == {S1, S2} and through.per_node[S2].ryw == through.per_node[S2].reads, \
            through.line()
        causal = run("replicas", causal=True, seconds=4)
        assert causal.reads > 0 and causal.ryw == 0 and causal.monotonic == 0, causal.line()
        assert causal.errors == 0 and max(causal.causal_wait_ms) >= 500, causal.line()
    finally:
        feeder.stop()


def test_reads_bad_input(replab_cluster, cli):
    home = replab_cluster.home
    for args, words in ((["--reads", "10", "--read-from", "mysql-s9"], "--read-from 'mysql-s9': not replicas, proxy"),
                        (["--reads", "10", "--read-from", "proxy"], "--read-from proxy: this cluster has no proxy"),
                        (["--causal"], "--read-from and --causal go with --reads"),
                        (["--reads", "0"], "--reads must be between 1 and 100000")):
        r = cli("feed", "--rows", "5", *args, home=home)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    assert replab_cluster.sql(M, "SELECT COUNT(*) FROM mydb.events").rows == [(0,)]


@pytest.mark.parametrize("name, server", [("read-your-writes", "mariadb-10.11"), ("monotonic-reads", "mariadb-10.11"),
                                          ("proxy-failover", "mariadb-10.11"), ("proxy-failover", "mysql-9.7")])
def test_application_scenarios_pass(name, server, tmp_path):
    require(server)
    report = scenarios.run(builtin.get(name), home=tmp_path / "home", duration=5, rate=150, server=server,
                           report_dir=tmp_path / "report")
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.expectations, (report.error, failed)
    tl = report.timeline
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["timeline"]["read_runs"] == [r.to_dict() for r in tl.read_runs]
    assert saved["proxy_lanes"] == report.to_dict()["proxy_lanes"]
    if name == "proxy-failover":
        assert report.metrics["outage_s"] < 10 and "proxy_follow_s" in report.metrics, report.metrics
        _assert_write_pool_moved(report, M, S1)
    else:
        _assert_read_lanes(report, name)


def _assert_write_pool_moved(report: Any, old: str, new: str) -> None:
    """The report's proxy lanes: the killed primary leaves the write pool after the kill, the new primary
    enters it from the read pool, and no moment has two servers in the write pool."""
    tl = report.timeline
    kill = next(e.t for e in tl.events if e.kind == "fault" and "kill" in e.text)
    lanes = {n: [(g.lane, g.start) for g in tl.proxy_segments(n)] for n in (old, new)}
    assert lanes[old][0][0] == "write pool" and lanes[old][-1][0] == "down", lanes
    assert lanes[old][-1][1] >= kill - tl.interval, (kill, lanes)  # it left the write pool with the kill
    assert lanes[new][0][0] == "read pool" and lanes[new][-1][0] == "write pool", lanes
    assert lanes[new][-1][1] >= kill - tl.interval, (kill, lanes)
    at: dict[float, int] = {}
    for p in tl.proxy_samples:
        at[p.t] = at.get(p.t, 0) + (p.write == "UP")
    assert max(at.values()) == 1, sorted(t for t, k in at.items() if k > 1)
    text = summary(report)
    assert f"    {old:<8}  write pool {tl.proxy_segments(old)[0].start:.1f}-" in text, text


def _assert_read_lanes(report: Any, name: str) -> None:
    """Every violation counted is a mark on the timeline, on the node that answered; none in causal runs."""
    tl = report.timeline
    runs = {r.label: r for r in tl.read_runs}
    assert set(runs) == ({"primary", "lagging", "causal"} if name == "read-your-writes"
                         else {"round-robin", "pinned", "causal"})
    for label, run in runs.items():
        marks = [m for m in tl.read_marks if m.run == label]
        assert run.read_your_writes == report.metrics[f"{label}_read_your_writes"]
        assert len([m for m in marks if m.kind == "read-your-writes"]) == run.read_your_writes, (label, marks)
        assert len([m for m in marks if m.kind == "monotonic"]) == run.monotonic, (label, marks)
        assert all(run.start <= m.t <= run.end for m in marks)
        for node, n in run.nodes.items():
            assert len([m for m in marks if m.node == node and m.kind == "read-your-writes"]) == \
                n["read_your_writes"]
    assert not [m for m in tl.read_marks if m.run == "causal"]
    if name == "read-your-writes":
        lagging = runs["lagging"]
        assert lagging.read_your_writes == lagging.reads > 0 and set(lagging.nodes) == {S2}
        assert all(m.node == S2 for m in tl.read_marks if m.run == "lagging")
    else:  # behind the proxy: going back in time only on the lagging replica
        assert {m.node for m in tl.read_marks if m.kind == "monotonic"} == {S2}
        assert tl.proxy_nodes() == [M, S1, S2]
