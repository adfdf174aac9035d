"""diagnose names the real cause on real MariaDB 10.11 and MySQL 9.7 clusters: the primary's binary log
reset or purged (the silent stall, the stop on reconnect, the silent divergence once the primary has issued
the replica's GTIDs again, and the rebuild that recovers it), errant transactions only for GTIDs the primary
never wrote, source DDL meeting a replica-only change (1091, 1054), a stopped primary, and its exit code."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import status_rows, wait_for

from replab.faults import nemesis
from replab.faults.repair import repair
from replab.verify import checker
from replab.verify.diagnose import diagnose
from replab.workload.feed import feed


@pytest.fixture
def replab_cluster(matrix_cluster):
    """On MariaDB 10.11 and MySQL 9.7 (see conftest.matrix_cluster)."""
    return matrix_cluster



def _status(cluster, name: str):
    return next(s for s in cluster.status() if s.name == name)


def _one(cluster, name: str):
    return diagnose(cluster, name)[0]


def _gtid(cluster, name: str) -> str:
    return str(cluster.sql(name, cluster.flavor.executed_gtid()).rows[0][0]).replace("\n", "")


def _last(gtid: str) -> int:
    """The last transaction number of a one-source position: MariaDB ``0-1-34``, MySQL ``uuid:1-34``."""
    return int(gtid.rsplit("-", 1)[1] if ":" in gtid else gtid.split("-")[2])


def _span(cluster, first: int, last: int) -> str:
    """The primary's own transactions first..last as diagnose writes them."""
    pid = str(cluster.sql("mysql-m", cluster.flavor.gtid_source_id()).rows[0][0])
    if cluster.flavor.name == "mariadb":
        return f"0-{pid}-{first}..{last}"
    return f"{pid}:{first}-{last}"


def _why(cluster, name: str) -> str:
    """What a failed wait saw: the replica's status and the end of its server log."""
    return f"{_status(cluster, name)}\n" + "\n".join(cluster.engine.log_tail(cluster.node(name), 12))


def _io_failed(cluster, name: str) -> bool:
    st = _status(cluster, name)
    return not st.io_running and st.last_errno in (1236, 13114)  # MySQL: 13114 "Got fatal error 1236 from source"


def test_purged_binary_log(replab_cluster_factory, cli, server):
    cluster = replab_cluster_factory(nodes=2, server=server)
    assert feed(cluster, rows=10).ok == 10
    assert all(cluster.wait_caught_up(10).values())
    s1_at = _gtid(cluster, "mysql-s1")
    nemesis.stop(cluster, "mysql-s1")  # down while the primary writes on and purges the logs it would need
    assert feed(cluster, rows=10).ok == 10
    cluster.sql("mysql-m", "FLUSH BINARY LOGS")
    last = cluster.sql("mysql-m", cluster.flavor.show_source_status()).rows[0][0]

    def purged() -> bool:  # MariaDB keeps a log until its binlog checkpoint is written: retry briefly
        cluster.sql("mysql-m", f"PURGE BINARY LOGS TO '{last}'")
        return [r[0] for r in cluster.sql("mysql-m", "SHOW BINARY LOGS").rows] == [last]

    assert wait_for(purged, 10)
    t0 = time.monotonic()
    assert "has not caught up" in nemesis.start(cluster, "mysql-s1")
    assert time.monotonic() - t0 < 15, _why(cluster, "mysql-s1")  # an IO thread stopped on 1236 is not waited for
    d = _one(cluster, "mysql-s1")
    mysql = cluster.flavor.name == "mysql"
    assert d.severity == "broken" and d.errno == (13114 if mysql else 1236) and "1236" in d.error
    assert d.binlog is not None and d.binlog["kind"] == "purged" and d.binlog["replica_at"] == s1_at
    assert d.summary.startswith(f"mysql-m purged binary logs this replica still needs: its position {s1_at} ")
    m_at = _gtid(cluster, "mysql-m")
    lost = _last(m_at) - _last(s1_at)
    assert lost >= 10
    if mysql:  # gtid_purged names exactly what is gone
        gone = _span(cluster, _last(s1_at) + 1, _last(m_at))
        assert (d.binlog["lost"], d.binlog["lost_gtids"], d.binlog["exact"]) == (lost, gone, True)
        assert d.causes[0] == (f"mysql-m is at {m_at}; {lost} of its transaction(s) ({gone}) after {s1_at} were in "
                               "the purged logs and can never reach this replica by replication")
    else:  # MariaDB keeps no purged set: an upper bound from the sequence numbers
        assert (d.binlog["lost"], d.binlog["exact"]) == (lost, False)
        assert d.causes[0] == (f"mysql-m is at {m_at}; up to {lost} of its transaction(s) after {s1_at} were in "
                               "the purged logs and can never reach this replica by replication")
    assert d.errant_gtids == [] and not any("errant" in c for c in d.causes)
    assert d.next_writes and "replab repair mysql-s1" in d.next_writes[0]
    r = cli("diagnose", home=cluster.home)
    assert r.returncode == 1 and "mysql-m purged binary logs" in " ".join(r.stdout.split())
    # the advice works: a rebuild from a fresh snapshot recovers it
    rep = repair(cluster, "mysql-s1")
    assert rep.verified, rep.steps
    d = _one(cluster, "mysql-s1")
    assert d.severity == "ok" and d.binlog is None, d.render()


