"""The ring: mysql-m1 -> mysql-m2 -> ... -> mysql-mN -> mysql-m1, every node a primary and the replica of the
one before it. A write goes round until it reaches the node that made it, which skips it (its own server id;
replicate_same_server_id off)."""

from __future__ import annotations

from .base import Edge, Topology


class Ring(Topology):
    name = "ring"
    summary = "every node a primary and the replica of the one before it, round in a circle"
    min_nodes, default_nodes = 3, 3
    role_changes = frozenset({"repoint"})
    link_faults = frozenset({"partition", "heal", "link", "crash"})  # per edge (faults/edges.py)
    allows_loops = True

    def node_names(self, count: int) -> list[str]:
        return [f"mysql-m{i}" for i in range(1, count + 1)]

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge(names[i - 1], names[i]) for i in range(1, len(names))] + [Edge(names[-1], names[0])]

    def writers(self, names: list[str]) -> list[str]:
        return list(names)

    def role_change_hint(self, kind: str) -> str:
        if kind == "rejoin":
            return "a node that was down comes back with: replab start NODE (the ring heals)"
        return ("every node of a ring is a primary already, so there is nothing to promote: when one is down, "
                "close the ring around it with: replab repoint NEXT --to PREVIOUS")
