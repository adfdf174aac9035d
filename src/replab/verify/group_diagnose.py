"""``replab diagnose`` on a Group Replication cluster: one plain explanation per member, from each member's own
view of the group (its member state, the members it sees, its queues).

The case that needs explaining most is a lost quorum: a member that is ONLINE but sees a majority of its
view UNREACHABLE cannot commit anything (writes there neither commit nor fail: they wait), and only an
operator can unblock it, by forcing the membership with ``group_replication_force_members``. Forcing is a
decision with a risk, and the diagnosis says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cluster import group
from ..engines.base import RUNNING
from .diagnosis import Diagnosis

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

FORCE_RISK = ("risk: the forced group is a new membership that ignores the unreachable members. If any of "
              "them still runs and is forced too (or is given its own bootstrap), two groups accept writes "
              "(split brain); force ONE side only, after making sure the others are down or fenced. "
              "Transactions the others certified that this member never received are not in the forced "
              "group; the others must rejoin through distributed recovery (or clone) and a member with "
              "transactions the group lacks cannot rejoin at all")


def diagnose_group(cluster: Cluster, node: str | None = None) -> list[Diagnosis]:
    """A ``Diagnosis`` for each member (or just ``node``)."""
    views = group.read_group(cluster)
    wanted = [cluster.node(node).name] if node else cluster.names
    return [_one(cluster, name, views) for name in wanted]


def _one(cluster: Cluster, name: str, views: dict[str, group.MemberView | None]) -> Diagnosis:
    info = cluster.node(name)
    view = views.get(name)
    if view is None:
        state = cluster.engine.state(info)
        seen = next((v.members.get(name) for v in views.values() if v is not None and v.members and
                     name in v.members), None)
        how = f"; the group still lists it as {seen[0]}" if seen else ""
        if state != RUNNING:
            return Diagnosis(name, "down", f"is {state}{how} (replab start {name}: it rejoins the group, by "
                             "distributed recovery or clone)")
        return Diagnosis(name, "down", f"does not answer{how}")
    if view.state == group.ONLINE and view.majority():
        queue = f"; {view.applier_queue} transaction(s) waiting to be applied" if view.applier_queue else ""
        return Diagnosis(name, "ok", f"ONLINE ({view.role}) with the majority of the group "
                         f"({sum(1 for s, _r in (view.members or {}).values() if s == group.ONLINE)} of "
                         f"{len(view.members or {})} members ONLINE, view {view.view_id}){queue}")
    if view.state == group.ONLINE:
        majority = next((v for v in views.values() if v is not None and v.name != name and v.majority()), None)
        if majority is not None:
            return _minority(name, view, majority)
        return _no_quorum(cluster, name, view)
    if view.state == group.RECOVERING:
        return Diagnosis(name, "drift", "is RECOVERING: it applies what it missed from a donor (distributed "
                         "recovery) before it goes ONLINE", next_writes=["writes are not taken here until then"])
    if view.state == group.ERROR:
        return Diagnosis(name, "broken", "left the group in ERROR (it is super_read_only)",
                         causes=_log_errors(cluster, name),
                         next_writes=[f"replab stop {name} && replab start {name} makes it join again"])
    return Diagnosis(name, "broken", "is OFFLINE: its server runs but it is in no group",
                     next_writes=[f"replab stop {name} && replab start {name} joins it (or bootstraps a group when "
                                  "no other member is ONLINE)"])


def _minority(name: str, view: group.MemberView, majority: group.MemberView) -> Diagnosis:
    online = [m for m, (s, _r) in (majority.members or {}).items() if s == group.ONLINE]
    return Diagnosis(
        name, "broken",
        f"in a minority: ONLINE in its own view, but cut off from {', '.join(view.unreachable())}; the majority "
        f"({', '.join(online)}) goes on without it. Nothing commits here: a write on it is refused "
        "(super_read_only) or blocks, never acknowledged",
        causes=[f"{name} cannot reach {', '.join(view.unreachable())} (a partition: replab status shows the cut)"],
        next_writes=[f"heal the network and {name} rejoins by itself (auto-rejoin, then distributed recovery); do "
                     "NOT force its membership: the majority is alive, forcing would make a second group "
                     "(split brain)"])


def _no_quorum(cluster: Cluster, name: str, view: group.MemberView) -> Diagnosis:
    members = view.members or {}
    gone = view.unreachable()
    online = [m for m, (s, _r) in members.items() if s == group.ONLINE]
    address = group.local_address(cluster.node(name))
    return Diagnosis(
        name, "broken",
        f"quorum lost: ONLINE, but it sees only {len(online)} of the {len(members)} members of its view ONLINE "
        f"({', '.join(gone)} UNREACHABLE): no majority, so nothing can commit here; writes block (they neither "
        "commit nor fail) until the majority is back",
        causes=[f"{', '.join(gone)} cannot be reached from {name} (down, paused or cut off): the group cannot "
                "tell a crash from a partition, so it waits"],
        next_writes=[f"when the others come back (heal, start) the group goes on by itself; to restore writes "
                     f"now, force the membership to the reachable members: SET GLOBAL "
                     f"group_replication_force_members = '{address}'; then SET GLOBAL "
                     "group_replication_force_members = ''", FORCE_RISK])


def _log_errors(cluster: Cluster, name: str, limit: int = 3) -> list[str]:
    lines = [line for line in cluster.engine.log_tail(cluster.node(name), 200) if "[ERROR]" in line]
    return [line.split("] ", 3)[-1][:300] for line in lines[-limit:]]
