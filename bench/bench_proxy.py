"""The proxy's cost and its failover, measured side by side with direct connections in the same run:

- insert and point-read throughput through HAProxy's write/read endpoints against the same loop on the
  primary's / a replica's own TCP port (the proxy's overhead);
- a failover: the primary killed, ``failover`` run, and the first INSERT accepted through the write endpoint,
  against the first INSERT accepted on the new primary's own port (what the proxy adds to the outage);
- causal reads: a read's latency with and without the GTID wait, on a current replica and on one 1 s behind
  (SOURCE_DELAY; the delay has a granularity of seconds).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import bench_cluster, result  # noqa: E402

from replab.faults import failover, nemesis  # noqa: E402
from replab.servers import db  # noqa: E402
from replab.workload.reads import ReadOptions, Reads  # noqa: E402


def _conn(cluster, port: int):
    user, password = cluster.credentials(db.APP)
    return db.connect_fast(host="127.0.0.1", port=port, user=user, password=password, database=cluster.database,
                           timeout=2, read_timeout=10, multi_statements=False)


def _rate(cluster, port: int, sql: str, seconds: float, threads: int = 4) -> float:
    """Statements per second of ``threads`` loops of ``sql`` on ``port`` for ``seconds``."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(k: int) -> None:
        conn = _conn(cluster, port)
        cur = conn.cursor()
        while time.monotonic() < stop:
            cur.execute(sql)
            cur.fetchall()
            counts[k] += 1
        conn.close()

    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def _first_write(cluster, port: int, t0: float, timeout: float = 20.0) -> float:
    """Seconds from ``t0`` until an INSERT on ``port`` is acknowledged."""
    while time.monotonic() - t0 < timeout:
        try:
            conn = _conn(cluster, port)
            cur = conn.cursor()
            cur.execute("INSERT INTO events (name) VALUES ('probe')")
            conn.close()
            return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - refused, read-only, reset: not yet
            time.sleep(0.005)
    return float("inf")


def _median(fn, rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


def run(quick: bool = False) -> list[dict]:
    out = []
    seconds, rounds = (1.5, 1) if quick else (4.0, 3)
    with bench_cluster(3, proxy="haproxy") as cluster:
        p = cluster.state["proxy"]
        wport, rport = int(p["write_port"]), int(p["read_port"])
        primary, replica = cluster.node("mysql-m").port, cluster.node("mysql-s1").port
        insert = "INSERT INTO events (name, counter) VALUES ('bench', 1)"
        via = _median(lambda: _rate(cluster, wport, insert, seconds), rounds)
        direct = _median(lambda: _rate(cluster, primary, insert, seconds), rounds)
        out.append(result("single-row inserts through the proxy's write endpoint (4 connections)", via,
                          "the same loop on the primary's own port", direct, "rows/s", True,
                          "the proxy costs under 10%"))
        cluster.wait_caught_up(30)
        point = "SELECT name FROM events WHERE id = 1"
        via = _median(lambda: _rate(cluster, rport, point, seconds), rounds)
        direct = _median(lambda: _rate(cluster, replica, point, seconds), rounds)
        out.append(result("point reads through the proxy's read endpoint (4 connections, 2 replicas)", via,
                          "the same loop on one replica's own port", direct, "reads/s", True,
                          "the proxy costs under 20% (2 cores: it competes with the servers)"))
        for delay in (0, 1):
            if delay:
                cluster.set_replica_delay("mysql-s1", delay)
            lat = {}
            for causal in (False, True):
                r = Reads(cluster, ReadOptions(rate=40, read_from="mysql-s1", causal=causal, sessions=2)).start()
                time.sleep(seconds)
                res = r.stop()
                if not res.read_ms:
                    raise RuntimeError(f"no read completed: {res.line()}")
                lat[causal] = statistics.median(res.read_ms)
            out.append(result(f"a causal read's latency, replica {'current' if not delay else f'{delay} s behind'} "
                              "(write, GTID wait, read)", lat[True], "the same read without the wait (stale "
                              "when the replica lags)", lat[False], "ms", False,
                              "about the replica's lag: the wait costs what the lag is"))
    with bench_cluster(3, proxy="haproxy") as cluster:
        wport = int(cluster.state["proxy"]["write_port"])
        nemesis.kill(cluster, "mysql-m")
        t0 = time.monotonic()
        change = failover.failover(cluster)
        new_port = cluster.node(change.new_primary).port
        direct = _first_write(cluster, new_port, t0)
        via = _first_write(cluster, wport, t0)
    out.append(result("failover -> first INSERT accepted through the proxy's write endpoint", via,
                      "-> first INSERT accepted on the new primary's own port", direct, "s", False,
                      f"under 0.5 s more than direct; replab's failover step: {change.to_writable_s:.3f}s"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
