"""Costs that grow with the change, not the table (issue 21), side by side in one run on one cluster:

- feed rate (4 threads, the live sampler running, as `replab feed` runs) on an empty table and on the big
  one, and sysbench oltp_insert (4 threads) on the same server;
- check of the big table against pt-table-checksum;
- sync of 5 damaged rows (found by the check it runs, fixed, verified);
- repair of a replica by each method (MariaDB: dump, streamed mariadb-backup; MySQL 9.7: dump, clone).

The size is 10,000,000 rows unless REPLAB_BENCH_SCALE_ROWS says otherwise (the machine may be too busy
for 10M: the figures then say the size they were measured at).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402
from bench_check import _pt_table_checksum, load_events  # noqa: E402
from bench_feed import _median, _prepare, _settle, _sysbench  # noqa: E402

from replab import Cluster  # noqa: E402
from replab.faults.repair import repair  # noqa: E402
from replab.faults.sync import sync  # noqa: E402
from replab.runs.timeline import Sampler  # noqa: E402
from replab.verify import checker, ledger  # noqa: E402
from replab.workload.feed import feed  # noqa: E402

OPTIONS = {"innodb_buffer_pool_size": "1G"}


def _feed_rate(cluster: Cluster, seconds: float) -> float:
    sampler = Sampler(cluster, interval=0.25).start()
    try:
        return feed(cluster, duration=seconds, threads=4).rate
    finally:
        sampler.stop()


def _rates(cluster: Cluster, seconds: float, rounds: int) -> tuple[float, float]:
    mine, sb = [], []
    for i in range(rounds):
        for tool in ("sysbench", "feed") if i % 2 == 0 else ("feed", "sysbench"):
            if tool == "feed":
                mine.append(_feed_rate(cluster, seconds))
            else:
                sb.append(_sysbench(cluster, "run", 4, seconds))
    return _median(mine), _median(sb)


def _damage(cluster: Cluster, node: str, ids: list[int]) -> None:
    with cluster.connect(node, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute(f"DELETE FROM events WHERE id IN ({','.join(str(int(i)) for i in ids[:3])})")
        cur.execute(f"UPDATE events SET counter = -1 WHERE id IN ({','.join(str(int(i)) for i in ids[3:])})")
        conn.commit()


def _fill(cluster: Cluster, rows: int, step: int = 1_000_000) -> None:
    """MySQL has no sequence engine: a 1,000-row numbers table and its cross join, a million rows a statement."""
    with cluster.connect(cluster.primary.name, read_timeout=3600) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS scratch")
        cur.execute("CREATE TABLE IF NOT EXISTS scratch.n (i INT PRIMARY KEY)")
        cur.execute("INSERT IGNORE INTO scratch.n VALUES " + ",".join(f"({i})" for i in range(1000)))
        for base in range(0, rows, step):
            cur.execute("INSERT INTO mydb.events (id, name, counter, description) SELECT v, CONCAT('some-event-', v), "
                        f"v, CONCAT('some-descr-', v) FROM (SELECT {base} + a.i * 1000 + b.i + 1 AS v FROM "
                        "scratch.n a, scratch.n b) x WHERE v <= %s", (min(rows, base + step),))
        conn.commit()
    if not all(cluster.wait_caught_up(timeout=3600).values()):
        raise RuntimeError("replicas did not catch up after loading")


def _repairs(cluster: Cluster, rows: int, methods: tuple[str, ...], label: str) -> list[dict]:
    out = []
    for method in methods:
        _damage(cluster, "mysql-s2", [11, 12, 13, 14, 15])
        t0 = time.monotonic()
        report = repair(cluster, "mysql-s2", method=method, timeout=1800)
        took = time.monotonic() - t0
        if not report.verified:
            raise RuntimeError(f"repair --method {method} did not verify: {report.steps}")
        out.append(result(f"{label}repair of a replica of {rows:,} rows --method {method} (rebuild, reattach, "
                          "catch up, verify)", took, "target", 30.0, "s", False, "<= 30 s"))
    return out


def run(quick: bool = False) -> list[dict]:
    rows = 50_000 if quick else int(os.environ.get("REPLAB_BENCH_SCALE_ROWS", "10000000"))
    seconds, rounds = (2.0, 1) if quick else (10.0, 3)
    out: list[dict] = []
    with bench_cluster(3, OPTIONS) as cluster:
        _prepare(cluster)
        _settle(cluster)
        empty, sb_empty = _rates(cluster, seconds, rounds)
        cluster.sql("mysql-m", "TRUNCATE TABLE mydb.events")  # the load below writes ids from 1 (and its ledger)
        ledger.ledger_path(cluster.home).unlink(missing_ok=True)
        cluster.wait_caught_up(timeout=60)
        load_events(cluster, rows)
        _settle(cluster, timeout=3600)
        big, sb_big = _rates(cluster, seconds, rounds)
        out.append(result(f"feed 4 threads with the live view, {rows:,}-row table vs empty table", big,
                          "the same feed on an empty table", empty, "rows/s", True, ">= 0.95x its empty-table rate"))
        out.append(result(f"feed 4 threads with the live view, {rows:,}-row table", big,
                          "sysbench oltp_insert 4 threads, same server", sb_big, "rows/s", True, ">= 1.0x sysbench"))
        out.append(result("feed 4 threads with the live view, empty table", empty,
                          "sysbench oltp_insert 4 threads, same server", sb_empty, "rows/s", True, ">= 1.0x sysbench"))
        cluster.wait_caught_up(timeout=600)
        t0 = time.monotonic()
        report = checker.check(cluster, wait=600)
        mine = time.monotonic() - t0
        if not report.consistent:
            raise RuntimeError(report.render())
        pt = _pt_table_checksum(cluster)
        out.append(result(f"check of {rows:,} rows on 3 nodes (one run each)", mine, "pt-table-checksum", pt, "s",
                          False, "<= 0.5x pt-table-checksum"))
        _damage(cluster, "mysql-s1", [101, 202, 303, 404, 505])
        t0 = time.monotonic()
        synced = sync(cluster, "mysql-s1", wait=600)
        took = time.monotonic() - t0
        if not synced.verified or synced.fixed != 5:
            raise RuntimeError(f"sync did not fix the 5 rows: {synced.to_dict()}")
        out.append(result(f"sync of 5 rows in {rows:,} (the check that finds them, fix, verify)", took, "target",
                          2.0, "s", False, "<= 2 s"))
        _damage(cluster, "mysql-s1", [111, 222, 333, 444, 555])
        checker.check(cluster, wait=600)  # names the 5 ids (and keeps them for --from-check)
        t0 = time.monotonic()
        synced = sync(cluster, "mysql-s1", wait=600, from_check=True)
        took = time.monotonic() - t0
        if not synced.verified or synced.fixed != 5:
            raise RuntimeError(f"sync --from-check did not fix the 5 rows: {synced.to_dict()}")
        out.append(result(f"sync --from-check of 5 rows in {rows:,} (ids of the last check; fix, verify)", took,
                          "target", 2.0, "s", False, "<= 2 s"))
        out += _repairs(cluster, rows, ("dump", "backup"), "")
    if not quick or os.environ.get("REPLAB_BENCH_MYSQL"):
        with bench_cluster(3, OPTIONS, server="mysql-9.7") as cluster:
            _fill(cluster, rows)
            out += _repairs(cluster, rows, ("dump", "clone"), "MySQL 9.7: ")
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
