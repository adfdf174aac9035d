"""Fan-in (multi-source): primaries mysql-m1 .. mysql-mK, each writing, and one replica mysql-s1 of all of
them over one named connection (MariaDB) or channel (MySQL) per primary."""

from __future__ import annotations

from .base import Edge, Topology, short


class FanIn(Topology):
    name = "fan-in"
    summary = "several primaries, one replica of all of them (a named connection/channel each)"
    min_nodes, default_nodes = 3, 3
    role_changes = frozenset()
    link_faults = frozenset({"partition", "heal", "link", "crash"})  # per edge (faults/edges.py)

    def node_names(self, count: int) -> list[str]:
        return [f"mysql-m{i}" for i in range(1, count)] + ["mysql-s1"]

    def edges(self, names: list[str]) -> list[Edge]:
        return [Edge(m, names[-1], short(m)) for m in names[:-1]]

    def writers(self, names: list[str]) -> list[str]:
        return names[:-1]

    def role_change_hint(self, kind: str) -> str:
        if kind == "rejoin":
            return "a primary that was down comes back with: replab start NODE (its channel on mysql-s1 resumes)"
        return ("every mysql-mN is a primary already and mysql-s1 is the only replica of all of them: promoting "
                "it would leave no node holding every primary's writes; a primary that is down is brought back "
                "with: replab start NODE")
