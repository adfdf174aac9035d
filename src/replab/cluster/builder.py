"""Building a new cluster: the engine plans (flavor, nodes, ports), then data dirs, configs, processes,
accounts, schema, replication.

On any failure everything this call started is stopped and everything it created is removed. Engines that
do not own their servers (``external``) set replication up themselves through ``Engine.setup``-style
hooks in their module; nothing of theirs is stopped here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..core import links
from ..core.config import ClusterSpec
from ..core.errors import NotSupported, ReplabError, ReplicationError
from ..core.state import STATE_VERSION, cache_root, new_password, remove_state
from ..engines import NodeInfo, get_engine_class
from ..engines.external import same_endpoint
from ..servers import db, strays
from ..servers.flavor import flavor_from_version_string
from ..servers.process import wait_for
from ..topologies import get_topology
from . import galera, group, proxy, replication
from .core import ClusterCore

C = TypeVar("C", bound=ClusterCore)

REPL_USER, APP_USER = "replab_repl", "replab_app"


def build_cluster(cls: type[C], spec: ClusterSpec, home: Path, say: Callable[[str], None],
                  created_home: bool | None = None) -> C:
    """A new cluster in ``home`` (which holds none). ``created_home``: the caller made ``home`` for it, so a
    failed build removes it again (default: whether it is missing now)."""
    t0 = time.monotonic()
    if created_home is None:
        created_home = not home.exists()
    try:
        engine = get_engine_class(spec.engine).from_spec(home, say, spec)
        if spec.link_conditions():  # before anything is checked or created: this engine may not shape links
            engine.require("shape")
            engine.check_shape(spec.link_conditions())
        plan = engine.prepare(spec)  # fails fast, creates nothing
        flavor = plan.flavor
        if spec.topology == "galera":  # MariaDB only, a provider, no --multi-primary: before anything exists
            galera.check_spec(spec, flavor.name, engine.server)  # type: ignore[attr-defined]
        if spec.topology.startswith("group"):  # before anything is created: the server must have the plugin
            group.preflight(engine, flavor)
        if spec.proxy:  # MySQL Router: MySQL only, and a Router here
            server = getattr(engine, "server", None)
            proxy.preflight(spec.proxy, flavor.name, server.name if server is not None else flavor.name)
        if spec.semi_sync and flavor.semisync_available():
            raise NotSupported(f"--semi-sync: {flavor.semisync_available()}", hint="leave out --semi-sync")
    except BaseException:
        if created_home:
            remove_empty_home(home)
        raise
    topology = get_topology(spec.topology)
    names = [n.name for n in plan.nodes]
    if topology.name != "star":
        for n in plan.nodes:
            n.role = topology.role(n.name, names)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    state: dict[str, Any] = {
        "replab": STATE_VERSION,
        "engine": spec.engine,
        "engine_options": plan.options,
        "flavor": flavor.name,
        "version_string": flavor.version_string,
        "server_binary": plan.server_binary,
        "server": plan.server,
        "database": spec.database,
        "spec": {"nodes": len(plan.nodes), "binlog_format": spec.binlog_format, "base_port": spec.base_port,
                 "host": spec.host, "semi_sync": spec.semi_sync,
                 "semi_sync_timeout_ms": spec.semi_sync_timeout_ms if spec.semi_sync else None,
                 "proxy": spec.proxy},
        "created": time.time(),
        "status": "creating",
        "nodes": [n.to_dict() for n in plan.nodes],
    }
    if topology.name != "star":
        state["topology"] = {"name": topology.name, "edges": [e.to_dict() for e in topology.edges(names)]}
    admin_pw, repl_pw, app_pw = new_password(), new_password(), new_password()
    admin = plan.admin or ("root", admin_pw)
    app = plan.app or (APP_USER, app_pw)
    cluster = cls(home, state, say)
    nodes = cluster.nodes
    try:
        db.write_option_file(cluster.credentials_file, {
            db.ADMIN: {"user": admin[0], "password": admin[1]},
            db.APP: {"user": app[0], "password": app[1]},
            db.REPL: {"user": REPL_USER, "password": repl_pw},
            **plan.credentials,
        })
        if not cluster.engine.owns_servers:
            _setup_existing(cluster, spec, repl=(REPL_USER, repl_pw), app=app)
        else:
            _build_servers(cluster, spec, plan.version_exact, admin_pw, (REPL_USER, repl_pw), (APP_USER, app_pw))
        if spec.proxy:
            proxy.start(cluster, spec.proxy, say)
        cluster.state["status"] = "ready"
        cluster.save()
        shape = "" if topology.name == "star" else f", {topology.name}"
        say(f"cluster ready: {len(nodes)} nodes replicating with GTID ({spec.binlog_format}){shape} "
            f"in {time.monotonic() - t0:.2f}s")
        return cluster
    except BaseException as exc:
        with no_interrupt():  # a second Ctrl-C must not leave the clean-up half done
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "set-up failed"
            say(f"{why}; stopping and removing what was started" if cluster.engine.owns_servers
                else f"{why}; removing replab's state (the servers are left as they are)")
            if isinstance(exc, ReplabError):
                keep_named_files(exc, home)  # the log a hint names is about to go with the home
            try:
                cluster.engine.destroy(nodes, keep_data=False)
                if cluster.engine.owns_servers:  # a server or relay started as the interrupt came, before
                    strays.stop(strays.find(home), timeout=10)  # its pid was recorded: found by home path
            finally:
                _remove_settled(home, created_home)
        raise


def _remove_settled(home: Path, created_home: bool, settle: float = 3.0) -> None:
    """Remove replab's state (and the home, if up made it) after an interrupted or failed build. A server
    killed a moment ago may still be exiting and remove its own pid or socket file meanwhile, so one pass
    can find a directory not yet empty, which is then left empty: pass again until the home is gone."""
    deadline = time.monotonic() + settle
    while True:
        remove_state(home)
        if created_home:
            remove_empty_home(home)
        if not home.exists() or not created_home or time.monotonic() > deadline:
            return
        time.sleep(0.1)


KEPT_FAILURES = 10  # failed ups whose logs are kept in the cache (the oldest go)


def keep_named_files(exc: ReplabError, home: Path) -> None:
    """Copy the files under ``home`` that ``exc``'s hint names (a server's error log) to the cache, and
    point the hint at the copies: a failed up removes the home, and a hint must not name a removed file."""
    named = sorted(set(re.findall(rf"{re.escape(str(home))}/[^\s,;()]+", exc.hint or "")))
    files = [Path(n) for n in named if Path(n).is_file()]
    if not files:
        return
    root = cache_root() / "failed-up"
    keep = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        keep.mkdir(parents=True, mode=0o700)
        for old in sorted(p for p in root.iterdir() if p.is_dir())[:-KEPT_FAILURES]:
            shutil.rmtree(old, ignore_errors=True)
        hint = exc.hint or ""
        for f in files:
            copy = keep / "-".join(f.relative_to(home).parts)
            shutil.copyfile(f, copy)
            hint = hint.replace(str(f), str(copy))
        exc.hint = f"{hint} (a copy: {home} was removed with what this up had started)"
    except OSError:  # cannot keep it: name no file
        exc.hint = re.sub(rf"\s*see {re.escape(str(home))}/\S+", "", exc.hint or "").strip() or None


def remove_empty_home(home: Path) -> None:
    """Remove ``home`` if nothing but the lock is left in it (up made it)."""
    with contextlib.suppress(OSError):
        if home.exists() and all(p.name == ".lock" for p in home.iterdir()):
            (home / ".lock").unlink(missing_ok=True)
            home.rmdir()


@contextlib.contextmanager
def no_interrupt() -> Iterator[None]:
    """SIGINT ignored for the block (main thread only; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _build_servers(cluster: ClusterCore, spec: ClusterSpec, version_exact: bool, admin_pw: str,
                   repl: tuple[str, str], app: tuple[str, str]) -> None:
    """Create, start and secure the servers an engine owns, then set replication up."""
    t0 = time.monotonic()
    engine, nodes, flavor = cluster.engine, cluster.nodes, cluster.flavor
    settings = {"server_binary": cluster.state.get("server_binary"), "version_string": flavor.version_string,
                "flavor": flavor, "binlog_format": spec.binlog_format, "admin_password": admin_pw,
                "server_options": dict(spec.extra.get("server_options", {})),
                "semi_sync_timeout_ms": spec.semi_sync_timeout_ms if spec.semi_sync else None}
    if cluster.topology.name == "galera":
        return galera.build(cluster, spec, settings, admin_pw, repl, app, _ready_and_secure(cluster, spec, admin_pw))
    if group.is_group(cluster):
        return group.build(cluster, settings, spec, _ready_and_secure(cluster, spec, admin_pw), repl, app)
    if cluster.topology.name != "star":
        return _build_shape(cluster, settings, version_exact, admin_pw, repl, app, spec)
    engine.create(nodes, settings)
    cluster.save()  # from here on, `replab down` can clean up even if this process dies
    engine.start_all(nodes)

    def ready_and_secure(node: NodeInfo) -> None:
        params = engine.connect_params(node)
        user, password = engine.initial_login(node, admin_pw)

        def probe() -> None:
            with db.connect(**params, user=user, password=password, timeout=1, node=node.name) as conn:
                db.scalar(conn, "SELECT 1")

        engine.wait_ready(node, probe, float(spec.extra.get("ready_timeout", 60 if engine.name == "local" else 300)))
        if engine.secure_fresh_nodes:
            with db.connect(**params, user=user, password=password, node=node.name) as conn:
                replication.secure_node(conn, admin_pw, flavor)

    primary = cluster.primary
    # each replica's source address (for the local engine: its link relay, a process of its own) is made
    # ready while the servers start, not after
    with ThreadPoolExecutor(max_workers=2 * len(nodes)) as pool:
        addresses = {r.name: pool.submit(engine.source_address, primary, r) for r in cluster.replicas}
        list(pool.map(ready_and_secure, nodes))
        sources = {name: fut.result() for name, fut in addresses.items()}
    shaped = spec.link_conditions()
    if shaped:  # before attaching: the replication connections are shaped from their first byte
        how = [engine.shape(replica, shaped) for replica in cluster.replicas][-1:]
        text = links.describe({d: links.Conditions.from_dict(c) for d, c in shaped.items()})
        cluster.say(f"every replica link shaped: {text} (by the {''.join(how)})")
    if not version_exact:  # e.g. an image tag "mysql:8.0": ask the server which 8.0 it is
        with cluster.connect(primary.name) as conn:
            cluster.flavor = flavor = flavor_from_version_string(str(db.scalar(conn, "SELECT VERSION()")))
        cluster.state["version_string"] = flavor.version_string
        cluster.save()
    cluster.say(f"{len(nodes)} servers answering ({flavor.name} {'.'.join(map(str, flavor.version))}) "
                f"after {time.monotonic() - t0:.2f}s")
    if spec.semi_sync:
        _check_semi_sync(cluster)
        _semi_sync_on_primary(cluster, False)  # else its first commit waits a whole timeout: no replica yet
    with cluster.connect(primary.name) as conn:
        replication.bootstrap_primary(conn, flavor, database=spec.database, repl=repl, app=app,
                                      client_host=engine.client_host)
        cluster.state["source_ssl"] = replication.source_has_ssl(conn)

    def attach(replica: NodeInfo) -> None:
        if engine.reset_fresh_replicas:
            with cluster.connect(replica.name) as conn:
                for statement in flavor.reset_gtid_state():
                    db.query(conn, statement)
        cluster.attach(replica.name, sources[replica.name])

    with ThreadPoolExecutor(max_workers=len(cluster.replicas) or 1) as pool:
        list(pool.map(attach, cluster.replicas))
    cluster.finish_replication()
    if spec.semi_sync:
        _semi_sync_on_primary(cluster, True)


def _ready_and_secure(cluster: ClusterCore, spec: ClusterSpec, admin_pw: str) -> Callable[[NodeInfo], None]:
    engine, flavor = cluster.engine, cluster.flavor

    def ready_and_secure(node: NodeInfo) -> None:
        params = engine.connect_params(node)
        user, password = engine.initial_login(node, admin_pw)

        def probe() -> None:
            with db.connect(**params, user=user, password=password, timeout=1, node=node.name) as conn:
                db.scalar(conn, "SELECT 1")

        engine.wait_ready(node, probe, float(spec.extra.get("ready_timeout", 60)))
        if engine.secure_fresh_nodes:
            with db.connect(**params, user=user, password=password, node=node.name) as conn:
                replication.secure_node(conn, admin_pw, flavor)
    return ready_and_secure


def _build_shape(cluster: ClusterCore, settings: dict[str, Any], version_exact: bool, admin_pw: str,
                 repl: tuple[str, str], app: tuple[str, str], spec: ClusterSpec) -> None:
    """Any shape but the star: per-node settings from the topology, accounts and schema on the nodes no edge
    feeds, one attach per edge (a named connection/channel where a replica has several sources), each
    writer's own table, then wait until every node holds what every writer wrote."""
    t0 = time.monotonic()
    engine, nodes, flavor, topo = cluster.engine, cluster.nodes, cluster.flavor, cluster.topology
    names, edges = cluster.names, cluster.edges
    settings["node_options"] = {n: topo.server_options(n, names, flavor.name) for n in names}
    for edge in edges:  # the local engine restarts these links' relays with the node, whatever its role
        cluster.node(edge.replica).extra.setdefault("links", {})
    engine.create(nodes, settings)
    cluster.save()
    engine.start_all(nodes)
    with ThreadPoolExecutor(max_workers=2 * len(nodes)) as pool:
        addresses = {e: pool.submit(engine.source_address, cluster.node(e.source), cluster.node(e.replica), e.link)
                     for e in edges}
        list(pool.map(_ready_and_secure(cluster, spec, admin_pw), nodes))
        sources = {e: fut.result() for e, fut in addresses.items()}
    cluster.save()
    cluster.say(f"{len(nodes)} servers answering ({flavor.name} {'.'.join(map(str, flavor.version))}) "
                f"after {time.monotonic() - t0:.2f}s")
    for name in topo.bootstrap_nodes(names, edges):
        with cluster.connect(name) as conn:
            replication.bootstrap_primary(conn, flavor, database=spec.database, repl=repl, app=app,
                                          client_host=engine.client_host)
            cluster.state["source_ssl"] = replication.source_has_ssl(conn)
    with ThreadPoolExecutor(max_workers=len(edges)) as pool:
        list(pool.map(lambda e: cluster.attach_edge(e, sources[e]), edges))
    cluster.wait_edges()
    for writer in topo.writers(names):  # each writer's own table (binlogged: its holders get it)
        with cluster.connect(writer) as conn:
            replication.ensure_table(conn, spec.database, cluster.writer_table(writer))
    cluster.finish_replication()


def _setup_existing(cluster: ClusterCore, spec: ClusterSpec, repl: tuple[str, str], app: tuple[str, str]) -> None:
    """Servers that already exist: attach (create accounts, point replicas at the primary) or adopt (verify
    the replication that is there)."""
    engine = cluster.engine
    mode = engine.options.get("mode", "attach")
    primary, flavor = cluster.primary, cluster.flavor
    if mode == "adopt":
        for replica in cluster.replicas:
            _verify_replica(cluster, replica)
        with cluster.connect(primary.name) as conn:
            replication.ensure_schema(conn, spec.database)
        cluster.say(f"adopted: {', '.join(r.name for r in cluster.replicas)} replicate from {primary.name}; "
                    f"database {spec.database} ensured on {primary.name}")
    else:
        for replica in cluster.replicas:
            with cluster.connect(replica.name) as conn:
                status = replication.replica_status(conn, flavor)
            if status is not None and status.source_host:
                raise ReplicationError(
                    f"{replica.name} already replicates from {status.source_host}:{status.source_port}",
                    node=replica.name, hint="use mode = \"adopt\" to keep it, or reset it on the server first")
        with cluster.connect(primary.name) as conn:
            replication.bootstrap_primary(conn, flavor, database=spec.database, repl=repl, app=app,
                                          client_host=str(engine.options.get("repl_host", "%")))
        for replica in cluster.replicas:
            host, port = engine.source_address(primary, replica)
            with cluster.connect(replica.name) as conn:
                replication.attach_replica(conn, flavor, host=host, port=port, repl=repl)
            cluster.say(f"{replica.name}: replicating from {primary.name} ({host}:{port})")
    cluster.finish_replication()


def _semi_sync_on_primary(cluster: ClusterCore, on: bool, timeout: float = 30.0) -> None:
    """Turn the primary's side of semi-sync off for the set-up's own transactions, and on again once the
    replicas replicate; then wait until the primary counts every replica as a semi-sync client and says it
    is semi-synchronous. (Both flavors register a semi-sync replica when its IO thread connects, whether the
    source side is on or not; restarting the IO threads here made MySQL count stale clients and time out.)"""
    flavor, primary = cluster.flavor, cluster.primary
    with cluster.connect(primary.name) as conn:
        db.query(conn, f"SET GLOBAL {flavor.semisync_enabled_variable()} = {int(on)}")
    if not on:
        return
    wanted = len(cluster.replicas)

    def status() -> dict[str, Any]:
        with cluster.connect(primary.name) as conn:
            return replication.semisync_status(conn, flavor)

    def ready() -> bool | None:
        st = status()
        return True if st["on"] and st["clients"] >= wanted else None

    wait_for(f"{primary.name}: semi-sync on with {wanted} replica(s) acknowledging", ready, timeout,
             describe=lambda: "on={on} clients={clients}".format(**status()),
             hint="run: replab status; see the replicas' error logs")


def _check_semi_sync(cluster: ClusterCore) -> None:
    """Every node must know the semi-sync variables (MySQL loads them from plugin files that may be absent)."""
    variable = cluster.flavor.semisync_enabled_variable()
    for node in cluster.nodes:
        with cluster.connect(node.name) as conn:
            if not db.query(conn, "SHOW GLOBAL VARIABLES LIKE %s", (variable,)):
                raise NotSupported(f"--semi-sync: {node.name} has no {variable} (the semi-sync plugin could not "
                                   "be loaded)", node=node.name, hint="leave out --semi-sync, or install the "
                                   "server's semisync plugin files", log_tail=cluster.engine.log_tail(node))


def _verify_replica(cluster: ClusterCore, replica: NodeInfo) -> None:
    primary = cluster.primary
    with cluster.connect(replica.name) as conn:
        status = replication.replica_status(conn, cluster.flavor)
    if status is None or not status.source_host:
        raise ReplicationError(f"{replica.name} is not a replica: it has no replication configured",
                               node=replica.name, hint="use mode = \"adopt\" to let replab set it up")
    seen = (status.source_host, status.source_port or 0)
    if not same_endpoint(seen, (primary.host, primary.port)) and \
            not same_endpoint(seen, cluster.engine.source_address(primary, replica)):
        raise ReplicationError(
            f"{replica.name} replicates from {status.source_host}:{status.source_port}, not from the named "
            f"primary {primary.name} ({primary.host}:{primary.port})", node=replica.name,
            hint="fix the roles in replab.toml, or set replication_host on the primary's entry")
