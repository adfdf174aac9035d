"""Partition, heal and link shaping per replication edge, for the asynchronous shapes other than the star
(chain, fan-in, active-active, ring).

Each edge (``topologies.Edge``) has a link of its own (for the local engine, its own relay, named by
``Edge.link``). ``partition NODE`` cuts the edges INTO ``NODE`` (what it receives from its sources), or the
one from ``--from SOURCE`` where it has several; ``heal`` restores them; ``link`` shapes them. A node no edge
feeds (a chain's head, a fan-in's primaries) has nothing of its own to cut: refused, with the command that
cuts the edges it feeds. Directions keep the star's names, from the receiving node's side: ``to-replica``
carries the binary log (source -> replica), ``to-primary`` the replica's requests back to its source.

The star keeps its own path (nemesis.py); nothing here is reached for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core import links
from ..core.errors import ConfigError, NodeStateError
from ..topologies.base import Edge

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster


def applies(cluster: Cluster) -> bool:
    """Whether ``cluster``'s links are its edges' (an asynchronous shape other than the star)."""
    return cluster.topology.name != "star" and not cluster.topology.virtually_synchronous


def _from(source: str | None) -> str:
    return f" --from {source}" if source else ""


def edges_of(cluster: Cluster, node: str, source: str | None = None, command: str = "partition") -> list[Edge]:
    """The edges into ``node`` (only the one from ``source`` when given); ConfigError, before anything
    changes, for a node no edge feeds or a ``source`` that is not one of its sources."""
    cluster.node(node)
    if source is not None:
        cluster.node(source)
    into = cluster.edges_into(node)
    if not into:
        out = [e for e in cluster.edges if e.source == node]
        if out:
            e = out[0]
            several = len(cluster.edges_into(e.replica)) > 1
            hint = f"an edge it feeds is its replica's: replab {command} {e.replica}{_from(node if several else None)}"
        else:
            hint = "replab topology list shows each shape's edges"
        raise ConfigError(f"{node} has no source on this {cluster.topology.name}: no replication edge comes into it, "
                          f"so it has no link of its own to {'shape' if command == 'link' else command}", hint=hint)
    if source is None:
        return into
    chosen = [e for e in into if e.source == source]
    if not chosen:
        have = ", ".join(e.source for e in into)
        raise ConfigError(f"{node} does not replicate from {source} (its source{'s' if len(into) > 1 else ''}: "
                          f"{have})", hint=f"replab {command} {node} --from {into[0].source}")
    return chosen


def _listed(edges: list[Edge]) -> str:
    words = ", ".join(e.describe() for e in edges)
    return f"the link {words}" if len(edges) == 1 else f"the links {words}"


def _names(edges: list[Edge]) -> str:
    return f"{_listed(edges)} {'is' if len(edges) == 1 else 'are'}"


def _cut(cluster: Cluster, edge: Edge) -> list[str]:
    return list((cluster.engine.edge_link_state(edge.link) or {}).get("cut") or [])


def partitioned(cluster: Cluster) -> list[str]:
    """The nodes some of whose incoming edges are cut now."""
    return list(dict.fromkeys(e.replica for e in cluster.edges if _cut(cluster, e)))


def partition(cluster: Cluster, node: str, direction: str | None, source: str | None, timeout: str | None) -> str:
    """Cut the edges into ``node`` (or the one from ``source``), both ways or one; ``timeout`` is the
    replicas' slave_net_timeout, read before the cut (None: no node answered)."""
    edges = edges_of(cluster, node, source)
    ways = links.directions(direction)
    if all(set(ways) <= set(_cut(cluster, e)) for e in edges):
        how = "" if len(ways) == 2 else f" {ways[0]}"
        raise NodeStateError(f"{_names(edges)} already cut{how}", node=node, hint=f"replab heal {node}{_from(source)}")
    for e in edges:
        cluster.engine.cut_link(e.link, ways[0] if len(ways) == 1 else None)
    sources = " and ".join(dict.fromkeys(e.source for e in edges))
    what = _names(edges)
    if len(ways) == 2:
        how = f"{what} cut both ways (packets silently dropped, no reset)"
    elif ways == (links.TO_REPLICA,):
        how = (f"{what} cut toward the replica only: {node} hears nothing from {sources}, while {sources} still "
               "receives what it sends (requests, acknowledgements)")
    else:
        how = (f"{what} cut toward the source only: {sources} hears nothing from {node}, while {node} still "
               f"receives what {sources} sends")
    after = f"slave_net_timeout={timeout}s" if timeout else "slave_net_timeout (not read: no node answers)"
    notice = "its IO thread keeps receiving events and heartbeats" if ways == (links.TO_PRIMARY,) else \
        f"the IO thread notices after {after}"
    return f"{node}: partitioned: {how}; {notice}; heal with: replab heal {node}{_from(source)}"


