"""Replication set-up and observation: users, schema, attaching replicas, normalized status, waits.

All statements that differ between flavors come from ``flavor.py``; this module only sequences them.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pymysql

from ..core.config import quote_ident
from ..servers import db
from ..servers.flavor import Flavor, MariaDBFlavor, ReplicaStatus, merge_worker_errors

HEARTBEAT_DB = "replab"
HEARTBEAT_TABLE = "heartbeat"
EVENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {db}.`events` (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), "
    "counter INT, description VARCHAR(255)) ENGINE=InnoDB"
)
HEARTBEAT_DDL = (
    f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_DB}.{HEARTBEAT_TABLE} (id INT PRIMARY KEY, "
    "ts DATETIME(6) NOT NULL, server_id INT UNSIGNED NOT NULL) ENGINE=InnoDB"
)


def secure_node(conn: pymysql.connections.Connection, admin_password: str, flavor: Flavor | None = None) -> None:
    """Local-only account hygiene on a fresh node (not binlogged): one admin, no passwordless accounts."""
    if flavor is None:
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
    ensure_schema(conn, database)


def attach_replica(conn: pymysql.connections.Connection, flavor: Flavor, *, host: str, port: int,
                   repl: tuple[str, str], ssl: bool = True, channel: str = "") -> None:
    """Point a replica at its source with GTID auto-positioning and start both threads.

    ``ssl=False``: the source has no TLS, so a replica whose client requires it by default (MariaDB 11.4+)
    is told not to. ``channel``: the named connection/channel of this source ("" the default one)."""
    with conn.cursor() as cur:
        try:
            cur.execute(flavor.stop_replica(channel))
        except pymysql.MySQLError as exc:  # a named connection/channel that does not exist yet
            if not channel or not exc.args or exc.args[0] != flavor.missing_channel_errno:
                raise
        cur.execute(flavor.change_source(host, port, ssl, channel), {"user": repl[0], "password": repl[1]})
        cur.execute(flavor.start_replica(channel))


def source_has_ssl(conn: pymysql.connections.Connection) -> bool:
    """Whether a server accepts TLS connections (MySQL always does; MariaDB only with certificates)."""
    try:
        return str(db.scalar(conn, "SELECT @@GLOBAL.have_ssl") or "YES").upper() == "YES"
    except pymysql.MySQLError:
        return True


def semisync_status(conn: pymysql.connections.Connection, flavor: Flavor) -> dict[str, Any]:
    """The source side of semi-sync on this server: on (bool), clients, fallbacks (times it went async),
    acknowledged and not-acknowledged commits."""
    rows = {str(r["Variable_name"]).lower(): r["Value"] for r in db.query(conn, flavor.semisync_status_query())}

    def pick(suffix: str) -> Any:
        return next((v for k, v in rows.items() if k.endswith(suffix)), None)

    def num(suffix: str) -> int:
        value = pick(suffix)
        return int(value) if value is not None and str(value).isdigit() else 0

    return {"on": str(pick("_status") or "OFF").upper() == "ON", "clients": num("_clients"),
            "fallbacks": num("_no_times"), "yes_tx": num("_yes_tx"), "no_tx": num("_no_tx")}


def semisync_side(conn: pymysql.connections.Connection, flavor: Flavor) -> dict[str, Any] | None:
    """This server's semi-sync, whichever side is enabled: ``{"side": "source", "active", "clients",
    "off_times"}`` (``active`` False: it fell back to asynchronous replication, no replica acknowledged
    within the timeout; ``off_times``: how many times the server switched it off, replab's own switch while
    building the cluster included) or ``{"side": "replica", "active"}``; None when semi-sync is off on both
    sides (or the plugin is not loaded)."""
    src, rep = flavor.semisync_words()
    variables = {str(r["Variable_name"]).lower(): str(r["Value"]).upper()
                 for r in db.query(conn, "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_%'")}
    status = {str(r["Variable_name"]).lower(): str(r["Value"])
              for r in db.query(conn, "SHOW GLOBAL STATUS LIKE 'rpl_semi_sync_%'")}

    def num(name: str) -> int:
        value = status.get(name, "0")
        return int(value) if value.isdigit() else 0

    if variables.get(f"rpl_semi_sync_{src}_enabled") in ("ON", "1"):
        return {"side": "source", "active": status.get(f"rpl_semi_sync_{src}_status", "").upper() == "ON",
                "clients": num(f"rpl_semi_sync_{src}_clients"), "off_times": num(f"rpl_semi_sync_{src}_no_times")}
    if variables.get(f"rpl_semi_sync_{rep}_enabled") in ("ON", "1"):
        return {"side": "replica", "active": status.get(f"rpl_semi_sync_{rep}_status", "").upper() == "ON"}
    return None


def replica_status(conn: pymysql.connections.Connection, flavor: Flavor) -> ReplicaStatus | None:
    rows = db.query(conn, flavor.show_replica_status())
    status = flavor.normalize_status(rows[0] if rows else None)
    worker_sql = flavor.worker_errors_query()
    if status is not None and status.worker_error_pending and worker_sql:
        with contextlib.suppress(pymysql.MySQLError):
            status = merge_worker_errors(status, db.query(conn, worker_sql))
    return status


def dump_threads(conn: pymysql.connections.Connection) -> list[dict[str, Any]]:
    """The primary's binlog dump threads (one per connected replica): id, client host and port, seconds in
    their state, state. The same SHOW PROCESSLIST on MariaDB and MySQL."""
    out = []
    for row in db.query(conn, "SHOW PROCESSLIST"):
        r = {str(k).lower(): v for k, v in row.items()}
        if not str(r.get("command") or "").startswith("Binlog Dump"):
            continue
        host, _, port = str(r.get("host") or "").rpartition(":")
        out.append({"id": int(r["id"]), "host": host, "port": int(port) if port.isdigit() else None,
                    "time_s": int(r.get("time") or 0), "state": r.get("state") or ""})
    return out


def replica_statuses(conn: pymysql.connections.Connection, flavor: Flavor) -> dict[str, ReplicaStatus]:
    """Every replication connection/channel of a node, by name ("" the default one); empty for none."""
    out: dict[str, ReplicaStatus] = {}
    for row in db.query(conn, flavor.show_all_replica_status()):
        status = flavor.normalize_status(row)
        if status is not None:
            out[status.channel] = status
    return out


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

    None when the node is not replicating: no replication configured (``status`` None: a primary, a demoted
    former primary, a replica left out by a forced failover) or its SQL thread stopped (an error, or
    stopped by hand); what its heartbeat row says then is no lag, it is where it stopped.
    Equal heartbeat values on both sides mean caught up (0); otherwise lag is the age, on the replica's
    clock, of the last heartbeat it applied. Without heartbeats, fall back to Seconds_Behind_Master.
    """
    if status is None or not status.sql_running:
        return None
    if primary_hb and replica_hb:
        if replica_hb[0] >= primary_hb[0]:
            return 0
        return max(0, int((replica_hb[1] - replica_hb[0]).total_seconds() * 1000))
    if status and status.seconds_behind is not None:
        return status.seconds_behind * 1000
    return None


