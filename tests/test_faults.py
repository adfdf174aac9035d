"""Faults, diagnosis and repair on real MariaDB clusters (CLI and Python API)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from conftest import wait_for
from test_soak import soak

from replab import Cluster
from replab.core.errors import ConfigError, NodeStateError
from replab.engines import relay
from replab.faults import nemesis
from replab.faults.repair import repair
from replab.verify import checker
from replab.verify.causes import errant_gtids
from replab.verify.diagnose import diagnose
from replab.workload.feed import Feeder, sample_nodes


def _schema(cluster: Cluster) -> dict[str, list[tuple]]:
    q = ("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='mydb' "
         "ORDER BY 1, ORDINAL_POSITION")
    return {n.name: cluster.sql(n.name, q).rows for n in cluster.nodes}


def _insert(cluster: Cluster, n: int, start: int = 1) -> None:
    values = ", ".join(f"('n{i}', {i}, 'd{i}')" for i in range(start, start + n))
    cluster.sql("mysql-m", f"INSERT INTO mydb.events (name, counter, description) VALUES {values}")


def _count(cluster: Cluster, node: str) -> int:
    return int(cluster.sql(node, "SELECT COUNT(*) FROM mydb.events").rows[0][0])



def test_process_faults_and_bad_input_via_cli(tmp_path, cli):
    home = tmp_path / "lab"
    assert cli("up", home=home).returncode == 0
    try:
        cluster = Cluster.open(home)
        _insert(cluster, 5)
        assert all(cluster.wait_caught_up(10).values())
        before = _schema(cluster)

        def state(name: str) -> str:
            nodes = json.loads(cli("status", "--json", home=home).stdout)["nodes"]
            return next(n["state"] for n in nodes if n["name"] == name)

        r = cli("kill", "mysql-s1", home=home)
        assert r.returncode == 0 and "killed (SIGKILL" in r.stdout and state("mysql-s1") == "stopped"
        r = cli("kill", "mysql-s1", home=home)
        assert r.returncode == 2 and "already down" in r.stderr and "Traceback" not in r.stderr
        r = cli("start", "mysql-s1", home=home)
        assert r.returncode == 0 and "caught up" in r.stdout, r.stdout + r.stderr
        r = cli("pause", "mysql-s2", home=home)
        assert r.returncode == 0 and state("mysql-s2") == "paused"
        assert cli("pause", "mysql-s2", home=home).returncode == 2
        assert cli("start", "mysql-s2", home=home).returncode == 2
        assert cli("resume", "mysql-s2", home=home).returncode == 0 and state("mysql-s2") == "running"
        r = cli("resume", "mysql-s2", home=home)
        assert r.returncode == 2 and "not paused" in r.stderr
        assert cli("stop", "mysql-s2", home=home).returncode == 0 and state("mysql-s2") == "stopped"
        assert cli("stop", "mysql-s2", home=home).returncode == 2
        assert cli("start", "mysql-s2", home=home).returncode == 0
        assert cli("restart", "mysql-m", home=home).returncode == 0 and state("mysql-m") == "running"
        r = cli("heal", "mysql-s1", home=home)
        assert r.returncode == 2 and "not partitioned" in r.stderr

        bad = [
            ("kill", "mysql-s9"), ("partition", "nosuch"), ("drift", "mysql-x", "--drop-column", "events.name"),
            ("drift", "mysql-m", "--drop-column", "events.name"),
            ("drift", "mysql-s1", "--drop-column", "events.nope"),
            ("drift", "mysql-s1", "--drop-column", "nosuch.name"),
            ("drift", "mysql-s1", "--add-column", "events.name:INT"),
            ("drift", "mysql-s1", "--add-column", "events.x:INT; DROP TABLE events"),
            ("drift", "mysql-s1", "--drop-column", "events.`name`"),
            ("drift", "mysql-s1", "--drop-column", "events.na'me"),
            ("drift", "mysql-s1", "--drop-column", "events.name;"),
            ("drift", "mysql-s1", "--drop-column", "events.na me"),
            ("drift", "mysql-s1", "--delete-rows", "events:0"),
            ("drift", "mysql-s1", "--delete-rows", "events;x:3"),
            ("drift", "mysql-s1"),
            ("drift", "mysql-s1", "--drop-column", "events.name", "--delete-rows", "events:1"),
            ("repair", "mysql-m"), ("repair", "mysql-s1", "--method", "rsync"),
        ]
        for args in bad:
            r = cli(*args, home=home)
            assert r.returncode == 2, (args, r.stdout, r.stderr)
            assert "error:" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert _schema(cluster) == before
        _insert(cluster, 3, start=100)
        assert all(cluster.wait_caught_up(15).values())
        assert {_count(cluster, n.name) for n in cluster.nodes} == {8}
        assert checker.check(cluster, wait=10).consistent
        relay_pids = [relay.pid(home, r.name) for r in cluster.replicas]
        assert all(relay_pids)
    finally:
        assert cli("down", home=home).returncode == 0
    assert not home.exists()
    assert not [p for p in relay_pids if os.path.exists(f"/proc/{p}/cmdline") and
                b"relayd.py" in open(f"/proc/{p}/cmdline", "rb").read()]  # down stopped the relays


def test_acknowledged_writes_survive_kill9_of_replica_and_primary(replab_cluster):
    cluster = replab_cluster
    feeder = Feeder(cluster, rate=300, threads=2).start()
    try:
        time.sleep(0.5)
        assert "killed" in nemesis.kill(cluster, "mysql-s1")
        time.sleep(0.5)
        counts = {s.name: s.rows for s in sample_nodes(cluster)}
        assert counts["mysql-s1"] is None and counts["mysql-m"] > 0  # mysql-s1 count: OUT
        sentence = nemesis.start(cluster, "mysql-s1")
        assert "caught up" in sentence and "tx/s" in sentence
        nemesis.kill(cluster, "mysql-m")
        time.sleep(0.5)
        nemesis.start(cluster, "mysql-m")
        time.sleep(1.0)
    finally:
        result = feeder.stop()
    assert result.ok > 100
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()
    assert report.to_dict()["ledger"]["missing"] == {} or not any(report.to_dict()["ledger"]["missing"].values())


def test_partition_blocks_replication_and_heal_restores_it(replab_cluster):
    cluster = replab_cluster
    _insert(cluster, 3)
    assert all(cluster.wait_caught_up(10).values())
    sentence = nemesis.partition(cluster, "mysql-s1")
    assert "cut both ways" in sentence and nemesis.partitioned(cluster) == ["mysql-s1"]
    with pytest.raises(NodeStateError):
        nemesis.partition(cluster, "mysql-s1")
    _insert(cluster, 50, start=10)
    assert cluster.wait_caught_up(5, names=["mysql-s2"]) == {"mysql-s2": True}
    time.sleep(1.0)
    assert _count(cluster, "mysql-s1") == 3  # nothing crossed the cut link
    st = next(s for s in cluster.status() if s.name == "mysql-s1")
    assert st.state == "running"  # the server is fine; only the network is cut
    d = diagnose(cluster, "mysql-s1")[0]
    assert d.severity == "broken" and "link" in d.summary and "replab heal" in d.summary
    assert "healed" in nemesis.heal(cluster)
    assert cluster.wait_caught_up(30, names=["mysql-s1"]) == {"mysql-s1": True}
    assert _count(cluster, "mysql-s1") == 53
    # the primary can be cut off from every replica at once, and the relays survive a primary restart
    nemesis.partition(cluster, "mysql-m")
    assert sorted(nemesis.partitioned(cluster)) == ["mysql-s1", "mysql-s2"]
    nemesis.heal(cluster, "mysql-m")
    nemesis.restart(cluster, "mysql-m")
    _insert(cluster, 2, start=200)
    assert all(cluster.wait_caught_up(30).values())
    assert relay.mode(cluster.home, "mysql-s1") == relay.OPEN


def test_drop_last_and_middle_column_under_row_then_repair(replab_cluster, cli):
    cluster = replab_cluster
    _insert(cluster, 5)
    assert all(cluster.wait_caught_up(10).values())
    nemesis.drift(cluster, "mysql-s1", drop_column="events.description")
    nemesis.drift(cluster, "mysql-s2", drop_column="events.name")
    before = {d.node: d for d in diagnose(cluster)}
    assert before["mysql-s1"].severity == "drift" and "description" in before["mysql-s1"].summary
    assert any("1677" in n for n in before["mysql-s2"].next_writes)  # predicted before it happens
    _insert(cluster, 5, start=10)
    assert cluster.wait_caught_up(10, names=["mysql-s1"]) == {"mysql-s1": True}
    assert _count(cluster, "mysql-s1") == 10  # replication goes on without the last column
    assert wait_for(lambda: next(s for s in cluster.status() if s.name == "mysql-s2").last_errno == 1677)
    after = {d.node: d for d in diagnose(cluster)}
    s1, s2 = after["mysql-s1"], after["mysql-s2"]
    assert s1.severity == "drift" and any("`description`" in c and "dropped on this replica" in c for c in s1.causes)
    assert s2.severity == "broken" and s2.errno == 1677 and s2.table == "mydb.events"
    assert "`name`" in s2.summary and "`counter`" in s2.summary
    assert any("`name` (column 2 of 4)" in c for c in s2.causes)
    assert s2.statement and s2.statement.startswith("INSERT INTO mydb.events")
    assert any(e.startswith("  name(@2)=") for e in s2.event)
    status = cli("status", home=cluster.home)
    assert "diagnosis: mysql-s2: SQL thread stopped: error 1677" in " ".join(status.stdout.split())
    out = json.loads(cli("diagnose", "mysql-s2", "--json", home=cluster.home).stdout)
    assert out[0]["errno"] == 1677 and out[0]["severity"] == "broken"
    nemesis.kill(cluster, "mysql-s2")
    t0 = time.monotonic()
    sentence = nemesis.start(cluster, "mysql-s2")  # a broken replica: start says so instead of waiting 60 s
    assert "has not caught up" in sentence and "replab diagnose mysql-s2" in sentence
    assert time.monotonic() - t0 < 15
    feeder = Feeder(cluster, rate=200).start()
    try:
        report = repair(cluster, "mysql-s2", method="dump")
    finally:
        feeder.stop()
    assert report.verified, report.to_dict()
    assert diagnose(cluster, "mysql-s2")[0].severity == "ok"
    rep = checker.check(cluster, wait=20)
    assert {p.node for p in rep.problems} == {"mysql-s1"}  # only the deliberate drift remains


def test_silent_shift_is_shown(replab_cluster):
    cluster = replab_cluster
    cluster.sql("mysql-m", "CREATE TABLE mydb.t (id INT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), c VARCHAR(64))")
    assert all(cluster.wait_caught_up(10).values())
    nemesis.drift(cluster, "mysql-s1", drop_column="t.a")
    nemesis.drift(cluster, "mysql-s2", modify_column="t.b:VARCHAR(255)")  # observed: even widening stops ROW
    assert any("1677" in n for n in diagnose(cluster, "mysql-s2")[0].next_writes)
    cluster.sql("mysql-m", "INSERT INTO mydb.t VALUES (1, 'A1', 'B1', 'C1')")
    assert cluster.wait_caught_up(10, names=["mysql-s1"]) == {"mysql-s1": True}
    assert cluster.sql("mysql-s1", "SELECT * FROM mydb.t").rows == [(1, "A1", "B1")]  # observed: shifted left
    d = diagnose(cluster, "mysql-s1")[0]
    assert d.severity == "drift" and any("SILENTLY" in n for n in d.next_writes)
    assert d.shifted and "`b` = 'A1'" in d.shifted[0]
    assert wait_for(lambda: cluster.status()[2].last_errno == 1677)
    assert diagnose(cluster, "mysql-s2")[0].errno == 1677


def test_statement_format_missing_column_is_1054(replab_cluster_factory):
    cluster = replab_cluster_factory(nodes=2, binlog_format="STATEMENT")
    nemesis.drift(cluster, "mysql-s1", drop_column="events.name")
    d = diagnose(cluster, "mysql-s1")[0]
    assert any("1054" in n for n in d.next_writes)
    _insert(cluster, 1)
    assert wait_for(lambda: cluster.status()[1].last_errno == 1054)
    d = diagnose(cluster, "mysql-s1")[0]
    assert d.errno == 1054 and "`name`" in d.summary and d.statement and "INSERT INTO mydb.events" in d.statement


def test_row_drift_1032_1062_and_errant_transaction_repaired_by_backup(replab_cluster_factory):
    cluster = replab_cluster_factory(nodes=4)
    _insert(cluster, 5)
    assert all(cluster.wait_caught_up(10).values())
    nemesis.drift(cluster, "mysql-s1", delete_rows="events:2")
    nemesis.drift(cluster, "mysql-s2", insert_rows="events:1")
    nemesis.drift(cluster, "mysql-s3", add_column="events.extra:INT", binlog=True)
    pre = {d.node: d for d in diagnose(cluster)}
    assert any("1032" in n for n in pre["mysql-s1"].next_writes)
    assert any("1062" in n for n in pre["mysql-s2"].next_writes)
    assert pre["mysql-s3"].errant_gtids and pre["mysql-s3"].errant_gtids[0].startswith("0-4-")
    cluster.sql("mysql-m", "UPDATE mydb.events SET counter = counter + 1")
    _insert(cluster, 1, start=50)
    assert wait_for(lambda: [s.last_errno for s in cluster.status()[1:]] == [1032, 1062, 1950])
    post = {d.node: d for d in diagnose(cluster)}
    assert post["mysql-s1"].errno == 1032 and "no row" in post["mysql-s1"].summary
    assert post["mysql-s1"].statement == "UPDATE mydb.events SET counter = counter + 1"  # from the primary's binlog
    assert post["mysql-s1"].event[:3] == ["UPDATE `mydb`.`events`", "WHERE", "  id(@1)=1"]
    assert post["mysql-s2"].errno == 1062 and "id" in post["mysql-s2"].summary.lower()
    assert post["mysql-s3"].errno == 1950 and "errant" in post["mysql-s3"].summary
    report = repair(cluster, "mysql-s3", method="backup")
    assert report.verified, report.to_dict()
    assert diagnose(cluster, "mysql-s3")[0].severity == "ok"
    assert errant_gtids("0-1-5,0-4-2", "0-1-9", "1") == ["0-4-2"]


def test_short_soak(replab_cluster):
    soak(replab_cluster, replica_kills=3, partitions=2, primary_kills=1)


def test_drift_api_refuses_without_change(replab_cluster):
    with pytest.raises(ConfigError):
        nemesis.drift(replab_cluster, "mysql-s1")
    assert "force" in str(pytest.raises(ConfigError, nemesis.drift, replab_cluster, "mysql-m",
                                        update_rows="events:1").value.hint)


def test_what_must_be_shown_via_cli(tmp_path, cli):
    """The issue's demo, as a user types it: a feed runs while mysql-s1 is killed and started, columns are
    dropped on both replicas, mysql-s2 breaks, is diagnosed and repaired; the ledger is complete."""
    import subprocess

    from conftest import REPLAB

    home = tmp_path / "demo"
    assert cli("up", home=home).returncode == 0
    env = {**os.environ, "REPLAB_HOME": str(home)}
    try:
        # long enough that rows still come after the drifts even on a loaded machine
        feed = subprocess.Popen([*REPLAB, "feed", "--rate", "200", "--duration", "20", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert cli("kill", "mysql-s1", home=home).returncode == 0
        time.sleep(1.0)
        out = cli("sql", "mysql-s1", "SELECT 1", home=home)
        assert out.returncode == 2 and "mysql-s1 is stopped" in out.stderr
        started = cli("start", "mysql-s1", home=home)
        assert started.returncode == 0 and re.search(r"; caught up in [0-9.]+ s: \d+ transactions missed, applied "
                                                     r"at ~[0-9,]+ tx/s \(mysql-m's position when it came back\)",
                                                     started.stdout), started.stdout
        assert cli("drift", "mysql-s1", "--drop-column", "events.description", home=home).returncode == 0
        assert cli("drift", "mysql-s2", "--drop-column", "events.name", home=home).returncode == 0
        cluster = Cluster.open(home)
        assert wait_for(lambda: cluster.status()[2].last_errno == 1677, 30)  # the feed's next row breaks it
        stdout, stderr = feed.communicate(timeout=60)
        assert feed.returncode == 0, stderr
        result = json.loads(stdout)
        assert result["ok"] > 500 and result["counts"]["mysql-s1"] == result["counts"]["mysql-m"]
        diag = cli("diagnose", home=home).stdout
        flat = " ".join(diag.split())
        assert "mysql-s1: replicating, but drifted" in flat and "`description`" in flat
        assert "mysql-s2: SQL thread stopped: error 1677" in flat and "`name` (column 2 of 4)" in flat
        repaired = cli("repair", "mysql-s2", home=home)
        assert repaired.returncode == 0 and "consistent with the primary" in repaired.stdout, repaired.stderr
        plain = cli("check", home=home)
        assert plain.returncode == 1 and "diagnosis: mysql-s1: replicating, but drifted" in plain.stdout
        assert "stays missing" in " ".join(plain.stdout.split())  # what the next writes will do
        check = json.loads(cli("check", "--json", home=home).stdout)
        assert {p["node"] for p in check["problems"]} == {"mysql-s1"}  # only the column dropped on purpose
        assert check["ledger"]["acknowledged"] == result["ok"]
        assert not any(check["ledger"]["missing"].values()), check["ledger"]  # no acknowledged write lost
    finally:
        assert cli("down", home=home).returncode == 0


def test_partition_of_a_stopped_cluster_names_no_placeholder(replab_cluster_factory, server, cli):
    """Issue 23.14: `partition` on a stopped cluster said `slave_net_timeout=?s`. The value is read from any
    node that answers; when none does, the line says it could not be read."""
    cluster = replab_cluster_factory(nodes=2, server=server)
    home = cluster.home
    cli("stop", "mysql-m", home=home)
    one = cli("partition", "mysql-s1", home=home)
    assert one.returncode == 0, one.stderr
    assert "the IO thread notices after slave_net_timeout=10s; heal with: replab heal " \
           "mysql-s1" in one.stdout, one.stdout
    healed = cli("heal", home=home)  # it said 'replication resumes where it stopped' with the primary down
    assert healed.returncode == 0 and healed.stdout.strip() == (
        "healed: mysql-s1 can reach mysql-m again; replication resumes where it stopped once mysql-m runs again "
        "(replab start mysql-m)"), healed.stdout
    cli("stop", "mysql-s1", home=home)
    none = cli("partition", "mysql-s1", home=home)
    assert none.returncode == 0, none.stderr
    assert "the IO thread notices after slave_net_timeout (not read: no node answers); heal with" \
           ": replab heal mysql-s1" in none.stdout, none.stdout
    assert "?" not in none.stdout
    healed = cli("heal", "mysql-s1", home=home)
    assert healed.stdout.strip() == (
        "healed: mysql-s1 can reach mysql-m again; replication resumes where it stopped once mysql-m and mysql-s1 "
        "run again (replab start mysql-m; replab start mysql-s1)"), healed.stdout


def test_replicas_reconnect_to_a_primary_that_was_down_longer_than_ten_retries(replab_cluster_factory, server, cli):
    """MySQL gives up after SOURCE_RETRY_COUNT attempts (10 by default, 1 s apart): a primary down for 12 s was
    never reconnected to ('attempt 10/10'), while start said 'replicas reconnect to it within a few seconds'
    and diagnose 'the IO thread keeps reconnecting'. replab sets MariaDB's 100000 on both flavors."""
    cluster = replab_cluster_factory(nodes=2, server=server)
    home = cluster.home
    _insert(cluster, 5)
    assert cli("stop", "mysql-m", home=home).returncode == 0
    time.sleep(13)  # more than ten reconnect attempts
    r = cli("start", "mysql-m", home=home)
    assert r.returncode == 0 and r.stdout.strip().endswith("replicas reconnect to it within a few seconds"), r.stdout
    _insert(cluster, 5, start=6)
    assert cluster.wait_caught_up(timeout=10)["mysql-s1"], cli("status", home=home).stdout
    assert _count(cluster, "mysql-s1") == 10
