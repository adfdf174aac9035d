"""The proxy in front of a cluster, as the cluster sees it: start it, say where an application connects
(``endpoints``), show the proxy's view of every backend, and move the write endpoint on a role change.

The proxy itself (HAProxy and its role-aware health agent) is run by ``engines/haproxy.py``; its state is
``cluster.json``'s ``proxy`` object: kind, host, write and read ports.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from ..core.errors import ConfigError, NodeStateError, NotSupported, ReplabError
from ..core.state import free_ports
from ..engines import haproxy, mysql_router
from ..servers import db
from ..servers.process import wait_for
from .core import ClusterCore

PROXY_NODE = "proxy"  # the name commands take for the proxy (kill proxy, pause proxy, start proxy)
KINDS = (*haproxy.KINDS, mysql_router.KIND)
ROUTER_LIMITS = ("MySQL Router has static routes here (no MySQL Shell metadata): it does not know which node is "
                 "the primary nor whether a replica replicates")


def is_router(state: dict[str, Any] | None) -> bool:
    return bool(state) and (state or {}).get("kind") == mysql_router.KIND


def preflight(kind: str, flavor: str, server_name: str) -> None:
    """Refuse a proxy this cluster cannot have (before anything is created): MySQL Router is for MySQL
    (ConfigError) and needs a Router program here (NotSupported). (Every proxy is for the star: the spec
    refuses the other shapes.)"""
    if kind != mysql_router.KIND:
        return
    if flavor != "mysql":
        raise ConfigError(f"--proxy mysql-router needs MySQL ({server_name} is {flavor}): MySQL Router speaks to "
                          "MySQL servers only", hint="use --proxy haproxy (any flavor) or --server mysql-9.7")
    mysql_router.program()


def proxy_state(cluster: ClusterCore) -> dict[str, Any] | None:
    return cluster.state.get("proxy") or None


def require_proxy(cluster: ClusterCore, what: str) -> dict[str, Any]:
    """The proxy's state, or NotSupported telling how to get one."""
    state = proxy_state(cluster)
    if not state:
        raise NotSupported(f"{what}: this cluster has no proxy",
                           hint="build one with a proxy in front: replab down && replab up --proxy haproxy")
    return state


def start(cluster: ClusterCore, kind: str, say: Any = None) -> dict[str, Any]:
    """Start the proxy for a freshly built cluster and wait until it routes: writes to the primary, reads
    to the replicas. Records it in cluster.json."""
    if kind not in KINDS:
        raise NotSupported(f"--proxy {kind}: not a proxy replab runs", hint=f"choose one of {', '.join(KINDS)}")
    host = str(cluster.state.get("spec", {}).get("host") or "127.0.0.1")
    if kind == mysql_router.KIND:
        ports = free_ports(host, 2)
        t0 = time.monotonic()
        state = mysql_router.start(cluster.home, cluster.nodes, cluster.primary.name, (ports[0], ports[1]), host)
        cluster.state["proxy"] = state
        cluster.save()
        _router_lands_on(cluster, cluster.primary.name)
        if say:
            say(f"proxy (mysql-router, static routes): writes {host}:{state['write_port']} -> "
                f"{cluster.primary.name} first, then {', '.join(state['routes']['write'][1:]) or 'nobody'}; reads "
                f"{host}:{state['read_port']} -> {', '.join(state['routes']['read'])} round-robin "
                f"({time.monotonic() - t0:.2f}s). {ROUTER_LIMITS}: a role change rewrites its routes and "
                "restarts it")
        return state
    ports = free_ports(host, 3)
    t0 = time.monotonic()
    state = haproxy.start(cluster.home, cluster.nodes, (ports[0], ports[1], ports[2]), cluster.credentials_file,
                          cluster.flavor.show_replica_status(), host=host)
    cluster.state["proxy"] = state
    cluster.save()
    haproxy.wait_serving(cluster.home, cluster.primary.name, [r.name for r in cluster.replicas])
    if say:
        say(f"proxy (haproxy): writes {host}:{state['write_port']} -> {cluster.primary.name}; reads "
            f"{host}:{state['read_port']} -> {', '.join(r.name for r in cluster.replicas)} "
            f"({time.monotonic() - t0:.2f}s)")
    return state


def ensure_running(cluster: ClusterCore) -> bool:
    """Start whichever proxy process is not running (``up`` on a running cluster, ``start proxy``);
    True when something was started."""
    state = proxy_state(cluster)
    if not state:
        return False
    impl: Any = mysql_router if is_router(state) else haproxy
    before = impl.pids(cluster.home)
    impl.ensure_running(cluster.home, state)
    return before != impl.pids(cluster.home)


