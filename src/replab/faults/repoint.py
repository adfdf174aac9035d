"""``repoint``: move a replica to another source with GTID auto-positioning (nothing lost, nothing applied
twice), along one of its edges. Refused before anything changes when the shape does not define it, when it
would close a loop the shape forbids, or when the new source lacks transactions the replica has (they would
never reach the nodes downstream of the new source) unless ``force``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cluster import replication, roles
from ..core.errors import ConfigError, NodeStateError, ReplicationError
from ..servers import db
from ..servers.gtid import GtidSet
from ..topologies import Edge

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster


def lacking(replica_gtid: str, source_gtid: str) -> str:
    """The transactions the replica has executed that the new source has not (empty text: none)."""
    missing = GtidSet.parse(replica_gtid).subtract(GtidSet.parse(source_gtid))
    return str(missing) if missing else ""


def plan(cluster: Cluster, node: str, to: str) -> Edge:
    """The edge ``node`` replicates along now, after the checks that need no server."""
    cluster.topology.require_role_change("repoint")
    cluster.node(node)
    cluster.node(to)
    if node == to:
        raise ConfigError(f"{node} cannot replicate from itself", hint="name another node with --to")
    into = cluster.edges_into(node)
    if not into:
        raise ConfigError(f"{node} replicates from no node in this {cluster.topology.name}: nothing to repoint",
                          hint="replab status shows every edge")
    if len(into) > 1:
        raise ConfigError(f"{node} has {len(into)} sources ({', '.join(e.describe() for e in into)}): repoint "
                          "moves a replica of one source", hint="replab status shows every edge")
    edge = into[0]
    if edge.source == to:
        raise ConfigError(f"{node} already replicates from {to}", hint="nothing to do")
    if not cluster.topology.allows_loops and cluster.topology.would_loop(node, to, cluster.edges):
        raise ConfigError(f"{node} -> {to} would make a loop: {to} already applies what {node} logs "
                          f"(through the edges of this {cluster.topology.name}), and a {cluster.topology.name} "
                          "has none", hint="repoint it to a node upstream of it")
    return edge


def repoint(cluster: Cluster, node: str, to: str, *, force: bool = False, timeout: float = 30.0) -> str:
    """Point ``node`` at ``to`` (its one edge replaced), wait until its threads run; one sentence."""
    edge = plan(cluster, node, to)
    for name in (node, to):
        cluster.require_running(name)
    with cluster.connect(node) as conn:
        have = replication.executed_gtid(conn, cluster.flavor)
    with cluster.connect(to) as conn:
        there = replication.executed_gtid(conn, cluster.flavor)
    missing = lacking(have, there)
    if missing and not force:
        raise ReplicationError(f"{to} lacks transactions {node} has: {missing}; nodes that replicate from {to} "
                               "would never get them", node=node,
                               hint=f"wait until {to} has them, or pass --force to repoint anyway")
    new = Edge(to, node, edge.channel)
    with cluster.connect(node) as conn:
        db.query(conn, cluster.flavor.stop_replica(edge.channel))
    cluster.attach_edge(new)  # the engine's link for this edge now leads to the new source
    roles.set_edges(cluster, [new if e == edge else e for e in cluster.edges])
    try:
        cluster.wait_edges(timeout=timeout, only=[new])
    except ReplicationError as exc:
        raise NodeStateError(f"{node} now replicates from {to} but: {exc.message}", node=node,
                             hint=f"run: replab diagnose {node}") from None
    forced = f"; it had {missing}, which {to} lacks (--force)" if missing else ""
    return f"{node}: replicates from {to} now (was {edge.source}), GTID auto-positioning{forced}"
