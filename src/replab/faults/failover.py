"""Role changes: planned switchover, failover of a dead primary, and the old primary's return.

``switchover(cluster, "mysql-s1")`` fences the primary (read-only, other sessions ended), waits until the
target applied its last transaction, promotes the target and points every other node at it: nothing
acknowledged is lost, and the write pause is measured. ``failover(cluster)`` promotes the most advanced
replica (by GTID, after each replica applied what it had received) when the primary no longer answers.
``rejoin(cluster, "mysql-m")`` brings a demoted primary back as a replica, unless it holds errant
transactions (written there, received by nobody), which are named; then it must be rebuilt.

The shape (``cluster.topology``) says which nodes may be promoted and what the edges are afterwards (the
star: every replica, all following the new primary; a chain: the head's replica, the two swapping places in
a switchover, the rest of the chain kept in a failover, the old head rejoining at the tail); only the nodes
whose source changes are re-pointed, and the new edges are stored in cluster.json.

Every refusal happens before anything changes. The roles live in cluster.json: writers in other processes
follow them (``roles.py``); while a change is under way the state carries a ``transition`` so that nobody
writes. All dialect-specific SQL comes from ``flavor.py``.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import group, proxy, replication, roles
from ..core.errors import ConfigError, NodeStateError, ReplabTimeout, ReplicationError, SqlError
from ..engines.base import RUNNING, STOPPED, NodeInfo, bring_back
from ..servers import db
from ..servers.flavor import flavor_from_version_string
from ..servers.gtid import GtidSet
from ..topologies import Edge
from .repair import repair

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster


@dataclass
class RoleChange:
    """What a switchover or failover did, with its timings (seconds)."""

    kind: str  # switchover | failover
    old_primary: str
    new_primary: str
    seconds: float = 0.0  # the whole command
    write_pause_s: float | None = None  # switchover: fenced -> the new primary accepts writes
    to_writable_s: float | None = None  # failover: command start -> the new primary accepts writes
    repointed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # down now: they follow the new primary once started
    left_out: dict[str, list[str]] = field(default_factory=dict)  # replica -> transactions the new primary lacks
    # failover: a replica whose SQL thread had stopped on an error before it, repointed but not waited for
    # (its error stops it again); replica -> that error
    still_broken: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    at: float = 0.0  # wall clock of the promotion
    proxy_s: float | None = None  # with a proxy: promotion -> its write endpoint routes to the new primary
    warnings: list[str] = field(default_factory=list)  # what the change breaks that was asked for anyway
    summary: str | None = None  # a shape's own sentence (a group's switchover moves no replication link)
    # the replication edges afterwards, where the shape is not the star ("mysql-s1 -> mysql-m -> mysql-s2")
    edges: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        if self.summary:
            return self.summary
        if self.kind == "switchover":
            following = [self.old_primary, *(n for n in self.repointed if n != self.old_primary)]
            who = f"replication runs {self.edges}" if self.edges else replicate_from(following, 'it')
            head = (f"switchover: {self.new_primary} is the primary; {who}; "
                    f"writes paused {self.write_pause_s:.3f}s; no acknowledged write lost")
        else:
            following = [n for n in self.repointed if n not in self.still_broken]
            who = f"replication runs {self.edges}" if self.edges else replicate_from(following, 'it')
            head = (f"failover: {self.new_primary} is the primary ({self.to_writable_s:.2f}s to accept writes); "
                    f"{who}; {self.old_primary} is "
                    f"demoted: replab start {self.old_primary} names what it wrote that nobody received "
                    "(replab check lists the acknowledged writes lost)")
        if self.proxy_s is not None:
            head += f"; the proxy's write endpoint routes to {self.new_primary} {self.proxy_s:.2f}s after the promotion"
        if self.pending:
            head += f"; {', '.join(self.pending)} down: they follow {self.new_primary} once started"
        for name, errno in self.still_broken.items():
            head += (f"; {name} is pointed at {self.new_primary} but its SQL thread stays stopped on error {errno}, "
                     f"as before the failover: replab diagnose {name}")
        for name, ranges in self.left_out.items():
            head += (f"; {name} holds transactions {self.new_primary} never had ({', '.join(ranges[:3])}): it is "
                     f"read-only and out of replication, rebuild it: replab rejoin {name} --rebuild")
        head += "".join(f"; warning: {w}" for w in self.warnings)
        return head


def replicate_from(names: list[str], source: str) -> str:
    """``mysql-s2 replicates from it`` / ``mysql-m and mysql-s2 replicate from it`` / ``no replica ...``."""
    if not names:
        return f"no replica replicates from {source}"
    who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{who} {'replicates' if len(names) == 1 else 'replicate'} from {source}"


def edges_text(edges: list[Edge]) -> str:
    """``mysql-s1 -> mysql-m -> mysql-s2`` when the edges make one path, else each edge, comma-separated
    (``none`` when there is no edge)."""
    if not edges:
        return "none"
    fed = {e.replica for e in edges}
    heads = [e.source for e in edges if e.source not in fed]
    path = heads[:1]
    while path and len(path) <= len(edges):
        nxt = [e for e in edges if e.source == path[-1] and not e.channel]
        if len(nxt) != 1:
            break
        path.append(nxt[0].replica)
    if len(heads) == 1 and len(path) == len(edges) + 1:
        return " -> ".join(path)
    return ", ".join(e.describe() for e in edges)


# --- GTIDs --------------------------------------------------------------------------------------------
def gtid_missing(have: str, want: str, by_server: bool = False) -> tuple[list[str], int]:
    """Transactions in ``want`` that ``have`` lacks: readable ranges and how many (see ``GtidSet``).

    MariaDB positions compare per domain; ``by_server`` compares binlog states per domain and server_id,
    which is what errant detection needs."""
    diff = GtidSet.parse(want).subtract(GtidSet.parse(have), by_source=by_server)
    return diff.ranges(by_source=by_server), diff.count()


# --- small helpers --------------------------------------------------------------------------------------
def _answers(cluster: Cluster, node: NodeInfo) -> bool:
    if cluster.engine.state(node) != RUNNING:
        return False
    try:
        with cluster.connect(node.name, timeout=2, read_timeout=3) as conn:
            db.scalar(conn, "SELECT 1")
        return True
    except (SqlError, pymysql.MySQLError):
        return False


def _executed(cluster: Cluster, name: str) -> str:
    with cluster.connect(name) as conn:
        return replication.executed_gtid(conn, cluster.flavor)


def _semi_sync(cluster: Cluster) -> bool:
    return bool(cluster.state.get("spec", {}).get("semi_sync"))


def _run(cluster: Cluster, name: str, statements: list[str]) -> None:
    with cluster.connect(name, read_timeout=60) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def fence(cluster: Cluster, name: str, timeout: float = 10.0) -> None:
    """Stop every write on ``name``: read-only, then end every other client session (MariaDB's admin
    accounts ignore read_only) and wait until they are gone, so its GTID position no longer moves."""
    flavor = cluster.flavor
    with cluster.connect(name, read_timeout=timeout + 30) as conn, conn.cursor() as cur:
        for statement in flavor.fence_statements():
            cur.execute(statement)
        sessions = [int(r["ID"]) for r in db.query(conn, flavor.sessions_query())]
        for sid in sessions:
            with contextlib.suppress(pymysql.MySQLError):  # it may have ended meanwhile
                cur.execute("KILL CONNECTION %s", (sid,))
        deadline = time.monotonic() + timeout
        while sessions and time.monotonic() < deadline:
            alive = {int(r["ID"]) for r in db.query(conn, flavor.sessions_query())}
            sessions = [s for s in sessions if s in alive]
            if sessions:
                time.sleep(0.01)


def _begin(cluster: Cluster, kind: str, old: str, new: str | None) -> None:
    cluster.state["transition"] = {"kind": kind, "from": old, "to": new, "at": time.time()}
    cluster.save()


def _end(cluster: Cluster) -> None:
    cluster.state.pop("transition", None)
    cluster.save()


def _promote(cluster: Cluster, name: str) -> None:
    statements = cluster.flavor.promote_statements()
    if _semi_sync(cluster):
        statements = [*statements[:-1], *cluster.flavor.semisync_role_statements(True), statements[-1]]
    _run(cluster, name, statements)


def _persist_role(cluster: Cluster, node: NodeInfo, primary: bool) -> None:
    """The node's config follows its role, so a restart keeps it (read_only, semi-sync side)."""
    options: dict[str, str | None] = {"read_only": None if primary else "1"}
    if _semi_sync(cluster):
        options.update(cluster.flavor.semisync_role_options(primary))
    cluster.engine.set_options(node, options)


