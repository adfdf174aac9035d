"""``replab status`` of a Galera cluster: one row per node with its wsrep state, and one sentence."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..cluster.core import NodeStatus
from .common import server_name

_COLORS = {"Synced": "green", "Donor/Desynced": "yellow", "Joiner": "yellow", "Joined": "yellow"}


def table(rows: list[NodeStatus]) -> Table:
    t = Table(title=None, show_lines=False, header_style="bold")
    for col in ("node", "address", "state", "cluster", "size", "local state", "fc paused", "recv queue",
                "last committed", "conflicts", "server"):
        t.add_column(col, overflow="fold")
    for st in rows:
        w: dict[str, Any] = st.wsrep or {}
        local = w.get("local_state_comment")
        cluster = w.get("cluster_status")
        conflicts = "-" if not w else f"{w.get('local_bf_aborts', 0)} bf / {w.get('local_cert_failures', 0)} cert"
        t.add_row(st.name, f"{st.host}:{st.port}", st.state,
                  "-" if cluster is None else f"[{'green' if cluster == 'Primary' else 'red'}]{cluster}[/]",
                  str(w.get("cluster_size", "-")),
                  "-" if local is None else f"[{_COLORS.get(local, 'red')}]{local}[/]",
                  "-" if w.get("flow_control_paused") is None else f"{100 * w['flow_control_paused']:.1f}%",
                  str(w.get("local_recv_queue", "-")), str(w.get("last_committed", "-")), conflicts,
                  server_name(st.version) if st.version else "-")
    return t


def sentence(rows: list[NodeStatus]) -> str:
    """``galera: 3 of 3 nodes Synced in the Primary component`` or what is not."""
    synced = [r.name for r in rows if (r.wsrep or {}).get("local_state_comment") == "Synced"
              and (r.wsrep or {}).get("cluster_status") == "Primary"]
    others = [f"{r.name} {r.state if r.state != 'running' else (r.wsrep or {}).get('cluster_status', '?')}"
              f"{'/' + str((r.wsrep or {}).get('local_state_comment')) if r.wsrep else ''}"
              for r in rows if r.name not in synced]
    line = f"galera: {len(synced)} of {len(rows)} nodes Synced in the Primary component"
    line += f"; not: {', '.join(others)}" if others else ""
    running = [r for r in rows if r.wsrep]
    if running and not any(r.wsrep and r.wsrep.get("cluster_status") == "Primary" for r in running):
        line += ("\nno Primary component: quorum is lost, every node refuses writes (1047). An operator can force "
                 "one on the node with the latest state: SET GLOBAL wsrep_provider_options='pc.bootstrap=YES' "
                 "(risk: the nodes cut off may have committed writes this one lacks; they are then discarded or "
                 "diverge)")
    return line
