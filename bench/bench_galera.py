"""Galera: `replab up --topology galera` (3 nodes Synced, accounts and schema on all) vs a hand-written shell
script doing the same the documented way (bench/shell_galera.sh: --wsrep-new-cluster, then two joiners by
mariabackup SST); and insert throughput of the same feed (one writer, 4 threads, single-row inserts, ledger on)
on a Galera cluster vs on the asynchronous star, both on the system's MariaDB, in this run."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from _common import bench_cluster, result
from bench_up import _ours, _row, _script

from replab.workload.feed import FeedGroup, FeedOptions

HERE = Path(__file__).resolve().parent


def _throughput(topology: str, seconds: float, rounds: int) -> float:
    rates = []
    with bench_cluster(topology=topology) as cluster:
        for _ in range(rounds):
            targets = [("mysql-m", cluster.writer_table("mysql-m"))] if topology != "star" else [(None, "events")]
            res = FeedGroup(cluster, FeedOptions(duration=seconds, threads=4), targets).start().wait(seconds + 60)
            rates.append(res.ok / res.elapsed)
    return statistics.median(rates)


def run(quick: bool = False) -> list[dict]:
    rounds = 2 if quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-galera-") as tmp:
        env = dict(os.environ, REPLAB_HOME=f"{tmp}/lab")
        sh = ["bash", str(HERE / "shell_galera.sh"), f"{tmp}/sh"]
        rows.append(_row("up --topology galera: 3 nodes Synced", _ours(env, ["--topology", "galera"], rounds),
                         _script([*sh, "up"], [*sh, "down"], max(1, rounds - 1)),
                         "hand-written shell script (bench/shell_galera.sh: new cluster + 2 SST joiners)",
                         "faster than the script (no state transfer)"))
    seconds = 3.0 if quick else 8.0
    galera, star = _throughput("galera", seconds, rounds), _throughput("star", seconds, rounds)
    rows.append(result("feed into a Galera cluster (mysql-m, 4 threads, single-row inserts)", galera,
                       "the same feed into the asynchronous star", star, "rows/s", True,
                       "measured: the cost of certification + group commit over 3 nodes"))
    return rows
