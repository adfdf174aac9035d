"""Faults and their heal: kill, crash, stop/start/restart, pause/resume, partition/heal (both ways or one),
link conditions (delay, jitter, rate), schema and data drift.

Every function checks its input first (unknown node, wrong state, bad identifier, a fault the engine does
not declare: a ``ReplabError`` and nothing changed), then acts through the cluster's engine, then returns
one readable sentence saying what it did. The nemesis is engine-neutral: how a node is killed, frozen or cut
off is the engine's business (a local link relay, a Docker network, an inventory command). A nemesis never
decides a verdict: ``diagnose`` and the checker do that.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import galera, group, proxy, replication, roles
from ..core import links
from ..core.config import quote_ident, validate_identifier
from ..core.errors import ConfigError, NodeStateError, NotSupported, SqlError
from ..engines.base import PAUSED, RUNNING, STOPPED, NodeInfo, bring_back
from ..servers import db
from ..servers.gtid import transactions_between
from . import edges, failover, members

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

_TYPE = re.compile(
    r"^(TINYINT|SMALLINT|MEDIUMINT|INT|INTEGER|BIGINT|DECIMAL|FLOAT|DOUBLE|CHAR|VARCHAR|BINARY|VARBINARY|"
    r"TINYTEXT|TEXT|MEDIUMTEXT|LONGTEXT|BLOB|DATE|DATETIME|TIMESTAMP|TIME|YEAR|JSON|BIT)"
    r"(\(\d{1,5}(,\d{1,2})?\))?( UNSIGNED)?$",
    re.IGNORECASE,
)


def _done(cluster: Cluster, sentence: str) -> str:
    """The result sentence (returned, not said: the caller prints it once, where it belongs)."""
    return sentence


def _state(cluster: Cluster, name: str) -> str:
    return cluster.engine.state(cluster.node(name))


# --- process faults --------------------------------------------------------------------------------
def kill(cluster: Cluster, node: str) -> str:
    """SIGKILL the node's server (no clean shutdown; InnoDB recovers at the next start)."""
    if node == proxy.PROXY_NODE:
        return proxy.fault(cluster, "kill")
    info = cluster.node(node)
    cluster.engine.require("kill", node)
    if _state(cluster, node) == STOPPED:
        raise NodeStateError(f"{node} is already down", node=node, hint=f"start it with: replab start {node}")
    how = cluster.engine.kill(info)
    return _done(cluster, f"{node}: killed ({how}); acknowledged writes are in its redo log "
                          f"and binary log; bring it back with: replab start {node}")


def stop(cluster: Cluster, node: str) -> str:
    """Clean shutdown of the node's server."""
    if node == proxy.PROXY_NODE:
        return proxy.fault(cluster, "stop")
    cluster.engine.require("stop", cluster.node(node).name)
    if _state(cluster, node) == STOPPED:
        raise NodeStateError(f"{node} is already stopped", node=node, hint=f"start it with: replab start {node}")
    cluster.stop_node(node)
    return _done(cluster, f"{node}: stopped cleanly")


def seconds_text(seconds: float) -> str:
    """Seconds as every catch-up figure prints them: two decimals at most (``0.34``, ``2``, ``0.3``)."""
    return f"{round(seconds, 2):.2f}".rstrip("0").rstrip(".")


def catch_up_phrase(missed: int | None, seconds: float | None, *, exact: bool = True) -> str:
    """The one way a catch-up is printed (by ``start``, the scenario steps and metrics, the summary and the
    report): the time from when the replica replicated again after an outage until it had applied every
    transaction the primary had then, and how many it had missed (``exact`` False: at least that many)."""
    count = None if missed is None else f"{'' if exact else 'at least '}{missed} transactions missed"
    if seconds is None:
        return f"{count}, not caught up" if count else "not caught up"
    head = f"caught up in {seconds_text(seconds)} s"
    if count is None:
        return head
    shown = round(seconds, 2)  # the rate of the figure printed, so every place that prints it agrees
    rate = f", applied at ~{missed / shown:,.0f} tx/s" if missed and shown > 0 else ""
    return f"{head}: {count}{rate}"


