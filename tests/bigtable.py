"""Fill ``mydb.events`` fast for the tests that need a big table: a 1,000-row numbers table, then
``INSERT ... SELECT`` of its cross join (a million rows per statement, no temporary table, no row-by-row
round trips). Works the same on MariaDB and MySQL; the rows replicate like any write."""

from __future__ import annotations

import time

from replab import Cluster


def fill_events(cluster: Cluster, rows: int, step: int = 1_000_000) -> None:
    """Insert feed-shaped rows with ids 1..``rows`` on the primary and wait until the replicas applied them."""
    with cluster.connect(cluster.primary.name, read_timeout=900) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS scratch")
        cur.execute("CREATE TABLE IF NOT EXISTS scratch.n (i INT PRIMARY KEY)")
        cur.execute("INSERT IGNORE INTO scratch.n VALUES " + ",".join(f"({i})" for i in range(1000)))
        for base in range(0, rows, step):
            n = min(step, rows - base)
            cur.execute("INSERT INTO mydb.events (id, name, counter, description) "
                        "SELECT v, CONCAT('some-event-', v), v, CONCAT('some-descr-', v) FROM "
                        f"(SELECT {base} + a.i * 1000 + b.i + 1 AS v FROM scratch.n a, scratch.n b) x WHERE v <= %s",
                        (base + n,))
    if not all(cluster.wait_caught_up(timeout=900).values()):
        raise RuntimeError("replicas did not catch up after filling mydb.events")


def small_server_config(tmp_path, server: str):  # type: ignore[no-untyped-def]
    """A config file whose servers can shrink their buffer pool to a few MB once the table is filled
    (MySQL sizes the pool in chunks: 1 MB chunks let it go down to 8 MB)."""
    path = tmp_path / "replab.toml"
    extra = 'innodb_buffer_pool_chunk_size = "1048576"\n' if server.startswith("mysql") else ""
    path.write_text("[server_options]\n" + extra)
    return str(path)


def shrink_buffer_pools(cluster: Cluster, size: int = 8 * 1024 * 1024) -> None:
    """Make every node's buffer pool ``size`` bytes, so a full scan reads from disk."""
    for node in cluster.nodes:
        with cluster.connect(node.name, read_timeout=120) as conn, conn.cursor() as cur:
            cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {int(size)}")
    deadline = time.monotonic() + 60
    for node in cluster.nodes:
        while time.monotonic() < deadline:
            with cluster.connect(node.name) as conn, conn.cursor() as cur:
                cur.execute("SELECT @@innodb_buffer_pool_size")
                if int(cur.fetchone()[0]) <= size:
                    break
            time.sleep(0.2)