def repoint(cluster: Cluster, replica: NodeInfo, primary: NodeInfo, *, former_primary: bool = False,
            holds_first: float | None = None) -> bool:
    """Make ``replica`` replicate from ``primary`` (GTID auto-positioning). For the local engine the
    replica's link relay is re-targeted too, so a replica that is down follows once started. False when the
    replica is down (nothing else to do now).

    ``holds_first`` (seconds): ``primary`` is not the primary but a replica of it (a chain's middle): the
    replica stops, then waits until its new source applied everything it has, since MariaDB refuses a replica
    whose position is not in its source's binary log yet (error 1236)."""
    flavor = cluster.flavor
    host, port = cluster.engine.source_address(primary, replica)
    _persist_role(cluster, replica, primary=False)
    if cluster.engine.state(replica) != RUNNING:
        return False
    statements = [flavor.stop_replica(), *flavor.fence_statements()]
    if former_primary:
        statements += flavor.demoted_replica_statements()
    if _semi_sync(cluster):
        statements += flavor.semisync_role_statements(False)
    user, password = cluster.credentials(db.REPL)
    with cluster.connect(replica.name, read_timeout=60) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
        if holds_first is not None:
            have = replication.executed_gtid(conn, flavor)
            with cluster.connect(primary.name, read_timeout=holds_first + 30) as src:
                ok, _st = replication.wait_applied(src, flavor, have, holds_first)
            if not ok:
                raise ReplabTimeout(f"{primary.name} did not apply within {holds_first:.0f}s everything "
                                    f"{replica.name} has, so {replica.name} cannot replicate from it yet",
                                    node=primary.name, hint=f"see: replab diagnose {primary.name}; then: replab "
                                    f"repoint {replica.name} --to {primary.name}")
        cur.execute(flavor.change_source(host, port), {"user": user, "password": password})
        cur.execute(flavor.start_replica())
    return True


