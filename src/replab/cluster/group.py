"""MySQL Group Replication: building a group, reading its members, finding its primary, rejoining a member.

The SQL here is Group Replication's own (MySQL only; the ``group`` shapes refuse MariaDB before anything is
created), so it lives with the shape rather than in ``flavor.py``.

Building (``build``): the data dirs are copies of the server's template, initialized once without any group
setting (initializing with them fails), then each member's ``my.cnf`` gets the group settings:
``group_replication_local_address`` on the member's own address and port, the seeds, the allowlist,
``report_host``; every member starts at once, the recovery credentials go in with ``CHANGE REPLICATION SOURCE
... FOR CHANNEL 'group_replication_recovery'`` (over the connection, never on a command line), the first
member bootstraps the group, the others join it in parallel.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from ..core.errors import ConfigError, NotSupported, ReplabTimeout, ReplicationError, SqlError
from ..core.state import free_ports
from ..engines.base import RUNNING
from ..servers import catalogue, db
from ..servers.process import wait_for
from . import replication

if TYPE_CHECKING:
    from ..core.config import ClusterSpec
    from ..engines.base import NodeInfo
    from ..servers.flavor import Flavor
    from .core import ClusterCore

RECOVERY_CHANNEL = "group_replication_recovery"
PLUGINS = ("group_replication.so", "mysql_clone.so")
ONLINE, RECOVERING, UNREACHABLE, ERROR, OFFLINE = "ONLINE", "RECOVERING", "UNREACHABLE", "ERROR", "OFFLINE"
MEMBERS_SQL = ("SELECT MEMBER_ID AS id, MEMBER_HOST AS host, MEMBER_PORT AS port, MEMBER_STATE AS state, "
               "MEMBER_ROLE AS role FROM performance_schema.replication_group_members")
STATS_SQL = ("SELECT VIEW_ID AS view_id, COUNT_TRANSACTIONS_IN_QUEUE AS queue, "
             "COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE AS applier_queue, COUNT_CONFLICTS_DETECTED AS conflicts, "
             "COUNT_TRANSACTIONS_CHECKED AS checked FROM performance_schema.replication_group_member_stats "
             "WHERE MEMBER_ID = @@server_uuid")
# transactions the group refused (certification conflict, or the member may not commit now): rolled back
REFUSED_ERRORS = (3100, 3101)
_RECOVERY_LOG = (("Cloning from a remote group donor", "clone"),
                 ("Incremental recovery from a group donor", "incremental recovery from a donor"),
                 ("No donor available to provide the missing data", "nothing to recover"))


def is_group(cluster: ClusterCore) -> bool:
    return bool(getattr(cluster.topology, "name", "").startswith("group"))


# --- preflight ------------------------------------------------------------------------------------------
def check_server(flavor: Flavor, plugin_dir: str | None, server_name: str,
                 mysql_servers: list[str]) -> None:
    """Refuse (ConfigError, exit 2, nothing created) a server that has no Group Replication."""
    have = ", ".join(mysql_servers) or "none installed: replab servers add mysql-9.7"
    if flavor.name != "mysql":
        raise ConfigError(f"--topology group needs MySQL: Group Replication is a MySQL plugin, and {server_name} is "
                          f"{flavor.name} (servers here that have it: {have})",
                          hint="replab up --topology group --server mysql-9.7; for MariaDB use --topology galera")
    if flavor.version < (8, 0):
        raise ConfigError(f"--topology group needs MySQL 8.0 or newer ({server_name} is "
                          f"{'.'.join(map(str, flavor.version))})", hint=f"servers that have it: {have}")
    if plugin_dir and not (Path(plugin_dir) / PLUGINS[0]).is_file():
        raise NotSupported(f"{server_name} has no {PLUGINS[0]} in {plugin_dir}",
                           hint=f"use a build that ships it (servers here: {have})")


# --- building -------------------------------------------------------------------------------------------
def member_options(cluster: ClusterCore, group_name: str) -> dict[str, dict[str, str]]:
    """Each member's group settings (its own local address, the seeds, the allowlist), merged into its my.cnf.
    ``group_replication_start_on_boot`` stays off: replab starts the group itself, bootstrapping it when no
    other member is ONLINE (see ``after_start``)."""
    multi = bool(cluster.topology.multi_primary)
    seeds = ",".join(local_address(n) for n in cluster.nodes)
    out = {}
    for node in cluster.nodes:
        out[node.name] = {
            "plugin_load_add": ";".join(PLUGINS),
            "group_replication_group_name": group_name,
            "group_replication_start_on_boot": "OFF",
            "group_replication_bootstrap_group": "OFF",
            "group_replication_local_address": local_address(node),
            "group_replication_group_seeds": seeds,
            "group_replication_ip_allowlist": ",".join(dict.fromkeys(f"{n.host}/32" for n in cluster.nodes)),
            "group_replication_single_primary_mode": "OFF" if multi else "ON",
            "group_replication_enforce_update_everywhere_checks": "ON" if multi else "OFF",
            "group_replication_recovery_use_ssl": "ON",
            "group_replication_recovery_get_public_key": "ON",
            "report_host": node.host,
            "report_port": str(node.port),
            "read_only": "0",  # Group Replication sets super_read_only on the secondaries itself
            "binlog_format": "ROW",
        }
    return out


def local_address(node: NodeInfo) -> str:
    return f"{node.host}:{node.extra['gcs_port']}"


def assign_ports(cluster: ClusterCore) -> None:
    """A free port for each member's group communication, on its own address, none of the servers' ports."""
    taken = {n.port for n in cluster.nodes}
    for node in cluster.nodes:
        port = next(p for p in free_ports(node.host, len(cluster.nodes) + 2)
                    if p not in taken)
        taken.add(port)
        node.extra["gcs_port"] = port


def build(cluster: ClusterCore, settings: dict[str, Any], spec: ClusterSpec, ready_and_secure: Callable[[NodeInfo],
          None], repl: tuple[str, str], app: tuple[str, str]) -> None:
    """Create and start the members, bootstrap the group on the first, join the others (in parallel), create
    the accounts and tables on the group, and wait until every member is ONLINE and holds them."""
    t0 = time.monotonic()
    engine, nodes, flavor = cluster.engine, cluster.nodes, cluster.flavor
    group_name = str(uuid.uuid4())
    cluster.state["group"] = {"name": group_name, "multi_primary": bool(cluster.topology.multi_primary)}
    assign_ports(cluster)
    # the member network (engines/membernet.py), where the engine has one: each member its own address, on
    # which partitions between members can be cut; without it every member stays on 127.0.0.1
    member_network = getattr(engine, "member_network", None)
    if callable(member_network):
        member_network(nodes)
    options = member_options(cluster, group_name)
    settings["node_options"] = {n.name: {**cluster.topology.server_options(n.name, cluster.names, flavor.name),
                                         **options[n.name]} for n in nodes}
    engine.create(nodes, settings)
    cluster.save()  # from here on, `replab down` can clean up even if this process dies
    engine.start_all(nodes)
    first, rest = nodes[0], nodes[1:]

    def recovery_channel(node: NodeInfo) -> None:
        with cluster.connect(node.name) as conn, conn.cursor() as cur:
            cur.execute("CHANGE REPLICATION SOURCE TO SOURCE_USER=%(user)s, SOURCE_PASSWORD=%(password)s "
                        f"FOR CHANNEL '{RECOVERY_CHANNEL}'", {"user": repl[0], "password": repl[1]})

    def join(node: NodeInfo) -> None:  # once the group exists: waits for its own server, then joins
        ready[node.name].result()
        recovery_channel(node)
        bootstrapped.wait()
        if failed:
            return
        start_group(cluster, node, bootstrap=False)

    # pipelined: the first member bootstraps as soon as it answers, while the others are still starting;
    # each joiner joins as soon as both it and the group are ready
    failed: list[BaseException] = []
    bootstrapped = threading.Event()
    with ThreadPoolExecutor(max_workers=2 * len(nodes)) as pool:
        ready = {n.name: pool.submit(ready_and_secure, n) for n in nodes}
        joins = [pool.submit(join, n) for n in rest]
        try:
            ready[first.name].result()
            cluster.say(f"{first.name}: answering ({flavor.name} {'.'.join(map(str, flavor.version))}) after "
                        f"{time.monotonic() - t0:.2f}s")
            with cluster.connect(first.name) as conn:  # the recovery account, binlogged: the joiners get it
                replication.bootstrap_primary(conn, flavor, database=spec.database, repl=repl, app=app,
                                              client_host=engine.client_host)
                with conn.cursor() as cur:
                    cur.execute("GRANT BACKUP_ADMIN ON *.* TO %s@%s", (repl[0], engine.client_host))  # clone donor
                for writer in cluster.topology.writers(cluster.names):
                    replication.ensure_table(conn, spec.database, cluster.writer_table(writer))
            cluster.state["source_ssl"] = True
            recovery_channel(first)
            t1 = time.monotonic()
            start_group(cluster, first, bootstrap=True)
            wait_online(cluster, [first.name], timeout=60)
            cluster.say(f"{first.name}: bootstrapped the group {group_name} in {time.monotonic() - t1:.2f}s")
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            bootstrapped.set()
        t2 = time.monotonic()
        for fut in joins:
            fut.result()
    wait_online(cluster, [n.name for n in nodes], timeout=120)
    cluster.say(f"{', '.join(n.name for n in rest)}: joined {time.monotonic() - t2:.2f}s after the bootstrap "
                f"({'multi' if cluster.topology.multi_primary else 'single'}-primary), "
                f"{time.monotonic() - t0:.2f}s after the servers started")
    lagging = [n for n, ok in cluster.wait_holders(timeout=30).items() if not ok]
    if lagging:
        raise ReplabTimeout(f"{', '.join(lagging)} did not apply the group's transactions within 30s",
                            hint="run: replab status")


def start_group(cluster: ClusterCore, node: NodeInfo, bootstrap: bool) -> None:
    """START GROUP_REPLICATION on ``node`` (bootstrapping a new group when ``bootstrap``)."""
    with cluster.connect(node.name, read_timeout=120) as conn, conn.cursor() as cur:
        try:
            if bootstrap:
                cur.execute("SET GLOBAL group_replication_bootstrap_group = ON")
            cur.execute("START GROUP_REPLICATION")
        except pymysql.MySQLError as exc:
            raise ReplicationError(f"{node.name}: START GROUP_REPLICATION failed: {exc.args[-1]}", node=node.name,
                                   hint=f"see {node.errlog}", log_tail=cluster.engine.log_tail(node)) from None
        finally:
            if bootstrap:
                with contextlib.suppress(pymysql.MySQLError):
                    cur.execute("SET GLOBAL group_replication_bootstrap_group = OFF")


def wait_online(cluster: ClusterCore, names: list[str], timeout: float) -> None:
    """Wait until every named member sees itself ONLINE; fail at once on ERROR, with its error log."""
    last: dict[str, str] = {}

    def check() -> bool | None:
        for name in names:
            state = own_state(cluster, name)
            last[name] = state
            if state == ERROR:
                node = cluster.node(name)
                raise ReplicationError(f"{name}: its group member state is ERROR", node=name,
                                       hint=f"see {node.errlog}", log_tail=cluster.engine.log_tail(node))
        return True if all(last.get(n) == ONLINE for n in names) else None

    wait_for(f"{', '.join(names)}: group member ONLINE", check, timeout, interval=0.05,
             describe=lambda: ", ".join(f"{n} {s}" for n, s in last.items()), hint="run: replab status")


def own_state(cluster: ClusterCore, name: str) -> str:
    """A member's state as it sees itself (OFFLINE when it is not in a group, or does not answer)."""
    try:
        with cluster.connect(name, timeout=2, read_timeout=5) as conn:
            return state_on(conn)
    except (SqlError, pymysql.MySQLError, OSError):
        return OFFLINE


