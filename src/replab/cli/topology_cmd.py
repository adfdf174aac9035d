"""``replab topology list`` (the shapes) and ``replab repoint`` (move a replica to another source)."""

from __future__ import annotations

import typer
from rich.table import Table

from ..faults import repoint as rp
from ..topologies import TOPOLOGIES
from . import common

topology_app = typer.Typer(help="The shapes a cluster can have (--topology of replab up).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(topology_app, name="topology")
    app.command("repoint")(repoint)


@topology_app.command("list")
def list_topologies(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """The shapes: their node names, edges, which nodes take writes, which faults and role changes apply.

    Example: replab topology list
    """
    shapes = [t.describe() for t in TOPOLOGIES.values()]
    if json_out:
        common.print_json({"topologies": shapes})
        return
    table = Table(header_style="bold", show_lines=True)
    for col in ("topology", "nodes", "e.g. (default count)", "writers", "faults", "role changes"):
        table.add_column(col, overflow="fold")
    for d in shapes:
        table.add_row(f"{d['name']}\n{d['summary']}", d["nodes"], "\n".join(d["edges"]), ", ".join(d["writers"]),
                      ", ".join(d["faults"]), ", ".join(d["role_changes"]) or "-")
    common.console.print(table)


def repoint(
    node: str = typer.Argument(..., help="The replica to move, e.g. mysql-s2."),
    to: str = typer.Option(..., "--to", metavar="SOURCE", help="Its new source, e.g. mysql-m."),
    force: bool = typer.Option(False, "--force", help="Repoint although the new source lacks transactions the "
                               "replica has (the nodes downstream of the new source will never get them)."),
) -> None:
    """Move a replica to another source with GTID auto-positioning: nothing lost, nothing applied twice.

    Refused (exit 2, nothing changed) where the shape does not define it, where it would make a loop the
    shape forbids, or when the new source lacks transactions the replica has (named), unless --force.

    Example: replab repoint mysql-s2 --to mysql-m
    """
    common.console.print(rp.repoint(common.open_cluster(change=True), node, to, force=force), markup=False)