def _record(cluster: Cluster, change: RoleChange) -> None:
    cluster.state.setdefault("role_changes", []).append(
        {"kind": change.kind, "old_primary": change.old_primary, "new_primary": change.new_primary,
         "at": change.at})


def _status(cluster: Cluster, name: str) -> Any:
    with cluster.connect(name, timeout=2, read_timeout=5) as conn:
        return replication.replica_status(conn, cluster.flavor)


def _require_replica(cluster: Cluster, name: str, what: str) -> NodeInfo:
    node = cluster.node(name)
    if node.role == roles.PRIMARY:
        raise ConfigError(f"{name} is already the primary", hint="name a replica, e.g. mysql-s1")
    if node.role != roles.REPLICA:
        raise ConfigError(f"{name} is not a replica ({node.role}: it left the cluster at a failover)",
                          hint=f"bring it back first: replab start {name} (or replab rejoin {name})")
    _require_promotable(cluster, name, what)
    if not _answers(cluster, node):
        state = cluster.engine.state(node)
        raise ConfigError(f"cannot {what} {name}: it is {'unreachable' if state == RUNNING else state}",
                          hint=f"bring it back ({bring_back(name, state)}) or choose another replica")
    return node


def _require_promotable(cluster: Cluster, name: str, what: str) -> None:
    """Refuse a node the shape does not let a role change promote (a chain's tail: it replicates from
    another replica, not from the primary), naming its source and the repoint that would make it one."""
    primary = cluster.primary.name
    if name in cluster.topology.promotable(primary, cluster.edges):
        return
    into = cluster.edges_into(name)
    source = ", ".join(e.source for e in into) or "no node"
    own = ", ".join(cluster.topology.promotable(primary, cluster.edges)) or "none"
    raise ConfigError(f"cannot {what} {name} on this {cluster.topology.name}: it replicates from {source}, not "
                      f"from the primary {primary}; only {primary}'s own replicas ({own}) can take its place",
                      hint=f"move it under the primary first: replab repoint {name} --to {primary}")


# --- switchover ----------------------------------------------------------------------------------------
def _group_switchover(cluster: Cluster, target: str, timeout: float) -> RoleChange:
    """A single-primary group's planned primary change: ``group_replication_set_as_primary`` on an ONLINE
    SECONDARY. The group itself moves the primary (the old one finishes its transactions first, new writes
    wait meanwhile); no replication link changes. Refused, nothing changed, unless ``target`` is ONLINE."""
    t0 = time.monotonic()
    with cluster.locked():
        cluster.node(target)  # an unknown name is refused with the members' names
        old = group.current_primary(cluster, max_age=0)
        if old is None:
            raise ConfigError("the group has no primary now (an election is under way, or it lost its quorum)",
                              hint="replab status shows each member's state; replab diagnose mysql-m explains")
        if old == target:
            raise ConfigError(f"{target} is already the group's primary", hint="name an ONLINE SECONDARY member "
                              "(replab status)")
        view = group.read_member(cluster, cluster.node(target))
        state = view.state if view is not None else "not answering"
        if state != group.ONLINE:
            raise ConfigError(f"{target} is {state}: a switchover needs an ONLINE member",
                              hint=f"wait until it is ONLINE (replab status), or start it: replab start {target}")
        uuid = str(cluster.sql(target, "SELECT @@server_uuid").rows[0][0])
        change = RoleChange("switchover", old, target)
        _begin(cluster, "switchover", old, target)
        try:
            t_call = time.monotonic()
            with cluster.connect(old, read_timeout=timeout + 30) as conn, conn.cursor() as cur:
                cur.execute("SELECT group_replication_set_as_primary(%s)", (uuid,))
            deadline = time.monotonic() + timeout
            while group.current_primary(cluster, max_age=0) != target:
                if time.monotonic() > deadline:
                    raise ReplabTimeout(f"the group did not make {target} its primary within {timeout:.0f}s",
                                        hint="replab status shows the members; the group keeps its primary")
                time.sleep(0.05)
            change.write_pause_s = round(time.monotonic() - t_call, 4)
            group.follow_primary(cluster)
            change.at = time.time()
            _record(cluster, change)
        finally:
            _end(cluster)
        change.seconds = round(time.monotonic() - t0, 3)
        change.steps.append(f"group_replication_set_as_primary({uuid}) on {old}: {target} PRIMARY after "
                            f"{change.write_pause_s:.3f}s")
        change.summary = (f"switchover: {target} is the group's primary ({old} is a SECONDARY); the group moved "
                          f"it in {change.write_pause_s:.3f}s (writes on {old} waited meanwhile); no replication "
                          "link changed; no acknowledged write lost")
        return change