def state_on(conn: Any) -> str:
    """The member state of the server behind ``conn`` as it sees itself (OFFLINE when in no group)."""
    rows = db.query(conn, MEMBERS_SQL + " WHERE MEMBER_ID = @@server_uuid")
    return str(rows[0]["state"]) if rows and rows[0]["state"] else OFFLINE


# --- reading the group ----------------------------------------------------------------------------------
@dataclass
class MemberView:
    """One member's own answer: what it is, and the group as it sees it."""

    name: str
    state: str  # its own member state (OFFLINE when it answers but is in no group)
    role: str | None = None
    view_id: str | None = None
    queue: int | None = None  # COUNT_TRANSACTIONS_IN_QUEUE (waiting for certification)
    applier_queue: int | None = None  # COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE
    conflicts: int | None = None
    checked: int | None = None
    members: dict[str, tuple[str, str]] | None = None  # {node: (state, role)} as this member sees the group

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def majority(self, size: int | None = None) -> bool:
        """Whether this member is ONLINE in a view where a majority of the view's members (those it lists,
        UNREACHABLE ones included: the group's own quorum rule) is ONLINE. ``size`` is unused (kept for
        callers that pass the cluster's size): a view forced smaller (group_replication_force_members) or
        shrunk by expels has its own majority."""
        members = self.members or {}
        online = sum(1 for s, _r in members.values() if s == ONLINE)
        return self.state == ONLINE and online * 2 > len(members)

    def unreachable(self) -> list[str]:
        return [m for m, (s, _r) in (self.members or {}).items() if s == UNREACHABLE]