def follow(cluster: ClusterCore, say: Any = None, timeout: float = 10.0) -> float | None:
    """After a role change: the write endpoint moves to the new primary through the runtime API (no
    restart). Returns the seconds until the proxy routes writes there, or None without a proxy (or when the
    proxy is down: it routes by the agent's checks once it runs again)."""
    state = proxy_state(cluster)
    if not state:
        return None
    primary = cluster.primary.name
    if is_router(state):
        try:
            took = mysql_router.restart(cluster.home, state, cluster.nodes, primary)
            cluster.save()
            if mysql_router.pids(cluster.home)["mysql-router"] is None:
                if say:
                    say(f"proxy: MySQL Router is down; its routes now list {primary} first")
                return None
            took += _router_lands_on(cluster, primary, timeout)
        except ReplabError as exc:
            if say:
                say(f"proxy: the write endpoint did not follow {primary}: {exc}")
            return None
        if say:
            say(f"proxy: MySQL Router restarted with {primary} first in its write route ({took:.2f}s; every "
                "connection through it was dropped)")
        return took
    try:
        haproxy.move(cluster.home, primary, [n.name for n in cluster.nodes])
        took = haproxy.wait_for_writer(cluster.home, primary, timeout)
    except ReplabError as exc:
        if say:
            say(f"proxy: the write endpoint did not follow {primary}: {exc}")
        return None
    if say:
        say(f"proxy: the write endpoint routes to {primary} ({took:.2f}s, no restart)")
    return took


def rejoined(cluster: ClusterCore, node: str) -> str:
    """``node`` rejoined as a replica. HAProxy's checks bring it into the read pool by themselves; MySQL
    Router's static routes are rewritten (and Router restarted) to list it. Returns what to add to the
    rejoin's sentence ("" with HAProxy or no proxy)."""
    if not is_router(proxy_state(cluster)):
        return ""
    took = follow(cluster)
    if took is None:
        return f"; MySQL Router's routes list {node} again (Router is not running: they apply when it starts)"
    return f"; MySQL Router restarted with {node} in its read route ({took:.2f}s)"


def _router_lands_on(cluster: ClusterCore, primary: str, timeout: float = 10.0) -> float:
    """Wait until a new connection to Router's write endpoint lands on ``primary`` (by its server_id); the
    seconds it took."""
    state = require_proxy(cluster, "proxy")
    want = cluster.node(primary).server_id
    user, password = cluster.credentials(db.APP)
    t0 = time.monotonic()

    def landed() -> bool | None:
        try:
            conn = pymysql.connect(host=str(state["host"]), port=int(state["write_port"]), user=user,
                                   password=password, connect_timeout=1, read_timeout=2)
        except Exception:  # noqa: BLE001 - not listening yet: try again
            return None
        try:
            return True if int(db.scalar(conn, "SELECT @@server_id") or 0) == want else None
        finally:
            conn.close()

    wait_for(f"proxy: MySQL Router's write endpoint -> {primary}", landed, timeout, interval=0.05,
                     hint=f"see {mysql_router.proxy_dir(cluster.home)}/mysqlrouter.log")
    return time.monotonic() - t0


@dataclass
class Endpoint:
    """Where an application connects: the proxy's endpoints, or a node."""

    name: str  # write, read, or a node's name
    host: str
    port: int
    user: str
    database: str
    option_file: str
    routes_to: list[str] = field(default_factory=list)
    password: str | None = None  # only with --show-password

    @property
    def url(self) -> str:
        secret = f":{self.password}" if self.password else ""
        return f"mysql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port, "user": self.user,
                "database": self.database, "option_file": self.option_file, "url": self.url,
                "routes_to": self.routes_to, "password": self.password}


def endpoints(cluster: ClusterCore, show_password: bool = False, live: bool = True) -> list[Endpoint]:
    """The proxy's write and read endpoints (when there is a proxy) and every node, as the application user.
    Writes one option file per endpoint (mode 0600) so a client can connect with ``--defaults-file``.
    ``live``: ask the proxy which nodes it routes to now."""
    user, password = cluster.credentials(db.APP)
    shown = password if show_password else None
    out: list[Endpoint] = []
    directory = Path(cluster.home) / "endpoints"
    state = proxy_state(cluster)
    if state:
        routes: dict[str, list[str]] = {haproxy.WRITE: [], haproxy.READ: []}
        if is_router(state):  # static: the first of the write route, every one of the read route
            routes = {haproxy.WRITE: list(state["routes"][haproxy.WRITE][:1]),
                      haproxy.READ: list(state["routes"][haproxy.READ])}
        elif live:
            with contextlib.suppress(ReplabError):
                routes = haproxy.serving(cluster.home)
        for pool in (haproxy.WRITE, haproxy.READ):
            out.append(Endpoint(pool, str(state["host"]), int(state[f"{pool}_port"]), user, cluster.database,
                                str(directory / f"{pool}.cnf"), routes.get(pool, []), shown))
    for node in cluster.nodes:
        out.append(Endpoint(node.name, node.host, node.port, user, cluster.database,
                            str(directory / f"{node.name}.cnf"), [node.name], shown))
    directory.mkdir(mode=0o700, exist_ok=True)
    for ep in out:
        db.write_option_file(Path(ep.option_file), {"client": {"user": user, "password": password,
                                                               "host": ep.host, "port": str(ep.port),
                                                               "database": cluster.database}})
    return out


