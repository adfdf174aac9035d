"""A real HAProxy in front of the cluster: a write endpoint (the primary) and a read endpoint (the healthy
replicas), on loopback, with a private config and its runtime API on a 0600 socket in the cluster's home.

Files in ``<home>/proxy/``: ``haproxy.cfg``, ``haproxy.pid``, ``haproxy.log``, ``admin.sock`` (the runtime
API), and the role-aware health agent's ``agent.json``, ``agent.pid``, ``agent.log`` (see
``proxy_agent.py``). Every server is listed in both backends; the agent's answers decide which of them
serve: the write backend routes to the one writable server, the read backend round-robins over the
replicas whose replication runs. A role change (switchover, failover, rejoin) moves servers in and out
of the backends through the runtime API at once (``set server B/S agent up|down``), and the agent's next
check (every 250 ms) confirms it; HAProxy is never restarted. When a server leaves the write backend its
sessions are shut down (``on-marked-down shutdown-sessions``): an application writing through the proxy
gets an error and reconnects to the new primary, instead of writing on into a fenced node.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import NodeStartError, NotSupported, ReplabError
from ..servers.catalogue import find_program
from ..servers.process import Process, alive, log_tail, wait_for
from . import proxy_agent
from .base import NodeInfo

KINDS = ("haproxy",)
WRITE, READ = "write", "read"
AGENT = Path(proxy_agent.__file__).resolve()
CHECK_MS = 250  # how often HAProxy asks the agent about each server


def proxy_dir(home: Path) -> Path:
    return Path(home) / "proxy"


def binary() -> str:
    """The haproxy program, or NotSupported naming the package."""
    found = find_program(["haproxy"])
    if not found:
        raise NotSupported("--proxy haproxy: no haproxy program found",
                           hint="install Debian's package: apt-get install haproxy (make test does)")
    return found


def _haproxy(home: Path) -> Process:
    d = proxy_dir(home)
    return Process("proxy (haproxy)", d / "haproxy.pid", f"-f {d}/haproxy.cfg", d / "haproxy.log")


def _agent(home: Path) -> Process:
    d = proxy_dir(home)
    return Process("proxy health agent", d / "agent.pid", f"{AGENT.name} {d}", d / "agent.log")


def render_config(directory: Path, nodes: list[NodeInfo], write_port: int, read_port: int, agent_port: int,
                  host: str = "127.0.0.1") -> str:
    """HAProxy's config: the two listeners, every node in both, each checked through the agent."""

    def servers(pool: str) -> str:
        return "".join(
            f"    server {n.name} {n.host}:{n.port} check port {agent_port} agent-check agent-addr 127.0.0.1 "
            f"agent-port {agent_port} agent-inter {CHECK_MS} agent-send \"{pool} {n.name}\\n\" disabled\n"
            for n in nodes)

    return (
        "# written by replab: a private HAProxy for one cluster (loopback only)\n"
        "global\n"
        f"    stats socket {directory}/admin.sock mode 600 level admin\n"
        "    maxconn 4096\n"
        "defaults\n"
        "    mode tcp\n"
        "    timeout connect 2s\n"
        "    timeout client 1h\n"
        "    timeout server 1h\n"
        "    timeout check 1s\n"
        f"    default-server inter {CHECK_MS} rise 1 fall 1 on-marked-down shutdown-sessions\n"
        f"listen {WRITE}\n"
        f"    bind {host}:{write_port}\n"
        "    balance first\n"
        + servers(WRITE) +
        f"listen {READ}\n"
        f"    bind {host}:{read_port}\n"
        "    balance roundrobin\n"
        + servers(READ)
    )


