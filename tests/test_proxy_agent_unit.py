"""The health agent's answers from readings (no server): the rules HAProxy's pools follow."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from replab.engines.proxy_agent import Agent


def _agent(tmp_path: Path) -> Agent:
    return Agent({"port": 0, "credentials": str(tmp_path / "x.cnf"), "dir": str(tmp_path), "fresh": 0.3,
                  "replica_status_sql": "SHOW REPLICA STATUS", "nodes": {"mysql-m": {}, "mysql-s1": {}}})


def _read(agent: Agent, name: str, read_only: bool, running: bool) -> None:
    r = agent.readings[name]
    r.read_only, r.io, r.sql, r.replica, r.error = read_only, running, running, running, ""
    r.at, r.since = time.monotonic(), time.time()


def test_a_fresh_writable_reading_of_a_node_no_longer_designated_is_down(tmp_path: Path) -> None:
    # right after a failover the dead old primary's last reading (< interval old) still says "writable":
    # only the designation written by the role change keeps it out of the write pool
    agent = _agent(tmp_path)
    _read(agent, "mysql-m", read_only=False, running=False)
    _read(agent, "mysql-s1", read_only=False, running=False)
    assert agent.answer("write mysql-m") == "up\n"  # no designation yet: the readings decide
    (tmp_path / "writer").write_text("mysql-s1\n")
    assert agent.answer("write mysql-m") == "down #not the primary (mysql-s1 is)\n"
    _read(agent, "mysql-s1", read_only=False, running=False)  # its first reading after the role change
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


def test_a_reading_from_before_the_role_change_is_not_trusted(tmp_path: Path) -> None:
    # the CI failure: replab promoted mysql-s1 and moved the write endpoint to it, then the next check
    # answered from mysql-s1's reading taken before the promotion ("read_only=1") and emptied the write pool
    agent = _agent(tmp_path)
    _read(agent, "mysql-s1", read_only=True, running=True)  # before the promotion
    time.sleep(0.02)
    (tmp_path / "writer").write_text("mysql-s1\n")
    t0 = time.monotonic()
    assert agent.answer("write mysql-s1") == "down #no reading since the role change\n"
    assert 0.25 < time.monotonic() - t0 < 1.0  # it waited `fresh` seconds for a new reading
    assert agent.answer("read mysql-s1") == "down #no reading since the role change\n"  # not "up" either

    # a reading that arrives while the answer waits is the one used
    threading.Timer(0.05, _read, (agent, "mysql-s1", False, False)).start()
    assert agent.answer("write mysql-s1") == "up\n"
    assert agent.answer("read mysql-s1") == "down #writable: not a replica\n"
