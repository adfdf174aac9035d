"""MySQL Group Replication: every member holds every write, certified by the group (a majority agrees).

Two shapes over the same members (``mysql-m``, ``mysql-s1``, ``mysql-s2``...): ``group`` (single-primary: the
group elects one primary, which moves after a failure; replab finds it from
``performance_schema.replication_group_members``) and ``group-multi-primary`` (``up --topology group
--multi-primary``: every member takes writes, conflicting ones fail certification). Members have no async
edges: the group's own machinery (XCom) carries the writes, so every member holds every writer's writes.

At least 3 members: a group of 2 loses its majority with either member, so no fault would be tolerated;
replab refuses fewer (docs/group.md).
"""

from __future__ import annotations

from ..core.config import node_names
from .base import Edge, Topology

GROUP_FLAVORS = ("mysql",)


class Group(Topology):
    name = "group"
    summary = "MySQL Group Replication, single-primary: the group elects the primary (MySQL 8.0+)"
    min_nodes, default_nodes, max_nodes = 3, 3, 9
    #: switchover moves the primary with group_replication_set_as_primary; failover is the group's own
    role_changes: frozenset[str] = frozenset({"switchover"})
    #: partitions between members need the member network (engines/membernet.py), not the relays
    link_faults: frozenset[str] = frozenset()
    #: group members replicate through the group, not async edges; the primary is found from the group
    virtually_synchronous = True
    dynamic_primary = True
    multi_primary = False
    flavors = GROUP_FLAVORS

    def node_names(self, count: int) -> list[str]:
        return node_names(count)

    def edges(self, names: list[str]) -> list[Edge]:
        return []

    def writers(self, names: list[str]) -> list[str]:
        return list(names) if self.multi_primary else names[:1]

    def holders(self, writer: str, names: list[str], edges: list[Edge]) -> list[str]:
        return list(names)  # a write the group certified is applied on every member

    def server_options(self, name: str, names: list[str], flavor: str) -> dict[str, str]:
        return {"log_slave_updates": "1"}

    def bootstrap_nodes(self, names: list[str], edges: list[Edge]) -> list[str]:
        return names[:1]

    def role_change_hint(self, kind: str) -> str:
        return "the group elects its primary itself: kill or stop the primary (replab kill mysql-m) and it moves; " \
            "replab switchover NODE moves it on purpose"


class GroupMultiPrimary(Group):
    name = "group-multi-primary"
    summary = "MySQL Group Replication, multi-primary: every member takes writes, conflicts fail certification"
    dynamic_primary = False
    multi_primary = True
    role_changes: frozenset[str] = frozenset()

    def role_change_hint(self, kind: str) -> str:
        return "every member of a multi-primary group takes writes: there is no primary to move"


def group_shape(multi_primary: bool) -> str:
    return GroupMultiPrimary.name if multi_primary else Group.name
