"""``replab sync NODE`` on real servers (MariaDB 10.11, MySQL 9.7): every kind of difference (missing,
extra, changed) in two tables, fixed on the replica (no errant GTID) and through the primary, while a feed
writes; and the refusals where a row sync cannot help."""

from __future__ import annotations

import pytest
from conftest import run_cli, wait_for

from replab.faults.failover import errant
from replab.faults.sync import SyncRefused, sync
from replab.verify import checker
from replab.workload.feed import Feeder


def _tables(cluster) -> None:
    with cluster.connect(cluster.primary.name, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(40), price DECIMAL(8,2), note TEXT)")
        cur.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'item-{i}', {i}.25, NULL)" for i in range(1, 301)))
        conn.commit()
    assert all(cluster.wait_caught_up(timeout=30).values())


def _damage(cluster, node: str) -> None:
    """Replica-only changes (sql_log_bin=0: no GTID): 3 rows missing, 1 extra and 2 changed per table."""
    with cluster.connect(node, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DELETE FROM events WHERE id IN (5, 77, 150)")
        cur.execute("INSERT INTO events (id, name, counter, description) VALUES (900000, 'x', 1, 'y')")
        cur.execute("UPDATE events SET counter = -1 WHERE id IN (10, 11)")
        cur.execute("DELETE FROM items WHERE id IN (1, 2, 300)")
        cur.execute("INSERT INTO items VALUES (5000, 'extra', 1.00, 'only here')")
        cur.execute("UPDATE items SET note = 'changed' WHERE id = 20")
        cur.execute("UPDATE items SET price = 0 WHERE id = 21")
        conn.commit()


def _counts(report) -> dict[str, tuple[int, int, int]]:
    return {t.table: (len(t.missing), len(t.extra), len(t.changed)) for t in report.tables}


def _problems(cluster, node: str) -> list[str]:
    return [f"{p.kind} {p.table} {p.detail}" for p in checker.check(cluster, wait=30).problems if p.node == node]


def test_sync_every_kind_of_difference_under_a_feed(matrix_cluster):
    cluster = matrix_cluster
    Feeder(cluster, rows=400, rate=0).start().wait(60)
    _tables(cluster)
    _damage(cluster, "mysql-s1")
    _damage(cluster, "mysql-s2")
    before = errant(cluster, "mysql-s1").count
    feeder = Feeder(cluster, rate=150, duration=30, threads=2).start()  # new rows keep arriving (and lagging)
    try:
        report = sync(cluster, "mysql-s1", via="replica")
        assert report.via == "replica" and "sql_log_bin=0" in report.why
        assert report.verified
        # exactly the damage, nothing of the feed's rows in flight
        assert _counts(report) == {"events": (3, 1, 2), "items": (3, 1, 2)}
        assert {t.table: sorted(t.missing) for t in report.tables} == {"events": [5, 77, 150], "items": [1, 2, 300]}
        assert errant(cluster, "mysql-s1").count == before  # no transaction of its own in its binary log
        assert _problems(cluster, "mysql-s1") == []
        # mysql-s2 differs too: asked to go through the primary, the fix replicates to it
        report = sync(cluster, "mysql-s2", via="primary")
        assert report.via == "primary" and report.verified
        assert _counts(report) == {"events": (3, 1, 2), "items": (3, 1, 2)}
        assert _problems(cluster, "mysql-s2") == []
        assert _problems(cluster, "mysql-s1") == []
        again = sync(cluster, "mysql-s1")
        assert again.tables == [] and again.verified
        # --from-check: the ids of the last check, without comparing the tables again
        _damage(cluster, "mysql-s1")
        assert not checker.check(cluster, wait=30).consistent
        fast = sync(cluster, "mysql-s1", via="replica", from_check=True)
        assert fast.verified and _counts(fast) == {"events": (3, 1, 2), "items": (3, 1, 2)}
        stale = sync(cluster, "mysql-s1", from_check=True)  # the same ids again: they match now, left alone
        assert stale.fixed == 0 and stale.verified
        assert {t.table: len(t.lagged) for t in stale.tables} == {"events": 6, "items": 6}
        assert _problems(cluster, "mysql-s1") == []
    finally:
        feeder.stop()
    assert checker.check(cluster, wait=30).consistent


def test_sync_auto_goes_through_the_primary_when_replicas_share_the_damage(matrix_cluster):
    cluster = matrix_cluster
    Feeder(cluster, rows=300, rate=0).start().wait(60)
    _tables(cluster)
    _damage(cluster, "mysql-s1")
    _damage(cluster, "mysql-s2")
    r = run_cli("sync", "mysql-s1", home=cluster.home)
    assert r.returncode == 0, r.stderr
    assert "through mysql-m" in r.stderr and "mysql-s2 differ(s) on the same rows" in r.stderr
    assert "synced 12 row(s) through the primary" in r.stdout
    assert checker.check(cluster, wait=30).consistent  # mysql-s2 was fixed by the same writes


def test_sync_refuses_where_rows_cannot_help(matrix_cluster):
    cluster = matrix_cluster
    Feeder(cluster, rows=200, rate=0).start().wait(60)
    with cluster.connect("mysql-m", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE nokey (a INT, b VARCHAR(10))")
        cur.execute("INSERT INTO nokey VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        conn.commit()
    assert all(cluster.wait_caught_up(timeout=30).values())
    with cluster.connect("mysql-s1", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DELETE FROM nokey WHERE a = 2")
        conn.commit()
    with pytest.raises(SyncRefused) as exc:
        sync(cluster, "mysql-s1", tables=["nokey"])
    assert "primary key" in str(exc.value) and "replab repair mysql-s1" in (exc.value.hint or "")
    # the schema differs
    r = run_cli("drift", "mysql-s1", "--drop-column", "events.description", home=cluster.home)
    assert r.returncode == 0, r.stderr
    r = run_cli("sync", "mysql-s1", "--table", "events", home=cluster.home)
    assert r.returncode == 2 and "schema differs" in r.stderr and "replab repair mysql-s1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    # replication broken: a row the replica lacks is updated on the primary (error 1032 on the replica)
    with cluster.connect("mysql-s2", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DELETE FROM events WHERE id = 7")
        conn.commit()
    cluster.sql("mysql-m", "UPDATE mydb.events SET counter = 0 WHERE id = 7")
    assert wait_for(lambda: next(s for s in cluster.status() if s.name == "mysql-s2").sql_running is False)
    with pytest.raises(SyncRefused) as exc:
        sync(cluster, "mysql-s2", tables=["events"], wait=2)
    assert "replication is broken" in str(exc.value) and "replab repair mysql-s2" in (exc.value.hint or "")
    r = run_cli("sync", "mysql-s2", "--via", "sideways", home=cluster.home)
    assert r.returncode == 2 and "unknown sync way" in r.stderr


def _rows_read(cluster, node: str) -> int:
    """Rows the node's handlers returned so far (index lookups, range and table scans), on both flavors."""
    return sum(int(v) for _k, v in cluster.sql(node, "SHOW GLOBAL STATUS LIKE 'Handler_read%'").rows)


def test_sync_reads_what_the_change_costs_besides_one_scan_of_two_nodes(matrix_cluster):
    """The finding reads the primary and the node once (no ledger, not the other replicas); a differing chunk
    is narrowed by 1,000-id sub-ranges; the other replica, the re-check and the verification read the
    differing rows by id. Before: every node scanned (mysql-s2 read 60,000 rows here)."""
    cluster = matrix_cluster
    rows = 60_000
    with cluster.connect(cluster.primary.name, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20))")
        for lo in range(1, rows + 1, 2000):
            cur.execute("INSERT INTO big VALUES " + ",".join(f"({i}, 'v-{i}')" for i in range(lo, lo + 2000)))
        conn.commit()
    assert all(cluster.wait_caught_up(timeout=60).values())
    with cluster.connect("mysql-s1", database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DELETE FROM big WHERE id = 30001")
        cur.execute("UPDATE big SET v = 'changed' WHERE id = 30500")
        conn.commit()
    before = {n: _rows_read(cluster, n) for n in cluster.names}
    report = sync(cluster, "mysql-s1", tables=["big"])
    read = {n: _rows_read(cluster, n) - before[n] for n in cluster.names}
    assert report.verified and _counts(report) == {"big": (1, 0, 1)}
    assert report.via == "replica"  # mysql-s2 holds these rows as the primary does
    assert read["mysql-s2"] < 1_000, read  # the 2 rows by id (and, on MySQL, its data dictionary opening the table)
    # one scan; the differing chunk's sub-range sums (its rows, and as many lookups in the GROUP BY's temporary
    # table); one sub-range of 1,000 ids; rows by id
    assert rows - 1 <= read["mysql-s1"] < rows + 2 * checker.CHUNK_IDS + 3_000, read
    assert rows <= read["mysql-m"] < rows + 2 * checker.CHUNK_IDS + 3_000, read
    assert checker.check(cluster, wait=30, tables=["big"]).consistent
