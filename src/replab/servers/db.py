"""Connections to nodes: one place that opens PyMySQL connections and reads credential option files."""

from __future__ import annotations

import configparser
import ipaddress
import os
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from ..core.errors import ReplabError, SqlError

# Option-file groups of the credentials file: [client] is the admin (also read by the mariadb client).
ADMIN, APP, REPL = "client", "replab_app", "replab_repl"


def write_option_file(path: Path, groups: dict[str, dict[str, str]]) -> None:
    """Write a MySQL option file with mode 0600 from the start (never world-readable, not even briefly)."""
    lines: list[str] = []
    for group, values in groups.items():
        lines.append(f"[{group}]")
        for key, value in values.items():
            if any(ch in value for ch in "\n\r"):
                raise ValueError(f"option {key} contains a newline")
            lines.append(f'{key}="{value}"' if any(c in value for c in " #;'\"\\") else f"{key}={value}")
        lines.append("")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))
    os.chmod(path, 0o600)


def read_option_file(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True)
    try:
        parser.read_string(path.read_text())
    except (OSError, configparser.Error) as exc:
        raise ReplabError(f"cannot read credentials {path}: {exc}") from None
    out: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        out[section] = {k: (v or "").strip().strip('"') for k, v in parser.items(section)}
    return out


def connect(
    *,
    host: str | None = None,
    port: int | None = None,
    unix_socket: str | None = None,
    user: str = "root",
    password: str = "",
    database: str | None = None,
    timeout: float = 5.0,
    read_timeout: float | None = None,
    autocommit: bool = True,
    node: str | None = None,
    dict_rows: bool = False,
    multi_statements: bool = False,
) -> pymysql.connections.Connection:
    """Open a connection; raise SqlError naming the node when it fails."""
    kwargs: dict[str, Any] = dict(
        user=user,
        password=password,
        database=database,
        connect_timeout=max(1, int(timeout)),
        autocommit=autocommit,
        charset="utf8mb4",
    )
    if read_timeout:
        kwargs["read_timeout"] = read_timeout
        kwargs["write_timeout"] = read_timeout
    if dict_rows:
        kwargs["cursorclass"] = pymysql.cursors.DictCursor
    if multi_statements:
        kwargs["client_flag"] = CLIENT.MULTI_STATEMENTS
    if unix_socket:
        kwargs["unix_socket"] = unix_socket
    else:
        kwargs["host"] = host or "127.0.0.1"
        kwargs["port"] = int(port or 3306)
    if unix_socket or is_loopback(kwargs["host"]):
        # PyMySQL >= 1.2 tries TLS whenever the server offers it, building a fresh SSL context (~25 ms of
        # CPU loading the system's CA store) for every connection. On a socket or loopback TLS protects
        # nothing, so replab's own connections go without it.
        kwargs["ssl_disabled"] = True
    try:
        return pymysql.connect(**kwargs)
    except pymysql.MySQLError as exc:
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        where = unix_socket or f"{host}:{port}"
        raise SqlError(f"cannot connect to {where}: {exc.args[-1] if exc.args else exc}", node=node,
                       errno=errno) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def query(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[dict[str, Any]]:
    """Run one statement and return its rows as dicts (empty list for statements without rows)."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []


def scalar(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return row[0] if row else None


def fast_driver() -> Any:
    """The C client library binding (mysqlclient) when installed, else None. Only the feed's insert loop
    uses it: about 10% more single-row commits per second than PyMySQL on a 2-core machine."""
    try:
        import MySQLdb
    except ImportError:
        return None
    return MySQLdb


def driver_errors() -> tuple[type[BaseException], ...]:
    """Exception classes of every driver in use (PyMySQL's, plus mysqlclient's when installed)."""
    fast = fast_driver()
    return (pymysql.MySQLError, fast.MySQLError) if fast else (pymysql.MySQLError,)


def connect_fast(*, host: str = "127.0.0.1", port: int = 3306, unix_socket: str | None = None, user: str,
                 password: str, database: str | None, timeout: float, read_timeout: float, multi_statements: bool,
                 node: str | None = None) -> Any:
    """A connection for a tight write loop: mysqlclient when available, else PyMySQL. Both expose
    ``query()``, ``next_result()`` and ``close()`` and raise errors with ``args == (errno, message)``.
    ``unix_socket`` (a server on this machine) costs the client and the server less kernel time per
    statement than loopback TCP; the read timeout holds on it too."""
    fast = fast_driver()
    where: dict[str, Any] = {"unix_socket": unix_socket} if unix_socket else {"host": host, "port": int(port)}
    if fast is None:
        return connect(**where, user=user, password=password, database=database, timeout=timeout,
                       read_timeout=read_timeout, node=node, multi_statements=multi_statements)
    from MySQLdb.constants import CLIENT

    kwargs: dict[str, Any] = dict(**where, user=user, password=password, autocommit=True,
                                  connect_timeout=max(1, int(timeout)), read_timeout=int(read_timeout),
                                  write_timeout=int(read_timeout), charset="utf8mb4")
    if database:
        kwargs["database"] = database
    if multi_statements:
        kwargs["client_flag"] = CLIENT.MULTI_STATEMENTS
    try:
        return fast.connect(**kwargs)
    except fast.MySQLError as exc:
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        place = unix_socket or f"{host}:{port}"
        raise SqlError(f"cannot connect to {place}: {exc.args[-1] if exc.args else exc}", node=node,
                       errno=errno) from None

