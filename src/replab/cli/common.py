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
    for col in ("node", "role", "address", "state", "IO", "SQL", "lag", "last error", "GTID"):
        table.add_column(col, overflow="fold")
    colors = {"running": "green", "stopped": "red", "paused": "yellow", "unreachable": "red"}
    for st in rows:
        lag = "-" if st.lag_ms is None else f"{st.lag_ms} ms"
        err = f"{st.last_errno}: {st.last_error}" if st.last_errno else "-"
        table.add_row(st.name, st.role, f"{st.host}:{st.port}", f"[{colors.get(st.state, 'white')}]{st.state}[/]",
                      _yes_no(st.io_running), _yes_no(st.sql_running), lag, err, st.gtid or "-")
    return table
