"""Integration: the local engine with a real MySQL ``mysqld``. Skipped (with the reason) when the only
``mysqld`` on PATH is MariaDB's, or there is none; the recorded-output tests cover the dialect then."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from replab.flavor import MySQLFlavor, flavor_from_version_string


def _real_mysqld() -> tuple[str | None, str]:
    path = os.environ.get("REPLAB_MYSQLD") or shutil.which("mysqld", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not path:
        return None, "no mysqld on PATH"
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
    cluster = replab_cluster_factory(nodes=2, server_binary=MYSQLD)
    cluster.sql("mysql-s1", "SET SESSION sql_log_bin=0")
    cluster.sql("mysql-s1", "ALTER TABLE mydb.events DROP COLUMN description")
    cluster.sql("mysql-m", "INSERT INTO mydb.events (name, counter, description) VALUES ('e', 1, 'd')")
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = {s.name: s for s in cluster.status()}["mysql-s1"]
        if st.last_errno:
            break
        time.sleep(0.2)
    assert st.last_errno and "Coordinator stopped" not in (st.last_error or "")