def switchover(cluster: Cluster, target: str, *, max_lag: float = 10.0, timeout: float = 30.0,
               force: bool = False) -> RoleChange:
    """Planned promotion of replica ``target``: no acknowledged write is lost; writes pause meanwhile.

    Refused (nothing changed) when ``target`` is not a healthy running replica, is more than ``max_lag``
    seconds behind, or the primary does not answer (that is a failover); and, unless ``force`` (then the
    result says so), when ``target`` runs a newer server than a node that would replicate from it: a replica
    runs the same version as its primary or a newer one, the rule ``up`` enforces.
    """
    cluster.topology.require_role_change("switchover")  # refused before anything changes
    if group.is_group(cluster):
        return _group_switchover(cluster, target, timeout)
    with cluster.locked():
        roles.refresh(cluster)
        old = cluster.primary
        if not _answers(cluster, old):
            state = cluster.engine.state(old)
            raise ConfigError(f"the primary {old.name} does not answer ({'unreachable' if state == RUNNING else state})"
                              ": a switchover needs it",
                              hint=f"bring it back ({bring_back(old.name, state)}), or promote a replica without "
                              "it: replab failover")
        new = _require_replica(cluster, target, "switch over to")
        st = _status(cluster, new.name)
        if st is None or not (st.io_running and st.sql_running) or st.last_sql_errno:
            why = f"error {st.last_errno}: {st.last_error}" if st and st.last_errno else \
                "its replication threads are not running"
            raise ConfigError(f"{target} is broken: {why}", hint=f"see: replab diagnose {target}; repair it or "
                              "choose another replica")
        with cluster.connect(old.name) as conn:
            primary_hb, old_gtid = replication.heartbeat(conn), replication.executed_gtid(conn, cluster.flavor)
        with cluster.connect(new.name) as conn:
            lag = replication.lag_ms(primary_hb, replication.heartbeat(conn), st)
            _, behind = gtid_missing(replication.executed_gtid(conn, cluster.flavor), old_gtid)
        if lag is not None and lag > max_lag * 1000:
            raise ConfigError(f"{target} is {lag / 1000:.1f}s behind {old.name} ({behind} transaction(s) not "
                              f"applied yet; at most {max_lag:g}s allowed)",
                              hint=f"wait until it catches up (replab status), or pass --max-lag {lag // 1000 + 5}")
        older = older_than(cluster, new)
        if older and not force:
            raise ConfigError(f"{target} runs {older[0][2]}, newer than {_list_older(older)}: after a switchover "
                              f"{'they' if len(older) > 1 else 'it'} would replicate from a newer server, and a "
                              "replica must run the same version as its primary or a newer one (the rule up "
                              "enforces)", hint=f"upgrade {' and '.join(n for n, _, _ in older)} first, or pass "
                              "--force to switch over anyway")
        change = _switch(cluster, old, new, timeout)
        change.warnings += _version_warnings(older, new.name)
        return change


def _version(cluster: Cluster, node: NodeInfo) -> tuple[str, tuple[int, ...]] | None:
    """``node``'s server version (text, parsed) by ``SELECT VERSION()``; None when it does not answer."""
    if not _answers(cluster, node):
        return None
    with contextlib.suppress(SqlError, pymysql.MySQLError), cluster.connect(node.name, timeout=2) as conn:
        parsed = flavor_from_version_string(str(db.scalar(conn, "SELECT VERSION()") or "")).version
        return ".".join(map(str, parsed)), parsed
    return None


def older_than(cluster: Cluster, new: NodeInfo, only: list[NodeInfo] | None = None) -> list[tuple[str, str, str]]:
    """(node, its version, ``new``'s version) for each answering node that would replicate from ``new`` but
    runs an older server than it (by ``SELECT VERSION()``, whatever the engine); ``only``: these nodes."""
    mine = _version(cluster, new)
    if mine is None or not mine[1]:
        return []
    out = []
    for node in only if only is not None else cluster.nodes:
        if node.name == new.name or (only is None and node.role not in (roles.PRIMARY, roles.REPLICA)):
            continue
        theirs = _version(cluster, node)
        if theirs is not None and theirs[1] and theirs[1] < mine[1]:
            out.append((node.name, theirs[0], mine[0]))
    return out


