"""Link shaping: is a requested delay what a client measures, is a requested rate what a bulk transfer
gets, and what does the unshaped relay cost (round trip, and the replica's fetch of a binary-log backlog)?

Yardsticks, on the same cluster in the same run: the primary's own port (a ``SELECT 1`` straight to it), and a
second replica pointed straight at the primary (no relay) fetching the same backlog. Round trips are medians
of interleaved samples (direct, link, direct, ...), so other work on the machine falls on both alike.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402

from replab import Cluster  # noqa: E402
from replab.cluster import replication  # noqa: E402
from replab.faults import nemesis  # noqa: E402
from replab.servers import db  # noqa: E402
from replab.workload.feed import feed  # noqa: E402


def _conns(cluster: Cluster, link: str) -> tuple[object, object]:
    user, password = cluster.credentials(db.APP)
    p = cluster.primary
    direct = db.connect(host=p.host, port=p.port, user=user, password=password, read_timeout=60)
    via = db.connect(host="127.0.0.1", port=int(cluster.node(link).extra["relay_port"]), user=user,
                     password=password, read_timeout=60, timeout=10)
    return direct, via


def _once(conn: object, statement: str) -> float:
    t0 = time.perf_counter()
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(statement)
        cur.fetchall()
    return (time.perf_counter() - t0) * 1000


def added_ms(cluster: Cluster, link: str, samples: int, statement: str = "SELECT 1") -> float:
    direct, via = _conns(cluster, link)
    try:
        d, v = [], []
        for _ in range(samples):
            d.append(_once(direct, statement))
            v.append(_once(via, statement))
        return statistics.median(v) - statistics.median(d)
    finally:
        direct.close()  # type: ignore[attr-defined]
        via.close()  # type: ignore[attr-defined]


def _fetch_seconds(cluster: Cluster, node: str, file: str, pos: int) -> float:
    """Start only ``node``'s IO thread and time it until it has read the primary's binary log up to ``pos``."""
    flavor = cluster.flavor
    with cluster.connect(node) as conn:
        t0 = time.perf_counter()
        db.query(conn, f"{flavor.start_replica()} IO_THREAD")
        while True:
            st = replication.replica_status(conn, flavor)
            if st and st.source_log_file == file and (st.read_source_log_pos or 0) >= pos:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > 300:
                raise RuntimeError(f"{node} did not fetch the backlog in 300 s")
            time.sleep(0.005)


def _backlog_fetch(cluster: Cluster, rows: int) -> tuple[float, float, float]:
    """(MB of binary log, seconds through the relay, seconds direct): the same backlog fetched by mysql-s1
    through its link relay and by mysql-s2 pointed straight at the primary, one after the other."""
    primary = cluster.primary
    cluster.attach("mysql-s2", (primary.host, primary.port))  # no relay: the yardstick
    assert all(cluster.wait_caught_up(60).values())
    for node in ("mysql-s1", "mysql-s2"):
        cluster.sql(node, cluster.flavor.stop_replica())
    start = cluster.sql(primary.name, cluster.flavor.show_source_status())
    pos0 = int(start.rows[0][start.columns.index("Position")])
    feed(cluster, rate=0, rows=rows, threads=2, batch=500)
    end = cluster.sql(primary.name, cluster.flavor.show_source_status())
    file, pos = str(end.rows[0][end.columns.index("File")]), int(end.rows[0][end.columns.index("Position")])
    via = _fetch_seconds(cluster, "mysql-s1", file, pos)
    direct = _fetch_seconds(cluster, "mysql-s2", file, pos)
    return (pos - pos0) / 1e6, via, direct


def _backlog_rounds(cluster: Cluster, rows: int, rounds: int) -> tuple[float, float, float]:
    """``_backlog_fetch`` a few times (replicas caught up in between); the median of each figure."""
    got = []
    for _ in range(rounds):
        got.append(_backlog_fetch(cluster, rows))
        for node in ("mysql-s1", "mysql-s2"):
            cluster.sql(node, cluster.flavor.start_replica())
        assert all(cluster.wait_caught_up(300).values())
    return tuple(statistics.median(g[i] for g in got) for i in range(3))  # type: ignore[return-value]


def run(quick: bool = False) -> list[dict]:
    out = []
    with bench_cluster(3) as cluster:
        plain = statistics.median(added_ms(cluster, "mysql-s1", 500 if not quick else 100) for _ in range(5))
        out.append(result("unshaped link: round trip added to SELECT 1 (median of interleaved samples)", plain,
                          "target", 0.2, "ms", False, "< 0.2 ms"))
        for each_way in (5, 20, 40):
            nemesis.link(cluster, "mysql-s1", delay=f"{each_way}ms")
            got = statistics.median(added_ms(cluster, "mysql-s1", 10 if not quick else 5) for _ in range(3))
            want = 2.0 * each_way
            out.append(result(f"link --delay {each_way}ms (both ways): round trip added to SELECT 1", got,
                              "requested", want, "ms", False,
                              f"{want:g} ms ± {max(2.0, 0.1 * want):g} ms"))
        nemesis.link(cluster, "mysql-s1", clear=True)
        nemesis.link(cluster, "mysql-s1", rate="16mbit", direction="to-replica")
        size = 2_000_000
        seconds = added_ms(cluster, "mysql-s1", 3, f"SELECT REPEAT('x', {size})") / 1000
        out.append(result("link --rate 16mbit: a 2 MB result through it", size * 8 / seconds / 1e6, "requested",
                          16.0, "mbit/s", True, "16 ± 1.6 mbit/s"))
        nemesis.link(cluster, "mysql-s1", clear=True)
        mb, via, direct = _backlog_rounds(cluster, 20_000 if quick else 100_000, 1 if quick else 3)
        out.append(result(f"replica IO thread fetching a {mb:.0f} MB binary-log backlog through its unshaped link",
                          mb / via, "the same fetch straight from the primary (no relay)", mb / direct, "MB/s",
                          True, ">= 0.95x direct"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