def start(cluster: Cluster, node: str, *, catch_up: float = 60.0) -> str:
    """Start a stopped or killed node. A replica reconnects and fetches what it missed: the sentence says
    how long it took to catch up with the primary and at what rate it applied (``catch_up`` = 0: don't wait).
    """
    return start_measured(cluster, node, catch_up=catch_up)[0]


def start_measured(cluster: Cluster, node: str, *, catch_up: float = 60.0) -> tuple[str, dict[str, Any] | None]:
    """``start``, and the catch-up it measured (``catch_up_stats``; None when it did not measure one)."""
    if node == proxy.PROXY_NODE:
        return proxy.fault(cluster, "start"), None
    state = _state(cluster, node)
    if state == PAUSED:
        raise NodeStateError(f"{node} is paused, not stopped", node=node, hint=f"replab resume {node}")
    if state == RUNNING:
        raise NodeStateError(f"{node} is already running", node=node)
    if cluster.node(node).role == roles.DEMOTED:  # the old primary is back after a failover
        return failover.rejoin(cluster, node, rebuild=None, timeout=catch_up or 60.0), None
    info = cluster.node(node)
    if group.is_group(cluster):
        return _start_member(cluster, node), None
    if cluster.topology.name != "star":
        return _start_shaped(cluster, node, catch_up), None
    measure = info.role == "replica" and catch_up > 0 and _state(cluster, cluster.primary.name) == RUNNING
    t0 = time.monotonic()
    # a replica comes up with its threads held, so the position it restarts from is read exactly
    held = cluster.start_node(node, hold_replication=measure)
    started = time.monotonic() - t0
    if info.role != "replica":
        return _done(cluster, f"{node}: started in {started:.1f}s; replicas reconnect to it within a few "
                              "seconds"), None
    if not measure:
        return _done(cluster, f"{node}: started in {started:.1f}s; replication resumes from its saved GTID "
                              "position"), None
    c = catch_up_stats(cluster, node, catch_up, held=held)
    c["exact"] = held
    if not c["caught_up"]:
        return _done(cluster, f"{node}: started in {started:.1f}s but has not caught up with "
                              f"{cluster.primary.name} (waited {c['seconds']:.1f}s); see: replab diagnose {node}"), c
    phrase = catch_up_phrase(c["transactions"], c["seconds"], exact=held)
    return _done(cluster, f"{node}: started in {started:.1f}s; {phrase} ({cluster.primary.name}'s position "
                          "when it came back)"), c


def _start_member(cluster: Cluster, node: str) -> str:
    """Start a group member: it joins the group again (distributed recovery: incremental from a donor, or
    clone) or, when no other member is ONLINE, bootstraps it; the sentence says which and how long."""
    t0 = time.monotonic()
    cluster.start_node(node)
    rejoin = (cluster.state.get("rejoins") or [{}])[-1]
    return _done(cluster, f"{node}: started and ONLINE in the group in {time.monotonic() - t0:.1f}s "
                          f"(joining took {rejoin.get('seconds', 0):.2f}s: {rejoin.get('recovery', '?')})")


def _start_shaped(cluster: Cluster, node: str, catch_up: float) -> str:
    """Start a node of a shape other than the star: it reconnects along its own edges; the sentence says
    how long it took until it held what every writer it must hold had written when it started (at least
    that many transactions: its threads were not held)."""
    t0 = time.monotonic()
    cluster.start_node(node)
    started = time.monotonic() - t0
    sources = [e.source for e in cluster.edges_into(node)]
    if cluster.topology.name == "galera":  # it got what it missed from a donor before it answered
        return _done(cluster, f"{node}: started in {started:.1f}s; rejoined the cluster by "
                              f"{galera.join_method(cluster.node(node))}")
    if not sources or catch_up <= 0:
        return _done(cluster, f"{node}: started in {started:.1f}s; the nodes that replicate from it reconnect "
                              "within a few seconds")
    with cluster.connect(node) as conn:
        before = replication.executed_gtid(conn, cluster.flavor)
    t1 = time.monotonic()
    wanted = {w: g for w, g in cluster.writer_positions().items() if w != node and node in cluster.holders(w)}
    ok, todo = True, 0
    for gtid in wanted.values():
        ok = cluster.wait_caught_up(max(0.0, catch_up - (time.monotonic() - t1)), names=[node],
                                    gtid=gtid).get(node, False) and ok
        todo += transactions_between(before, gtid)
    seconds = time.monotonic() - t1
    if not ok:
        return _done(cluster, f"{node}: started in {started:.1f}s but has not caught up with "
                              f"{', '.join(wanted) or 'its sources'} (waited {seconds:.1f}s); see: replab status")
    return _done(cluster, f"{node}: started in {started:.1f}s; applied at least {todo} transaction(s) it missed "
                          f"from {', '.join(sources)} in {seconds:.2f}s and holds every write of "
                          f"{', '.join(wanted) or 'its sources'}")


