"""The health agent's answers from readings (no server): the rules HAProxy's pools follow."""

from __future__ import annotations

import time
from pathlib import Path

from replab.engines.proxy_agent import Agent


def _agent(tmp_path: Path) -> Agent:
    return Agent({"port": 0, "credentials": str(tmp_path / "x.cnf"), "dir": str(tmp_path),
                  "replica_status_sql": "SHOW REPLICA STATUS", "nodes": {"mysql-m": {}, "mysql-s1": {}}})


def _read(agent: Agent, name: str, read_only: bool, running: bool) -> None:
    r = agent.readings[name]
    r.read_only, r.io, r.sql, r.replica, r.error, r.at = read_only, running, running, running, "", time.monotonic()


def test_a_fresh_writable_reading_of_a_node_no_longer_designated_is_down(tmp_path: Path) -> None:
    # right after a failover the dead old primary's last reading (< interval old) still says "writable":
    # only the designation written by the role change keeps it out of the write pool
    agent = _agent(tmp_path)
    _read(agent, "mysql-m", read_only=False, running=False)
    _read(agent, "mysql-s1", read_only=False, running=False)
    assert agent.answer("write mysql-m") == "up\n"  # no designation yet: the readings decide
    (tmp_path / "writer").write_text("mysql-s1\n")
    assert agent.answer("write mysql-m") == "down #not the primary (mysql-s1 is)\n"
    assert agent.answer("write mysql-s1") == "up\n"


def test_read_pool_rules_and_stale_readings(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    _read(agent, "mysql-s1", read_only=True, running=True)
    assert agent.answer("read mysql-s1") == "up\n"
    assert agent.answer("write mysql-s1").startswith("down #")
    agent.readings["mysql-s1"].sql = False
    assert agent.answer("read mysql-s1") == "down #replication stopped (IO Yes, SQL No)\n"
    agent.readings["mysql-s1"].at -= 10  # older than `stale`: a frozen server
    assert agent.answer("read mysql-s1").startswith("down #")
    assert agent.answer("bogus") == "down #unknown request\n"
