"""Verdicts on real MariaDB clusters: the adversarial divergences a linear checksum misses, found by row id;
the ledger's reference (a row the primary changed is not a divergence); repair of a replica identical
to the primary."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import wait_for

from replab.faults import nemesis
from replab.faults.repair import repair
from replab.verify import checker, rowhash
from replab.workload.feed import feed

ADV = ("CREATE TABLE mydb.adv (id INT PRIMARY KEY, a VARCHAR(64) NULL, b VARCHAR(64) NULL, "
       "c VARCHAR(64) NULL) ENGINE=InnoDB")
BASE = [(1, "some-event-1", "n1", "10"), (2, "some-event-2", "n2", "20"), (3, "x", "same", "3"),
        (4, "y", "same", "4"), (7, "x#1", "2", "d"), (8, None, "1", "d"), (9, None, "1", "d"),
        (10, "", "1", "d"), (11, "a','b", "c", "d"), (12, "a\\", "b", "d"), (20, "keep", "keep", "keep"),
        (19, "é", "ü,", None)]
# the replica's version of some rows: each differs from the primary in a way CRC32/CONCAT_WS('#') misses
DIVERGED = {1: (1, "some-event-1", "n1", "11"), 2: (2, "some-event-2", "n2", "21"),  # same bit pattern
            3: (3, "y", "same", "3"), 4: (4, "x", "same", "4"),  # values swapped between two rows
            7: (7, "x", "1", "2#d"),  # '#'-ambiguous concatenation
            8: (8, "NULL", "1", "d"), 9: (9, "", "1", "d"), 10: (10, "NULL", "1", "d"),  # NULL, 'NULL', ''
            11: (11, "a", "b','c", "d"), 12: (12, "a", "\\b", "d")}  # quotes and backslashes moved



@pytest.fixture
def replab_cluster(matrix_cluster):
    """On MariaDB 10.11 and MySQL 9.7 (see conftest.matrix_cluster)."""
    return matrix_cluster


def _on(cluster, node: str, sql: str, args=None, local: bool = True) -> None:
    with cluster.connect(node, database="mydb") as conn, conn.cursor() as cur:
        if local:
            cur.execute("SET SESSION sql_log_bin=0")
        cur.execute(sql, args)


def _problems(report) -> set[tuple]:
    return {(p.node, p.kind, p.table, tuple(p.rows)) for p in report.problems}


def test_adversarial_divergences_found_by_row_id(replab_cluster):
    cluster = replab_cluster
    cluster.sql("mysql-m", ADV)
    for row in BASE:
        _on(cluster, "mysql-m", "INSERT INTO adv VALUES (%s, %s, %s, %s)", row, local=False)
    assert all(cluster.wait_caught_up(10).values())
    assert checker.check(cluster, wait=10, tables=["adv"]).consistent
    # the Python mirror hashes exactly as the server does, under each encoding, and digests a chunk alike
    cols, plain, raw = ["id", "a", "b", "c"], {"id"}, {"a", "b", "c"}
    with cluster.connect("mysql-m", database="mydb") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, a, b, c, {rowhash.row_hash_sql(cols)}, {rowhash.row_hash_sql(cols, plain)}, "
                    f"{rowhash.row_hash_sql(cols, plain, raw)} FROM adv ORDER BY id")
        hashes = []
        for *row, quoted, as_plain, as_raw in cur.fetchall():
            hashes.append(rowhash.row_hash(row, {0}, {1, 2, 3}))
            assert (int(quoted), int(as_plain), int(as_raw)) == (rowhash.row_hash(row), rowhash.row_hash(row, {0}),
                                                                 hashes[-1]), row
        cur.execute(f"SELECT COUNT(*), {rowhash.digest_sql(cols, plain, raw)} FROM adv FORCE INDEX (PRIMARY) "
                    "WHERE id BETWEEN 0 AND 9999")
        n, digest = cur.fetchone()
        assert (n, int(digest, 16)) == rowhash.chunk_digest(hashes)
        cur.execute(f"SELECT COUNT(*), {rowhash.text_digest_sql(cols, plain, raw)} FROM adv FORCE INDEX (PRIMARY) "
                    "WHERE id BETWEEN 0 AND 9999")
        n, digest = cur.fetchone()
        cur.execute("SELECT id, a, b, c FROM adv ORDER BY id")
        assert (n, int(digest, 16)) == rowhash.chunk_text_digest(cur.fetchall(), {0}, {1, 2, 3})
    for row in DIVERGED.values():
        _on(cluster, "mysql-s1", "REPLACE INTO adv VALUES (%s, %s, %s, %s)", row)
    _on(cluster, "mysql-s1", "INSERT INTO adv VALUES (-3, 'below every id of the primary', NULL, NULL)")

    # mysql-s2 drops the middle column a (replica only, types compatible): rows applied afterwards land
    # shifted (b holds the primary's a) while replication runs on; two such rows cancel under CRC32+XOR
    nemesis.drift(cluster, "mysql-s2", drop_column="adv.a")
    _on(cluster, "mysql-m", "INSERT INTO adv VALUES (21, 'A1', 'B1', 'C1'), (22, 'A2', 'B2', 'C2')", local=False)
    assert all(cluster.wait_caught_up(10).values())
    assert cluster.sql("mysql-s2", "SELECT id, b, c FROM mydb.adv WHERE id > 20").rows == [(21, "A1", "B1"),
                                                                                          (22, "A2", "B2")]
    report = checker.check(cluster, wait=10, tables=["adv"])
    assert _problems(report) == {
        ("mysql-s1", "changed_rows", "adv", tuple(sorted(DIVERGED))),
        ("mysql-s1", "extra_rows", "adv", (-3,)),
        ("mysql-s2", "schema", "adv", ()),
        ("mysql-s2", "changed_rows", "adv", (21, 22)),
    }, report.render()
    s2_schema = next(p for p in report.problems if p.kind == "schema")
    assert s2_schema.detail == "column a is missing (varchar(64) on the primary)"
    # summary: each node's own count; checksums over the columns all three share (not a)
    assert [n.tables["adv"].rows for n in report.facts.nodes] == [14, 15, 14]
    assert all(n.tables["adv"].compared_columns == ["id", "b", "c"] for n in report.facts.nodes)
    assert "adv checksums cover the columns every node shares: id, b, c (not a)" in report.render()


def test_primary_changes_rows_then_repair_is_consistent(replab_cluster):
    cluster = replab_cluster
    assert feed(cluster, rows=400, batch=4).ok == 400
    # the primary changes acknowledged rows after the feed wrote them: replicated, not a divergence
    cluster.sql("mysql-m", "UPDATE mydb.events SET counter = counter + 1000, description = 'edited' "
                           "WHERE id BETWEEN 10 AND 19")
    report = checker.check(cluster, wait=10)
    assert report.consistent, report.render()
    # an acknowledged write deleted on the primary is still reported: the ledger says it must exist everywhere
    cluster.sql("mysql-m", "DELETE FROM mydb.events WHERE id = 5")
    report = checker.check(cluster, wait=10)
    assert {(p.node, p.kind, tuple(p.rows), p.source) for p in report.problems} == {
        (n, "missing_rows", (5,), "ledger") for n in ("mysql-m", "mysql-s1", "mysql-s2")}
    cluster.sql("mysql-m", "INSERT INTO mydb.events VALUES (5, 'some-event-5', 5, 'some-descr-5')")
    _on(cluster, "mysql-s1", "DELETE FROM events WHERE id = 30")
    report = checker.check(cluster, wait=10)
    # the row comparison and the ledger find the same row: one problem (issue 23.5), the ledger agreeing
    assert {(p.node, p.kind, tuple(p.rows), p.source) for p in report.problems} == {
        ("mysql-s1", "missing_rows", (30,), "checksum")}
    assert report.problems[0].detail == "1 row(s) missing (on the primary, not here); the ledger agrees"
    rebuilt = repair(cluster, "mysql-s1", method="dump")
    assert rebuilt.verified, rebuilt.to_dict()
    assert "consistent with the primary" in rebuilt.sentence() and "NOT" not in rebuilt.sentence()
    assert checker.check(cluster, wait=10).consistent


def test_sparse_ids_are_compared_per_existing_chunk(replab_cluster):
    """Ids far apart: the server groups rows by chunk (no query per empty chunk); the result is the same."""
    cluster = replab_cluster
    cluster.sql("mysql-m", "CREATE TABLE mydb.sparse (id BIGINT PRIMARY KEY, v VARCHAR(10))")
    _on(cluster, "mysql-m", "INSERT INTO sparse VALUES (-20001, 'n'), (1, 'a'), (5000000, 'b'), "
                            "(900000000, 'c')", local=False)
    assert all(cluster.wait_caught_up(10).values())
    _on(cluster, "mysql-s1", "UPDATE sparse SET v = 'B' WHERE id = 5000000")
    _on(cluster, "mysql-s1", "DELETE FROM sparse WHERE id = -20001")
    _on(cluster, "mysql-s2", "INSERT INTO sparse VALUES (700000000, 'x')")
    t0 = time.monotonic()
    report = checker.check(cluster, wait=10, tables=["sparse"])
    assert time.monotonic() - t0 < 10
    assert _problems(report) == {("mysql-s1", "changed_rows", "sparse", (5000000,)),
                                 ("mysql-s1", "missing_rows", "sparse", (-20001,)),
                                 ("mysql-s2", "extra_rows", "sparse", (700000000,))}, report.render()


def test_quoted_columns_and_a_replica_without_the_primary_key(replab_cluster):
    """A DATE column: every non-integer column is QUOTE()d. mysql-s1 lost its primary key and holds row 5
    last (deleted and put back, same content): its chunk is digested in id order all the same, so its
    checksum equals the primary's and nothing but the schema is reported. mysql-s2 swapped two values."""
    cluster = replab_cluster
    cluster.sql("mysql-m", "CREATE TABLE mydb.q (id INT PRIMARY KEY, d DATE NULL, s VARCHAR(20) NULL)")
    _on(cluster, "mysql-m", "INSERT INTO q VALUES " + ", ".join(
        f"({i}, {'NULL' if i % 7 == 0 else repr(f'2024-01-{i:02d}')}, {repr(f's,{i}')})" for i in range(1, 29)),
        local=False)
    assert all(cluster.wait_caught_up(10).values())
    _on(cluster, "mysql-s1", "ALTER TABLE q DROP PRIMARY KEY")
    _on(cluster, "mysql-s1", "DELETE FROM q WHERE id = 5")
    _on(cluster, "mysql-s1", "INSERT INTO q VALUES (5, '2024-01-05', 's,5')")
    _on(cluster, "mysql-s2", "UPDATE q SET s = IF(id = 3, 's,4', 's,3') WHERE id IN (3, 4)")
    report = checker.check(cluster, wait=10, tables=["q"])
    assert {(p.node, p.kind, tuple(p.rows)) for p in report.problems} == {
        ("mysql-s1", "schema", ()), ("mysql-s2", "changed_rows", (3, 4))}, report.render()
    sums = {n.name: (n.tables["q"].rows, n.tables["q"].checksum) for n in report.facts.nodes}
    assert sums["mysql-s1"] == sums["mysql-m"] != sums["mysql-s2"] and sums["mysql-m"][0] == 28