def catch_up_stats(cluster: Cluster, node: str, timeout: float = 60.0, held: bool = False) -> dict[str, Any]:
    """Wait until ``node`` has applied what the primary had now; how long it took and how fast it went.

    ``held``: the replica's threads are stopped (``Cluster.start_node(hold_replication=True)``): its
    position is read first and replication started here, so the count is exact. Otherwise it may already
    have applied some, and the count is a lower bound.
    """
    with cluster.connect(node) as conn:
        before = replication.executed_gtid(conn, cluster.flavor)
    with cluster.connect(cluster.primary.name) as conn:
        target = replication.executed_gtid(conn, cluster.flavor)
    t0 = time.monotonic()
    if held:
        with cluster.connect(node) as conn:
            db.query(conn, cluster.flavor.start_replica())
    # a SQL thread stopped by an error ends the wait early (see replication.wait_applied)
    ok = not target or cluster.wait_caught_up(timeout, names=[node], gtid=target).get(node, False)
    seconds = time.monotonic() - t0
    todo = transactions_between(before, target)
    return {"caught_up": ok, "seconds": seconds, "transactions": todo,
            "rate": todo / seconds if seconds > 0 else 0.0}


def restart(cluster: Cluster, node: str) -> str:
    """Clean shutdown, then start."""
    cluster.engine.require("stop", cluster.node(node).name)
    if _state(cluster, node) == RUNNING:
        cluster.stop_node(node)
    elif _state(cluster, node) == PAUSED:
        raise NodeStateError(f"{node} is paused", node=node, hint=f"replab resume {node} first")
    cluster.start_node(node)
    return _done(cluster, f"{node}: restarted (clean shutdown, then start)")


def pause(cluster: Cluster, node: str) -> str:
    """Freeze the server (SIGSTOP, docker pause): it keeps its connections but answers nothing (a hung server)."""
    if node == proxy.PROXY_NODE:
        return proxy.fault(cluster, "pause")
    cluster.engine.require("pause", cluster.node(node).name)
    state = _state(cluster, node)
    if state == STOPPED:
        raise NodeStateError(f"{node} is down; cannot pause it", node=node, hint=f"replab start {node}")
    how = cluster.engine.pause(cluster.node(node))
    return _done(cluster, f"{node}: paused ({how}); connections stay open but nothing answers; "
                          f"replab resume {node} to continue")


def resume(cluster: Cluster, node: str) -> str:
    """Let a paused server run again."""
    if node == proxy.PROXY_NODE:
        return proxy.fault(cluster, "resume")
    cluster.engine.require("pause", cluster.node(node).name)
    if _state(cluster, node) != PAUSED:
        raise NodeStateError(f"{node} is not paused (it is {_state(cluster, node)})", node=node)
    cluster.engine.resume(cluster.node(node))
    return _done(cluster, f"{node}: resumed")


# --- network faults --------------------------------------------------------------------------------
def partitioned(cluster: Cluster) -> list[str]:
    """Nodes cut off now (as the engine applies it: for the local engine, replicas whose link is cut; on a
    member network, members some cut touches)."""
    if members.has_net(cluster):
        return members.cut_members(cluster)
    if edges.applies(cluster):
        return edges.partitioned(cluster)
    return cluster.engine.partitioned(cluster.nodes)


