"""``replab status`` of a Group Replication cluster: each member's state, role, view and queues, and a sentence
on the group's quorum."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..cluster import group
from ..cluster.cluster import Cluster
from ..cluster.core import NodeStatus

COLORS = {"ONLINE": "green", "RECOVERING": "yellow", "UNREACHABLE": "red", "ERROR": "red", "OFFLINE": "red"}


def member_table(rows: list[NodeStatus]) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    for col in ("member", "member state", "group role", "view id", "queue", "applier queue", "conflicts",
                "as seen by"):
        table.add_column(col, overflow="fold")
    for st in rows:
        g = st.group or {}
        state = str(g.get("member_state") or "-")
        table.add_row(st.name, f"[{COLORS.get(state, 'white')}]{state}[/]", str(g.get("member_role") or "-"),
                      str(g.get("view_id") or "-"), _num(g.get("queue")), _num(g.get("applier_queue")),
                      _num(g.get("conflicts")), str(g.get("seen_by") or "-"))
    return table


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def quorum_data(cluster: Cluster) -> dict[str, Any]:
    data = group.quorum(cluster)
    data["multi_primary"] = bool(cluster.topology.multi_primary)
    data["primary"] = None if cluster.topology.multi_primary else group.current_primary(cluster, max_age=0)
    return data


def sentences(cluster: Cluster, rows: list[NodeStatus], data: dict[str, Any]) -> list[str]:
    """One line on the group: who is primary, how many members are ONLINE, or that the quorum is lost."""
    online = [r.name for r in rows if (r.group or {}).get("member_state") == group.ONLINE]
    mode = "multi-primary" if data["multi_primary"] else f"single-primary, primary {data['primary'] or 'none'}"
    if data["has_quorum"]:
        out = [f"group ({mode}): {len(data['majority_members'])} of {data['size']} members ONLINE in the majority"]
        if data["blocked_members"]:
            out.append(f"{', '.join(data['blocked_members'])}: ONLINE in a minority view: cannot commit until it "
                       "rejoins the majority")
        return out
    return [f"group ({mode}): NO QUORUM: no member is ONLINE in a view with a majority of the {data['size']} "
            f"members ({', '.join(online) or 'none'} ONLINE); writes block everywhere",
            "see: replab diagnose (how to force the membership with group_replication_force_members, and the risk)"]