def read_member(cluster: ClusterCore, node: NodeInfo, timeout: float = 2.0) -> MemberView | None:
    """``node``'s own view, or None when its server does not run or does not answer."""
    if cluster.engine.state(node) != RUNNING:
        return None
    by_port = {n.port: n.name for n in cluster.nodes}
    try:
        with cluster.connect(node.name, timeout=timeout, read_timeout=timeout + 1) as conn:
            me = str(db.scalar(conn, "SELECT @@server_uuid"))
            rows = db.query(conn, MEMBERS_SQL)
            stats = db.query(conn, STATS_SQL)
    except (SqlError, pymysql.MySQLError, OSError):
        return None
    view = MemberView(node.name, OFFLINE, members={})
    for r in rows:
        if not r["state"]:
            continue
        name = by_port.get(int(r["port"] or 0), f"{r['host']}:{r['port']}")
        assert view.members is not None
        view.members[name] = (str(r["state"]), str(r["role"] or ""))
        if r["id"] == me:
            view.state, view.role = str(r["state"]), str(r["role"] or "") or None
    if view.state == OFFLINE:
        view.members = {}
    if stats:
        s = stats[0]
        view.view_id = str(s["view_id"]) if s["view_id"] else None
        view.queue, view.applier_queue = _int(s["queue"]), _int(s["applier_queue"])
        view.conflicts, view.checked = _int(s["conflicts"]), _int(s["checked"])
    return view


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def read_group(cluster: ClusterCore) -> dict[str, MemberView | None]:
    """Every member's own view, read in parallel."""
    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        return dict(zip(cluster.names, pool.map(lambda n: read_member(cluster, n), cluster.nodes), strict=True))


