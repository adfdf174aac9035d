"""The cluster: named nodes, their roles and connections, persisted in ``<home>/cluster.json``.

``Cluster.up()`` builds one (or reuses the running one), ``Cluster.open()`` finds it again, and every
other module reaches servers through a ``Cluster``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymysql

from ..core.config import ClusterSpec, load_spec, resolve_home
from ..core.errors import (
    ClusterNotFound,
    ConfigError,
    ReplabError,
    StateError,
)
from ..core.state import STATE_FILE, check_home, check_ports, home_lock, remove_state
from ..engines import NodeInfo
from ..engines.base import STOPPED
from ..servers import catalogue as servers
from ..servers import db, strays
from ..topologies import get_topology
from . import galera, group, proxy
from .builder import build_cluster, no_interrupt, remove_empty_home
from .core import ClusterCore, NodeStatus, Say, SqlResult


class Cluster(ClusterCore):
    """A running (or stopped) replication cluster. Use ``Cluster.up()`` or ``Cluster.open()``."""

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
                             hint="replab down stops its servers (found by their home path) and removes the "
                             "state") from None
        return cls(path, state, say)

    @classmethod
    def exists(cls, home: str | os.PathLike[str] | None = None) -> bool:
        return (resolve_home(home) / STATE_FILE).exists()

    @classmethod
    def up(cls, nodes: int | None = None, binlog_format: str | None = None, base_port: int | None = None,
           home: str | os.PathLike[str] | None = None, *, config_file: str | None = None,
           server_binary: str | None = None, server: str | None = None, say: Say | None = None,
           **flags: Any) -> Cluster:
        """Stand up a cluster (or return the running one unchanged). Usable as a context manager,
        which tears the cluster down on exit.

        ``server`` is a name from the server catalogue (``mysql-9.7``) or a server binary's path;
        ``replica_server`` (a flag) gives the replicas another build of the same flavor; ``topology`` (a
        flag) the shape, ``star`` by default (``replab topology list``)."""
        spec = load_spec(config_file, nodes=nodes, binlog_format=binlog_format, base_port=base_port,
                         server_binary=server or server_binary, **flags)
        shape_of(spec)
        path = resolve_home(home)
        check_home(path)
        # One up at a time per home, under the home's lock: another up must neither take a cluster still
        # being built for a running one nor build over it (the build it saw could then fail and remove
        # what it had just called running). A home a failed build removed while we waited: lock it again.
        for _ in range(5):
            created = not path.exists()
            try:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                with home_lock(path, say):
                    if (path / ".lock").exists():
                        return cls._up_locked(spec, path, say, created)
            except BaseException:
                if created:
                    remove_empty_home(path)
                raise
        raise StateError(f"{path} keeps being removed while replab up waits for it",
                         hint="another program removes it; choose another --home")

    @classmethod
    def _up_locked(cls, spec: ClusterSpec, path: Path, say: Say | None, created_home: bool) -> Cluster:
        if (path / STATE_FILE).exists():
            existing = cls.open(path, say)
            if existing.state.get("status") == "creating":
                raise StateError(f"the cluster in {path} was never finished: an earlier replab up stopped "
                                 "part-way", hint=f"remove it with: replab --home {path} down; then replab up")
            differ = settings_differ(spec, existing.state)
            if differ:
                raise ConfigError(f"the cluster in {path} was built with other settings: {'; '.join(differ)}",
                                  hint="run replab down first to rebuild it that way, or leave those settings "
                                  "out to use it as it is")
            existing._start_stopped()
            return existing
        left = strays.find(path)
        if left:
            raise StateError(f"{len(left)} replab process(es) of an earlier cluster in {path} still run, though "
                             f"its state is gone: {', '.join(map(str, left))}",
                             hint=f"stop them with: replab --home {path} down (found by their home path)")
        return build_cluster(cls, spec, path, say or (lambda _m: None), created_home=created_home)

    def _start_stopped(self) -> None:
        stopped = [n for n in self.nodes if self.engine.state(n) == STOPPED]
        if self.topology.name == "galera":  # the node with the latest state bootstraps, the others join it
            stopped = galera.bootstrap_order(stopped, galera.recover_crashed(self, stopped))
        for node in stopped:
            self.start_node(node.name)
        proxy_started = proxy.ensure_running(self)
        if proxy_started:
            self.say("proxy: started")
        if not stopped and not proxy_started:
            self.say(f"cluster in {self.home} is already running; nothing changed")

    # --- lifecycle -------------------------------------------------------------------------------
    def _shutdown_fn(self, node: NodeInfo) -> Callable[[], None]:
        def shutdown() -> None:
            with self.connect(node.name, timeout=2) as conn, conn.cursor() as cur:
                with contextlib.suppress(pymysql.MySQLError):
                    cur.execute("SHUTDOWN")
        return shutdown

    def start_node(self, name: str, timeout: float = 60.0, hold_replication: bool = False) -> bool:
        """Start a node and wait until it answers. ``hold_replication``: a replica comes up with its
        replication threads stopped (where the engine can), so its position can be read before it catches
        up; returns whether they were held (then ``START REPLICA`` is the caller's)."""
        node = self.node(name)
        held = hold_replication and node.role == "replica" and self.engine.can_hold_replication
        extra = [self.flavor.skip_replica_start_option()] if held else []
        if self.topology.name == "galera":  # join the Primary component (IST/SST), or bootstrap one
            extra += galera.start_args(self, node)
        t0 = time.monotonic()
        self.engine.start(node, extra)
        is_galera = self.topology.name == "galera"
        self.engine.wait_ready(node, lambda: self._probe(node), max(timeout, 180.0) if is_galera else timeout)
        self.save()
        joined = f"; {galera.join_method(node)} in {time.monotonic() - t0:.1f}s" if is_galera else ""
        self.say(f"{name}: started (pid {self.engine.pid(node)}){joined}")
        if group.is_group(self):  # a group member: join the group again (or bootstrap it) and say how
            self.state.setdefault("rejoins", []).append(group.after_start(self, node))
            self.save()
        return held

    def _probe(self, node: NodeInfo) -> None:
        with self.connect(node.name, timeout=1) as conn:
            db.scalar(conn, "SELECT 1")

    def stop_node(self, name: str, timeout: float = 30.0) -> None:
        node = self.node(name)
        self.engine.stop(node, timeout, shutdown=self._shutdown_fn(node))  # type: ignore[call-arg]

    def down(self, keep_data: bool = False, timeout: float = 30.0) -> None:
        """Stop every node and remove the state. ``keep_data``: each node shuts down cleanly (SHUTDOWN, then
        TERM, then KILL) and its data stays; else engines that can end servers at once do (the data goes
        next), the others stop them cleanly first."""
        with no_interrupt():  # a Ctrl-C must not leave servers stopped but their state kept, or half removed
            self._down(keep_data, timeout)

    def _down(self, keep_data: bool, timeout: float) -> None:
        def stop(node: NodeInfo) -> None:
            if self.engine.owns_servers and self.engine.state(node) != STOPPED:
                self.engine.stop(node, timeout, shutdown=self._shutdown_fn(node))  # type: ignore[call-arg]
        if keep_data or not self.engine.discards_running:
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


def shape_of(spec: ClusterSpec) -> None:
    """Check the spec's node count against its topology (ConfigError naming the counts it can have) and set
    the node names; a shape's own default count when the user gave none."""
    if spec.multi_primary and spec.topology == "group":
        spec.topology = "group-multi-primary"
    topo = get_topology(spec.topology)
    if "nodes" not in spec.sources:
        spec.nodes = topo.default_nodes
    source = spec.sources.get("nodes", "flag")
    topo.check_count(spec.nodes, "--nodes" if source == "flag" else source)
    spec.names = topo.node_names(spec.nodes)


def teardown_home(home: Path) -> None:
    """Stop whatever a cluster home holds, by its pid files, even if its state is half-written."""
    if not (home / STATE_FILE).exists():
        return
    try:
        Cluster.open(home).down()
    except ReplabError:
        with contextlib.suppress(Exception):
            cluster = Cluster.open(home)
            cluster.engine.destroy(cluster.nodes)
        remove_state(home)


def _same_server(wanted: str, have: str) -> bool:
    """Whether a catalogue name or binary path names the build a cluster runs (by its binary)."""
    try:
        return os.path.realpath(servers.resolve(wanted).binary) == os.path.realpath(have)
    except ReplabError:
        return os.path.realpath(wanted) == os.path.realpath(have)


def settings_differ(spec: ClusterSpec, state: dict[str, Any]) -> list[str]:
    """What the user asked for (flag, REPLAB_* or replab.toml) that an existing cluster does not have."""
    have: dict[str, Any] = {
        "nodes": len(state.get("nodes", [])),
        "binlog_format": state.get("spec", {}).get("binlog_format"),
        "engine": state.get("engine"),
        "base_port": state.get("spec", {}).get("base_port"),
        "database": state.get("database"),
        "host": state.get("spec", {}).get("host"),
        "server_binary": state.get("server_binary"),
        "topology": (state.get("topology") or {}).get("name", "star"),
        "proxy": state.get("spec", {}).get("proxy") or "none",
    }
    out = []
    for name, source in spec.sources.items():
        wanted = getattr(spec, name)
        if name not in have or have[name] is None or wanted == have[name]:
            continue
        if name == "server_binary" and _same_server(str(wanted), str(have[name])):
            continue
        origin = "--" + name.replace("_", "-") if source == "flag" else source
        out.append(f"{origin} {wanted} (it has {have[name]})")
    return out


__all__ = ["Cluster", "NodeStatus", "SqlResult", "ReplabError", "remove_state", "check_ports", "teardown_home"]