def test_reset_binary_log_stall_divergence_and_repair(replab_cluster, cli):
    """RESET MASTER (MySQL: RESET BINARY LOGS AND GTIDS) on the primary: a silent stall, error 1236 on
    reconnect, then, once the primary has issued the replica's numbers again, a silent divergence."""
    cluster = replab_cluster
    reset = cluster.flavor.reset_binlog()
    assert feed(cluster, rows=20).ok == 20
    assert all(cluster.wait_caught_up(10).values())  # the drift below takes the next id after the replica's last
    # an errant transaction on mysql-s2 (its own server_id / UUID) is errant; the primary's own GTIDs never are
    nemesis.drift(cluster, "mysql-s2", insert_rows="events:1", binlog=True)
    assert all(cluster.wait_caught_up(10, names=["mysql-s1"]).values())
    s1_at = _gtid(cluster, "mysql-s1")
    time.sleep(1.1)  # MariaDB stamps a GTID event to the second: the re-issued ones must differ from the old
    cluster.sql("mysql-m", reset)  # the binary log starts again at mysql-bin.000001 and transaction number 1
    for i in range(3):
        cluster.sql("mysql-m", f"INSERT INTO mydb.events VALUES ({900 + i}, 'after-reset', {i}, 'x')")
    time.sleep(1.0)
    st = _status(cluster, "mysql-s1")
    assert st.io_running and st.sql_running and st.last_errno == 0  # the stall is silent
    d = _one(cluster, "mysql-s1")
    assert d.severity == "broken" and d.errant_gtids == []
    assert d.binlog is not None and (d.binlog["kind"], d.binlog["stalled"], d.binlog["lost"],
                                     d.binlog["lost_gtids"]) == ("reset", True, 3, _span(cluster, 1, 3))
    assert d.summary == (f"mysql-m's binary log was reset ({reset}) or purged: this replica's position {s1_at} is no "
                         "longer in it; IO and SQL threads still say Yes but nothing arrives (a silent stall)")
    assert d.causes[0] == (f"mysql-m's binary log holds only up to {_gtid(cluster, 'mysql-m')} while this replica "
                           f"already applied {s1_at}: the primary's GTID sequence restarted below this replica's "
                           "position")
    assert re.fullmatch(rf"its IO thread reads {d.binlog['read_at']}, beyond the end of mysql-m's binary log "
                        r"\(mysql-bin\.000001 ends at \d+\)", d.causes[1]), d.causes[1]
    assert d.causes[2] == (f"lost for this replica: the 3 transaction(s) ({_span(cluster, 1, 3)}) mysql-m wrote since "
                           "the reset under GTID numbers this replica counts as applied: it skips them, and every "
                           f"further one up to {s1_at}")
    assert d.next_writes[0].startswith("when mysql-m's new binary log grows past this replica's read position")
    d2 = _one(cluster, "mysql-s2")
    s2_source = str(cluster.sql("mysql-s2", cluster.flavor.gtid_source_id()).rows[0][0])
    assert len(d2.errant_gtids) == 1 and s2_source in d2.errant_gtids[0], d2.errant_gtids
    assert cli("diagnose", home=cluster.home).returncode == 1
    # check shows what the stalled replica lacks, by row id
    report = checker.check(cluster, wait=5)
    assert ("mysql-s1", "missing_rows", (900, 901, 902)) in {(p.node, p.kind, tuple(p.rows)) for p in
                                                             report.problems if p.source == "checksum"}
    # on reconnect the stall becomes error 1236 (MySQL: 13114 wrapping it); the cause stays the reset
    cluster.sql("mysql-s1", cluster.flavor.stop_replica())
    cluster.sql("mysql-s1", cluster.flavor.start_replica())
    assert wait_for(lambda: _io_failed(cluster, "mysql-s1"), 60), _why(cluster, "mysql-s1")
    d = _one(cluster, "mysql-s1")
    assert d.errno in (1236, 13114) and "1236" in d.error and d.binlog["kind"] == "reset"
    assert d.summary.startswith("mysql-m's binary log was reset") and d.summary.endswith("replication stopped")
    # the primary issues the replica's numbers again; a restart is now accepted and skips them all, silently
    assert feed(cluster, rows=_last(s1_at)).ok == _last(s1_at)
    cluster.sql("mysql-s1", cluster.flavor.start_replica())
    assert all(cluster.wait_caught_up(15, names=["mysql-s1"]).values())
    st = _status(cluster, "mysql-s1")
    assert st.io_running and st.sql_running and st.last_errno == 0 and _gtid(cluster, "mysql-s1") == \
        _gtid(cluster, "mysql-m")  # the GTID states agree: only the binary logs tell
    d = _one(cluster, "mysql-s1")
    lost = _span(cluster, 1, _last(s1_at))
    assert d.severity == "drift" and d.errno == 0 and d.errant_gtids == []
    assert d.binlog is not None and (d.binlog["kind"], d.binlog["lost"], d.binlog["lost_gtids"], d.binlog["exact"]) \
        == ("reissued", _last(s1_at), lost, True)
    assert d.summary == (f"mysql-m's binary log was reset ({reset}) and its GTID numbers issued again: this replica's "
                         f"history {lost} is not in it any more; it skipped mysql-m's new transactions with those "
                         "numbers and replicates on without them (a silent divergence)")
    assert d.causes[1].startswith(f"lost for this replica: {_last(s1_at)} transaction(s) of mysql-m ({lost})")
    assert any(re.fullmatch(r"\d+ row\(s\) of mydb\.events are missing here \(id 900\.\.\d+\)", c) for c in d.causes), \
        d.causes  # the rows of the skipped transactions, from the first one written after the reset
    assert "replab repair mysql-s1" in d.next_writes[0]
    # a rebuild from a fresh snapshot recovers it, and diagnose finds nothing left to explain
    rep = repair(cluster, "mysql-s1")
    assert rep.verified, rep.steps
    d = _one(cluster, "mysql-s1")
    assert d.severity == "ok" and d.binlog is None, d.render()