def member_rows(cluster: ClusterCore, views: dict[str, MemberView | None] | None = None) -> dict[str, dict[str, Any]]:
    """{node: {member_state, member_role, view_id, queue, applier_queue, conflicts, seen_by}} for status.

    A member that answers says its own state; one that does not is as the majority sees it (UNREACHABLE while
    the group still counts it, OFFLINE once it was expelled or when its server is down)."""
    views = read_group(cluster) if views is None else views
    size = len(cluster.nodes)
    majority = next((v for v in views.values() if v is not None and v.majority(size)), None)
    out = {}
    for name, view in views.items():
        if view is not None:
            row = view.to_dict()
            row.pop("members")
            row.pop("name")
            row["seen_by"] = name
        else:
            seen = (majority.members or {}).get(name) if majority else None
            row = {"state": seen[0] if seen else OFFLINE, "role": (seen[1] or None) if seen else None,
                   "view_id": None, "queue": None, "applier_queue": None, "conflicts": None, "checked": None,
                   "seen_by": majority.name if majority and seen else None}
        out[name] = {("member_" + k if k in ("state", "role") else k): v for k, v in row.items()}
    return out


def quorum(cluster: ClusterCore, views: dict[str, MemberView | None] | None = None) -> dict[str, Any]:
    """Whether some member is ONLINE in a view with a majority (the group can commit), and who sees what."""
    views = read_group(cluster) if views is None else views
    size = len(cluster.nodes)
    with_majority = [v.name for v in views.values() if v is not None and v.majority(size)]
    online_alone = [v.name for v in views.values() if v is not None and v.state == ONLINE and not v.majority(size)]
    return {"size": size, "has_quorum": bool(with_majority), "majority_members": with_majority,
            "blocked_members": online_alone}


def force_members(cluster: ClusterCore, name: str, timeout: float = 240.0) -> str:
    """Force the group's membership to ``name`` alone (``group_replication_force_members`` = its local
    address, then unset as the manual says): an operator's way out of a lost quorum. The risk is the
    operator's: see ``verify/group_diagnose.py``."""
    node = cluster.node(name)
    t0 = time.monotonic()
    try:
        with cluster.connect(name, read_timeout=timeout) as conn, conn.cursor() as cur:
            for value in (local_address(node), ""):  # then unset: the manual's order
                _set_retrying(cur, value, t0 + timeout)
    except pymysql.MySQLError as exc:
        raise SqlError(f"{name}: forcing the membership failed after {time.monotonic() - t0:.0f}s: {exc.args[-1]}",
                       node=name, hint=f"see {node.errlog}") from None
    return (f"{name}: membership forced to {local_address(node)} alone (group_replication_force_members, "
            f"{time.monotonic() - t0:.1f}s)")


# --- the primary, as the group says -----------------------------------------------------------------------
_cache: dict[int, tuple[float, str | None]] = {}
_cache_mu = threading.Lock()
PRIMARY_TTL = 0.25


