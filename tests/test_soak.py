"""Soak: many kill -9 and partition cycles under load; after every cycle the ledger must show zero
acknowledged writes lost and zero duplicated on every node. ``make soak`` runs the full counts
(``pytest -m slow``); a few cycles of the same routine run in the normal suite (test_faults.py)."""

from __future__ import annotations

import time

import pytest

from replab import Cluster
from replab.faults import nemesis
from replab.verify import checker
from replab.workload.feed import Feeder


def _verify(cluster: Cluster, what: str) -> None:
    report = checker.check(cluster, wait=60)
    ledger = report.to_dict().get("ledger") or {}
    lost = {n: c for n, c in (ledger.get("missing") or {}).items() if c}
    dup = {n: c for n, c in (ledger.get("unexpected") or {}).items() if c}
    assert not lost and not dup, f"after {what}: lost {lost}, duplicated {dup}\n{report.render()}"
    assert report.consistent, f"after {what}:\n{report.render()}"


def soak(cluster: Cluster, replica_kills: int, partitions: int, primary_kills: int, rate: float = 300) -> None:
    """Run the cycles under a feed; check the ledger after each one."""
    replicas = [r.name for r in cluster.replicas]
    feeder = Feeder(cluster, rate=rate, threads=2).start()
    try:
        for i in range(replica_kills):
            name = replicas[i % len(replicas)]
            nemesis.kill(cluster, name)
            time.sleep(0.3)
            assert "caught up" in nemesis.start(cluster, name)
            _verify(cluster, f"replica kill -9 #{i + 1} ({name})")
        for i in range(partitions):
            name = replicas[i % len(replicas)]
            nemesis.partition(cluster, name)
            time.sleep(0.5)
            nemesis.heal(cluster, name)
            _verify(cluster, f"partition/heal #{i + 1} ({name})")
        for i in range(primary_kills):
            nemesis.kill(cluster, cluster.primary.name)
            time.sleep(0.3)
            nemesis.start(cluster, cluster.primary.name)
            time.sleep(0.5)
            _verify(cluster, f"primary kill -9 #{i + 1}")
    finally:
        result = feeder.stop()
    assert result.ok > 0
    _verify(cluster, "the end of the soak")


@pytest.mark.slow
def test_soak_full(replab_cluster):
    """The counts of the issue: 20 replica kill -9, 10 partition/heal, 5 primary kill -9 / restart."""
    soak(replab_cluster, replica_kills=20, partitions=10, primary_kills=5)
