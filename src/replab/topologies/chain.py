"""The chain: mysql-m -> mysql-s1 -> mysql-s2 -> ...; every replica but the last is an intermediate source
(it logs what it applies, ``log_slave_updates``, so the next one gets it)."""

from __future__ import annotations

from ..core.config import node_names
from .base import Edge, Topology


class Chain(Topology):
    name = "chain"
    summary = "a primary, then each replica the source of the next"
    min_nodes, default_nodes = 3, 3
    role_changes = frozenset({"repoint"})
    link_faults = frozenset({"partition", "heal", "link", "crash"})  # per edge (faults/edges.py)

    def node_names(self, count: int) -> list[str]:
        return node_names(count)

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge(a, b) for a, b in zip(names, names[1:], strict=False)]

    def writers(self, names: list[str]) -> list[str]:
        return names[:1]

    def role_change_hint(self, kind: str) -> str:
        return "move a replica to another source with: replab repoint NODE --to SOURCE"
