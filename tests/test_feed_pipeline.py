"""Pipelined single-row feed (--rate 0): each INSERT is its own transaction with its own outcome."""

from __future__ import annotations

import time

from replab.verify import checker, ledger
from replab.workload.feed import PIPELINE_DEPTH, Feeder


def test_error_mid_packet_is_recorded_per_statement(replab_cluster):
    cluster = replab_cluster
    # A trigger refuses every id ending in 3: inside a packet of PIPELINE_DEPTH statements, the ones before
    # it commit, it fails, and the server never runs the ones after it.
    cluster.sql("mysql-m", "CREATE TRIGGER mydb.refuse BEFORE INSERT ON mydb.events FOR EACH ROW "
                "IF NEW.id % 10 = 3 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF")
    result = Feeder(cluster, rate=0, rows=200, threads=2).start().wait(60)
    assert PIPELINE_DEPTH > 1
    assert result.failed > 0 and result.ok > 0 and result.unknown == 0
    assert result.ok + result.failed == 200
    on_primary = {row[0] for row in cluster.sql("mysql-m", "SELECT id FROM mydb.events").rows}
    assert len(on_primary) == result.ok
    runs = list(ledger.read_runs(ledger.ledger_path(cluster.home)))
    ok_ids = {i for r in runs if r.outcome == ledger.OK for i in range(r.start, r.end)}
    assert ok_ids == on_primary
    assert not any(i % 10 == 3 for i in ok_ids)
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()


def test_feed_reaches_a_local_primary_through_its_unix_socket(replab_cluster):
    """On the local engine the feed connects the way sysbench does in the bench, by the server's socket
    (cheaper per statement than loopback TCP); the server sees those sessions as coming from localhost."""
    cluster = replab_cluster
    feeder = Feeder(cluster, rate=0, duration=30, threads=3).start()
    try:
        hosts: list[str] = []
        for _ in range(100):
            hosts = [r[0] for r in cluster.sql("mysql-m", "SELECT HOST FROM information_schema.PROCESSLIST "
                                                           "WHERE USER = 'replab_app'").rows]
            if len(hosts) == 3:
                break
            time.sleep(0.05)
        assert hosts == ["localhost"] * 3, hosts
    finally:
        result = feeder.stop()
    assert result.ok > 0 and result.errors == 0