def start(home: Path, nodes: list[NodeInfo], ports: tuple[int, int, int], credentials: Path,
          replica_status_sql: str, host: str = "127.0.0.1", timeout: float = 10.0) -> dict[str, Any]:
    """Write the configs, start the agent and HAProxy (detached); return the proxy's state for
    cluster.json. Raises NodeStartError with the log tail when either does not start."""
    program = binary()
    write_port, read_port, agent_port = ports
    d = proxy_dir(home)
    d.mkdir(mode=0o700, exist_ok=True)
    primary = next((n.name for n in nodes if n.role == "primary"), None)
    if primary:
        designate(home, primary)
    conf = {"port": agent_port, "credentials": str(credentials), "group": "client", "dir": str(d),
            "replica_status_sql": replica_status_sql,
            "nodes": {n.name: {"host": n.host, "port": n.port, "socket": n.socket} for n in nodes}}
    (d / "agent.json").write_text(json.dumps(conf, indent=1) + "\n")
    (d / "haproxy.cfg").write_text(render_config(d, nodes, write_port, read_port, agent_port, host))
    state = {"kind": "haproxy", "host": host, "write_port": write_port, "read_port": read_port,
             "agent_port": agent_port, "dir": str(d)}
    ensure_running(home, state, timeout, program)
    return state


def ensure_running(home: Path, state: dict[str, Any], timeout: float = 10.0, program: str | None = None) -> None:
    """Start whichever of the agent and HAProxy is not running (after ``start`` wrote their configs)."""
    d = proxy_dir(home)
    agent = _agent(home)
    if agent.pid() is None:
        agent.spawn([sys.executable, str(AGENT), str(d)])
        wait_port(agent, int(state["agent_port"]), timeout)
    proxy = _haproxy(home)
    if proxy.pid() is None:
        program = program or binary()
        (d / "admin.sock").unlink(missing_ok=True)
        pid = proxy.spawn([program, "-db", "-f", str(d / "haproxy.cfg")])
        (d / "haproxy.pid").write_text(f"{pid}\n")
        wait_port(proxy, int(state["write_port"]), timeout)
        _release(home, timeout)


def _release(home: Path, timeout: float) -> None:
    """Servers start in maintenance (``disabled``): HAProxy would otherwise count each one UP until its first
    check, and route writes to whichever is listed first. Once the agent has answered for every server,
    the ones it said are down are marked so, and all leave maintenance: from the first connection on, the
    endpoints route only where the agent allows."""

    def checked() -> list[dict[str, str]] | None:
        rows = _stat_rows(home)
        return rows if rows and all(r.get("agent_status") in ("L7OK", "L7STS") for r in rows) else None

    rows = wait_for("proxy: the health agent's first answer for every server", checked, timeout, interval=0.02,
                    hint=f"see {proxy_dir(home)}/agent.log")
    for r in rows:
        where = f"{r['pxname']}/{r['svname']}"
        if r["agent_status"] != "L7OK":
            command(home, f"set server {where} agent down")
        command(home, f"set server {where} state ready")


def wait_port(proc: Process, port: int, timeout: float, hint: str | None = None) -> None:
    """Until ``proc`` (a proxy or its agent) listens on loopback ``port``; NodeStartError with its log's tail
    at once if it exits first (``hint``: where to look, its log by default)."""
    def up() -> bool | None:
        if proc.pid() is None and not (proc.pid_hint and alive(proc.pid_hint)):  # not just still in exec
            raise NodeStartError(f"{proc.name} exited while starting", log_tail=log_tail(proc.log),
                                 hint=hint or f"see {proc.log}")
        with socket.socket() as s:
            s.settimeout(0.2)
            return True if s.connect_ex(("127.0.0.1", port)) == 0 else None

    wait_for(f"{proc.name}: listening on 127.0.0.1:{port}", up, timeout, log=proc.log, hint=f"see {proc.log}")


def pids(home: Path) -> dict[str, int | None]:
    return {"haproxy": _haproxy(home).pid(), "agent": _agent(home).pid()}


def process(home: Path) -> Process:
    """HAProxy's own process (what ``kill proxy`` and ``pause proxy`` act on)."""
    return _haproxy(home)


def stop(home: Path, timeout: float = 5.0) -> None:
    """Stop HAProxy and its agent (by pid file and command line); a no-op when they are not running."""
    for proc in (_haproxy(home), _agent(home)):
        proc.stop(timeout)


