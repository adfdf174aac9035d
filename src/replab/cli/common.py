"""Shared CLI helpers: global options, consoles, JSON output, status table."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ..cluster import Cluster, NodeStatus

OPTIONS: dict[str, Any] = {"home": None, "quiet": False}
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def say(message: str) -> None:
    """Print one readable decision line (to stderr, so stdout stays parseable)."""
    if not OPTIONS.get("quiet"):
        err_console.print(f"[dim]replab:[/dim] {message}", highlight=False)


def open_cluster() -> Cluster:
    return Cluster.open(OPTIONS.get("home"), say=say)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "[green]Yes[/green]" if value else "[red]No[/red]"


def status_table(rows: list[NodeStatus]) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    for col in ("node", "role", "source", "address", "state", "IO", "SQL", "lag", "last error", "GTID"):
        table.add_column(col, overflow="fold")
    colors = {"running": "green", "stopped": "red", "paused": "yellow", "unreachable": "red"}
    for st in rows:
        lag = "-" if st.lag_ms is None else f"{st.lag_ms} ms"
        err = f"{st.last_errno}: {st.last_error}" if st.last_errno else "-"
        table.add_row(st.name, st.role, st.source or "-", f"{st.host}:{st.port}",
                      f"[{colors.get(st.state, 'white')}]{st.state}[/]",
                      _yes_no(st.io_running), _yes_no(st.sql_running), lag, err, st.gtid or "-")
    return table


def topology_line(cluster: Cluster, rows: list[NodeStatus]) -> str:
    """``primary: mysql-s1 <- mysql-m, mysql-s2`` plus the last role change, if any."""
    primary = cluster.primary.name
    followers = [r.name for r in rows if r.source == primary]
    others = [f"{r.name} ({r.role}{', source ' + r.source if r.source else ''})" for r in rows
              if r.name != primary and r.name not in followers]
    line = f"primary: {primary}" + (f" <- {', '.join(followers)}" if followers else "")
    if others:
        line += f"; not replicating from it: {', '.join(others)}"
    changes = cluster.state.get("role_changes") or []
    if changes:
        last = changes[-1]
        line += f" (since the {last['kind']} from {last['old_primary']})"
    return line
