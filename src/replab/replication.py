"""Replication set-up and observation: users, schema, attaching replicas, normalized status, waits.

All statements that differ between flavors come from ``flavor.py``; this module only sequences them.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import pymysql

from . import db
from .config import quote_ident
from .errors import ReplabTimeout, ReplicationError, SqlError
from .flavor import Flavor, ReplicaStatus, merge_worker_errors

if TYPE_CHECKING:
    from .cluster import Cluster

HEARTBEAT_DB = "replab"
HEARTBEAT_TABLE = "heartbeat"
EVENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {db}.`events` (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), "
    "counter INT, description VARCHAR(255)) ENGINE=InnoDB"
)


def secure_node(conn: pymysql.connections.Connection, admin_password: str, flavor: Flavor | None = None) -> None:
    """Local-only account hygiene on a fresh node (not binlogged): one admin, no passwordless accounts."""
    if flavor is None:
        from .flavor import MariaDBFlavor

        flavor = MariaDBFlavor()
    rows = db.query(conn, flavor.root_accounts_query())
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        for row in rows:
            cur.execute("DROP USER %s@%s", (row["u"], row["h"]))
        cur.execute("DROP USER IF EXISTS ''@'localhost'")
        cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (admin_password,))
        cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (admin_password,))
        cur.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (admin_password,))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        cur.execute("SET SESSION sql_log_bin=1")


def bootstrap_primary(conn: pymysql.connections.Connection, flavor: Flavor, *, database: str,
                      repl: tuple[str, str], app: tuple[str, str], client_host: str) -> None:
    """Users, database and tables on the primary; binlogged, so replicas get them by replication."""
    dbq = quote_ident(database)
    with conn.cursor() as cur:
        # IF NOT EXISTS + ALTER: attaching servers that already exist again (external engine) must work
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (repl[0], client_host, repl[1]))
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (repl[0], client_host, repl[1]))
        cur.execute(f"GRANT {flavor.replication_grants()} ON *.* TO %s@%s", (repl[0], client_host))
        for host in dict.fromkeys((client_host, "localhost")):
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (app[0], host, app[1]))
            cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (app[0], host, app[1]))
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {dbq}.* TO %s@%s", (app[0], host))
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {dbq}")
        cur.execute(EVENTS_DDL.format(db=dbq))
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HEARTBEAT_DB}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_DB}.{HEARTBEAT_TABLE} (id INT PRIMARY KEY, "
            "ts DATETIME(6) NOT NULL, server_id INT UNSIGNED NOT NULL) ENGINE=InnoDB"
        )


def attach_replica(conn: pymysql.connections.Connection, flavor: Flavor, *, host: str, port: int,
                   repl: tuple[str, str]) -> None:
    """Point a replica at its source with GTID auto-positioning and start both threads."""
    with conn.cursor() as cur:
        cur.execute(flavor.stop_replica())
        cur.execute(flavor.change_source(host, port), {"user": repl[0], "password": repl[1]})
        cur.execute(flavor.start_replica())


def replica_status(conn: pymysql.connections.Connection, flavor: Flavor) -> ReplicaStatus | None:
    rows = db.query(conn, flavor.show_replica_status())
    status = flavor.normalize_status(rows[0] if rows else None)
    worker_sql = flavor.worker_errors_query()
    if status is not None and status.worker_error_pending and worker_sql:
        with contextlib.suppress(pymysql.MySQLError):
            status = merge_worker_errors(status, db.query(conn, worker_sql))
    return status


def executed_gtid(conn: pymysql.connections.Connection, flavor: Flavor) -> str:
    return str(db.scalar(conn, flavor.executed_gtid()) or "")


def heartbeat(conn: pymysql.connections.Connection) -> tuple[Any, Any] | None:
    """(heartbeat ts, this server's NOW(6)) or None when there is no heartbeat row."""
    try:
        rows = db.query(conn, f"SELECT ts, NOW(6) AS now FROM {HEARTBEAT_DB}.{HEARTBEAT_TABLE} WHERE id=1")
    except pymysql.MySQLError:
        return None
    if not rows:
        return None
    return rows[0]["ts"], rows[0]["now"]


def lag_ms(primary_hb: tuple[Any, Any] | None, replica_hb: tuple[Any, Any] | None,
           status: ReplicaStatus | None) -> int | None:
    """Lag in milliseconds from the heartbeat row (written every 100 ms while replab drives writes).

    Equal heartbeat values on both sides mean caught up (0); otherwise lag is the age, on the replica's
    clock, of the last heartbeat it applied. Without heartbeats, fall back to Seconds_Behind_Master.
    """
    if primary_hb and replica_hb:
        if replica_hb[0] >= primary_hb[0]:
            return 0
        return max(0, int((replica_hb[1] - replica_hb[0]).total_seconds() * 1000))
    if status and status.seconds_behind is not None:
        return status.seconds_behind * 1000
    return None


def wait_threads(cluster: Cluster, names: list[str], timeout: float = 30.0) -> None:
    """Wait until IO and SQL threads run on each named replica; explain the failure otherwise."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    last: dict[str, ReplicaStatus | None] = {}
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            with cluster.connect(name) as conn:
                st = replica_status(conn, cluster.flavor)
            last[name] = st
            if st and st.io_running and st.sql_running:
                pending.remove(name)
            elif st and (st.last_sql_errno or (st.last_io_errno and st.io_state == "No")):
                raise ReplicationError(f"{name}: replication failed: error {st.last_errno}: {st.last_error}",
                                       node=name, hint=f"run: replab diagnose {name}")
        if pending:
            time.sleep(0.02)
    if pending:
        name = pending[0]
        st = last.get(name)
        seen = f"IO={st.io_state} SQL={'Yes' if st.sql_running else 'No'} last error: {st.last_error or '-'}" \
            if st else "no replication configured"
        raise ReplabTimeout(f"{name}: replication threads not running after {timeout:.0f}s ({seen})",
                            node=name, log_tail=cluster.engine.log_tail(cluster.node(name)),
                            hint=f"run: replab status; see {cluster.node(name).errlog}")


def wait_applied(conn: pymysql.connections.Connection, flavor: Flavor, gtid: str,
                 timeout: float) -> tuple[bool, ReplicaStatus | None]:
    """Wait (at most ``timeout`` s) until the replica on ``conn`` has applied ``gtid``.

    Waits in slices of at most 1 s and ends early when replication is not configured, the SQL thread
    stopped on an error or the IO thread gave up on one (e.g. 1236, its position is gone from the
    source's binary log): such a replica will not move. Returns (applied, the last status seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        ok = flavor.wait_ok(db.scalar(conn, flavor.wait_for_gtid(), (gtid, max(0.001, min(1.0, remaining)))))
        st = replica_status(conn, flavor)
        if ok or remaining <= 0 or st is None or (not st.sql_running and st.last_sql_errno) or \
                (st.io_state == "No" and st.last_io_errno):
            return ok, st


def wait_caught_up(cluster: Cluster, timeout: float = 30.0, names: list[str] | None = None,
                   gtid: str | None = None) -> dict[str, bool]:
    """Wait until each named replica (default: all) has applied ``gtid`` (default: the primary's now).

    Returns {replica: caught_up}. Never raises for a replica that is down or broken; the caller decides.
    """
    flavor = cluster.flavor
    if gtid is None:
        with cluster.connect(cluster.primary.name) as conn:
            gtid = executed_gtid(conn, flavor)
    result: dict[str, bool] = {}
    deadline = time.monotonic() + timeout
    for name in names if names is not None else [n.name for n in cluster.replicas]:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            with cluster.connect(name, read_timeout=remaining + 5) as conn:
                result[name] = wait_applied(conn, flavor, gtid, remaining)[0]
        except (SqlError, pymysql.MySQLError):
            result[name] = False
    return result
