"""feed vs sysbench oltp_insert on the same cluster, ledger on.

sysbench logs in as a socket-only user without a password (created for the run, on the primary only
and dropped after), so no password ever appears on a command line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster  # noqa: E402
from replab.workload import feed  # noqa: E402

SB_USER = "replab_sysbench"


def _sysbench(cluster: Cluster, action: str, threads: int, seconds: float) -> float:
    argv = ["sysbench", "oltp_insert", "--db-driver=mysql", f"--mysql-socket={cluster.primary.socket}",
            f"--mysql-user={SB_USER}", "--mysql-db=sbtest", "--tables=1", "--table-size=10000",
            f"--threads={threads}", f"--time={max(1, int(seconds))}", "--report-interval=0", action]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"sysbench {action} failed: {out.stderr[-500:] or out.stdout[-500:]}")
    if action != "run":
        return 0.0
    match = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", out.stdout)
    if not match:
        raise RuntimeError(f"cannot read sysbench output: {out.stdout[-500:]}")
    return float(match.group(1))


def _prepare(cluster: Cluster) -> None:
    with cluster.connect(cluster.primary.name) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS sbtest")
        cur.execute("SET SESSION sql_log_bin=0")
        cur.execute(f"CREATE USER IF NOT EXISTS '{SB_USER}'@'localhost' IDENTIFIED VIA unix_socket OR "
                    "mysql_native_password USING ''")
        cur.execute(f"GRANT ALL ON sbtest.* TO '{SB_USER}'@'localhost'")
    _sysbench(cluster, "prepare", 1, 1)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def run(quick: bool = False) -> list[dict]:
    """Side by side on one cluster; rounds alternate which tool goes first (fsync latency on a shared
    machine drifts), and each figure is the median of its rounds."""
    seconds, rounds = (2.0, 1) if quick else (10.0, 3)
    out = []
    with bench_cluster(3) as cluster:
        _prepare(cluster)
        for threads in (1, 4):
            sb: list[float] = []
            mine: list[float] = []
            for i in range(rounds):
                for tool in ("sysbench", "feed") if i % 2 == 0 else ("feed", "sysbench"):
                    if tool == "sysbench":
                        sb.append(_sysbench(cluster, "run", threads, seconds))
                    else:
                        mine.append(feed(cluster, duration=seconds, threads=threads).rate)
            out.append(result(f"feed single-row inserts, {threads} thread(s)", _median(mine),
                              f"sysbench oltp_insert {threads} thread(s)", _median(sb), "rows/s", True,
                              ">= 1.0x sysbench"))
            if threads == 4:
                batched = [feed(cluster, duration=seconds, threads=threads, batch=100).rate for _ in range(rounds)]
                out.append(result("feed --batch 100, 4 threads", _median(batched), "sysbench oltp_insert 4 threads",
                                  _median(sb), "rows/s", True, ">= 5x sysbench"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
