"""The cluster: named nodes, their roles and connections, persisted in ``<home>/cluster.json``.

``Cluster.up()`` builds one (or reuses the running one), ``Cluster.open()`` finds it again, and every
other module reaches servers through a ``Cluster``.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fcntl
import json
import os
import secrets
import shutil
import socket
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pymysql

from . import db, replication
from .config import ClusterSpec, load_spec, resolve_home
from .engines import Engine, NodeInfo, get_engine_class
from .engines.base import PAUSED, RUNNING, STOPPED, UNREACHABLE
from .errors import (
    ClusterNotFound,
    ConfigError,
    NodeStateError,
    PortInUse,
    ReplabError,
    SqlError,
    StateError,
)
from .flavor import Flavor, flavor_from_version_string

STATE_FILE = "cluster.json"
CREDENTIALS_FILE = "credentials.cnf"
STATE_VERSION = 1
Say = Callable[[str], None]


@dataclass
class NodeStatus:
    """One row of ``replab status``."""

    name: str
    role: str
    state: str
    host: str
    port: int
    io_running: bool | None = None
    sql_running: bool | None = None
    lag_ms: int | None = None
    last_errno: int | None = None
    last_error: str | None = None
    gtid: str | None = None
    pid: int | None = None
    read_only: bool | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": [list(r) for r in self.rows], "rowcount": self.rowcount}


def _check_home(home: Path) -> None:
    """Refuse a home that cannot hold state: not a directory, read-only, or not writable."""
    target = home if home.exists() else home.parent
    while not target.exists():
        target = target.parent
    if home.exists() and not home.is_dir():
        raise ConfigError(f"REPLAB_HOME {home} exists and is not a directory",
                          hint="choose another --home or remove that file")
    mode = stat.S_IMODE(target.stat().st_mode)
    if not mode & stat.S_IWUSR or not os.access(target, os.W_OK | os.X_OK):
        raise ConfigError(f"REPLAB_HOME {home} is not writable ({target} is mode {mode:o})",
                          hint="choose a writable --home, or fix the permissions (chmod u+w)")


def _port_busy(host: str, port: int) -> str | None:
    """Why ``port`` cannot be used (it answers, or cannot be bound), or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        if s.connect_ex((host, port)) == 0:
            return "something already answers there"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return "address in use" if exc.errno == errno_mod.EADDRINUSE else str(exc)
    return None


