"""Galera (MariaDB Galera Cluster): mysql-m, mysql-s1, mysql-s2... as wsrep nodes of one virtually
synchronous cluster. There are no asynchronous edges: every node takes writes (Galera is always
multi-primary) and every node must hold every writer's writes. The names follow the issue (the star's
names); the first node is the one that bootstraps the cluster (``--wsrep-new-cluster``).

Fewer than 3 nodes are refused: with 2, losing either leaves a non-Primary component (no quorum), so no
fault is tolerated and the scenarios this shape exists for make no sense."""

from __future__ import annotations

from .base import Edge, Topology


class Galera(Topology):
    name = "galera"
    summary = "MariaDB Galera: every node a wsrep member taking writes (virtually synchronous, multi-primary)"
    min_nodes, default_nodes, max_nodes = 3, 3, 9
    role_changes: frozenset[str] = frozenset()
    virtually_synchronous = True
    multi_primary = True  # every node takes writes (the hook GROUP adds to Topology; unused elsewhere until then)
    flavors = ("mariadb",)

    def node_names(self, count: int) -> list[str]:
        return ["mysql-m"] + [f"mysql-s{i}" for i in range(1, count)]

    def edges(self, names: list[str]) -> list[Edge]:
        return []

    def writers(self, names: list[str]) -> list[str]:
        return list(names)

    def holders(self, writer: str, names: list[str], edges: list[Edge]) -> list[str]:
        return list(names)

    def bootstrap_nodes(self, names: list[str], edges: list[Edge]) -> list[str]:
        return names[:1]

    def server_options(self, name: str, names: list[str], flavor: str) -> dict[str, str]:
        """What every wsrep node needs besides its own addresses (``cluster/galera.py`` adds those): row
        events, interleaved auto-increment locks, one GTID domain for replicated writesets (and each node's
        own for local ones), binary log of what it applies."""
        return {"log_slave_updates": "1", "binlog_format": "ROW", "innodb_autoinc_lock_mode": "2",
                "wsrep_gtid_mode": "ON", "wsrep_gtid_domain_id": "100",
                "gtid_domain_id": str(names.index(name) + 1)}

    def role_change_hint(self, kind: str) -> str:
        return "every Galera node takes writes already: write to another one (replab feed --on all)"
