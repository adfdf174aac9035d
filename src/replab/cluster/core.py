"""A cluster's nodes over its engine: roles, credentials, connections, SQL, normalized status and the
replication waits. ``ClusterCore`` is what the builder needs of a cluster; ``cluster.Cluster`` adds finding,
building and the node lifecycle on top (so the builder never imports the module that calls it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pymysql

from ..core.errors import (
    ConfigError,
    NodeStateError,
    ReplabTimeout,
    ReplicationError,
    SqlError,
    StateError,
)
from ..core.state import CREDENTIALS_FILE, home_lock, write_state
from ..engines import Engine, NodeInfo, get_engine_class
from ..engines.base import PAUSED, RUNNING, UNREACHABLE
from ..servers import db
from ..servers.flavor import Flavor, ReplicaStatus, flavor_from_version_string
from ..servers.process import wait_for
from ..topologies import Edge, Topology, from_state
from . import galera, group, replication

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
    version: str | None = None  # SELECT VERSION()
    binlog_format: str | None = None  # @@GLOBAL.binlog_format
    semi_sync: dict[str, Any] | None = None  # replication.semisync_side(): None when semi-sync is off
    # the replica's link to its source as the engine applies it: {"cut": [directions], "conditions":
    # {direction: {delay_ms, jitter_ms, rate_bps}}, "mechanism": ...}; None for a node without a link
    link: dict[str, Any] | None = None
    # a Galera node's wsrep state (cluster/galera.py wsrep_status): cluster_status, cluster_size,
    # local_state_comment, flow_control_paused...; None for other shapes
    wsrep: dict[str, Any] | None = None
    # a group member (Group Replication): member_state, member_role, view_id, queue, applier_queue, conflicts
    group: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EdgeStatus:
    """One replication edge of ``replab status``: source -> replica over a connection/channel."""

    source: str
    replica: str
    channel: str
    state: str  # the replica's server state
    io_running: bool | None = None
    sql_running: bool | None = None
    io_state: str | None = None
    lag_ms: int | None = None
    last_errno: int | None = None
    last_error: str | None = None
    configured: bool = False  # the replica has this connection/channel at all
    source_state: str = RUNNING  # the source's server state
    # this edge's own link as the engine applies it (as NodeStatus.link); None where the engine has none
    link: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": [list(r) for r in self.rows], "rowcount": self.rowcount}


def edge_sentences(shape: str, rows: list[EdgeStatus]) -> list[str]:
    """``chain: 2 edges, all replicating`` or one line per edge that is not, saying why."""
    broken = [e for e in rows if not (e.io_running and e.sql_running) or (e.link or {}).get("cut")]
    if not broken:
        return [f"{shape}: {len(rows)} edges, all replicating"]
    out = []
    for e in broken:
        if e.state != "running":
            why = f"the replica {e.replica} is {e.state}"
        elif e.source_state != "running":
            why = f"its source {e.source} is {'down' if e.source_state == 'stopped' else e.source_state}"
        elif e.last_errno:
            why = f"error {e.last_errno}: {e.last_error}"
        elif (e.link or {}).get("cut"):
            cut = (e.link or {})["cut"]
            why = f"its link is cut {'both ways' if len(cut) == 2 else cut[0]} (heal with: replab heal {e.replica}" \
                  f"{' --from ' + e.source if e.channel else ''})"
        elif e.io_state == "Connecting":
            why = f"its IO thread cannot reach {e.source} (is it down?)"
        else:
            why = "its threads are stopped"
        out.append(f"{e.source} -> {e.replica}{' (' + e.channel + ')' if e.channel else ''}: not replicating: {why}")
    return out


class ClusterCore:
    """The nodes of a cluster and how to reach them; see ``Cluster`` for the public entry points."""

    def __init__(self, home: Path, state: dict[str, Any], say: Say | None = None) -> None:
        self.home = home
        self.state = state
        self.say: Say = say or (lambda _m: None)
        self.nodes: list[NodeInfo] = [NodeInfo.from_dict(n) for n in state["nodes"]]
        self.flavor: Flavor = flavor_from_version_string(state["version_string"])
        self.engine: Engine = self._make_engine()
        self._creds: dict[str, dict[str, str]] | None = None
        self.topology: Topology
        self.topology, self.edges = from_state(state)

    def _make_engine(self) -> Engine:
        return get_engine_class(self.state["engine"]).from_state(self.home, self.say, self.state)

    # --- persistence ---------------------------------------------------------------------------
    def save(self) -> None:
        self.state["nodes"] = [n.to_dict() for n in self.nodes]
        if self.topology.name != "star" or "topology" in self.state:
            self.state["topology"] = {"name": self.topology.name, "edges": [e.to_dict() for e in self.edges]}
        write_state(self.home, self.state)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with home_lock(self.home):
            yield

    # --- nodes ---------------------------------------------------------------------------------
    @property
    def primary(self) -> NodeInfo:
        if self.topology.dynamic_primary:  # elected by the servers (Group Replication): ask them
            group.follow_primary(self)
        return next(n for n in self.nodes if n.role == "primary")

    @property
    def replicas(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.role == "replica"]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def writers(self) -> list[str]:
        """The nodes that take writes in this shape (the star's: its current primary)."""
        if not self.topology.multi_writer(self.names):
            return [self.primary.name]
        return self.topology.writers(self.names)

    def holders(self, writer: str) -> list[str]:
        """The nodes that must end up holding ``writer``'s writes (along the current edges)."""
        return self.topology.holders(writer, self.names, self.edges)

    def writer_table(self, writer: str, base: str = "events") -> str:
        return self.topology.writer_table(writer, self.names, base)

    def edges_into(self, replica: str) -> list[Edge]:
        return [e for e in self.edges if e.replica == replica]

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

    def set_replica_delay(self, name: str, seconds: int) -> None:
        """Make replica ``name`` apply every transaction ``seconds`` after its commit on the source (0: at
        once again): SOURCE_DELAY / MASTER_DELAY, set with the replica's threads stopped."""
        for statement in (self.flavor.stop_replica(), self.flavor.replica_delay(seconds),
                          self.flavor.start_replica()):
            self.sql(name, statement)

    def sql(self, name: str, statement: str, database: str | None = None, timeout: float = 60.0) -> SqlResult:
        """Run one statement on a node as admin; raise SqlError (with the server's message) on failure, or
        when no answer comes within ``timeout`` seconds (a frozen server never hangs the caller)."""
        self.require_running(name)
        with self.connect(name, database=database, read_timeout=timeout) as conn, conn.cursor() as cur:
            try:
                cur.execute(statement)
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                raise SqlError(f"{name}: error {code}: {exc.args[-1]}", node=name, errno=code) from None
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return SqlResult(columns, rows, cur.rowcount)

    def require_running(self, name: str) -> None:
        """Raise NodeStateError (with the command that helps) unless ``name``'s server is running."""
        state = self.engine.state(self.node(name))
        if state != RUNNING:
            hint = f"replab resume {name}" if state == PAUSED else f"replab start {name}"
            raise NodeStateError(f"{name} is {state}", node=name, hint=hint)

    # --- status ----------------------------------------------------------------------------------
    def node_status(self, node: NodeInfo, primary_hb: tuple[Any, Any] | None = None) -> NodeStatus:
        shaped = self.topology.name != "star"  # its links are its edges' (edge_status), not its nodes'
        st = NodeStatus(name=node.name, role=node.role, state=self.engine.state(node), host=node.host,
                        port=node.port, pid=self.engine.pid(node),
                        link=None if shaped else self.engine.link_state(node))
        if st.state != RUNNING:
            return st
        try:
            with self.connect(node.name, timeout=2, read_timeout=5) as conn:
                st.gtid = replication.executed_gtid(conn, self.flavor)
                row = db.query(conn, "SELECT @@GLOBAL.read_only AS ro, VERSION() AS v, @@GLOBAL.binlog_format AS f")[0]
                st.read_only = bool(int(row["ro"] or 0))
                st.version, st.binlog_format = str(row["v"]), str(row["f"])
                st.semi_sync = replication.semisync_side(conn, self.flavor)
                if self.topology.name == "galera":
                    st.wsrep = galera.wsrep_status(conn)
                elif self.topology.name != "star":
                    self._shaped_status(st, conn, primary_hb)
                elif node.role != "primary":
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

    def _shaped_status(self, st: NodeStatus, conn: Any, primary_hb: tuple[Any, Any] | None) -> None:
        """A node of a shape other than the star: its threads and error over all its edges (each edge is in
        ``edge_status``), its sources by name."""
        into = self.edges_into(st.name)
        if not into:
            return
        channels = replication.replica_statuses(conn, self.flavor)
        found = [channels[e.channel] for e in into if e.channel in channels]
        st.source = ", ".join(e.source for e in into)
        st.io_running = len(found) == len(into) and all(rs.io_running for rs in found)
        st.sql_running = len(found) == len(into) and all(rs.sql_running for rs in found)
        bad = next((rs for rs in found if rs.last_errno), None)
        if bad is not None:
            st.last_errno, st.last_error = bad.last_errno, bad.last_error or None
        lags = [rs.seconds_behind for rs in found if rs.seconds_behind is not None]
        st.lag_ms = replication.lag_ms(primary_hb, replication.heartbeat(conn), None) \
            if st.name != self.primary.name else None
        if st.lag_ms is None and lags:
            st.lag_ms = max(lags) * 1000

    def status(self) -> list[NodeStatus]:
        """Status of every node, gathered in parallel."""
        primary_hb = None
        if self.engine.state(self.primary) == RUNNING:
            with contextlib.suppress(SqlError, pymysql.MySQLError):
                with self.connect(self.primary.name, timeout=2, read_timeout=5) as conn:
                    primary_hb = replication.heartbeat(conn)
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            rows = list(pool.map(lambda n: self.node_status(n, primary_hb), self.nodes))
        if group.is_group(self):
            members = group.member_rows(self)
            for row in rows:
                row.group = members.get(row.name)
                row.role = self.node(row.name).role
        if any(r.link and r.link.get("cut") for r in rows):
            self._primary_view(rows)
        return rows

    def _primary_view(self, rows: list[NodeStatus]) -> None:
        """For each cut link: the source's view of it, its binlog dump thread for that replica (found by the
        client port the link uses at the source's end), or none (the source dropped it)."""
        try:
            with self.connect(self.primary.name, timeout=2, read_timeout=5) as conn:
                dumps = replication.dump_threads(conn)
        except (SqlError, pymysql.MySQLError, NodeStateError):
            return
        for row in rows:
            if row.link and row.link.get("cut"):
                ports = set(self.engine.link_ports(self.node(row.name)))
                mine = [d for d in dumps if d["port"] in ports]
                row.link["primary_view"] = mine[0] if mine else None

    def edge_status(self) -> list[EdgeStatus]:
        """Every replication edge with its own threads, lag and last error, read on each replica."""
        replicas = list(dict.fromkeys(e.replica for e in self.edges))

        def read(name: str) -> tuple[str, dict[str, ReplicaStatus] | None]:
            if self.engine.state(self.node(name)) != RUNNING:
                return self.engine.state(self.node(name)), None
            try:
                with self.connect(name, timeout=2, read_timeout=5) as conn:
                    return RUNNING, replication.replica_statuses(conn, self.flavor)
            except (SqlError, pymysql.MySQLError):
                return UNREACHABLE, None

        with ThreadPoolExecutor(max_workers=max(1, len(replicas))) as pool:
            seen = dict(zip(replicas, pool.map(read, replicas), strict=True))
        out = []
        for e in self.edges:
            state, channels = seen[e.replica]
            es = EdgeStatus(e.source, e.replica, e.channel, state,
                            source_state=self.engine.state(self.node(e.source)),
                            link=self.engine.edge_link_state(e.link))
            rs = (channels or {}).get(e.channel)
            if rs is not None:
                es.configured = True
                es.io_running, es.sql_running, es.io_state = rs.io_running, rs.sql_running, rs.io_state
                es.last_errno, es.last_error = rs.last_errno or None, rs.last_error or None
                es.lag_ms = rs.seconds_behind * 1000 if rs.seconds_behind is not None else None
            elif channels is not None:
                es.io_running = es.sql_running = False
            out.append(es)
        return out

    def wait_edges(self, timeout: float = 30.0, only: list[Edge] | None = None) -> None:
        """Wait until every edge's threads run (or those of ``only``); explain the first that fails or does
        not come up."""
        last: dict[Edge, EdgeStatus] = {}
        pending = list(self.edges if only is None else only)

        def check() -> bool | None:
            for es, e in zip(self.edge_status(), self.edges, strict=True):
                last[e] = es
                if e in pending and es.io_running and es.sql_running:
                    pending.remove(e)
                elif e in pending and es.last_errno and (not es.sql_running or es.io_state == "No"):
                    raise ReplicationError(f"{e.describe()}: replication failed: error {es.last_errno}: "
                                           f"{es.last_error}", node=e.replica, hint=f"run: replab diagnose {e.replica}")
            return True if not pending else None

        def seen() -> str:
            es = last.get(pending[0]) if pending else None
            if es is None:
                return "not read yet"
            return f"{pending[0].describe()}: IO={es.io_state} SQL={'Yes' if es.sql_running else 'No'} " \
                   f"last error: {es.last_error or '-'}"

        wait_for("replication threads running on every edge", check, timeout, interval=0.05, describe=seen,
                 hint="run: replab status")

    def writer_positions(self) -> dict[str, str]:
        """{writer: the GTID position it has executed now} for the writers that are running."""
        out = {}
        for w in self.writers():
            if self.engine.state(self.node(w)) == RUNNING:
                with contextlib.suppress(SqlError, pymysql.MySQLError):
                    with self.connect(w, timeout=2) as conn:
                        out[w] = replication.executed_gtid(conn, self.flavor)
        return out

    def wait_holders(self, timeout: float = 30.0) -> dict[str, bool]:
        """Wait until every node holds what each writer has executed now (the topology's holders of each
        writer). Returns {node: caught_up}; never raises for a node that is down or broken."""
        if self.topology.name == "galera":  # one seqno order for every member: wsrep_last_committed
            return galera.wait_synced(self, timeout)
        result: dict[str, bool] = {}
        deadline = time.monotonic() + timeout
        for writer, gtid in self.writer_positions().items():
            others = [n for n in self.holders(writer) if n != writer]
            for name, ok in self.wait_caught_up(max(0.0, deadline - time.monotonic()), others, gtid).items():
                result[name] = result.get(name, True) and ok
        return result

    def wait_threads(self, names: list[str], timeout: float = 30.0) -> None:
        """Wait until IO and SQL threads run on each named replica; explain the failure otherwise."""
        last: dict[str, ReplicaStatus | None] = {}
        pending = list(names)

        def check() -> bool | None:
            for name in list(pending):
                with self.connect(name) as conn:
                    st = last[name] = replication.replica_status(conn, self.flavor)
                if st and st.io_running and st.sql_running:
                    pending.remove(name)
                elif st and (st.last_sql_errno or (st.last_io_errno and st.io_state == "No")):
                    raise ReplicationError(f"{name}: replication failed: error {st.last_errno}: {st.last_error}",
                                           node=name, hint=f"run: replab diagnose {name}")
            return True if not pending else None

        def seen() -> str:
            st = last.get(pending[0]) if pending else None
            if st is None:
                return "no replication configured"
            return f"IO={st.io_state} SQL={'Yes' if st.sql_running else 'No'} last error: {st.last_error or '-'}"

        node = self.node(pending[0]) if pending else None
        wait_for(f"{', '.join(names)}: replication threads running", check, timeout, interval=0.02,
                 describe=seen, log=node.errlog if node else None,
                 hint="run: replab status" + (f"; see {node.errlog}" if node and node.errlog else ""))

    def wait_caught_up(self, timeout: float = 30.0, names: list[str] | None = None,
                       gtid: str | None = None) -> dict[str, bool]:
        """Wait until each named replica (default: all) has applied ``gtid`` (default: the primary's now).

        Returns {replica: caught_up}. Never raises for a replica that is down or broken; the caller decides.
        """
        if gtid is None:
            with self.connect(self.primary.name) as conn:
                gtid = replication.executed_gtid(conn, self.flavor)
        result: dict[str, bool] = {}
        deadline = time.monotonic() + timeout
        for name in names if names is not None else [n.name for n in self.replicas]:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                with self.connect(name, read_timeout=remaining + 5) as conn:
                    result[name] = replication.wait_applied(conn, self.flavor, gtid, remaining)[0]
            except (SqlError, pymysql.MySQLError):
                result[name] = False
        return result

    def attach(self, replica: str, address: tuple[str, int] | None = None) -> tuple[str, int]:
        """Point ``replica`` at the primary (through the engine's address for it) and start replicating."""
        node = self.node(replica)
        host, port = address or self.engine.source_address(self.primary, node)
        ssl = bool(self.state.get("source_ssl", True))
        with self.connect(replica) as conn:
            replication.attach_replica(conn, self.flavor, host=host, port=port, repl=self.credentials(db.REPL),
                                       ssl=ssl)
        return host, port

    def attach_edge(self, edge: Edge, address: tuple[str, int] | None = None) -> tuple[str, int]:
        """Start replicating along ``edge`` (its connection/channel), through the engine's address for it."""
        node = self.node(edge.replica)
        host, port = address or self.engine.source_address(self.node(edge.source), node, edge.link)
        ssl = bool(self.state.get("source_ssl", True))
        with self.connect(edge.replica) as conn:
            replication.attach_replica(conn, self.flavor, host=host, port=port, repl=self.credentials(db.REPL),
                                       ssl=ssl, channel=edge.channel)
        return host, port

    def finish_replication(self, timeout: float = 30.0) -> None:
        """Wait until every replica's threads run and it has caught up with the primary; explain otherwise."""
        if self.topology.name != "star":
            self.wait_edges(timeout=timeout)
            lagging = [n for n, ok in self.wait_holders(timeout=timeout).items() if not ok]
            if lagging:
                raise ReplabTimeout(f"{', '.join(lagging)} did not catch up with their sources within "
                                    f"{timeout:.0f}s", hint="run: replab status")
            return
        self.wait_threads([r.name for r in self.replicas], timeout=timeout)
        lagging = [n for n, ok in self.wait_caught_up(timeout=timeout).items() if not ok]
        if lagging:
            raise ReplabTimeout(f"{', '.join(lagging)} did not catch up with the primary within {timeout:.0f}s",
                                hint="run: replab status")

