"""feed, the ledger and check on real MariaDB clusters: consistency, injected divergences, checks during a feed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

from conftest import REPLAB, wait_for

from replab.faults import failover
from replab.verify import checker, ledger
from replab.workload.feed import Feeder, feed


def _on_replica(cluster, name: str, *statements: str) -> None:
    """Change a replica behind replication's back (sql_log_bin=0: nothing reaches the binlog)."""
    with cluster.connect(name, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        for st in statements:
            cur.execute(st)


def _only(report, kind: str) -> checker.Problem:
    kinds = {(p.node, p.kind, p.table) for p in report.problems}
    assert ("mysql-s1", kind, "events") in kinds, report.render()
    assert {k[1] for k in kinds} == {kind}, report.render()
    return next(p for p in report.problems if p.kind == kind and p.source in ("checksum", "schema"))


def test_feed_check_and_each_divergence(replab_cluster):
    cluster = replab_cluster
    result = feed(cluster, rows=600, threads=2, batch=3)
    assert (result.ok, result.failed, result.unknown) == (600, 0, 0)
    summary = ledger.summarize(ledger.read_runs(ledger.ledger_path(cluster.home)))
    assert summary.acknowledged == 600 and summary.end == 601
    report = checker.check(cluster, wait=10)
    assert report.consistent, report.render()
    assert report.render().startswith("CONSISTENT")
    assert [n.tables["events"].rows for n in report.facts.nodes] == [600, 600, 600]

    _on_replica(cluster, "mysql-s1", "DELETE FROM events WHERE id=17")
    report = checker.check(cluster, wait=10)
    assert _only(report, "missing_rows").rows == [17]
    assert report.to_dict()["ledger"]["missing"]["mysql-s1"] == 1
    _on_replica(cluster, "mysql-s1", "INSERT INTO events VALUES (17, 'some-event-17', 17, 'some-descr-17')")
    assert checker.check(cluster, wait=10).consistent

    _on_replica(cluster, "mysql-s1", "UPDATE events SET counter=-1 WHERE id=250")
    report = checker.check(cluster, wait=10)
    assert _only(report, "changed_rows").rows == [250]
    assert [p.source for p in report.problems] == ["checksum"]  # content is the checksums' business
    _on_replica(cluster, "mysql-s1", "UPDATE events SET counter=250 WHERE id=250")
    # the primary itself changes acknowledged rows (a user's UPDATE): replicated, so not a divergence
    cluster.sql("mysql-m", "UPDATE mydb.events SET counter=-7 WHERE id IN (3, 300)")
    report = checker.check(cluster, wait=10)
    assert report.consistent, report.render()

    _on_replica(cluster, "mysql-s1", "INSERT INTO events VALUES (100000, 'rogue', 1, 'x')")
    report = checker.check(cluster, wait=10)
    assert _only(report, "extra_rows").rows == [100000]
    assert report.render().startswith("INCONSISTENT")
    # each node's own count: mysql-s1 holds one row more than the primary, and says so
    assert [n.tables["events"].rows for n in report.facts.nodes] == [600, 601, 600]
    assert "mysql-s1 (replica" in report.render() and ": 601 rows, checksum" in report.render()
    _on_replica(cluster, "mysql-s1", "DELETE FROM events WHERE id=100000")
    assert checker.check(cluster, wait=10).consistent

    _on_replica(cluster, "mysql-s1", "ALTER TABLE events DROP COLUMN name")
    report = checker.check(cluster, wait=10)
    problem = _only(report, "schema")
    assert "column name is missing" in problem.detail
    # the shared columns still agree: no row problem, and the data was compared
    assert report.facts.nodes[1].tables["events"].rows == 600
    # new rows cannot be applied on mysql-s1 any more: replication stops, check says so without waiting
    feed(cluster, rows=5)
    t0 = time.monotonic()
    report = checker.check(cluster, wait=10)
    kinds = {(p.node, p.kind) for p in report.problems}
    assert kinds == {("mysql-s1", "schema"), ("mysql-s1", "replication")}, report.render()
    assert any("SQL=No" in p.detail for p in report.problems if p.kind == "replication")
    assert time.monotonic() - t0 < 8


def test_check_while_feed_runs_is_consistent(replab_cluster):
    cluster = replab_cluster
    feeder = Feeder(cluster, rate=1500, threads=3).start()
    try:
        time.sleep(0.5)
        for _ in range(4):
            report = checker.check(cluster, wait=30)
            assert report.consistent, report.render()
            assert report.facts.ledger and report.facts.ledger["acknowledged"] > 0
    finally:
        result = feeder.stop()
    assert result.ok > 500 and result.unknown == 0
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()
    assert report.facts.ledger["acknowledged"] == result.ok
    assert report.facts.nodes[0].tables["events"].rows == result.ok


def test_cli_feed_check_and_failures(replab_cluster, cli):
    cluster = replab_cluster
    home = cluster.home
    out = cli("feed", "--rows", "300", "--threads", "2", "--batch", "10", home=home)
    assert out.returncode == 0, out.stderr
    for name in ("mysql-m", "mysql-s1", "mysql-s2"):
        assert f"{name} count: 300" in out.stdout
    res = cli("check", "--json", home=home)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert data["consistent"] is True and data["ledger"]["acknowledged"] == 300
    assert data["ledger"]["missing"] == {"mysql-m": 0, "mysql-s1": 0, "mysql-s2": 0}
    assert {n["name"]: n["tables"]["events"]["rows"] for n in data["nodes"]} == \
        {"mysql-m": 300, "mysql-s1": 300, "mysql-s2": 300}
    for bad in (["feed", "--rate", "-5"], ["feed", "--rate", "fast"], ["feed", "--rows", "5", "--duration", "1"],
                ["feed", "--threads", "0"], ["check", "--table", "nope"], ["check", "--table", "bad;name"]):
        r = cli(*bad, home=home)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    # a replica down: feed says OUT for it, check says unreachable (exit 1)
    cluster.stop_node("mysql-s1")
    out = cli("feed", "--rows", "50", home=home)
    assert out.returncode == 0, out.stderr
    assert "mysql-s1 count: OUT" in out.stdout and "mysql-m count: 350" in out.stdout
    res = cli("check", "--wait", "5", "--json", home=home)
    assert res.returncode == 1
    assert [p["kind"] for p in json.loads(res.stdout)["problems"]] == ["unreachable"]
    cluster.start_node("mysql-s1")
    assert cli("check", "--wait", "20", home=home).returncode == 0
    # the primary down: check and feed cannot work (exit 2, with the reason)
    cluster.stop_node("mysql-m")
    res = cli("check", home=home)
    assert res.returncode == 2 and "mysql-m is stopped" in res.stderr
    assert cli("feed", "--rows", "5", home=home).returncode == 2


def test_feed_ctrl_c_leaves_a_complete_ledger(replab_cluster):
    cluster = replab_cluster
    env_home = str(cluster.home)
    env = dict(os.environ, REPLAB_HOME=env_home)
    proc = subprocess.Popen([*REPLAB, "feed", "--threads", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, stdin=subprocess.DEVNULL)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted" in err and "mysql-m count:" in out
    summary = ledger.summarize(ledger.read_runs(ledger.ledger_path(cluster.home)))
    rows = cluster.sql("mysql-m", "SELECT COUNT(*) FROM mydb.events").rows[0][0]
    assert summary.acknowledged == rows > 0 and summary.unknown == 0
    report = checker.check(cluster, wait=10)
    assert report.consistent, report.render()


def test_primary_killed_during_feed_unknown_outcomes_resolved(replab_cluster):
    cluster = replab_cluster
    feeder = Feeder(cluster, rate=800, threads=2).start()
    time.sleep(1.0)
    cluster.engine.kill(cluster.primary)
    time.sleep(0.5)
    cluster.start_node(cluster.primary.name)
    time.sleep(1.0)
    result = feeder.stop()
    assert result.errors > 0 and result.ok > 0
    summary = ledger.summarize(ledger.read_runs(ledger.ledger_path(cluster.home)))
    assert summary.acknowledged == result.ok and summary.unknown == result.unknown
    assert summary.failed == result.failed
    assert summary.acknowledged + summary.failed + summary.unknown == summary.end - summary.first
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()
    rows = cluster.sql("mysql-m", "SELECT COUNT(*) FROM mydb.events").rows[0][0]
    assert result.ok <= rows <= result.ok + result.unknown
    # a feed bounded by --duration ends on time even when the primary is gone for good
    feeder = Feeder(cluster, duration=1.5, threads=2).start()
    time.sleep(0.3)
    cluster.engine.kill(cluster.primary)
    t0 = time.monotonic()
    result = feeder.wait(15)
    assert not feeder.running and time.monotonic() - t0 < 12
    assert result.errors > 0


def test_feed_and_check_without_a_cluster(tmp_path, cli):
    for args in (["feed", "--rows", "5"], ["check"]):
        r = cli(*args, home=tmp_path / "none")
        assert r.returncode == 2 and "no cluster" in r.stderr and "Traceback" not in r.stderr


def test_row_committed_during_the_check_is_lag_not_divergence(replab_cluster, monkeypatch):
    """A row below the bound that commits after the GTID position was taken (an INSERT in flight) reaches a
    replica late: the first comparison sees it missing there, the recheck sees it arrive."""
    cluster = replab_cluster
    feed(cluster, rows=100)
    pending = cluster.connect("mysql-m", database="mydb")
    with pending.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO events VALUES (150, 'some-event-150', 150, 'some-descr-150')")
    cluster.sql("mysql-m", "INSERT INTO mydb.events VALUES (151, 'some-event-151', 151, 'some-descr-151')")
    original, seen = checker._compare_table, []

    def compare_with_a_late_commit(col, table, primary, replicas):
        with cluster.connect("mysql-s1") as conn, conn.cursor() as cur:
            cur.execute("STOP SLAVE SQL_THREAD")
        pending.commit()  # id 150 <= bound 151, committed after the position: mysql-s1 lacks it for now
        threading.Timer(0.5, lambda: cluster.sql("mysql-s1", "START SLAVE SQL_THREAD")).start()
        return original(col, table, primary, replicas)

    def spy(col, table, jobs, diffs, rounds=2):
        seen.extend((d.node, d.missing) for d in diffs)
        return recheck(col, table, jobs, diffs, rounds)

    recheck = checker._recheck
    monkeypatch.setattr(checker, "_compare_table", compare_with_a_late_commit)
    monkeypatch.setattr(checker, "_recheck", spy)
    report = checker.check(cluster, wait=10)
    pending.close()
    assert seen == [("mysql-s1", [150])]  # the first comparison saw it missing ...
    assert report.consistent, report.render()  # ... and it was lag, not divergence



def test_semi_sync_row_not_yet_visible_on_the_primary_is_not_extra(replab_cluster_factory, server):
    """Semi-sync AFTER_SYNC: a commit is in the primary's binary log, and replicas apply it, before the
    primary's own commit is visible (it waits for an acknowledgement). Here no replica acknowledges and the
    timeout is 10 minutes, so an insert stays pending while both replicas hold its row: a check taken then must
    wait for that commit (released by turning semi-sync off once the check waits) instead of reporting an
    extra row on each replica."""
    cluster = replab_cluster_factory(semi_sync=True, semi_sync_timeout_ms=1000, server=server)
    flavor = cluster.flavor
    src, rep = flavor.semisync_words()
    cluster.sql("mysql-m", f"SET GLOBAL rpl_semi_sync_{src}_timeout = 600000")
    for name in ("mysql-s1", "mysql-s2"):  # replicas stop acknowledging: they turn asynchronous
        with cluster.connect(name) as conn, conn.cursor() as cur:
            cur.execute(f"SET GLOBAL rpl_semi_sync_{rep}_enabled = 0")
            cur.execute(flavor.stop_replica())
            cur.execute(flavor.start_replica())
    cluster.wait_threads(["mysql-s1", "mysql-s2"])
    assert wait_for(lambda: failover.semisync_status(cluster, "mysql-m")["clients"] == 0)
    assert failover.semisync_status(cluster, "mysql-m")["on"]  # still on: the next commit waits for an ack
    done: dict[str, object] = {}

    def insert() -> None:
        cluster.sql("mysql-m", "INSERT INTO mydb.events VALUES (7, 'some-event-7', 7, 'some-descr-7')")
        done["insert"] = True

    def check() -> None:
        done["report"] = checker.check(cluster, wait=60)

    def locking_read_waits() -> bool:
        return bool(cluster.sql("mysql-m", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                                "INFO LIKE 'SELECT%SHARE%' AND ID <> CONNECTION_ID()").rows[0][0])

    writer, checking = threading.Thread(target=insert), threading.Thread(target=check)
    writer.start()
    try:
        assert wait_for(lambda: all(cluster.sql(n, "SELECT COUNT(*) FROM mydb.events WHERE id = 7").rows[0][0]
                                    for n in ("mysql-s1", "mysql-s2")), timeout=60)
        assert cluster.sql("mysql-m", "SELECT COUNT(*) FROM mydb.events").rows[0][0] == 0 and "insert" not in done
        checking.start()  # while the primary's commit is not visible
        assert wait_for(lambda: "report" in done or locking_read_waits(), timeout=60)
    finally:
        cluster.sql("mysql-m", f"SET GLOBAL rpl_semi_sync_{src}_enabled = 0")  # the pending commit goes through
        writer.join(60)
        if checking.is_alive() or "report" in done:
            checking.join(60)
    assert done.get("insert"), "the insert did not return"
    report = done["report"]
    assert report.consistent, report.render()  # type: ignore[attr-defined]


def test_check_counts_each_missing_row_once(replab_cluster_factory, server, cli):
    """Issue 23.5: rows deleted on a replica are found by the row comparison and by the ledger; they are
    one problem and counted once (it said "2 problem(s), 10 row(s)" for 5 rows)."""
    cluster = replab_cluster_factory(server=server)
    assert feed(cluster, rows=100).ok == 100
    cli("drift", "mysql-s2", "--delete-rows", "events:5", home=cluster.home)
    out = cli("check", home=cluster.home)
    lines = out.stdout.splitlines()
    assert out.returncode == 1, out.stdout
    assert lines[:3] == ["INCONSISTENT: 1 problem(s): missing_rows", "missing_rows: 1 problem(s), 5 row(s)",
                         "  first: mysql-s2 events: 5 row(s) missing (on the primary, not here); the ledger agrees "
                         "(ids 1, 2, 3, 4, 5)"], out.stdout
    assert json.loads(cli("check", "--json", home=cluster.home).stdout)["ledger"]["missing"]["mysql-s2"] == 5


def test_check_checksum_covers_each_nodes_own_rows(replab_cluster_factory, server, cli):
    """Issue 23.6: a replica holding 3 rows more than the primary (past the primary's highest id) printed the
    primary's checksum next to its own 103 rows. A node's checksum covers the rows its line counts."""
    cluster = replab_cluster_factory(server=server)
    assert feed(cluster, rows=100).ok == 100
    cli("drift", "mysql-s2", "--insert-rows", "events:3", "--binlog", home=cluster.home)
    out = cli("check", home=cluster.home).stdout
    primary, s1, s2 = _summaries(out)
    assert primary.startswith("100 rows, checksum ") and s1 == primary, out
    assert s2.startswith("103 rows, checksum ") and s2.split()[-1] != primary.split()[-1], out
    # and it is that node's data: removing the extra rows gives the primary's checksum back
    with cluster.connect("mysql-s2", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        cur.execute("DELETE FROM events WHERE id > 100")
    again = cli("check", home=cluster.home).stdout
    assert _summaries(again)[2] == primary, again


def _summaries(out: str) -> list[str]:
    """What check's summary line says of mysql-m, mysql-s1 and mysql-s2 ("100 rows, checksum ...")."""
    lines = {line.split(" (")[0]: line.split("): ", 1)[1] for line in out.splitlines()
             if line.startswith(("mysql-m (", "mysql-s1 (", "mysql-s2 ("))}
    return [lines["mysql-m"], lines["mysql-s1"], lines["mysql-s2"]]