def _free_ports(host: str, count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """A running (or stopped) replication cluster. Use ``Cluster.up()`` or ``Cluster.open()``."""

    def __init__(self, home: Path, state: dict[str, Any], say: Say | None = None) -> None:
        self.home = home
        self.state = state
        self.say: Say = say or (lambda _m: None)
        self.nodes: list[NodeInfo] = [NodeInfo.from_dict(n) for n in state["nodes"]]
        self.flavor: Flavor = flavor_from_version_string(state["version_string"])
        self.engine: Engine = self._make_engine()
        self._creds: dict[str, dict[str, str]] | None = None

    def _make_engine(self) -> Engine:
        return get_engine_class(self.state["engine"]).from_state(self.home, self.say, self.state)

    # --- finding clusters ----------------------------------------------------------------------
    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, say: Say | None = None) -> Cluster:
        """The cluster whose state is in ``home`` (default $REPLAB_HOME or ./.replab)."""
        path = resolve_home(home)
        state_file = path / STATE_FILE
        if not state_file.exists():
            raise ClusterNotFound(f"no cluster in {path}", hint="start one with: replab up (or pass --home)")
        try:
            state = json.loads(state_file.read_text())
            if not isinstance(state, dict) or not isinstance(state.get("nodes"), list) or not state["nodes"]:
                raise ValueError("no nodes")
            for key in ("engine", "version_string"):
                if key not in state:
                    raise ValueError(f"missing {key}")
            for node in state["nodes"]:
                NodeInfo.from_dict(node)
        except (ValueError, TypeError, OSError) as exc:
            raise StateError(f"{state_file} is corrupt ({exc})",
                             hint="stop stray servers by hand if any run, then remove that directory") from None
        return cls(path, state, say)

    @classmethod
    def exists(cls, home: str | os.PathLike[str] | None = None) -> bool:
        return (resolve_home(home) / STATE_FILE).exists()

    @classmethod
    def up(cls, nodes: int | None = None, binlog_format: str | None = None, base_port: int | None = None,
           home: str | os.PathLike[str] | None = None, *, config_file: str | None = None,
           server_binary: str | None = None, say: Say | None = None, **flags: Any) -> Cluster:
        """Stand up a cluster (or return the running one unchanged). Usable as a context manager,
        which tears the cluster down on exit."""
        spec = load_spec(config_file, nodes=nodes, binlog_format=binlog_format, base_port=base_port,
                         server_binary=server_binary, **flags)
        path = resolve_home(home)
        _check_home(path)
        if (path / STATE_FILE).exists():
            existing = cls.open(path, say)
            existing._start_stopped()
            return existing
        from .builder import build_cluster

        return build_cluster(cls, spec, path, say or (lambda _m: None))

    def _start_stopped(self) -> None:
        stopped = [n for n in self.nodes if self.engine.state(n) == STOPPED]
        if not stopped:
            self.say(f"cluster in {self.home} is already running; nothing changed")
            return
        for node in stopped:
            self.start_node(node.name)

    # --- persistence ---------------------------------------------------------------------------
    def save(self) -> None:
        self.state["nodes"] = [n.to_dict() for n in self.nodes]
        tmp = self.home / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.replace(tmp, self.home / STATE_FILE)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    # --- nodes ---------------------------------------------------------------------------------
    @property
    def primary(self) -> NodeInfo:
        return next(n for n in self.nodes if n.role == "primary")

    @property
    def replicas(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.role == "replica"]

    @property
    def database(self) -> str:
        return str(self.state.get("database", "mydb"))

    @property
    def binlog_format(self) -> str:
        return str(self.state.get("spec", {}).get("binlog_format", "ROW"))

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"unknown node {name!r}: this cluster has {known}")

    @property
    def credentials_file(self) -> Path:
        return self.home / CREDENTIALS_FILE

    def credentials(self, group: str = db.ADMIN) -> tuple[str, str]:
        if self._creds is None:
            self._creds = db.read_option_file(self.credentials_file)
        values = self._creds.get(group)
        if not values:
            raise StateError(f"{self.credentials_file} has no [{group}] section")
        return values.get("user", ""), values.get("password", "")

    def connect(self, name: str, user: str = "admin", database: str | None = None, timeout: float = 5.0,
                read_timeout: float | None = None, dict_rows: bool = False,
                multi_statements: bool = False) -> pymysql.connections.Connection:
        """A new connection to node ``name`` as ``admin`` or ``app`` (the application user)."""
        node = self.node(name)
        group = {"admin": db.ADMIN, "app": db.APP}.get(user, user)
        login, password = self.credentials(group)
        params = self.engine.connect_params(node)
        if user == "admin":
            login, password = self.engine.node_login(node) or (login, password)
        if user == "app":
            params = {"host": node.host, "port": node.port}
        return db.connect(**params, user=login, password=password, database=database, timeout=timeout,
                          read_timeout=read_timeout, node=name, dict_rows=dict_rows,
                          multi_statements=multi_statements)

    def sql(self, name: str, statement: str, database: str | None = None) -> SqlResult:
        """Run one statement on a node as admin; raise SqlError (with the server's message) on failure."""
        self._require_running(name)
        with self.connect(name, database=database) as conn, conn.cursor() as cur:
            try:
                cur.execute(statement)
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                raise SqlError(f"{name}: error {code}: {exc.args[-1]}", node=name, errno=code) from None
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return SqlResult(columns, rows, cur.rowcount)

    def _require_running(self, name: str) -> None:
        state = self.engine.state(self.node(name))
        if state != RUNNING:
            hint = f"replab resume {name}" if state == PAUSED else f"replab start {name}"
            raise NodeStateError(f"{name} is {state}", node=name, hint=hint)

    # --- status ----------------------------------------------------------------------------------
    def node_status(self, node: NodeInfo, primary_hb: tuple[Any, Any] | None = None) -> NodeStatus:
        st = NodeStatus(name=node.name, role=node.role, state=self.engine.state(node), host=node.host,
                        port=node.port, pid=self.engine.pid(node))
        if st.state != RUNNING:
            return st
        try:
            with self.connect(node.name, timeout=2, read_timeout=5) as conn:
                st.gtid = replication.executed_gtid(conn, self.flavor)
                st.read_only = bool(int(db.scalar(conn, "SELECT @@GLOBAL.read_only") or 0))
                if node.role != "primary":
                    rs = replication.replica_status(conn, self.flavor)
                    if rs:
                        st.io_running, st.sql_running = rs.io_running, rs.sql_running
                        st.last_errno, st.last_error = rs.last_errno, rs.last_error or None
                        st.source = self.engine.source_node(rs.source_host, rs.source_port, self.nodes) \
                            or f"{rs.source_host}:{rs.source_port}"
                    else:
                        st.io_running = st.sql_running = False
                    st.lag_ms = replication.lag_ms(primary_hb, replication.heartbeat(conn), rs)
        except (SqlError, pymysql.MySQLError):
            st.state = UNREACHABLE
        return st

    def status(self) -> list[NodeStatus]:
        """Status of every node, gathered in parallel."""
        primary_hb = None
        if self.engine.state(self.primary) == RUNNING:
            with contextlib.suppress(SqlError, pymysql.MySQLError):
                with self.connect(self.primary.name, timeout=2, read_timeout=5) as conn:
                    primary_hb = replication.heartbeat(conn)
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            return list(pool.map(lambda n: self.node_status(n, primary_hb), self.nodes))

    def wait_caught_up(self, timeout: float = 30.0, names: list[str] | None = None) -> dict[str, bool]:
        return replication.wait_caught_up(self, timeout, names)

    # --- lifecycle -------------------------------------------------------------------------------
    def _shutdown_fn(self, node: NodeInfo) -> Callable[[], None]:
        def shutdown() -> None:
            with self.connect(node.name, timeout=2) as conn, conn.cursor() as cur:
                with contextlib.suppress(pymysql.MySQLError):
                    cur.execute("SHUTDOWN")
        return shutdown

    def start_node(self, name: str, timeout: float = 60.0) -> None:
        node = self.node(name)
        self.engine.start(node)
        self.engine.wait_ready(node, lambda: self._probe(node), timeout)
        self.save()
        self.say(f"{name}: started (pid {self.engine.pid(node)})")

    def _probe(self, node: NodeInfo) -> None:
        with self.connect(node.name, timeout=1) as conn:
            db.scalar(conn, "SELECT 1")

    def stop_node(self, name: str, timeout: float = 30.0) -> None:
        node = self.node(name)
        self.engine.stop(node, timeout, shutdown=self._shutdown_fn(node))  # type: ignore[call-arg]

    def down(self, keep_data: bool = False, timeout: float = 30.0) -> None:
        """Stop every node (clean shutdown, then TERM, then KILL) and remove the state (unless keep_data)."""
        def stop(node: NodeInfo) -> None:
            if self.engine.owns_servers and self.engine.state(node) != STOPPED:
                self.engine.stop(node, timeout, shutdown=self._shutdown_fn(node))  # type: ignore[call-arg]
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(stop, self.nodes))
        self.engine.destroy(self.nodes, keep_data=keep_data)
        self.say(f"stopped {len(self.nodes)} nodes" if self.engine.owns_servers else
                 f"left {len(self.nodes)} servers running: replab did not start them")
        if keep_data:
            self.save()
            return
        remove_state(self.home)
        self.say(f"removed {self.home}")

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


