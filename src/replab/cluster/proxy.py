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

from ..core.errors import ConfigError, NodeStateError, NotSupported, ReplabError
from ..core.state import free_ports
from ..engines import haproxy
from ..servers import db
from .core import ClusterCore

PROXY_NODE = "proxy"  # the name commands take for the proxy (kill proxy, pause proxy, start proxy)


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
    if kind not in haproxy.KINDS:
        raise NotSupported(f"--proxy {kind}: not a proxy replab runs", hint=f"choose one of {', '.join(haproxy.KINDS)}")
    host = str(cluster.state.get("spec", {}).get("host") or "127.0.0.1")
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
    before = haproxy.pids(cluster.home)
    haproxy.ensure_running(cluster.home, state)
    return before != haproxy.pids(cluster.home)


def follow(cluster: ClusterCore, say: Any = None, timeout: float = 10.0) -> float | None:
    """After a role change: the write endpoint moves to the new primary through the runtime API (no
    restart). Returns the seconds until the proxy routes writes there, or None without a proxy (or when the
    proxy is down: it routes by the agent's checks once it runs again)."""
    if not proxy_state(cluster):
        return None
    primary = cluster.primary.name
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
        if live:
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
    proc = haproxy.process(cluster.home)
    pid = proc.pid()
    now = "stopped" if pid is None else "paused" if proc.paused() else "running"
    if action == "start":
        if now != "stopped":
            raise NodeStateError(f"{PROXY_NODE} is {now}", node=PROXY_NODE,
                                 hint=f"replab resume {PROXY_NODE}" if now == "paused" else None)
        t0 = time.monotonic()
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
