"""``replab servers``: the server catalogue (list, add, remove)."""

from __future__ import annotations

import typer
from rich.table import Table

from ..servers import catalogue as servers
from ..servers import galera_tree, router_tree
from . import common

servers_app = typer.Typer(
    help="The server catalogue: which MySQL and MariaDB builds replab can run. With no subcommand: list them.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(servers_app, name="servers")


@servers_app.callback()
def list_servers(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the servers replab can run now, and those it can fetch.

    Example: replab servers
    """
    if ctx.invoked_subcommand is not None:
        return
    have = servers.installed()
    can = servers.available()
    if json_out:
        common.print_json({"installed": [s.to_dict() for s in have],
                           "available": [{"name": k.name, "flavor": k.flavor, "suite": k.suite} for k in can]})
        return
    table = Table(header_style="bold")
    for col in ("name", "flavor", "version", "where", "size"):
        table.add_column(col, overflow="fold")
    for s in have:
        where = s.binary if s.kind in ("system", "path") else s.root
        size = f"{s.size / 1024**2:.0f} MB" if s.size else "-"
        table.add_row(s.name + (" (default)" if s is have[0] and s.kind == "system" else ""), s.flavor, s.version,
                      where, size)
    for k in can:
        table.add_row(f"[dim]{k.name}[/dim]", f"[dim]{k.flavor}[/dim]", f"[dim]{k.series}.x[/dim]",
                      f"[dim]not installed: replab servers add {k.name}[/dim]", "-")
    common.console.print(table)


@servers_app.command("add")
def add(
    what: str = typer.Argument(..., metavar="NAME|TARBALL",
                               help=f"A catalogue name ({', '.join(servers.KNOWN)}) or an upstream binary tarball."),
) -> None:
    """Fetch a server from Debian's package archive, or unpack an upstream tarball, into the cache.

    Fetched once (about 0.3-0.5 GB each), shared by every cluster. Needs mmdebstrap for names.

    Example: replab servers add mysql-9.7
    Example: replab servers add ./mysql-8.4.3-linux-glibc2.28-x86_64.tar.xz
    """
    server = servers.add(what, say=common.say)
    common.console.print(f"{server.name}: {server.flavor} {server.version} ({server.source})")


@servers_app.command("remove")
def remove(name: str = typer.Argument(..., help="Name of a fetched or unpacked server.")) -> None:
    """Delete a fetched or unpacked server from the cache (refused while servers of it run).

    Example: replab servers remove mysql-9.7
    """
    servers.remove(name, say=common.say)


@servers_app.command("add-galera")
def add_galera(name: str = typer.Argument(..., help="A catalogue MariaDB, e.g. mariadb-11.8.")) -> None:
    """Add the Galera provider (galera-4 from the same Debian suite) and the SST scripts (wsrep_sst_* of the
    suite's mariadb-server) to a catalogue MariaDB's tree, for --topology galera; only what is missing is
    fetched, nothing in the tree is replaced.

    Example: replab servers add-galera mariadb-11.8
    """
    path = galera_tree.add_galera(name, say=common.say)
    common.console.print(f"{name}: Galera provider {path}")


@servers_app.command("add-router")
def add_router(name: str = typer.Argument(..., help="A catalogue MySQL, e.g. mysql-9.7.")) -> None:
    """Add MySQL Router (mysql-router from the same Debian suite) to a catalogue MySQL's tree, for
    --proxy mysql-router; nothing is fetched when it is there already.

    Example: replab servers add-router mysql-9.7
    """
    path = router_tree.add_router(name, say=common.say)
    common.console.print(f"{name}: MySQL Router {path}")
