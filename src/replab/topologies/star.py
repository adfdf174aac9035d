"""The star: one primary, every other node its replica (the original task's mysql-m, mysql-s1, mysql-s2)."""

from __future__ import annotations

from ..core.config import node_names
from .base import Edge, Topology


class Star(Topology):
    name = "star"
    summary = "one primary, the other nodes its replicas"
    min_nodes, default_nodes = 2, 3
    role_changes = frozenset({"switchover", "failover", "rejoin"})
    link_faults = frozenset({"partition", "heal", "link", "crash"})

    def node_names(self, count: int) -> list[str]:
        return node_names(count)

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge(names[0], n) for n in names[1:]]

    def writers(self, names: list[str]) -> list[str]:
        return names[:1]
