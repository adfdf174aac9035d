"""Role-change commands: switchover, failover, rejoin. Each prints one sentence; refusals exit 2 and change
nothing."""

from __future__ import annotations

import typer

from ..faults import failover as fo
from . import common


def switchover(
    node: str = typer.Argument(..., help="The replica to promote, e.g. mysql-s1."),
    max_lag: float = typer.Option(10.0, "--max-lag", metavar="SECONDS", help="Refuse a replica further behind "
                                  "than this."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the replica to apply the "
                                  "primary's last transaction before giving up (the old primary is restored)."),
    force: bool = typer.Option(False, "--force", help="Switch over although the replica runs a newer server "
                               "than a node that would then replicate from it (refused otherwise)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Planned promotion: writes pause, the replica catches up, it becomes the primary, every other node
    (the old primary too) replicates from it. No acknowledged write is lost; the pause is measured.

    Example: replab switchover mysql-s1
    """
    change = fo.switchover(common.open_cluster(change=True), node, max_lag=max_lag, timeout=timeout, force=force)
    _print(change, json_out)


def failover(
    to: str = typer.Option(None, "--to", metavar="NODE", help="Promote this replica (default: the most "
                           "advanced one by GTID)."),
    force: bool = typer.Option(False, "--force", help="Fail over although the primary answers (it is fenced "
                               "first), or promote --to although it lacks transactions another replica has "
                               "(that replica is then left out of replication, to rebuild with rejoin --rebuild)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The primary is dead: promote the most advanced replica and point the others at it.

    Writes the old primary acknowledged that no replica received are lost: replab check lists them by id.

    Example: replab failover
    Example: replab failover --to mysql-s2
    """
    change = fo.failover(common.open_cluster(change=True), to, force=force)
    _print(change, json_out)


def rejoin(
    node: str = typer.Argument(..., help="The former primary (or a replica) to bring back, e.g. mysql-m."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild it from the primary when it has errant "
                                 "transactions (they are discarded)."),
    force: bool = typer.Option(False, "--force", help="Rejoin it although it runs an older server than the "
                               "primary (a replica must run its primary's version or a newer one)."),
) -> None:
    """Bring a former primary back as a replica of the current primary. Refused (exit 2) when it holds
    errant transactions (written there, received by nobody), unless --rebuild; and when it runs an older
    server than the primary, unless --force.

    Example: replab rejoin mysql-m --rebuild
    """
    common.console.print(fo.rejoin(common.open_cluster(change=True), node, rebuild=rebuild or False, force=force),
                         markup=False)


def _print(change: fo.RoleChange, json_out: bool) -> None:
    if json_out:
        common.print_json(change.to_dict())
        return
    for step in change.steps:
        common.say(step)
    common.console.print(change.sentence(), markup=False)


def register(app: typer.Typer) -> None:
    for fn in (switchover, failover, rejoin):
        app.command(fn.__name__)(fn)
