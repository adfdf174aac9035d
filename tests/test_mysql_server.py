"""Integration: the local engine with a real MySQL ``mysqld`` named by path (``--server PATH``): one on PATH,
else the catalogue's MySQL 9.7 (fetched by `make test`). Skipped, saying why, when there is neither."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import wait_for

from replab import nemesis, servers
from replab.errors import ReplabError
from replab.flavor import MySQLFlavor, flavor_from_version_string


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
