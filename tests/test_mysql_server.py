"""Integration: the local engine with a real MySQL ``mysqld`` named by path (``--server PATH``): one on PATH,
else the catalogue's MySQL 9.7 (fetched by `make test`). Skipped, saying why, when there is neither."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import wait_for

from replab.core.errors import ReplabError
from replab.faults import nemesis
from replab.servers import catalogue as servers
from replab.servers.flavor import MySQLFlavor, flavor_from_version_string


def _real_mysqld() -> tuple[str | None, str]:
    """A MySQL mysqld given by path: $REPLAB_MYSQLD, one on PATH, else the catalogue's MySQL 9.7 binary (the
    `--server PATH` way of naming a server, which must find the catalogue entry behind that path)."""
    path = os.environ.get("REPLAB_MYSQLD") or shutil.which("mysqld", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not path or "mariadb" in subprocess.run([path, "--version"], capture_output=True, text=True,
                                               timeout=30).stdout.lower():
        try:
            path = servers.resolve("mysql-9.7").binary
        except ReplabError:
            return None, "no MySQL mysqld on PATH and mysql-9.7 not fetched (replab servers add mysql-9.7)"
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    text = (out.stdout or out.stderr).strip()
    if "mariadb" in text.lower():
        return None, f"no MySQL server on PATH: {path} is MariaDB ({text[:60]})"
    return path, text


MYSQLD, WHY = _real_mysqld()
pytestmark = pytest.mark.skipif(MYSQLD is None, reason=f"MySQL integration skipped: {WHY}")


def test_mysql_cluster_replicates(replab_cluster_factory):
    cluster = replab_cluster_factory(nodes=2, server_binary=MYSQLD)
    assert isinstance(cluster.flavor, MySQLFlavor)
    assert cluster.flavor.version == flavor_from_version_string(WHY).version
    cluster.sql("mysql-m", "INSERT INTO mydb.events (name, counter) VALUES ('e1', 1)")
    assert cluster.wait_caught_up(timeout=20) == {"mysql-s1": True}
    assert cluster.sql("mysql-s1", "SELECT name FROM mydb.events").rows == [("e1",)]
    st = {s.name: s for s in cluster.status()}["mysql-s1"]
    assert st.io_running and st.sql_running and st.last_errno == 0
    assert cluster.sql("mysql-m", "SELECT @@GLOBAL.gtid_mode").rows == [("ON",)]


def test_mysql_worker_error_is_explained(replab_cluster_factory):
    """A replica-only drop of a middle column stops MySQL's multi-threaded applier: status shows the failing
    worker's own message, not the coordinator's. (Dropping the LAST column does not stop it under ROW: the
    source's extra trailing column is ignored, as test_servers_matrix's drop-last-column scenario shows.)"""
    cluster = replab_cluster_factory(nodes=2, server_binary=MYSQLD)
    nemesis.drift(cluster, "mysql-s1", drop_column="events.name")  # local only: sql_log_bin=0
    cluster.sql("mysql-m", "INSERT INTO mydb.events (name, counter, description) VALUES ('e', 1, 'd')")
    assert wait_for(lambda: {s.name: s for s in cluster.status()}["mysql-s1"].last_errno, 20)
    st = {s.name: s for s in cluster.status()}["mysql-s1"]
    assert st.last_errno == 13146 and not st.sql_running
    assert "Coordinator stopped" not in (st.last_error or "") and "cannot be converted" in (st.last_error or "")


def test_mysql_worker_error_names_the_cause_not_the_commit_order_stop(replab_cluster_factory):
    """With replica_preserve_commit_order (on by default) the workers holding transactions queued behind the
    failing one stop too, each with 3030 ("a previous worker encountered an error"), stamped as late as or
    later than the real failure. One failing insert followed by many independent ones that would succeed
    makes that happen: status must still name 13146 (the replica-only dropped column), never the follow-on
    3030. (This fooled the seed scenario on MySQL, where heartbeat writes queue behind the failing insert.)"""
    cluster = replab_cluster_factory(nodes=2, server_binary=MYSQLD)
    cluster.sql("mysql-m", "CREATE TABLE mydb.other (id INT PRIMARY KEY, v INT)")
    assert cluster.wait_caught_up(timeout=20) == {"mysql-s1": True}
    cluster.sql("mysql-s1", "STOP REPLICA SQL_THREAD")
    nemesis.drift(cluster, "mysql-s1", drop_column="events.name")
    # a long transaction first, so the workers are busy and later ones are already running when one fails
    cluster.sql("mysql-m", "INSERT INTO mydb.other WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 "
                           "FROM n WHERE i < 999) SELECT 1000 + a.i * 1000 + b.i, 0 FROM n a, n b WHERE a.i < 200")
    cluster.sql("mysql-m", "INSERT INTO mydb.events (name, counter, description) VALUES ('e', 1, 'd')")
    with ThreadPoolExecutor(8) as pool:  # separate sessions: independent commits the applier runs in parallel
        list(pool.map(lambda i: cluster.sql("mysql-m", f"INSERT INTO mydb.other VALUES ({i}, {i})"), range(300)))
    assert int(cluster.sql("mysql-s1", "SELECT @@GLOBAL.replica_parallel_workers").rows[0][0]) > 1
    cluster.sql("mysql-s1", "START REPLICA SQL_THREAD")
    assert wait_for(lambda: {s.name: s for s in cluster.status()}["mysql-s1"].last_errno, 20)
    raw = cluster.sql("mysql-s1", "SELECT LAST_ERROR_NUMBER FROM performance_schema."
                                  "replication_applier_status_by_worker WHERE LAST_ERROR_NUMBER <> 0").rows
    st = {s.name: s for s in cluster.status()}["mysql-s1"]
    assert st.last_errno == 13146 and "cannot be converted" in (st.last_error or ""), (st.last_error, raw)
    print("worker errors:", sorted(r[0] for r in raw))


def test_mysql_diagnose_shows_the_failing_workers_own_event(replab_cluster_factory, cli):
    """Issue 23.1: with the multi-threaded applier, Exec_Source_Log_Pos can lie before transactions other
    workers already applied (here the feed's heartbeat), so the first event there is not the failing one.
    diagnose must show the transaction the worker names by GTID, with that table's columns, and explain
    MySQL's 13146 as it explains MariaDB's 1677."""
    cluster = replab_cluster_factory(server_binary=MYSQLD)
    cli("drift", "mysql-s2", "--drop-column", "events.name", home=cluster.home)
    predicted = cli("diagnose", "mysql-s2", home=cluster.home).stdout
    assert "the next row event on mydb.events stops the SQL thread with error 13146" in predicted, predicted
    assert cli("feed", "--rows", "20", home=cluster.home).returncode == 0
    assert wait_for(lambda: {s.name: s for s in cluster.status()}["mysql-s2"].last_errno, 20)
    out = cli("diagnose", "mysql-s2", home=cluster.home).stdout.splitlines()
    assert out[0] == ("mysql-s2: SQL thread stopped: error 13146: a ROW event for mydb.events carries the primary's "
                      "`name` (varchar(256(bytes))) at column 2, where this replica has `counter` (int)"), out
    events = [line for line in out if line.startswith("  event: ")]
    assert events == ["  event: INSERT INTO `mydb`.`events`", "  event: SET", "  event:   id(@1)=1",
                      "  event:   name(@2)='some-event-1'", "  event:   counter(@3)=1",
                      "  event:   description(@4)='some-descr-1'"], out
    assert "  cause: column `name` (column 2 of 4) of mydb.events exists on the primary but was dropped on this " \
           "replica only" in out