def current_primary(cluster: ClusterCore, max_age: float = PRIMARY_TTL) -> str | None:
    """The node the group has elected primary, as a member that is ONLINE with a majority says (None while
    there is none: an election under way, or no quorum). Cached for ``max_age`` seconds per cluster object."""
    key = id(cluster)
    now = time.monotonic()
    with _cache_mu:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
    found = _ask_primary(cluster)
    with _cache_mu:
        _cache[key] = (time.monotonic(), found)
    return found


def _ask_primary(cluster: ClusterCore) -> str | None:
    size = len(cluster.nodes)
    known = next((n for n in cluster.nodes if n.role == "primary"), None)
    order = ([known] if known else []) + [n for n in cluster.nodes if n is not known]
    for node in order:  # the last primary first: usually one round trip
        view = read_member(cluster, node, timeout=1.0)
        if view is None or not view.majority(size):
            continue
        primary = next((m for m, (s, r) in (view.members or {}).items() if r == "PRIMARY" and s == ONLINE), None)
        if primary and any(n.name == primary for n in cluster.nodes):
            return primary
        return None
    return None


def follow_primary(cluster: ClusterCore) -> None:
    """Set the in-memory roles from the group's primary (when it has one)."""
    found = current_primary(cluster)
    if found is None:
        return
    for node in cluster.nodes:
        node.role = "primary" if node.name == found else "replica"


# --- rejoining ------------------------------------------------------------------------------------------
def after_start(cluster: ClusterCore, node: NodeInfo, timeout: float = 180.0) -> dict[str, Any]:
    """A member's server has started: join it to the group (or bootstrap the group when no other member is
    ONLINE with a majority), wait until it is ONLINE, and say how it recovered and how long it took."""
    t0 = time.monotonic()
    views = read_group(cluster)
    others = {k: v for k, v in views.items() if k != node.name}
    size = len(cluster.nodes)
    group_alive = any(v is not None and v.majority(size) for v in others.values())
    bootstrap = not group_alive and not any(v is not None and v.state in (ONLINE, RECOVERING) for v in others.values())
    mine = views.get(node.name)
    if mine is not None and mine.state in (ONLINE, RECOVERING):
        return {"node": node.name, "bootstrap": False, "recovery": "already in the group", "seconds": 0.0}
    offset = int(node.extra.get("log_offset") or 0)
    start_group(cluster, node, bootstrap=bootstrap)
    wait_online(cluster, [node.name], timeout)
    seconds = time.monotonic() - t0
    how = "bootstrapped a new group (no other member was ONLINE)" if bootstrap else recovery_method(node, offset)
    cluster.say(f"{node.name}: ONLINE in the group after {seconds:.2f}s: {how}")
    return {"node": node.name, "bootstrap": bootstrap, "recovery": how, "seconds": round(seconds, 2)}


def recovery_method(node: NodeInfo, offset: int = 0) -> str:
    """How a joining member recovered, from its error log since it started: clone, incremental recovery from
    a donor, or nothing to recover."""
    try:
        with open(node.errlog, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return "distributed recovery (its error log could not be read)"
    found = [(text.rfind(marker), label) for marker, label in _RECOVERY_LOG if marker in text]
    if not found:
        return "distributed recovery"
    label = max(found)[1]
    donor = re.findall(r"[Ee]stablishing (?:group )?recovery connection with (?:a possible )?donor\. "
                       r"Attempt \d+/\d+", text)
    return label + (f" ({len(donor)} donor attempt(s))" if donor else "")


def _set_retrying(cur: Any, value: str, deadline: float) -> None:
    """SET GLOBAL group_replication_force_members, again while the server says another Group Replication
    option change (the previous forcing, still being applied) is under way."""
    while True:
        try:
            cur.execute("SET GLOBAL group_replication_force_members = %s", (value,))
            return
        except pymysql.MySQLError as exc:
            busy = "is ongoing or other Group Replication options are being set" in str(exc.args[-1])
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def preflight(engine: Any, flavor: Flavor) -> None:
    """``check_server`` for the engine's server build (the local engine's catalogue entry)."""
    from_catalogue = getattr(engine, "server", None)
    name = getattr(from_catalogue, "name", flavor.version_string)
    plugin_dir = from_catalogue.server_options().get("plugin_dir") if from_catalogue is not None else None
    mysql = [s.name for s in catalogue.installed() if s.flavor == "mysql"]
    check_server(flavor, plugin_dir, name, mysql)
