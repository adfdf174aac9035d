"""Verifying a ledger of 10,000,000 acknowledged writes against a node: time and peak memory.

The table is loaded on a single node (sql_log_bin=0: no replication work) with feed-shaped rows; the
ledger is written in the shape a feed leaves (runs of about 1,000 ids, one per 100 ms flush). The verify
runs in a fresh Python process, which reports its own peak RSS (resource.ru_maxrss), so the memory
figure is the whole process: interpreter, PyMySQL and the ledger.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster
from replab.verify import ledger  # noqa: E402

VERIFY = """
import json, resource, sys, time
from replab import Cluster, ledger
c = Cluster.open(sys.argv[1])
t0 = time.monotonic()
d = ledger.verify_node(lambda: c.connect("mysql-m", database="mydb", read_timeout=600), ledger.ledger_path(c.home),
                       "events", workers=int(sys.argv[2]))
print(json.dumps({"seconds": time.monotonic() - t0, "clean": d.clean,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load(cluster: Cluster, rows: int) -> None:
    step = 500_000
    with cluster.connect(cluster.primary.name, database=cluster.database, read_timeout=1200) as conn, \
            conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        for lo in range(1, rows + 1, step):
            hi = min(rows, lo + step - 1)
            cur.execute(f"INSERT INTO events (id, name, counter, description) SELECT seq, CONCAT('some-event-', seq), "
                        f"seq, CONCAT('some-descr-', seq) FROM seq_{lo}_to_{hi}")
    path = ledger.ledger_path(cluster.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array("q")
    for start in range(1, rows + 1, 1000):
        arr.extend((start, min(start + 1000, rows + 1), ledger.OK))
    path.write_bytes(arr.tobytes())


def verify(cluster: Cluster, workers: int = 2) -> dict:
    out = subprocess.run([sys.executable, "-c", VERIFY, str(cluster.home), str(workers)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-1000:])
    data = json.loads(out.stdout)
    if not data["clean"]:
        raise RuntimeError("the ledger did not verify clean")
    return data


def run(quick: bool = False) -> list[dict]:
    rows = 200_000 if quick else 10_000_000
    # the server caches the 10M-row table (~700 MB) like a production server would; the 100 MB limit is
    # about replab's own process, measured separately
    with bench_cluster(2, {"innodb_buffer_pool_size": "1G"}) as cluster:
        t0 = time.monotonic()
        load(cluster, rows)
        print(f"loaded {rows} rows in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        verify(cluster, 3)  # warm the buffer pool / page cache once
        data = verify(cluster, 3)
    return [result(f"ledger verify, {rows:,} acknowledged writes", data["seconds"], "target", 5.0, "s", False,
                   "<= 5 s"),
            result(f"ledger verify peak memory, {rows:,} writes", data["rss_mb"], "target", 100.0, "MB", False,
                   "<= 100 MB")]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