def partition(cluster: Cluster, node: str, direction: str | None = None, also: list[str] | None = None,
              source: str | None = None) -> str:
    """Cut ``node`` off: a replica from the primary, or the primary from every replica; both ways, or one
    (``direction``: ``to-replica``, the replica hears nothing; ``to-primary``, the primary hears nothing).
    Group/Galera members (a member network): ``node`` and each of ``also`` from every other member
    (``direction``: both, out, in); see members.isolate. Chain, fan-in, active-active, ring: the edges into
    ``node``, or the one from ``source`` (see edges.py)."""
    if members.has_net(cluster):
        _no_source(cluster, source, "partition")
        return _done(cluster, members.isolate(cluster, [node, *(also or [])], direction))
    if also:
        raise ConfigError(f"partition takes one node on a {cluster.topology.name} cluster (got {node} "
                          f"{' '.join(also)})", hint=f"replab partition {node}")
    info = cluster.node(node)
    cluster.topology.require_fault("partition")
    if edges.applies(cluster):
        chosen = edges.edges_of(cluster, node, source)
        cluster.engine.require("partition", node)
        if len(links.directions(direction)) == 1:
            cluster.engine.require("partition-one-way", node)
        order = [e.source for e in chosen] + [n.name for n in cluster.nodes]
        return _done(cluster, edges.partition(cluster, node, direction, source, _net_timeout(cluster, order)))
    _no_source(cluster, source, "partition")
    ways = links.directions(direction)
    cluster.engine.require("partition", node)
    if len(ways) == 1:
        cluster.engine.require("partition-one-way", node)
    # read before the cut (a node cut off may be out of replab's reach too); every node has the same setting
    other = cluster.primary.name if info.role == "replica" else (cluster.replicas[0].name if cluster.replicas else node)
    timeout = _net_timeout(cluster, [other, *(n.name for n in cluster.nodes if n.name != other)])
    how = cluster.engine.partition(info, cluster.nodes, direction if len(ways) == 1 else None)
    after = f"slave_net_timeout={timeout}s" if timeout else "slave_net_timeout (not read: no node answers)"
    if ways == (links.TO_PRIMARY,):
        notice = "its IO thread keeps receiving events and heartbeats"
    else:
        notice = f"the IO thread notices after {after}"
    return _done(cluster, f"{node}: partitioned: {how}; {notice}; heal with: replab heal {node}")


def heal(cluster: Cluster, node: str | None = None, source: str | None = None) -> str:
    """Restore what ``partition`` cut (everything cut when ``node`` is None; on the shapes with edges, only
    the edge from ``source`` into ``node`` when given)."""
    if members.has_net(cluster):
        _no_source(cluster, source, "heal")
        return _done(cluster, members.heal(cluster, [node] if node else None))
    cluster.topology.require_fault("heal")
    if edges.applies(cluster):
        if node is not None:
            cluster.engine.require("partition", node)
        return _done(cluster, edges.heal(cluster, node, source))
    _no_source(cluster, source, "heal")
    if node is None:
        cut = partitioned(cluster)
        if not cut:
            return _done(cluster, "nothing to heal: no link is cut")
    else:
        cluster.engine.require("partition", node)
        cut = [node]
    healed: list[str] = []
    for name in cut:
        if name not in healed:
            healed += cluster.engine.heal(cluster.node(name), cluster.nodes)
    others = [n for n in healed if n != cluster.primary.name]
    where = f"{', '.join(others)} can reach {cluster.primary.name} again" if others else \
        f"{cluster.primary.name} is back on the network"
    # on a stopped cluster it said 'replication resumes where it stopped' with nothing running
    down = [n for n in [cluster.primary.name, *others] if _state(cluster, n) != RUNNING]
    when = "" if not down else f" once {' and '.join(down)} {'runs' if len(down) == 1 else 'run'} again " \
        f"({'; '.join(bring_back(n, _state(cluster, n)) for n in down)})"
    return _done(cluster, f"healed: {where}; replication resumes where it stopped{when}")


def _no_source(cluster: Cluster, source: str | None, command: str) -> None:
    """``--from`` names one of several sources of a node: refused where each node has one link only."""
    if source is not None:
        raise ConfigError(f"--from applies to the chain, fan-in, active-active and ring shapes (a node with a "
                          f"source of its own); this is a {cluster.topology.name}",
                          hint=f"replab {command} NODE, without --from")


def _net_timeout(cluster: Cluster, nodes: list[str]) -> str | None:
    """The replicas' slave_net_timeout (every node has the same), from the first of ``nodes`` that answers."""
    for node in nodes:
        if cluster.engine.state(cluster.node(node)) != RUNNING:
            continue
        try:
            return str(cluster.sql(node, "SELECT @@GLOBAL.slave_net_timeout", timeout=3).rows[0][0])
        except (SqlError, NodeStateError):
            continue
    return None


