"""Switchover write pause and failover time (primary killed -> new primary accepting writes), replab vs the
same steps by hand, measured by one client that writes as fast as it can and follows the primary.

By hand = the minimal SQL an operator types: on the primary ``SET GLOBAL read_only=1``, on the replica wait
for the primary's GTID, ``STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0`` (switchover); after a kill
only the last three (failover; no choice of candidate, no repointing of the other replica, no fencing of
other sessions, no role bookkeeping). The figure is the longest gap between two acknowledged writes.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster
from replab.cluster import replication, roles  # noqa: E402
from replab.core.errors import SqlError  # noqa: E402
from replab.faults import failover, nemesis
from replab.servers import db


class Probe:
    """Single-row inserts into mydb.events as the application user, to whatever ``target()`` names."""

    def __init__(self, cluster: Cluster, target: Callable[[], str | None]) -> None:
        self.cluster, self.target = cluster, target
        self.acks: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._id = 10_000_000

    def _loop(self) -> None:
        user, password = self.cluster.credentials(db.APP)
        conn, at = None, None
        while not self._stop.is_set():
            name = self.target()
            try:
                if conn is None or name != at:
                    if conn is not None:
                        conn.close()
                    conn, at = None, name
                    if name is None:
                        time.sleep(0.001)
                        continue
                    node = self.cluster.node(name)
                    conn = db.connect(host=node.host, port=node.port, user=user, password=password,
                                      database="mydb", timeout=1, read_timeout=5)
                self._id += 1
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO events (id, name, counter) VALUES (%s, 'probe', 0)", (self._id,))
                self.acks.append(time.monotonic())
            except (pymysql.MySQLError, SqlError, OSError):
                conn = None
                time.sleep(0.001)

    def start(self) -> Probe:
        self._thread.start()
        time.sleep(0.5)
        return self

    def gap_after(self, t0: float) -> float:
        """Seconds from ``t0`` (or the last ack before it) to the first ack after the longest silence."""
        self._stop.set()
        self._thread.join(10)
        acks = [a for a in self.acks if a >= t0 - 1]
        return max((b - a for a, b in zip(acks, acks[1:], strict=False)), default=float("nan"))


def _by_hand_switchover(cluster: Cluster, old: str, new: str) -> None:
    f = cluster.flavor
    cluster.sql(old, "SET GLOBAL read_only = 1")
    gtid = str(cluster.sql(old, f.executed_gtid()).rows[0][0])
    with cluster.connect(new) as conn:
        replication.wait_applied(conn, f, gtid, 30)
    for statement in (f.stop_replica(), f.reset_replica(), "SET GLOBAL read_only = 0"):
        cluster.sql(new, statement)


def _writable_name(cluster: Cluster) -> str | None:
    """The primary that accepts writes now (None during a role change), read once."""
    node = roles.writable_primary(cluster, reload=False)
    return node.name if node else None


def run(quick: bool = False) -> list[dict]:
    out = []
    with bench_cluster(3) as cluster:
        probe = Probe(cluster, lambda: _writable_name(cluster)).start()
        t0 = time.monotonic()
        change = failover.switchover(cluster, "mysql-s1")
        time.sleep(0.5)
        replab_pause = probe.gap_after(t0)
    with bench_cluster(3) as cluster:
        where = {"node": "mysql-m"}
        probe = Probe(cluster, lambda: where["node"]).start()
        t0 = time.monotonic()
        _by_hand_switchover(cluster, "mysql-m", "mysql-s1")
        where["node"] = "mysql-s1"
        time.sleep(0.5)
        hand_pause = probe.gap_after(t0)
    out.append(result("switchover write pause (longest gap between acknowledged writes)", replab_pause,
                      "read_only + GTID wait + promote by hand", hand_pause, "s", False,
                      f"under 1 s; replab's own step: {change.write_pause_s:.3f}s fenced -> writable"))
    with bench_cluster(3) as cluster:
        probe = Probe(cluster, lambda: _writable_name(cluster)).start()
        t0 = time.monotonic()
        nemesis.kill(cluster, "mysql-m")
        change = failover.failover(cluster)
        time.sleep(0.5)
        replab_failover = probe.gap_after(t0)
    with bench_cluster(3) as cluster:
        where = {"node": "mysql-m"}
        probe = Probe(cluster, lambda: where["node"]).start()
        t0 = time.monotonic()
        nemesis.kill(cluster, "mysql-m")
        f = cluster.flavor
        for statement in (f.stop_replica(), f.reset_replica(), "SET GLOBAL read_only = 0"):
            cluster.sql("mysql-s1", statement)
        where["node"] = "mysql-s1"
        time.sleep(0.5)
        hand_failover = probe.gap_after(t0)
    out.append(result("failover: primary killed -> new primary accepting writes", replab_failover,
                      "promote by hand (no candidate choice, no repointing)", hand_failover, "s", False,
                      f"under 2 s; replab's own step: {change.to_writable_s:.3f}s"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
