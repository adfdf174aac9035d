"""Active-active: mysql-m1 <-> mysql-m2, each the other's replica, both taking writes; any further nodes are
replicas of mysql-m1 (mysql-s1, ...). Each primary has its own auto_increment offset, so their inserts with
AUTO_INCREMENT ids never collide."""

from __future__ import annotations

from .base import Edge, Topology


class ActiveActive(Topology):
    name = "active-active"
    summary = "two primaries replicating from each other; more nodes are replicas of mysql-m1"
    min_nodes, default_nodes = 2, 2
    role_changes = frozenset({"repoint"})
    link_faults = frozenset({"partition", "heal", "link", "crash"})  # per edge (faults/edges.py)
    allows_loops = True

    def node_names(self, count: int) -> list[str]:
        return ["mysql-m1", "mysql-m2"] + [f"mysql-s{i}" for i in range(1, count - 1)]

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge("mysql-m2", "mysql-m1"), Edge("mysql-m1", "mysql-m2"),
                *(Edge("mysql-m1", n) for n in names[2:])]

    def writers(self, names: list[str]) -> list[str]:
        return names[:2]

    def role_change_hint(self, kind: str) -> str:
        if kind == "rejoin":
            return "a primary that was down comes back with: replab start NODE (both its edges resume)"
        return ("mysql-m1 and mysql-m2 both take writes already, so there is nothing to promote: when one is down, "
                "write to the other (replab feed --on mysql-m2) and move the down one's replicas with: "
                "replab repoint mysql-s1 --to mysql-m2")