# --- link conditions -------------------------------------------------------------------------------
def _link_of(cluster: Cluster, node: str) -> NodeInfo:
    """The replica ``node`` whose link is meant; the primary has none of its own (say which there are)."""
    info = cluster.node(node)
    cluster.engine.require("shape", node)
    names = cluster.engine.links(cluster.nodes)
    if node not in names:
        have = ", ".join(f"{n} ({n} <-> {_source(cluster, n)})" for n in names) or "none"
        why = "is the primary: it has no link of its own" if info.role == "primary" else "has no link replab can shape"
        raise ConfigError(f"{node} {why}; the links are: {have}", hint=f"replab link {names[0]}" if names else None)
    return info


def _source(cluster: Cluster, name: str) -> str:
    """The node at the other end of ``name``'s link (the engine knows where its link leads)."""
    port = cluster.node(name).extra.get("relay_port")
    found = cluster.engine.source_node("127.0.0.1", int(port), cluster.nodes) if port else None
    return found or cluster.primary.name


def link_conditions(cluster: Cluster, node: str) -> dict[str, links.Conditions]:
    """``node``'s link conditions per direction as applied now (a plain direction is left out)."""
    state = cluster.engine.link_state(_link_of(cluster, node)) or {}
    got = {d: links.Conditions.from_dict(c) for d, c in (state.get("conditions") or {}).items()}
    return {d: c for d, c in got.items() if c}


def link(cluster: Cluster, node: str, *, delay: str | float | None = None, jitter: str | float | None = None,
         rate: str | float | None = None, direction: str | None = None, clear: bool = False,
         source: str | None = None) -> str:
    """Shape the link between replica ``node`` and its source: ``delay`` (added to each direction shaped),
    ``jitter``, ``rate`` (e.g. ``"20ms"``, ``"5ms"``, ``"2mbit"``), both directions or one. ``clear``: a plain
    link again (that direction, or both). Nothing given: say what the link is now. Chain, fan-in,
    active-active, ring: each edge into ``node`` (or the one from ``source``), see edges.py."""
    cluster.topology.require_fault("link")
    given = any(v is not None for v in (delay, jitter, rate))
    if clear and given:
        raise ConfigError("--clear takes no --delay, --jitter or --rate: it makes the link plain")
    new = links.conditions(delay, jitter, rate) if given else links.Conditions()
    ways = links.directions(direction)
    if edges.applies(cluster):
        cluster.engine.require("shape", node)
        return _done(cluster, edges.link(cluster, node, source, new if given else None, ways, clear))
    _no_source(cluster, source, "link")
    info = _link_of(cluster, node)
    current = link_conditions(cluster, node)
    what = f"the link {node} <-> {_source(cluster, node)}"
    if not given and not clear:
        return _done(cluster, f"{what}: {links.describe(current)}{_cut_text(cluster, info)}")
    wanted = dict(current)
    for way in ways:
        wanted[way] = new
    how = cluster.engine.shape(info, {d: c.to_dict() for d, c in wanted.items() if c})
    applied = link_conditions(cluster, node)
    verb = "plain again" if clear and not applied else links.describe(applied)
    rtt = sum(applied[d].delay_ms for d in applied)
    extra = f" (+{rtt:g} ms to each round trip)" if rtt else ""
    return _done(cluster, f"{what}: {verb}{extra}, by the {how}")


def _cut_text(cluster: Cluster, info: NodeInfo) -> str:
    cut = (cluster.engine.link_state(info) or {}).get("cut") or []
    if not cut:
        return ""
    return "; cut both ways" if len(cut) == 2 else f"; cut {cut[0]}"