def test_reset_primary_passes_the_replica_then_it_reconnects_by_itself(replab_cluster_factory, server):
    """After a reset the connected replica waits at its old byte position; once the primary has issued the
    replica's GTID numbers again, only that position tells the stall (GTID states look merely behind). When
    the new log grows past it, MariaDB's IO thread reconnects by itself and replicates on without them;
    MySQL's stops (13114: the source fails reading its new log from the old position) and a restart does."""
    cluster = replab_cluster_factory(nodes=2, server=server)
    cluster.sql("mysql-m", "CREATE TABLE mydb.big (id INT PRIMARY KEY, b LONGTEXT)")
    for i in range(5):  # a long binary log for few GTIDs: the replica's read position lies far out
        cluster.sql("mysql-m", f"INSERT INTO mydb.big VALUES ({i}, REPEAT('y', 20000))")
    assert all(cluster.wait_caught_up(10).values())
    s1_at = _gtid(cluster, "mysql-s1")
    time.sleep(1.1)  # MariaDB stamps a GTID event to the second: the re-issued ones must differ from the old
    cluster.sql("mysql-m", cluster.flavor.reset_binlog())
    for i in range(_last(s1_at) + 5):  # small transactions: past the replica's numbers, not its byte position
        cluster.sql("mysql-m", f"INSERT INTO mydb.events VALUES ({900 + i}, 'after-reset', {i}, 'x')")
    st = _status(cluster, "mysql-s1")
    assert st.io_running and st.sql_running and st.last_errno == 0 and _gtid(cluster, "mysql-s1") == s1_at
    d = _one(cluster, "mysql-s1")
    lost = _span(cluster, 1, _last(s1_at))
    assert d.severity == "broken" and d.binlog is not None
    assert (d.binlog["kind"], d.binlog["stalled"], d.binlog["ahead"], d.binlog["lost_gtids"]) == \
        ("reset", True, False, lost)
    assert d.summary.endswith("IO and SQL threads still say Yes but nothing arrives (a silent stall)")
    assert d.causes[0].startswith(f"this replica's IO thread reads {d.binlog['read_at']}, beyond the end of mysql-m's "
                                  "binary log (mysql-bin.000001 ends at ")
    assert d.next_writes[0].startswith(f"when mysql-m's new binary log grows past this replica's read position "
                                       f"({d.binlog['read_at']}), its read fails there")
    # one big transaction takes the new log past the replica's position
    cluster.sql("mysql-m", "INSERT INTO mydb.big VALUES (99, REPEAT('z', 150000))")
    if cluster.flavor.name == "mysql":  # the IO thread stops; it did not skip anything yet, but will
        assert wait_for(lambda: _io_failed(cluster, "mysql-s1"), 60), _why(cluster, "mysql-s1")
        d = _one(cluster, "mysql-s1")
        assert d.errno == 13114 and "I/O error reading log event" in d.error, d.error
        assert d.severity == "broken" and (d.binlog["kind"], d.binlog["threads"], d.binlog["lost_gtids"]) == \
            ("reissued", "io stopped", lost)
        assert d.summary.endswith("its IO thread stopped; started again, it skips mysql-m's new transactions with "
                                  "those numbers and replicates on without them")
        cluster.sql("mysql-s1", cluster.flavor.start_replica())  # accepted: the primary is past its numbers
    # MariaDB: "Failed reading log event, reconnecting to retry" from its GTID position, which the primary has
    assert all(cluster.wait_caught_up(15).values())
    d = _one(cluster, "mysql-s1")
    assert d.severity == "drift" and d.errno == 0 and d.binlog is not None
    assert (d.binlog["kind"], d.binlog["lost"], d.binlog["lost_gtids"]) == ("reissued", _last(s1_at), lost)
    assert f"{_last(s1_at)} row(s) of mydb.events are missing here (id 900..{899 + _last(s1_at)})" in d.causes


