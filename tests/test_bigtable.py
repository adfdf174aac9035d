"""The live view and the final counts on a table big enough that one ``COUNT(*)`` takes longer than the
sampler's read timeout (a few MB of buffer pool, a few million rows), on MariaDB and MySQL.

Before: the sampler's first exact count timed out, every node showed "not answering", the count was sent
again at every tick while the earlier scans still ran (they piled up on the servers), and the final
``mysql-X count:`` lines said OUT for running nodes."""

from __future__ import annotations

import threading
import time

import pytest
from bigtable import fill_events, shrink_buffer_pools, small_server_config
from conftest import run_cli

from replab.engines.base import UNREACHABLE
from replab.runs.timeline import DEFAULT_TIMEOUT, Sampler
from replab.workload.feed import Feeder, sample_nodes

ROWS = 2_000_000
ROWS_BY_SERVER = {"mysql-9.7": 4_000_000}  # MySQL scans faster: more rows to outlast the timeout


@pytest.fixture
def big(replab_cluster_factory, server, tmp_path):
    cluster = replab_cluster_factory(server=server, config_file=small_server_config(tmp_path, server))
    cluster.filled_rows = ROWS_BY_SERVER.get(server, ROWS)
    fill_events(cluster, cluster.filled_rows, step=250_000)
    shrink_buffer_pools(cluster)
    t0 = time.monotonic()
    cluster.sql(cluster.primary.name, "SELECT COUNT(*) FROM mydb.events")
    took = time.monotonic() - t0
    assert took > DEFAULT_TIMEOUT, f"COUNT(*) took {took:.2f} s: the table is too small to prove the point"
    return cluster


def _scans(cluster, name: str) -> list[str]:
    """The counts of the events table running on ``name`` now (their statements)."""
    with cluster.connect(name, timeout=2, read_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT INFO FROM information_schema.PROCESSLIST "
                    "WHERE INFO LIKE 'SELECT COUNT(*) FROM%events%' AND ID <> CONNECTION_ID()")
        return [str(r[0]) for r in cur.fetchall()]


def test_counts_on_a_big_table(big):
    """One filled table per server for both halves: the live view, then the final counts."""
    _live_view_counts_once_and_is_exact(big)
    _final_counts_exact_and_out_only_when_silent(big)


def _live_view_counts_once_and_is_exact(cluster):
    most = dict.fromkeys((n.name for n in cluster.nodes), 0)
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # how many counts each server runs at once, every 0.1 s, and what they are
        while not stop.wait(0.1):
            for n in cluster.nodes:
                try:
                    scans = _scans(cluster, n.name)
                except Exception:  # noqa: BLE001 - one missed look is no evidence either way
                    continue
                most[n.name] = max(most[n.name], len(scans))
                seen.extend(scans)

    watcher = threading.Thread(target=watch, daemon=True)
    sampler = Sampler(cluster, interval=0.25, settle=1.0).start()
    watcher.start()
    feeder = Feeder(cluster, rate=200, duration=12, threads=2).start()
    try:
        feeder.wait()
        assert all(cluster.wait_caught_up(timeout=30).values())
        deadline = time.monotonic() + 300  # the base counts are paced (a tenth of a core): wait for them
        while time.monotonic() < deadline and any(s is None or s.rows is None for s in sampler.frame().values()):
            time.sleep(0.5)
        time.sleep(1.5)  # two settle periods: every row is counted again by the sampler
        frame = sampler.frame()
    finally:
        stop.set()
        sampler.stop()
        watcher.join()
    samples = sampler.timeline.samples
    assert not [s for s in samples if s.state == UNREACHABLE], "a running node was shown not answering"
    assert any(s.counting for s in samples), "the big table's count should have been under way for a while"
    assert max(most.values()) == 1, f"scans at once per node: {most}"
    # the base count is a sum of primary-key ranges, never one scan of the whole table
    assert seen and all(" WHERE id > " in q and " AND id <= " in q for q in seen), sorted(set(seen))[:5]
    ranges = {name: c.base.ranges for name, c in sampler._counters.items()}
    assert min(ranges.values()) > 1, ranges
    exact = {s.name: s.rows for s in sample_nodes(cluster)}
    assert exact["mysql-m"] == cluster.filled_rows + feeder.result.ok
    assert {n: s.rows for n, s in frame.items() if s is not None} == exact


def _final_counts_exact_and_out_only_when_silent(cluster):
    before = int(cluster.sql("mysql-m", "SELECT COUNT(*) FROM mydb.events").rows[0][0])
    r = run_cli("feed", "--rows", "200", "--rate", "100", home=cluster.home, timeout=180)
    assert r.returncode == 0, r.stderr
    want = before + 200
    for name in ("mysql-m", "mysql-s1", "mysql-s2"):
        assert f"{name} count: {want}" in r.stdout, r.stdout
    assert "OUT" not in r.stdout
    cluster.engine.pause(cluster.node("mysql-s2"))
    try:
        counts = {s.name: s.rows for s in sample_nodes(cluster)}
    finally:
        cluster.engine.resume(cluster.node("mysql-s2"))
    assert counts == {"mysql-m": want, "mysql-s1": want, "mysql-s2": None}