# --- the runtime API ------------------------------------------------------------------------------
def command(home: Path, line: str, timeout: float = 2.0) -> str:
    """One runtime-API command on the admin socket (mode 0600 in the home); its answer."""
    path = proxy_dir(home) / "admin.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError as exc:
            raise ReplabError(f"proxy: its runtime API at {path} does not answer ({exc.strerror or exc})",
                              hint="replab status shows whether the proxy runs; replab start proxy starts it") \
                from None
        s.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass
class Backend:
    """One server in one of the proxy's backends, as HAProxy sees it now."""

    pool: str  # write | read
    node: str
    status: str  # UP, DOWN, MAINT, ...
    why: str  # the agent's reason, or HAProxy's check result
    sessions: int

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "node": self.node, "status": self.status, "why": self.why,
                "sessions": self.sessions}


def _stat_rows(home: Path) -> list[dict[str, str]]:
    """``show stat`` as one dict per backend server of the two pools."""
    text = command(home, "show stat")
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ReplabError(f"proxy: unexpected answer to 'show stat': {text[:120]!r}")
    rows = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    return [dict(r) for r in rows
            if r.get("pxname") in (WRITE, READ) and r.get("svname") not in ("FRONTEND", "BACKEND")]


def backends(home: Path) -> list[Backend]:
    """Every (pool, node) with HAProxy's status for it (``show stat``)."""
    out = []
    for row in _stat_rows(home):
        why = (row.get("last_agt") or "").strip() or (row.get("check_status") or "").strip()
        why = why.removeprefix("via agent : ")
        sessions = int(row["scur"]) if str(row.get("scur") or "").isdigit() else 0
        out.append(Backend(str(row["pxname"]), str(row["svname"]), str(row.get("status") or "?").split()[0],
                           why, sessions))
    return out


def serving(home: Path) -> dict[str, list[str]]:
    """Which nodes each pool routes to now: {"write": [...], "read": [...]}."""
    out: dict[str, list[str]] = {WRITE: [], READ: []}
    for b in backends(home):
        if b.status == "UP":
            out[b.pool].append(b.node)
    return out


def designate(home: Path, primary: str) -> None:
    """Name the writer for the health agent (it answers ``up`` for ``write NODE`` only for this node)."""
    d = proxy_dir(home)
    tmp = d / "writer.tmp"
    tmp.write_text(primary + "\n")
    os.replace(tmp, d / "writer")


def move(home: Path, primary: str, nodes: list[str]) -> None:
    """A role change: ``primary`` serves writes from now, the others do not (the agent's next checks
    confirm this, and bring the healthy replicas into the read pool)."""
    designate(home, primary)
    for name in nodes:
        command(home, f"set server {WRITE}/{name} agent {'up' if name == primary else 'down'}")
    command(home, f"set server {READ}/{primary} agent down")


def wait_serving(home: Path, primary: str | None, replicas: list[str], timeout: float = 10.0) -> float:
    """Wait until the write pool is exactly ``primary`` and the read pool exactly ``replicas``; the seconds
    it took. Raises ReplabTimeout with what the proxy showed."""
    t0 = time.monotonic()
    want = {WRITE: [primary] if primary else [], READ: sorted(replicas)}

    def ready() -> bool | None:
        now = serving(home)
        return True if {WRITE: now[WRITE], READ: sorted(now[READ])} == want else None

    def seen() -> str:
        with contextlib.suppress(ReplabError):
            return "; ".join(f"{b.pool}/{b.node} {b.status} {b.why}".strip() for b in backends(home))
        return "runtime API not answering"

    wait_for(f"proxy: write -> {primary or 'nobody'}, read -> {', '.join(replicas) or 'nobody'}", ready, timeout,
             describe=seen, interval=0.05, hint=f"see {proxy_dir(home)}/haproxy.log and agent.log")
    return time.monotonic() - t0


def wait_for_writer(home: Path, primary: str, timeout: float = 10.0) -> float:
    """Wait until the write pool routes to ``primary`` alone; the seconds it took."""
    t0 = time.monotonic()
    wait_for(f"proxy: write endpoint -> {primary}", lambda: True if serving(home)[WRITE] == [primary] else None,
             timeout, interval=0.02, describe=lambda: f"write pool {serving(home)[WRITE]}")
    return time.monotonic() - t0