def test_a_row_the_primary_commits_late_is_not_a_divergence(replab_cluster):
    """A replica can hold a row the primary has written but not yet made visible (semi-sync AFTER_SYNC).
    Here the primary's transaction stays open while the replica already has the same row; check re-reads
    it on the primary with a locking read, which waits for that commit: then the row is the same, on the
    events table whose strings are hashed raw (the re-read must hash rows exactly as the first read)."""
    cluster = replab_cluster
    row = (900, "some-event-900", 900, "some-descr-900")
    insert = "INSERT INTO mydb.events (id, name, counter, description) VALUES (%s, %s, %s, %s)"
    _on(cluster, "mysql-s1", insert, row)  # the replica has it already
    waiter = cluster.flavor.share_lock_clause()
    with cluster.connect("mysql-m", database="mydb") as held, held.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")  # the replica has the row: replicating it would collide
        cur.execute("BEGIN")
        cur.execute(insert, row)  # written, not committed: other sessions do not see it
        with ThreadPoolExecutor(1) as pool:
            report = pool.submit(checker.check, cluster, 30)
            seen = wait_for(lambda: any(waiter in str(r[0]) for r in cluster.sql(
                "mysql-m", "SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO IS NOT NULL").rows), 60)
            held.commit()
            result = report.result(timeout=120)
    assert seen, "check never re-read the replica's row on the primary with a locking read"
    assert result.consistent, result.render()


def test_the_locking_re_read_hashes_rows_as_the_first_read(replab_cluster):
    """check's locking re-read on the primary (see above) must give the same row hashes as its plain reads:
    on the events table the strings are hashed raw after their lengths, and it once hashed them QUOTE()d,
    so a row re-read this way never matched the replica's (only a further round hid it)."""
    cluster = replab_cluster
    feed(cluster, rows=20)
    col = checker._Collector(cluster, 30, ["events"])
    try:
        col.open_primary()
        col.learn("events", col.schema(col.primary, ["events"])["events"])
        assert col.raw["events"] == {"name", "description"}
        cols = ["id", "name", "counter", "description"]
        plain = col.row_hashes(col.primary, "events", cols, "id BETWEEN %s AND %s", (1, 20))
        assert len(plain) == 20
        assert col.settled_hashes("events", cols, list(range(1, 21))) == plain
    finally:
        col.close()