def heal(cluster: Cluster, node: str | None = None, source: str | None = None) -> str:
    """Open what ``partition`` cut: every cut edge, those into ``node``, or the one from ``source``."""
    if node is None:
        if source is not None:
            raise ConfigError("--from names one of a node's sources: give the node too",
                              hint=f"replab heal NODE --from {source}")
        edges = [e for e in cluster.edges if _cut(cluster, e)]
        if not edges:
            return "nothing to heal: no link is cut"
    else:
        edges = [e for e in edges_of(cluster, node, source, "heal") if _cut(cluster, e)]
        if not edges:
            what = f"the link {source} -> {node}" if source else node
            raise NodeStateError(f"{what} is not partitioned", node=node)
    for e in edges:
        cluster.engine.open_link(e.link)
    verb = "carries" if len(edges) == 1 else "carry"
    return f"healed: {_listed(edges)} {verb} traffic again; replication resumes where it stopped"


def conditions(cluster: Cluster, edge: Edge) -> dict[str, links.Conditions]:
    state = cluster.engine.edge_link_state(edge.link) or {}
    got = {d: links.Conditions.from_dict(c) for d, c in (state.get("conditions") or {}).items()}
    return {d: c for d, c in got.items() if c}


def _cut_text(cluster: Cluster, edge: Edge) -> str:
    cut = _cut(cluster, edge)
    if not cut:
        return ""
    return "; cut both ways" if len(cut) == 2 else f"; cut {cut[0]}"


def link(cluster: Cluster, node: str, source: str | None, new: links.Conditions | None, ways: tuple[str, ...],
         clear: bool) -> str:
    """Shape (``new``, in ``ways``), clear, or show (``new`` None, not ``clear``) the edges into ``node``."""
    edges = edges_of(cluster, node, source, "link")
    out = []
    for e in edges:
        current = conditions(cluster, e)
        what = f"the link {e.describe()}"
        if new is None and not clear:
            out.append(f"{what}: {links.describe(current)}{_cut_text(cluster, e)}")
            continue
        wanted = dict(current)
        for way in ways:
            wanted[way] = new or links.Conditions()
        how = cluster.engine.shape_link(e.link, {d: c.to_dict() for d, c in wanted.items() if c})
        applied = conditions(cluster, e)
        verb = "plain again" if clear and not applied else links.describe(applied)
        rtt = sum(applied[d].delay_ms for d in applied)
        extra = f" (+{rtt:g} ms to each round trip)" if rtt else ""
        out.append(f"{what}: {verb}{extra}, by the {how}")
    return "; ".join(out)


def crash(cluster: Cluster, node: str) -> str:
    """The node's host dies: every edge it is an end of drops what it held from it (its source end for
    the edges it feeds, its replica end for the edges into it), then its server is SIGKILLed (as the star's
    crash: sever first, so nothing it wrote before it died still reaches a node through a link)."""
    ends = [(e, "primary" if e.source == node else "replica") for e in cluster.edges if node in (e.source, e.replica)]
    dropped = sum(cluster.engine.sever_link(e.link, side) for e, side in ends)
    how = cluster.engine.kill(cluster.node(node))
    links = f"the link(s) {', '.join(e.describe() for e, _ in ends)} dropped {dropped} byte(s) from it that they " \
        "had not delivered" if ends else "it is an end of no link"
    return (f"{node}: crashed ({how}; {links}); what it committed is in its binary log and reaches the nodes "
            f"downstream once it is back: replab start {node}")


def states(cluster: Cluster, node: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """Each edge's link as applied now (into ``node``, from ``source``, or all): source, replica, channel,
    link name, cut, conditions, mechanism, port."""
    edges = cluster.edges if node is None else edges_of(cluster, node, source, "link")
    out = []
    for e in edges:
        state = cluster.engine.edge_link_state(e.link)
        if state is not None:
            out.append({**e.to_dict(), "link": e.link, **state})
    return out
