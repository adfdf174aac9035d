"""The chain: mysql-m -> mysql-s1 -> mysql-s2 -> ...; every replica but the last is an intermediate source
(it logs what it applies, ``log_slave_updates``, so the next one gets it).

Role changes (faults/failover.py, through the contract in base.py): a switchover to the primary's replica
swaps the two (``m -> s1 -> s2`` becomes ``s1 -> m -> s2``); a failover promotes it and the rest of the chain
stays (``s1 -> s2``); the old primary rejoins at the tail (``s1 -> s2 -> m``), so nothing else moves."""

from __future__ import annotations

from ..core.config import node_names
from .base import Edge, Topology


class Chain(Topology):
    name = "chain"
    summary = "a primary, then each replica the source of the next"
    min_nodes, default_nodes = 3, 3
    role_changes = frozenset({"switchover", "failover", "rejoin", "repoint"})
    link_faults = frozenset({"partition", "heal", "link", "crash"})  # per edge (faults/edges.py)

    def node_names(self, count: int) -> list[str]:
        return node_names(count)

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge(a, b) for a, b in zip(names, names[1:], strict=False)]

    def writers(self, names: list[str]) -> list[str]:
        return names[:1]

    def rejoin_source(self, node: str, primary: str, edges: list[Edge]) -> str:
        """The chain's tail (the last node down from the primary): the returning node becomes the new tail."""
        tail, seen = primary, {primary, node}
        while True:
            nxt = [e.replica for e in edges if e.source == tail and e.replica not in seen]
            if len(nxt) != 1:
                return tail
            tail = nxt[0]
            seen.add(tail)