def status(cluster: ClusterCore) -> dict[str, Any] | None:
    """The proxy's state for ``replab status``: its processes, endpoints and every backend as it sees it."""
    state = proxy_state(cluster)
    if not state:
        return None
    if is_router(state):
        pid = mysql_router.pids(cluster.home)["mysql-router"]
        paused = pid is not None and mysql_router.process(cluster.home).paused()
        return {"kind": state["kind"], "host": state["host"], "write_port": state["write_port"],
                "read_port": state["read_port"], "pid": pid, "agent_pid": None,
                "state": "paused" if paused else "running" if pid else "stopped", "backends": [],
                "routes": state.get("routes") or {}, "static": True}
    pids = haproxy.pids(cluster.home)
    out: dict[str, Any] = {"kind": state["kind"], "host": state["host"], "write_port": state["write_port"],
                           "read_port": state["read_port"], "pid": pids["haproxy"], "agent_pid": pids["agent"],
                           "state": "running" if pids["haproxy"] else "stopped", "backends": []}
    if pids["haproxy"] and haproxy.process(cluster.home).paused():
        out["state"] = "paused"
    elif pids["haproxy"]:
        try:
            out["backends"] = [b.to_dict() for b in haproxy.backends(cluster.home)]
        except ReplabError:
            out["state"] = "unreachable"
    return out


# --- the proxy as a node of the cluster: kill, stop, start, pause, resume ------------------------------
def fault(cluster: ClusterCore, action: str) -> str:
    """``kill``/``stop``/``start``/``pause``/``resume`` the proxy (HAProxy itself; its health agent keeps
    running, as a host's monitoring would). Returns the sentence to print."""
    state = require_proxy(cluster, f"{action} {PROXY_NODE}")
    router = is_router(state)
    proc = mysql_router.process(cluster.home) if router else haproxy.process(cluster.home)
    pid = proc.pid()
    now = "stopped" if pid is None else "paused" if proc.paused() else "running"
    if action == "start":
        if now != "stopped":
            raise NodeStateError(f"{PROXY_NODE} is {now}", node=PROXY_NODE,
                                 hint=f"replab resume {PROXY_NODE}" if now == "paused" else None)
        t0 = time.monotonic()
        if router:
            mysql_router.ensure_running(cluster.home, state)
            _router_lands_on(cluster, cluster.primary.name)
        else:
            haproxy.ensure_running(cluster.home, state)
            haproxy.wait_for_writer(cluster.home, cluster.primary.name)
        return (f"{PROXY_NODE}: started in {time.monotonic() - t0:.2f}s; writes {state['host']}:{state['write_port']}"
                f" -> {cluster.primary.name} again")
    if action in ("kill", "stop", "pause") and now == "stopped":
        raise NodeStateError(f"{PROXY_NODE} is already down", node=PROXY_NODE, hint=f"replab start {PROXY_NODE}")
    if action == "resume":
        if now != "paused":
            raise NodeStateError(f"{PROXY_NODE} is not paused (it is {now})", node=PROXY_NODE)
        proc.signal(signal.SIGCONT)
        return f"{PROXY_NODE}: resumed"
    if action == "pause":
        proc.signal(signal.SIGSTOP)
        return (f"{PROXY_NODE}: paused (SIGSTOP); applications' connections through it stay open but nothing "
                f"passes; replab resume {PROXY_NODE} to continue")
    if action == "kill":
        proc.kill()
        return (f"{PROXY_NODE}: killed (SIGKILL); every connection through it is gone and both endpoints refuse "
                f"connections; the servers are untouched; bring it back with: replab start {PROXY_NODE}")
    if action == "stop":
        proc.stop(5.0)
        return f"{PROXY_NODE}: stopped; bring it back with: replab start {PROXY_NODE}"
    raise ConfigError(f"{action} is not something replab does to the proxy")
