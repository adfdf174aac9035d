"""replab check vs pt-table-checksum on the same 3-node cluster and the same events table.

pt-table-checksum logs in with the cluster's credentials option file (``F=`` in its DSNs, mode 0600),
never with a password on its command line. It finds the replicas through a DSN table
(``--recursion-method dsn=...``), created on the primary for the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster
from replab.verify import checker, ledger  # noqa: E402


def load_events(cluster: Cluster, rows: int) -> None:
    """``rows`` feed-shaped rows, written on the primary and replicated (MariaDB's sequence engine)."""
    step = 200_000
    with cluster.connect(cluster.primary.name, database=cluster.database, read_timeout=600) as conn, \
            conn.cursor() as cur:
        for lo in range(1, rows + 1, step):
            hi = min(rows, lo + step - 1)
            cur.execute(f"INSERT INTO events (id, name, counter, description) SELECT seq, CONCAT('some-event-', seq), "
                        f"seq, CONCAT('some-descr-', seq) FROM seq_{lo}_to_{hi}")
    path = ledger.ledger_path(cluster.home)  # the ledger a feed of these rows leaves: check verifies it too
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array("q")
    for start in range(1, rows + 1, 1000):
        arr.extend((start, min(start + 1000, rows + 1), ledger.OK))
    path.write_bytes(arr.tobytes())
    if not all(cluster.wait_caught_up(timeout=600).values()):
        raise RuntimeError("replicas did not catch up after loading")


def _pt_table_checksum(cluster: Cluster) -> float:
    cnf = cluster.credentials_file
    with cluster.connect(cluster.primary.name) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS percona")
        cur.execute("CREATE TABLE IF NOT EXISTS percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, "
                    "dsn VARCHAR(255) NOT NULL)")
        cur.execute("DELETE FROM percona.dsns")
        for r in cluster.replicas:
            cur.execute("INSERT INTO percona.dsns (dsn) VALUES (%s)", (f"h={r.host},P={r.port},F={cnf}",))
    p = cluster.primary
    argv = ["pt-table-checksum", f"h={p.host},P={p.port},F={cnf}", f"--databases={cluster.database}",
            "--tables=events", "--recursion-method=dsn=D=percona,t=dsns", "--no-check-binlog-format",
            "--no-version-check", "--replicate=percona.checksums"]
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - t0
    if out.returncode not in (0, 16) or "ERRORS" not in out.stdout:  # 16: differences found (none expected)
        raise RuntimeError(f"pt-table-checksum failed ({out.returncode}): {out.stderr[-800:]} {out.stdout[-800:]}")
    return elapsed


def run(quick: bool = False, rows: int | None = None, repeat: int | None = None) -> list[dict]:
    """Both tools ``repeat`` times, interleaved, on the same loaded cluster; the best time of each counts
    (the machine is shared: the minimum is the least disturbed run). By default at 1M and at 10M rows."""
    sizes = [rows] if rows else ([20_000] if quick else [1_000_000, 10_000_000])
    out = []
    for size in sizes:
        out += _one_size(size, repeat or (1 if quick else (3 if size <= 1_000_000 else 2)))
    return out


def _server_cpu(cluster: Cluster) -> float:
    """CPU seconds (user + system) the cluster's server processes used so far (local engine; 0 elsewhere):
    on a shared machine this moves far less than wall time."""
    total = 0.0
    for node in cluster.nodes:
        try:
            pid = int(Path(getattr(node, "pidfile", "")).read_text().strip())
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _one_size(rows: int, repeat: int) -> list[dict]:
    mine, pt, mine_cpu, pt_cpu = [], [], [], []
    with bench_cluster(3) as cluster:
        load_events(cluster, rows)
        for _ in range(repeat):
            c0, t0 = _server_cpu(cluster), time.monotonic()
            report = checker.check(cluster, wait=600)
            mine.append(time.monotonic() - t0)
            mine_cpu.append(_server_cpu(cluster) - c0)
            if not report.consistent or (report.facts.ledger or {}).get("acknowledged") != rows:
                raise RuntimeError(report.render())
            c0 = _server_cpu(cluster)
            pt.append(_pt_table_checksum(cluster))
            pt_cpu.append(_server_cpu(cluster) - c0)
    out = [result(f"check of {rows:,} rows on 3 nodes (checksums + ledger; best of {repeat})", min(mine),
                  "pt-table-checksum", min(pt), "s", False, "no slower than pt-table-checksum")]
    if min(mine_cpu) > 0 and min(pt_cpu) > 0:
        out.append(result(f"server CPU of that check (3 servers, user + system; least of {repeat})", min(mine_cpu),
                          "pt-table-checksum", min(pt_cpu), "s", False, "informative: the same 2 cores serve all"))
    return out


if __name__ == "__main__":
    import json

    size = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--rows=")), None)
    print(json.dumps(run(quick="--quick" in sys.argv, rows=size), indent=2))