def test_a_transaction_committed_late_is_not_taken_for_a_reissued_gtid(replab_cluster_factory, server):
    """MariaDB stamps the primary's GTID event with the COMMIT's time and the replica's copy with the last
    statement's: a naive comparison of GTID event times calls this healthy replica diverged."""
    cluster = replab_cluster_factory(nodes=2, server=server)
    with cluster.connect("mysql-m", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO events (name) VALUES ('slow-1')")
        cur.execute("DO SLEEP(1.2)")
        cur.execute("INSERT INTO events (name) VALUES ('slow-2')")
        time.sleep(1.2)
        cur.execute("COMMIT")
    assert all(cluster.wait_caught_up(10).values())
    d = _one(cluster, "mysql-s1")
    assert d.severity == "ok" and d.binlog is None, d.render()


def test_source_ddl_meets_replica_only_change_and_stopped_primary(replab_cluster, cli):
    cluster = replab_cluster
    home = cluster.home
    assert cli("diagnose", home=home).returncode == 0  # all healthy: exit 0
    # the primary stopped: not raw error 2013 from the relay's port
    nemesis.stop(cluster, "mysql-m")
    assert wait_for(lambda: _status(cluster, "mysql-s1").last_errno == 2013)
    d = _one(cluster, "mysql-s1")
    assert d.severity == "broken" and d.summary == ("not receiving: mysql-m is stopped; the IO thread reconnects "
                                                    "every second until it is back (replab start mysql-m)")
    r = cli("diagnose", "mysql-s1", home=home)
    assert r.returncode == 1 and "2013" not in r.stdout.split("\n")[0]
    nemesis.start(cluster, "mysql-m")
    assert all(cluster.wait_caught_up(15).values())

    cluster.sql("mysql-m", "CREATE TABLE mydb.t1091 (id INT PRIMARY KEY, a INT, b INT)")
    cluster.sql("mysql-m", "CREATE TABLE mydb.t1054 (id INT PRIMARY KEY, name VARCHAR(20), description "
                           "VARCHAR(20), c INT)")
    feed(cluster, rows=10)  # the heartbeat row exists on every node
    assert all(cluster.wait_caught_up(10).values())
    nemesis.drift(cluster, "mysql-s1", drop_column="t1091.b")
    nemesis.drift(cluster, "mysql-s2", drop_column="t1054.description")
    cluster.sql("mysql-m", "ALTER TABLE mydb.t1091 DROP COLUMN b")  # mysql-s1 already lacks b: 1091
    cluster.sql("mysql-m", "ALTER TABLE mydb.t1054 ADD COLUMN x INT AFTER description")  # mysql-s2: 1054
    assert wait_for(lambda: [s.last_errno for s in cluster.status()[1:]] == [1091, 1054])
    s1, s2 = _one(cluster, "mysql-s1"), _one(cluster, "mysql-s2")
    assert s1.severity == "broken" and s1.errno == 1091 and s1.table == "mydb.t1091"
    assert s1.summary == ("SQL thread stopped: error 1091: the primary's ALTER TABLE drops column `b` of mydb.t1091, "
                          "which this replica no longer had: it had been dropped on this replica only")
    assert any(c.startswith("column `b`") and "dropped on this replica only" in c for c in s1.causes), s1.causes
    assert s2.severity == "broken" and s2.errno == 1054 and s2.table == "mydb.t1054"
    assert s2.summary == ("SQL thread stopped: error 1054: the primary's ALTER TABLE on mydb.t1054 names column "
                          "`description`, which was dropped on this replica only (the primary still had it)")
    assert not any("`x`" in c for c in s2.causes), s2.causes  # x is the statement's own new column
    # writes (and heartbeats) go on: a replica whose SQL thread stopped has no lag, "-" (it showed 0 ms)
    feed(cluster, rows=20)
    lags = {n["name"]: n["lag_ms"] for n in json.loads(cli("status", "--json", home=home).stdout)["nodes"]}
    assert lags == {"mysql-m": None, "mysql-s1": None, "mysql-s2": None}, lags
    table = status_rows(cli("status", home=home).stdout)
    assert [table[n]["lag"] for n in ("mysql-s1", "mysql-s2")] == ["-", "-"]
    assert any(c.startswith("column `description`") for c in s2.causes), s2.causes
    # check on a replica whose SQL thread stopped: says so at once, no advice to wait longer
    t0 = time.monotonic()
    report = checker.check(cluster, wait=30)
    assert time.monotonic() - t0 < 10
    details = [p.detail for p in report.problems if p.node == "mysql-s1" and "not compared" in p.detail]
    assert details and details[0].startswith("its SQL thread stopped on error 1091:") and "--wait" not in details[0]
    assert cli("diagnose", "--json", home=home).returncode == 1


def test_an_errant_transaction_is_foretold_as_each_flavor_behaves(replab_cluster, cli):
    """diagnose of a replica holding an errant transaction foretold "with gtid_strict_mode the next
    replicated event of that domain stops the SQL thread with error 1950" on MySQL too, where there is no
    such mode and the next event applies. What it foretells is then made to happen, and must."""
    cluster = replab_cluster
    assert feed(cluster, rows=20).ok == 20
    assert all(cluster.wait_caught_up(10).values())
    cli("drift", "mysql-s2", "--insert-rows", "events:3", "--binlog", home=cluster.home)
    out = cli("diagnose", "mysql-s2", home=cluster.home).stdout.splitlines()
    errant = "0-3-" if cluster.flavor.name == "mariadb" else ""
    assert out[0].startswith("mysql-s2: replicating, but drifted from the primary: errant transaction(s) "
                             f"{errant}"), out
    failover_too = "a failover to this replica would also send these transactions to the others"
    foretold = (f"  next writes: with gtid_strict_mode the next replicated event of that domain stops the SQL "
                f"thread with error 1950 (out-of-order GTID); {failover_too}"
                if cluster.flavor.name == "mariadb" else f"  next writes: {failover_too}")
    assert foretold in out, out
    if cluster.flavor.name == "mysql":
        assert not any("1950" in line or "gtid_strict_mode" in line for line in out), out
    cluster.sql("mysql-m", "CREATE TABLE mydb.after_errant (a INT PRIMARY KEY)")  # the next replicated event
    if cluster.flavor.name == "mariadb":
        assert wait_for(lambda: _status(cluster, "mysql-s2").last_errno == 1950, 20), _status(cluster, "mysql-s2")
    else:
        assert cluster.wait_caught_up(20, names=["mysql-s2"]) == {"mysql-s2": True}
        st = _status(cluster, "mysql-s2")
        assert st.sql_running and st.last_errno == 0, st
