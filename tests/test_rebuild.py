"""The fastest rebuild each server has, on real servers: MySQL 9.7's clone plugin and MariaDB's
mariadb-backup streamed from the primary into the replica's data dir, each under a feed and followed by
``check``; ``repair`` picks by size and says what it chose, ``--method`` overrides."""

from __future__ import annotations

import pytest
from conftest import run_cli

from replab.faults import repair as repair_mod
from replab.verify import checker
from replab.workload.feed import Feeder

PHYSICAL = {"mariadb-10.11": "backup", "mysql-9.7": "clone"}


def _break(cluster, node: str) -> None:
    with cluster.connect(node, database="mydb") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DELETE FROM events WHERE id <= 50")
        conn.commit()


@pytest.mark.parametrize("server", ["mariadb-10.11", "mysql-9.7"], indirect=True)
def test_physical_rebuild_under_a_feed_then_check(matrix_cluster, server, monkeypatch):
    cluster = matrix_cluster
    Feeder(cluster, rows=3000, rate=0, threads=2).start().wait(60)
    _break(cluster, "mysql-s1")
    assert not checker.check(cluster, wait=20).consistent
    monkeypatch.setattr(repair_mod, "DUMP_BELOW", 1)  # any data counts as big: auto takes the physical copy
    feeder = Feeder(cluster, rate=100, duration=60, threads=1).start()
    try:
        report = repair_mod.repair(cluster, "mysql-s1")
        assert report.method == PHYSICAL[server], report.steps
        assert report.steps[0].startswith(f"mysql-s1: rebuilding by {PHYSICAL[server]}: ")
        assert report.verified, report.to_dict()
    finally:
        feeder.stop()
    final = checker.check(cluster, wait=30)
    assert final.consistent, final.render()


@pytest.mark.parametrize("server", ["mariadb-10.11", "mysql-9.7"], indirect=True)
def test_repair_picks_dump_for_small_data_and_method_overrides(matrix_cluster, server):
    cluster = matrix_cluster
    Feeder(cluster, rows=500, rate=0).start().wait(60)
    _break(cluster, "mysql-s2")
    r = run_cli("repair", "mysql-s2", home=cluster.home, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "rebuilding by dump:" in r.stderr and "a dump (below 64 MB)" in r.stderr
    assert "rebuilt from dump" in r.stdout
    other = "clone" if server.startswith("mariadb") else "backup"
    r = run_cli("repair", "mysql-s2", "--method", other, home=cluster.home)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    _break(cluster, "mysql-s2")
    r = run_cli("repair", "mysql-s2", "--method", PHYSICAL[server], home=cluster.home, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"rebuilt from {PHYSICAL[server]}" in r.stdout
    assert checker.check(cluster, wait=30).consistent