OWN_FILES = (STATE_FILE, STATE_FILE + ".tmp", CREDENTIALS_FILE, ".lock")
OWN_DIRS = ("nodes", "run", "ledger", "logs", "relay")


def remove_state(home: Path) -> None:
    """Remove what replab created in ``home``, and ``home`` itself only if nothing else is left."""
    for name in OWN_DIRS:
        shutil.rmtree(home / name, ignore_errors=True)
    for name in OWN_FILES:
        (home / name).unlink(missing_ok=True)
    for extra in home.glob("ledger*"):
        if extra.is_file():
            extra.unlink()
    with contextlib.suppress(OSError):
        home.rmdir()


def new_password() -> str:
    return secrets.token_urlsafe(18)


def check_ports(spec: ClusterSpec) -> list[int]:
    if spec.base_port is None:
        return _free_ports(spec.host, spec.nodes)
    ports = list(range(spec.base_port, spec.base_port + spec.nodes))
    for port in ports:
        why = _port_busy(spec.host, port)
        if why:
            raise PortInUse(f"port {port} on {spec.host} is in use ({why})",
                            hint="pick another --base-port, or leave it out to use free ports")
    return ports


__all__ = ["Cluster", "NodeStatus", "SqlResult", "ReplabError", "remove_state", "check_ports"]
