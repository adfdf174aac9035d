"""The link relay never blocks: a paused replica that stops reading does not freeze its relay, so cutting
and healing that link still work at once (the relay used to block in sendall inside its loop)."""

from __future__ import annotations

import time

from replab import checker, nemesis, relay
from replab.workload import feed


def test_partition_and_heal_a_paused_replicas_link(replab_cluster):
    cluster = replab_cluster
    nemesis.pause(cluster, "mysql-s1")
    try:
        # enough binlog toward the frozen replica to fill the kernel's socket buffers and the relay's queue
        result = feed(cluster, rate=0, rows=150000, threads=2, batch=500)
        assert result.ok == 150000
        t0 = time.monotonic()
        nemesis.partition(cluster, "mysql-s1")
        assert relay.mode(cluster.home, "mysql-s1") == relay.BLOCKED
        nemesis.heal(cluster, "mysql-s1")
        assert relay.mode(cluster.home, "mysql-s1") == relay.OPEN
        assert time.monotonic() - t0 < 3.0  # the relay answered at once, it was not stuck writing
    finally:
        nemesis.resume(cluster, "mysql-s1")
    assert cluster.wait_caught_up(60) == {"mysql-s1": True, "mysql-s2": True}
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()


def test_relay_process_is_found_by_its_directory_not_its_name(replab_cluster):
    cluster = replab_cluster
    pid = relay.pid(cluster.home, "mysql-s1")
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        cmd = fh.read().replace(b"\0", b" ").decode()
    assert f"replab/relayd.py {cluster.home / 'relay'} mysql-s1" in cmd
    assert relay.pid(cluster.home, "mysql-s9") is None