def wait_applied(conn: pymysql.connections.Connection, flavor: Flavor, gtid: str,
                 timeout: float, received: bool = False) -> tuple[bool, ReplicaStatus | None]:
    """Wait (at most ``timeout`` s) until the replica on ``conn`` has applied ``gtid``.

    Waits in slices of at most 1 s and ends early when replication is not configured, the SQL thread
    stopped on an error or the IO thread gave up on one (e.g. 1236, its position is gone from the
    source's binary log): such a replica will not move. ``received``: ``gtid`` is already in its relay
    log, so only the SQL thread matters (its IO thread may be stopped, with the error it had left showing).
    Returns (applied, the last status seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        ok = flavor.wait_ok(db.scalar(conn, flavor.wait_for_gtid(), (gtid, max(0.001, min(1.0, remaining)))))
        st = replica_status(conn, flavor)
        if ok or remaining <= 0 or st is None or (not st.sql_running and st.last_sql_errno) or \
                (not st.sql_running and received) or (st.io_state == "No" and st.last_io_errno and not received):
            return ok, st


def ensure_table(conn: pymysql.connections.Connection, database: str, table: str) -> None:
    """A feed table of ``events``'s shape (e.g. a writer's own ``events_m1``), created only if missing."""
    with conn.cursor() as cur:
        cur.execute(EVENTS_DDL.replace("`events`", quote_ident(table)).format(db=quote_ident(database)))


def ensure_schema(conn: pymysql.connections.Connection, database: str) -> None:
    """The database and tables feed and check use, created only if missing (binlogged: replicas get them)."""
    dbq = quote_ident(database)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {dbq}")
        cur.execute(EVENTS_DDL.format(db=dbq))
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HEARTBEAT_DB}")
        cur.execute(HEARTBEAT_DDL)