def _list_older(older: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{name} ({v})" for name, v, _ in older)


def _version_warnings(older: list[tuple[str, str, str]], new: str) -> list[str]:
    return [f"{name} ({v}) replicates from {new} ({newer}), a newer server (--force)" for name, v, newer in older]


def _switch(cluster: Cluster, old: NodeInfo, new: NodeInfo, timeout: float) -> RoleChange:
    t0 = time.monotonic()
    change = RoleChange("switchover", old.name, new.name)
    before = list(cluster.edges)  # read now: a feed's roles.refresh re-derives them once the roles change
    after = cluster.topology.switchover_edges(old.name, new.name, before)  # declared by the shape
    _begin(cluster, "switchover", old.name, new.name)
    promoted = False
    try:
        fence(cluster, old.name)
        t_fenced = time.monotonic()
        final = _executed(cluster, old.name)
        change.steps.append(f"{old.name}: read-only, other sessions ended; its last transaction: {final}")
        with cluster.connect(new.name, read_timeout=timeout + 30) as conn:
            ok, _st = replication.wait_applied(conn, cluster.flavor, final, timeout)
        if not ok:
            raise ReplabTimeout(f"{new.name} did not apply {old.name}'s last transaction within {timeout:.0f}s; "
                                f"switchover abandoned, {old.name} is the primary again", node=new.name,
                                hint=f"see: replab diagnose {new.name}")
        _promote(cluster, new.name)
        promoted = True
        old.role, new.role = roles.REPLICA, roles.PRIMARY
        new.extra.pop("demoted", None)
        change.at = time.time()
        _record(cluster, change)
        _end(cluster)
        change.write_pause_s = round(time.monotonic() - t_fenced, 4)
        change.steps.append(f"{new.name}: applied it and was promoted (writable) after {change.write_pause_s:.3f}s")
        change.proxy_s = proxy.follow(cluster, say=change.steps.append)
    except BaseException:
        if not promoted:
            with contextlib.suppress(Exception):
                _run(cluster, old.name, cluster.flavor.unfence_statements())
            with contextlib.suppress(Exception):
                _end(cluster)
        raise
    _persist_role(cluster, new, primary=True)
    _follow_edges(cluster, change, new, before, after, former=old)
    change.seconds = round(time.monotonic() - t0, 3)
    return change


def _follow_edges(cluster: Cluster, change: RoleChange, new: NodeInfo, edges: list[Edge], after: list[Edge],
                  former: NodeInfo | None, leave: set[str] | None = None) -> None:
    """Make replication run along ``after`` (the edges the shape declares for the change): every replica
    whose source changed is re-pointed (the old primary after a switchover too), the others are left as they
    are; wait for the threads of those re-pointed. The edges are stored in cluster.json (status and check
    compare along them). Replicas in ``leave`` hold transactions ``new`` lacks: they stop replicating and
    stay read-only. ``edges``: the edges before the change."""
    before = {e.replica: e.source for e in edges if not e.channel}
    sources = {e.replica: e.source for e in after if not e.channel}
    # those under the new primary first: a node under another replica waits until that one caught up
    for node in sorted(cluster.nodes, key=lambda n: sources.get(n.name, new.name) != new.name):
        if node.role != roles.REPLICA:
            continue
        if leave and node.name in leave:
            node.extra["left_out"] = {"old_primary": change.old_primary, "new_primary": new.name,
                                      "at": change.at or time.time()}  # for diagnose and check
            _persist_role(cluster, node, primary=False)
            with contextlib.suppress(SqlError, pymysql.MySQLError):
                _run(cluster, node.name, [cluster.flavor.stop_replica(), *cluster.flavor.fence_statements()])
            continue
        source = sources.get(node.name, new.name)
        if node is not former and before.get(node.name) == source:
            continue  # its edge stays (a chain's s2 under s1 after a failover of m)
        if repoint(cluster, node, cluster.node(source), former_primary=node is former,
                   holds_first=None if source == new.name else 30.0):
            change.repointed.append(node.name)
        else:
            change.pending.append(node.name)
    if cluster.topology.name != "star":
        change.edges = edges_text(after)
    roles.set_edges(cluster, after)
    waited = [n for n in change.repointed if n not in change.still_broken]
    if waited:  # not one whose own error stops it again: that wait could only end in a timeout
        cluster.wait_threads(waited, timeout=30)
    change.steps.append(f"replication runs {change.edges}" if change.edges else replicate_from(waited, new.name))


# --- failover -----------------------------------------------------------------------------------------
@dataclass
class Candidate:
    name: str
    gtid: str  # applied (executed), once it applied what it received
    drained: bool  # it applied everything it received
    received: str = ""  # what its IO thread had received when it was stopped (Gtid_IO_Pos, Retrieved_Gtid_Set)
    stopped_io: bool = False  # its IO thread was running and the drain stopped it
    sql_errno: int = 0  # its SQL thread stopped on this error: it applies nothing more (the drain did not wait)

    def line(self, timeout: float, promoted: bool = False) -> str:
        """What it received and applied; if it did not apply all of it, why, and (only when it is the one
        promoted: its relay log goes with the promotion) that the rest is lost. A replica that follows the
        new primary fetches what it lacks from there (it said "within 10s: that is lost" of every one, and
        "within 10s" of a replica whose SQL thread had stopped on an error, which it did not wait for)."""
        text = f"{self.name}: received {self.received or 'nothing since its start'}, applied {self.gtid or 'nothing'}"
        if self.drained:
            return text
        why = (f": its SQL thread stopped on error {self.sql_errno}" if self.sql_errno else f" within {timeout:g}s")
        return f"{text} (did not apply all it received{why}{': promoted, it loses the rest' if promoted else ''})"


def _drain(cluster: Cluster, name: str, timeout: float) -> Candidate:
    """Stop a replica's receiving, let it apply what it received (its relay log), then read both positions.

    Receiving is stopped first: right after the primary died, its last bytes may still be on their way (in
    socket buffers, in the link relay), and a received position read while they arrive is already stale; a
    replica that went on receiving after the choice could end up with transactions the new primary lacks."""
    flavor = cluster.flavor
    with cluster.connect(name, read_timeout=timeout + 30) as conn:
        st = replication.replica_status(conn, flavor)
        stopped = st is not None and st.io_state != "No"  # running or (re)connecting
        if stopped:
            with conn.cursor() as cur:
                cur.execute(flavor.stop_io_thread())
            st = replication.replica_status(conn, flavor)
        received = (st.gtid_io_pos or "") if st is not None else ""
        drained, errno = True, 0
        if received:
            drained, last = replication.wait_applied(conn, flavor, received, timeout, received=True)
            if not drained and last is not None and not last.sql_running:
                errno = last.last_sql_errno
        return Candidate(name, replication.executed_gtid(conn, flavor), drained, received, stopped, errno)


def _resume_receiving(cluster: Cluster, names: list[str]) -> None:
    """Undo ``_drain`` (a refused failover changes nothing): start the replicas' IO threads again."""
    for name in names:
        with contextlib.suppress(SqlError, pymysql.MySQLError), cluster.connect(name) as conn, conn.cursor() as cur:
            cur.execute(cluster.flavor.start_io_thread())


def choose(candidates: list[Candidate]) -> Candidate:
    """The most advanced candidate: one that lacks nothing any other has (else the one lacking least)."""
    def lacking(c: Candidate) -> int:
        return sum(gtid_missing(c.gtid, o.gtid)[1] for o in candidates if o is not c)
    return min(candidates, key=lacking)  # min keeps node order among equals


def ahead_of(chosen: Candidate, candidates: list[Candidate]) -> dict[str, tuple[list[str], int]]:
    """Per other candidate, the transactions it applied that ``chosen`` lacks (ranges, count); only those
    that have some. Such a replica cannot follow ``chosen``: its data has writes the new primary never had."""
    out = {}
    for c in candidates:
        if c is not chosen:
            ranges, count = gtid_missing(chosen.gtid, c.gtid)
            if count:
                out[c.name] = (ranges, count)
    return out


def failover(cluster: Cluster, to: str | None = None, *, force: bool = False,
             drain_timeout: float = 10.0) -> RoleChange:
    """Promote a replica because the primary is gone: the most advanced one by GTID, or ``to``.

    Every reachable candidate (the old primary's own replicas, ``Topology.promotable``) stops receiving and
    applies what it received; then the one that lacks nothing the others applied is promoted. Refused
    (nothing changed) while the primary still answers (use ``switchover``, or ``force``: it is then fenced
    first), when ``to`` is not a reachable replica, or when
    ``to`` lacks transactions another replica has (unless ``force``: those are lost then, and a replica
    holding them is left out of replication, named, to be rebuilt with ``rejoin --rebuild``).
    """
    cluster.topology.require_role_change("failover")  # refused before anything changes
    t0 = time.monotonic()
    with cluster.locked():
        roles.refresh(cluster)
        old = cluster.primary
        alive = _answers(cluster, old)
        if alive and not force:
            raise ConfigError(f"the primary {old.name} still answers: a failover now would leave two primaries",
                              hint="for a planned change: replab switchover <replica>; to fence it and fail over "
                              "anyway: replab failover --force")
        chosen_node = _require_replica(cluster, to, "promote") if to else None
        # the candidates: the old primary's own replicas (every replica of a star; a chain's second node)
        before = list(cluster.edges)  # read now: a feed's roles.refresh re-derives them once the roles change
        promotable = cluster.topology.promotable(old.name, before)
        reachable = [n for n in cluster.replicas if n.name in promotable and _answers(cluster, n)]
        if not reachable:
            raise ReplicationError("no replica answers: there is nothing to promote",
                                   hint="start a replica (replab start mysql-s1) and try again")
        if alive:  # --force: nothing new may reach the replicas while they are compared
            with contextlib.suppress(SqlError, pymysql.MySQLError):
                fence(cluster, old.name)
        promoted, cands = False, []
        try:
            with ThreadPoolExecutor(max_workers=len(reachable)) as pool:
                cands = list(pool.map(lambda n: _drain(cluster, n.name, drain_timeout), reachable))
            best = choose(cands)
            if chosen_node is not None:
                mine = next(c for c in cands if c.name == chosen_node.name)
                gaps = ahead_of(mine, cands)
                if gaps and not force:
                    other, (ranges, count) = next(iter(gaps.items()))
                    raise ConfigError(f"{to} lacks {count} transaction(s) that {other} has "
                                      f"({', '.join(ranges[:3])}): promoting it would lose them",
                                      hint=f"promote {best.name} instead (replab failover), or pass --force")
                best = mine
            ahead = ahead_of(best, cands)
            new = cluster.node(best.name)
            change = RoleChange("failover", old.name, new.name)
            change.steps += [c.line(drain_timeout, promoted=c is best) for c in cands]
            _begin(cluster, "failover", old.name, new.name)
            try:
                if alive:
                    change.steps.append(f"{old.name}: still answered (--force): made read-only, sessions ended")
                _promote(cluster, new.name)
                promoted = True
                new.role, old.role = roles.PRIMARY, roles.DEMOTED
                change.at = time.time()
                old.extra["demoted"] = {"at": change.at, "new_primary": new.name}
                new.extra.pop("demoted", None)
                _record(cluster, change)
            finally:
                _end(cluster)
        finally:
            if not promoted:  # refused or failed before the promotion: replicas receive again
                _resume_receiving(cluster, [c.name for c in cands if c.stopped_io] if cands else
                                  [n.name for n in reachable])
        change.to_writable_s = round(time.monotonic() - t0, 3)
        change.steps.append(f"{new.name}: promoted at GTID {best.gtid} (writable after {change.to_writable_s:.2f}s)")
        change.proxy_s = proxy.follow(cluster, say=change.steps.append)
        _persist_role(cluster, new, primary=True)
        _persist_role(cluster, old, primary=False)  # if it comes back, it comes back read-only
        change.still_broken = {c.name: c.sql_errno for c in cands if c.sql_errno and c.name not in ahead
                               and c is not best}
        for name, (ranges, count) in ahead.items():
            change.left_out[name] = ranges
            change.steps.append(f"{name}: holds {count} transaction(s) {new.name} never had "
                                f"({', '.join(ranges[:3])}): left out of replication, read-only")
        after = cluster.topology.failover_edges(old.name, new.name, before, left_out=set(ahead))
        _follow_edges(cluster, change, new, before, after, former=None, leave=set(ahead))
        change.warnings += [w.replace(" (--force)", "") for w in _version_warnings(
            [o for o in older_than(cluster, new) if o[0] not in ahead], new.name)]  # a failover is not refused
        change.seconds = round(time.monotonic() - t0, 3)
        return change


# --- the old primary comes back ------------------------------------------------------------------------
@dataclass
class Errant:
    node: str
    primary: str
    gtids: list[str]
    count: int

    def sentence(self) -> str:
        if not self.count:
            return f"{self.node}: no errant transaction: everything it wrote reached {self.primary}"
        return (f"{self.node}: {self.count} errant transaction(s) that {self.primary} never had "
                f"({', '.join(self.gtids[:4])}{', ...' if len(self.gtids) > 4 else ''})")


def errant(cluster: Cluster, node: str) -> Errant:
    """Transactions in ``node``'s binary log that the current primary never had."""
    flavor = cluster.flavor
    primary = cluster.primary.name
    with cluster.connect(node) as conn:
        mine = str(db.scalar(conn, flavor.binlog_gtid_state()) or "")
    with cluster.connect(primary) as conn:
        theirs = str(db.scalar(conn, flavor.binlog_gtid_state()) or "")
    gtids, count = gtid_missing(theirs, mine, by_server=True)
    return Errant(node, primary, gtids, count)


def rejoin(cluster: Cluster, node: str, *, rebuild: bool | None = None, timeout: float = 120.0,
           force: bool = False) -> str:
    """Bring a demoted primary (or a replica left behind) back as a replica of the current primary.

    It is started if down and fenced at once. Without errant transactions it is re-pointed and catches up.
    With them: ``rebuild=True`` rebuilds it from the primary (its errant writes are discarded),
    ``rebuild=None`` (what ``replab start`` does) leaves it fenced and says so, ``rebuild=False`` refuses.
    A node that runs an older server than the primary would break the rule ``up`` and ``switchover`` keep
    (a replica runs its primary's version or a newer one): it stays fenced (``rebuild=None``) or is refused,
    unless ``force`` (then the result says what it broke).
    """
    cluster.topology.require_role_change("rejoin")  # refused before anything changes
    info = cluster.node(node)
    roles.refresh(cluster)
    if info.role == roles.PRIMARY:
        raise ConfigError(f"{node} is the primary; rejoin brings back a former primary or a replica")
    primary = cluster.primary
    cluster.require_running(primary.name)
    if cluster.engine.state(info) == STOPPED:
        cluster.start_node(node)
    elif cluster.engine.state(info) != RUNNING:
        raise NodeStateError(f"{node} is {cluster.engine.state(info)}", node=node, hint=f"replab resume {node}")
    _run(cluster, node, cluster.flavor.fence_statements())
    found = errant(cluster, node)
    if found.count and not rebuild:
        text = (f"{found.sentence()}; it stays read-only and out of replication: rebuild it from "
                f"{primary.name} with: replab rejoin {node} --rebuild (its errant writes are discarded)")
        if rebuild is False:
            raise ReplicationError(text, node=node, hint=f"replab rejoin {node} --rebuild")
        return text
    older = older_than(cluster, primary, only=[info])
    if older and not force:
        _, mine, theirs = older[0]
        text = (f"{node} runs {mine}, older than the primary {primary.name} ({theirs}): a replica must run the "
                "same version as its primary or a newer one (the rule up enforces)")
        if rebuild is None:  # replab start: it runs, fenced, out of replication
            return (f"{found.sentence()}; {text}: it stays read-only and out of replication; upgrade it, or "
                    f"replab rejoin {node} --force")
        raise ConfigError(text, hint=f"upgrade {node} first, or pass --force to rejoin it anyway")
    warning = "".join(f"; warning: {w}" for w in _version_warnings(older, primary.name))
    was_primary = info.role == roles.DEMOTED
    # where it replicates from: the shape says (the star's primary; a chain's tail, so nothing else moves)
    others = [e for e in cluster.edges if e.replica != node]
    source = cluster.node(cluster.topology.rejoin_source(node, primary.name, others))
    if source is not primary and not found.count:
        _wait_source_holds(cluster, node, source, timeout)
    info.role = roles.REPLICA
    info.extra.pop("demoted", None)
    info.extra.pop("left_out", None)
    joined = [*others, Edge(source.name, node)]
    where = "" if cluster.topology.name == "star" else f" (replication runs {edges_text(joined)})"
    roles.set_edges(cluster, joined)
    if found.count:
        report = repair(cluster, node, timeout=timeout)
        cluster.save()
        return (f"{found.sentence()}; rebuilt from {report.source or primary.name} in {report.seconds:.1f}s "
                f"({'verified' if report.verified else 'NOT verified'}): it replicates from {source.name}{where}"
                + warning + proxy.rejoined(cluster, node))
    repoint(cluster, info, source, former_primary=was_primary)
    cluster.save()
    cluster.wait_threads([node], timeout=30)
    caught = cluster.wait_caught_up(timeout=timeout, names=[node]).get(node, False)
    return (f"{found.sentence()}; rejoined as a replica of {source.name}{where}"
            + ("" if caught else f" but not caught up after {timeout:.0f}s (replab diagnose {node})")
            + warning + proxy.rejoined(cluster, node))


def _wait_source_holds(cluster: Cluster, node: str, source: NodeInfo, timeout: float) -> None:
    """Before ``node`` replicates from ``source`` (not the primary: a chain's tail), wait until ``source``
    holds every transaction ``node`` has (they reached it from the primary); MariaDB refuses a replica
    whose position is ahead of its source's binary log. Refused (nothing changed) when it does not."""
    cluster.require_running(source.name)
    have = _executed(cluster, node)
    if not cluster.wait_caught_up(timeout, names=[source.name], gtid=have)[source.name]:
        raise ReplabTimeout(f"{source.name} did not receive everything {node} has within {timeout:.0f}s: {node} "
                            f"cannot replicate from it yet", node=source.name,
                            hint=f"see: replab diagnose {source.name}; then replab rejoin {node} again")


# --- observing -------------------------------------------------------------------------------------------
def semisync_status(cluster: Cluster, node: str) -> dict[str, Any]:
    """The source side of semi-sync on ``node``: on (bool), clients, fallbacks (times it went async),
    acknowledged and not-acknowledged commits."""
    with cluster.connect(node, timeout=2, read_timeout=5) as conn:
        return replication.semisync_status(conn, cluster.flavor)
