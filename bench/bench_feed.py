"""feed vs sysbench oltp_insert on the same cluster, ledger on, with the live view's sampler running as
`replab feed` runs it: at 1, 4 and 16 threads, on a small table and again once both tables hold 10,000,000
rows (the sampler's cost must not grow with the table).

sysbench logs in as a socket-only user without a password (created for the run, on the primary only
and dropped after), so no password ever appears on a command line.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster  # noqa: E402
from replab.runs.timeline import Sampler  # noqa: E402
from replab.workload.feed import feed  # noqa: E402

SB_USER = "replab_sysbench"


def _sysbench(cluster: Cluster, action: str, threads: int, seconds: float, db: str = "sbtest",
              size: int = 10_000) -> float:
    argv = ["sysbench", "oltp_insert", "--db-driver=mysql", f"--mysql-socket={cluster.primary.socket}",
            f"--mysql-user={SB_USER}", f"--mysql-db={db}", "--tables=1", f"--table-size={size}",
            f"--threads={threads}", f"--time={max(1, int(seconds))}", "--report-interval=0", action]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 3600)
    if out.returncode != 0:
        raise RuntimeError(f"sysbench {action} failed: {out.stderr[-500:] or out.stdout[-500:]}")
    if action != "run":
        return 0.0
    match = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", out.stdout)
    if not match:
        raise RuntimeError(f"cannot read sysbench output: {out.stdout[-500:]}")
    return float(match.group(1))


def _prepare(cluster: Cluster, db: str = "sbtest", size: int = 10_000) -> None:
    with cluster.connect(cluster.primary.name) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        cur.execute("SET SESSION sql_log_bin=0")
        cur.execute(f"CREATE USER IF NOT EXISTS '{SB_USER}'@'localhost' IDENTIFIED VIA unix_socket OR "
                    "mysql_native_password USING ''")
        cur.execute(f"GRANT ALL ON {db}.* TO '{SB_USER}'@'localhost'")
    _sysbench(cluster, "prepare", 1, 1, db, size)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def _side_by_side(cluster: Cluster, threads: int, seconds: float, rounds: int, db: str,
                  size: int) -> tuple[float, float]:
    """Median rows/s of feed (with the live sampler, as `replab feed` runs) and of sysbench; rounds alternate
    which tool goes first (fsync latency on a shared machine drifts)."""
    sb: list[float] = []
    mine: list[float] = []
    for i in range(rounds):
        for tool in ("sysbench", "feed") if i % 2 == 0 else ("feed", "sysbench"):
            if tool == "sysbench":
                sb.append(_sysbench(cluster, "run", threads, seconds, db, size))
            else:
                sampler = Sampler(cluster, interval=0.25).start()
                try:
                    mine.append(feed(cluster, duration=seconds, threads=threads).rate)
                finally:
                    sampler.stop()
    return _median(mine), _median(sb)


def _dirty(cluster: Cluster, name: str) -> int:
    with cluster.connect(name) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
        return int(cur.fetchone()[1])


def _settle(cluster: Cluster, timeout: float = 600.0) -> None:
    """Wait until the replicas applied everything and the servers wrote their dirty pages: a bulk load
    leaves minutes of background writes behind, which would be measured instead of the tools. Flushing is
    made eager meanwhile (innodb_max_dirty_pages_pct=0), then set back."""
    cluster.wait_caught_up(timeout=timeout)
    names = [n.name for n in cluster.nodes]
    before = {n: cluster.sql(n, "SELECT @@GLOBAL.innodb_max_dirty_pages_pct").rows[0][0] for n in names}
    try:
        for n in names:
            cluster.sql(n, "SET GLOBAL innodb_max_dirty_pages_pct = 0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(_dirty(cluster, n) for n in names) > 300:
            time.sleep(1)
    finally:
        for n, value in before.items():
            cluster.sql(n, f"SET GLOBAL innodb_max_dirty_pages_pct = {float(value)}")


def run(quick: bool = False) -> list[dict]:
    # 5 alternating rounds on the small table (single runs move 10-20%, the tools differ by a few %); 3 on
    # the 10M-row table, where the rounds are slow and the gap is wide
    seconds, rounds, big = (2.0, 1, 50_000) if quick else (10.0, 3, 10_000_000)
    small_rounds = 1 if quick else 5
    out = []
    with bench_cluster(3) as cluster:
        _prepare(cluster)
        sb4 = 0.0
        for threads in (1, 4, 16):
            _settle(cluster)
            mine, sb = _side_by_side(cluster, threads, seconds, small_rounds, "sbtest", 10_000)
            sb4 = sb if threads == 4 else sb4
            out.append(result(f"feed single-row inserts, {threads} thread(s), small table", mine,
                              f"sysbench oltp_insert {threads} thread(s)", sb, "rows/s", True, ">= 1.0x sysbench"))
        _settle(cluster)
        batched = [feed(cluster, duration=seconds, threads=4, batch=100).rate for _ in range(rounds)]
        out.append(result("feed --batch 100, 4 threads", _median(batched), "sysbench oltp_insert 4 threads",
                          sb4, "rows/s", True, ">= 5x sysbench"))
        # both tables grow to `big` rows: feed fills events (ledger on), sysbench prepares its own table
        feed(cluster, rows=big, threads=4, batch=1000)
        _prepare(cluster, "sbbig", big)
        for threads in (1, 4, 16):
            _settle(cluster, timeout=1800)
            mine, sb = _side_by_side(cluster, threads, seconds, rounds, "sbbig", big)
            out.append(result(f"feed single-row inserts, {threads} thread(s), {big:,}-row table", mine,
                              f"sysbench oltp_insert {threads} thread(s), {big:,}-row table", sb, "rows/s", True,
                              ">= 1.0x sysbench"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