def links_state(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """Every link the engine knows, by replica: ``{"cut": [...], "conditions": {...}, "mechanism": ...}``
    (on the shapes with edges: by link name, ``Edge.link``, with its source, replica and channel)."""
    if edges.applies(cluster):
        return {s["link"]: s for s in edges.states(cluster)}
    out = {}
    for name in cluster.engine.links(cluster.nodes):
        state = cluster.engine.link_state(cluster.node(name))
        if state is not None:
            out[name] = state
    return out


# --- host crash ------------------------------------------------------------------------------------
def crash(cluster: Cluster, node: str) -> str:
    """The node's host dies: SIGKILL its server and drop whatever the links hold from it, so what it had sent
    but they had not yet delivered never arrives (``kill`` = the process dies on a live host, whose kernel
    still delivers what it had sent)."""
    info = cluster.node(node)
    cluster.topology.require_fault("crash")
    cluster.engine.require("crash", node)
    if _state(cluster, node) == STOPPED:
        raise NodeStateError(f"{node} is already down", node=node, hint=f"start it with: replab start {node}")
    if edges.applies(cluster):
        return _done(cluster, edges.crash(cluster, node))
    how = cluster.engine.crash(info, cluster.nodes)
    return _done(cluster, f"{node}: crashed ({how}); what it acknowledged but no replica had received is gone "
                          f"with it; bring it back with: replab start {node}")


# --- drift -----------------------------------------------------------------------------------------
@dataclass
class _Target:
    table: str
    column: str | None = None
    type: str | None = None
    count: int = 0


def _parse(kind: str, value: str) -> _Target:
    if kind in ("drop_column", "add_column", "modify_column"):
        spec, _, col_type = value.partition(":")
        table, dot, column = spec.partition(".")
        if not dot:
            raise ConfigError(f"--{kind.replace('_', '-')} wants TABLE.COLUMN{':TYPE' if kind != 'drop_column' else ''}"
                              f" (got {value!r})")
        validate_identifier(table, "table name")
        validate_identifier(column, "column name")
        if kind == "drop_column":
            if col_type:
                raise ConfigError(f"--drop-column takes TABLE.COLUMN only (got {value!r})")
            return _Target(table, column)
        col_type = col_type.strip()
        if not _TYPE.match(col_type):
            raise ConfigError(f"invalid column type {col_type!r}: use a plain type like INT, VARCHAR(64), "
                              "DECIMAL(10,2), BIGINT UNSIGNED")
        return _Target(table, column, col_type.upper())
    table, colon, count = value.partition(":")
    validate_identifier(table, "table name")
    if not colon or not count.isdigit() or not 1 <= int(count) <= 1_000_000:
        raise ConfigError(f"--{kind.replace('_', '-')} wants TABLE:N with N between 1 and 1000000 (got {value!r})")
    return _Target(table, count=int(count))


def _columns(conn: pymysql.connections.Connection, schema: str, table: str) -> list[dict[str, Any]]:
    return db.query(conn, "SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_KEY AS ckey, "
                          "CHARACTER_MAXIMUM_LENGTH AS maxlen, EXTRA AS extra FROM information_schema.COLUMNS "
                          "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (schema, table))


_NUMERIC = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double"}
_STRING = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}


def _row_statements(kind: str, t: _Target, cols: list[dict[str, Any]], conn: Any, tq: str) -> tuple[str, str]:
    pks = [c for c in cols if c["ckey"] == "PRI"]
    if len(pks) != 1 or pks[0]["data_type"] not in _NUMERIC:
        raise NotSupported(f"table {t.table} needs a single integer primary key for row drift")
    pk = quote_ident(pks[0]["name"])
    if kind == "delete_rows":
        keys = [r["k"] for r in db.query(conn, f"SELECT {pk} AS k FROM {tq} ORDER BY {pk} LIMIT {t.count}")]
        if not keys:
            raise ConfigError(f"table {t.table} is empty on this node: no row to delete")
        return (f"DELETE FROM {tq} ORDER BY {pk} LIMIT {t.count}",
                f"deleted {len(keys)} row(s) of {t.table} ({pks[0]['name']} {keys[0]}..{keys[-1]})")
    if kind == "update_rows":
        target = next((c for c in cols if c["ckey"] != "PRI" and (c["data_type"] in _NUMERIC | _STRING)), None)
        if target is None:
            raise NotSupported(f"table {t.table} has no numeric or text column to change")
        cq = quote_ident(target["name"])
        if target["data_type"] in _NUMERIC:
            expr = f"COALESCE({cq}, 0) + 1"
        else:
            expr = f"LEFT(CONCAT('drift-', COALESCE({cq}, '')), {int(target['maxlen'] or 64)})"
        return (f"UPDATE {tq} SET {cq} = {expr} ORDER BY {pk} LIMIT {t.count}",
                f"changed column {target['name']} in the first {t.count} row(s) of {t.table}")
    top = int(db.scalar(conn, f"SELECT COALESCE(MAX({pk}), 0) FROM {tq}"))
    values = ", ".join(f"({top + i})" for i in range(1, t.count + 1))
    return (f"INSERT INTO {tq} ({pk}) VALUES {values}",
            f"inserted {t.count} row(s) into {t.table} ({pks[0]['name']} {top + 1}..{top + t.count}) that the "
            f"primary does not have")


def drift(cluster: Cluster, node: str, *, drop_column: str | None = None, add_column: str | None = None,
          modify_column: str | None = None, delete_rows: str | None = None, update_rows: str | None = None,
          insert_rows: str | None = None, binlog: bool = False, force: bool = False) -> str:
    """Change one node behind replication's back: a schema change or a few rows, local (``sql_log_bin=0``)
    unless ``binlog`` (then it is an errant transaction in the node's binary log).

    Exactly one of the keyword changes must be given: ``drop_column="events.name"``,
    ``add_column="events.x:INT"``, ``modify_column="events.counter:BIGINT"``, ``delete_rows="events:5"``,
    ``update_rows="events:5"``, ``insert_rows="events:5"``. Refused on the primary unless ``force``.
    """
    given = {k: v for k, v in dict(drop_column=drop_column, add_column=add_column, modify_column=modify_column,
                                   delete_rows=delete_rows, update_rows=update_rows,
                                   insert_rows=insert_rows).items() if v is not None}
    if len(given) != 1:
        raise ConfigError("drift needs exactly one change: --drop-column, --add-column, --modify-column, "
                          "--delete-rows, --update-rows or --insert-rows")
    (kind, value), = given.items()
    target = _parse(kind, value)
    info = cluster.node(node)
    if info.role == "primary" and not force:
        raise ConfigError(f"{node} is the primary: drift there is replicated (or diverges every replica)",
                          hint="drift a replica, or pass --force to change the primary anyway")
    cluster.require_running(node)
    schema = cluster.database
    tq = f"{quote_ident(schema)}.{quote_ident(target.table)}"
    with cluster.connect(node) as conn:
        cols = _columns(conn, schema, target.table)
        if not cols:
            raise ConfigError(f"table {schema}.{target.table} does not exist on {node}")
        names = [c["name"].lower() for c in cols]
        if kind in ("drop_column", "modify_column") and target.column and target.column.lower() not in names:
            raise ConfigError(f"column {target.table}.{target.column} does not exist on {node} "
                              f"(columns: {', '.join(c['name'] for c in cols)})")
        if kind == "add_column" and target.column and target.column.lower() in names:
            raise ConfigError(f"column {target.table}.{target.column} already exists on {node}")
        if kind == "drop_column":
            if len(cols) == 1:
                raise ConfigError(f"cannot drop the only column of {target.table}")
            position = names.index(target.column.lower()) + 1  # type: ignore[union-attr]
            where = "the last column" if position == len(cols) else f"column {position} of {len(cols)}"
            statement = f"ALTER TABLE {tq} DROP COLUMN {quote_ident(target.column)}"  # type: ignore[arg-type]
            what = f"dropped column {target.table}.{target.column} ({where})"
        elif kind == "add_column":
            statement = f"ALTER TABLE {tq} ADD COLUMN {quote_ident(target.column)} {target.type}"  # type: ignore[arg-type]
            what = f"added column {target.table}.{target.column} {target.type}"
        elif kind == "modify_column":
            statement = f"ALTER TABLE {tq} MODIFY COLUMN {quote_ident(target.column)} {target.type}"  # type: ignore[arg-type]
            what = f"changed column {target.table}.{target.column} to {target.type}"
        else:
            statement, what = _row_statements(kind, target, cols, conn, tq)
        with conn.cursor() as cur:
            try:
                if not binlog:
                    cur.execute("SET SESSION sql_log_bin=0")
                cur.execute(statement)
            except pymysql.MySQLError as exc:
                raise SqlError(f"{node}: drift failed: {exc.args[-1]}", node=node) from None
    how = "written to its binary log too (an errant transaction)" if binlog else \
        "locally only (sql_log_bin=0, the primary and the other replicas do not know)"
    return _done(cluster, f"{node}: {what}, {how}; see what replication will do: replab diagnose {node}")
