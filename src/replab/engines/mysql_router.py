"""MySQL Router in front of a MySQL cluster, with static routes (``--proxy mysql-router``).

MySQL Router learns roles from the metadata MySQL Shell writes for an InnoDB Cluster, ClusterSet or
ReplicaSet (``mysql_innodb_cluster_metadata``, read by its ``metadata_cache`` plugin). A replab cluster is
plain replication built without MySQL Shell, so it has none, and Router runs here with static routes only:

- the write route, ``first-available`` over every node, the primary first: Router sends each new connection
  to the first node in that list that accepts a TCP connection and a handshake. It never asks whether that
  node is writable: when the primary dies, writes go to the next node in the list, a read-only replica, and
  fail there (``1290``/``1836`` read-only) until replab rewrites the list;
- the read route, ``round-robin`` over the replicas: Router does not know whether a replica replicates,
  nor how far behind it is; a replica with a stopped SQL thread keeps serving stale reads.

A role change (switchover, failover, rejoin) rewrites ``router.conf`` with the new primary first and
restarts Router (SIGKILL, then start: static routes keep no state): it has no runtime API to reorder a
static route (its REST API only reports), and it does not reload its configuration on a signal. The restart
drops every connection through both endpoints. Files in ``<home>/proxy/``: ``router.conf``, ``router.pid``,
``router.log`` (its output) and ``mysqlrouter.log`` (its own log).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..core.errors import NotSupported
from ..servers import router_tree
from ..servers.process import Process
from . import haproxy
from .base import NodeInfo

KIND = "mysql-router"
WRITE, READ = "write", "read"


def proxy_dir(home: Path) -> Path:
    return Path(home) / "proxy"


def program() -> router_tree.Router:
    """The Router to run, or NotSupported saying how to get one."""
    found = router_tree.program()
    if found is None:
        raise NotSupported("--proxy mysql-router: no MySQL Router here (the host's Debian has no mysql-router "
                           "package)", hint="add Debian sid's to the catalogue MySQL's tree: replab servers "
                           "add-router mysql-9.7")
    return found


def _process(home: Path) -> Process:
    d = proxy_dir(home)
    return Process("proxy (mysql-router)", d / "router.pid", f"-c {d}/router.conf", d / "router.log")


def process(home: Path) -> Process:
    return _process(home)


def pids(home: Path) -> dict[str, int | None]:
    return {"mysql-router": _process(home).pid()}


def routes(nodes: list[NodeInfo], primary: str) -> dict[str, list[NodeInfo]]:
    """The static routes for ``primary``: writes over the primary first, then the replicas in the cluster's
    order (Router's ``first-available`` needs a list; it moves on when the first refuses connections);
    reads over the replicas. A demoted former primary is in neither."""
    first = [n for n in nodes if n.name == primary]
    replicas = [n for n in nodes if n.name != primary and n.role == "replica"]
    return {WRITE: first + replicas, READ: replicas}


def render_config(directory: Path, nodes: list[NodeInfo], primary: str, write_port: int, read_port: int,
                  plugin_folder: str | None, host: str = "127.0.0.1") -> str:
    r = routes(nodes, primary)

    def dest(pool: str) -> str:
        return ",".join(f"{n.host}:{n.port}" for n in r[pool])

    plugins = f"plugin_folder={plugin_folder}\n" if plugin_folder else ""
    return (
        "# written by replab: a private MySQL Router for one cluster (loopback only), static routes.\n"
        f"# write route: {', '.join(n.name for n in r[WRITE])} (first that accepts a connection)\n"
        f"# read route: {', '.join(n.name for n in r[READ])} (round-robin)\n"
        "[DEFAULT]\n"
        f"logging_folder={directory}\n"
        f"runtime_folder={directory}\n"
        f"data_folder={directory}\n"
        + plugins +
        "[logger]\n"
        "level=INFO\n"
        f"[routing:{WRITE}]\n"
        f"bind_address={host}\n"
        f"bind_port={write_port}\n"
        f"destinations={dest(WRITE)}\n"
        "routing_strategy=first-available\n"
        "protocol=classic\n"
        f"[routing:{READ}]\n"
        f"bind_address={host}\n"
        f"bind_port={read_port}\n"
        f"destinations={dest(READ)}\n"
        "routing_strategy=round-robin\n"
        "protocol=classic\n"
    )


def write_config(home: Path, state: dict[str, Any], nodes: list[NodeInfo], primary: str) -> None:
    d = proxy_dir(home)
    found = program()
    text = render_config(d, nodes, primary, int(state["write_port"]), int(state["read_port"]), found.plugin_folder,
                         str(state["host"]))
    tmp = d / "router.conf.tmp"
    tmp.write_text(text)
    tmp.replace(d / "router.conf")
    state["routes"] = {pool: [n.name for n in ns] for pool, ns in routes(nodes, primary).items()}


def start(home: Path, nodes: list[NodeInfo], primary: str, ports: tuple[int, int], host: str = "127.0.0.1",
          timeout: float = 15.0) -> dict[str, Any]:
    """Write the config and start Router (detached); return the proxy's state for cluster.json."""
    program()
    d = proxy_dir(home)
    d.mkdir(mode=0o700, exist_ok=True)
    state: dict[str, Any] = {"kind": KIND, "host": host, "write_port": ports[0], "read_port": ports[1],
                             "dir": str(d)}
    write_config(home, state, nodes, primary)
    ensure_running(home, state, timeout)
    return state


def ensure_running(home: Path, state: dict[str, Any], timeout: float = 15.0) -> None:
    """Start Router when it is not running (after ``start`` wrote its config)."""
    proc = _process(home)
    if proc.pid() is not None:
        return
    found = program()
    d = proxy_dir(home)
    pid = proc.spawn([*found.argv, "-c", str(d / "router.conf")], cwd=d)
    (d / "router.pid").write_text(f"{pid}\n")
    for port in (int(state["write_port"]), int(state["read_port"])):
        haproxy.wait_port(proc, port, timeout,
                          hint=f"see {proc.log} and {proc.log.parent if proc.log else ''}/mysqlrouter.log")


def restart(home: Path, state: dict[str, Any], nodes: list[NodeInfo], primary: str, timeout: float = 15.0) -> float:
    """A role change: rewrite the routes with ``primary`` first and restart Router (it cannot reorder a
    static route at run time); the seconds it took until both endpoints listen again."""
    t0 = time.monotonic()
    write_config(home, state, nodes, primary)
    proc = _process(home)
    if proc.pid() is not None:
        # SIGKILL: a clean stop takes Router about a second and saves nothing (static routes keep no state);
        # the connections through it are dropped either way
        proc.kill()
        ensure_running(home, state, timeout)
    return time.monotonic() - t0


def stop(home: Path, timeout: float = 5.0) -> None:
    _process(home).stop(timeout)
