"""replab repair (dump) vs the bare ``mariadb-dump | mariadb`` pipeline it is built on, same cluster, same rows.

replab's figure covers the whole rebuild: snapshot with GTID position, load with sql_log_bin=0, reset of
the replica's binlog history, reattach, wait until caught up, and verification (row CRCs + the checker).
The yardstick is only the copy of the data, so it is the floor replab's repair can approach.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402
from bench_check import load_events  # noqa: E402

from replab import Cluster
from replab.faults import nemesis  # noqa: E402
from replab.faults.repair import repair  # noqa: E402


def _bare_pipeline(cluster: Cluster, node: str) -> float:
    """mariadb-dump of the primary piped into the replica (credentials from the 0600 option file)."""
    creds = f"--defaults-extra-file={cluster.credentials_file}"
    replica = cluster.node(node)
    cluster.sql(node, cluster.flavor.stop_replica())
    t0 = time.monotonic()
    dump = subprocess.Popen(["mariadb-dump", creds, f"--socket={cluster.primary.socket}", "--single-transaction",
                             "--gtid", "--master-data=2", "--databases", cluster.database, "replab"],
                            stdout=subprocess.PIPE)
    load = subprocess.run(["mariadb", creds, f"--socket={replica.socket}",
                           "--init-command=SET SESSION sql_log_bin=0"], stdin=dump.stdout, capture_output=True)
    dump.wait()
    elapsed = time.monotonic() - t0
    cluster.sql(node, cluster.flavor.start_replica())
    if dump.returncode or load.returncode:
        raise RuntimeError(f"bare pipeline failed: {load.stderr.decode()[-400:]}")
    return elapsed


def run(quick: bool = False) -> list[dict]:
    rows = 20_000 if quick else 500_000
    with bench_cluster(3) as cluster:
        load_events(cluster, rows)
        nemesis.drift(cluster, "mysql-s1", drop_column="events.name")
        report = repair(cluster, "mysql-s1", method="dump", timeout=600)
        if not report.verified:
            raise RuntimeError(f"repair did not verify: {report.to_dict()}")
        bare = _bare_pipeline(cluster, "mysql-s2")
    return [result(f"rebuild a broken replica of {rows:,} rows (dump, reattach, catch up, verify)", report.seconds,
                   "mariadb-dump | mariadb (copy only)", bare, "s", False,
                   "within 2x of the bare copy, which neither reattaches nor verifies")]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
