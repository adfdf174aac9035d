"""Fault commands: kill, crash, stop, start, restart, pause, resume, partition, heal, link, drift; diagnose;
repair.

Each prints one sentence saying what it did. Bad input (unknown node, wrong state, invalid name) exits 2
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from ..faults import edges, nemesis
from ..faults.repair import repair as run_repair
from ..faults.sync import sync as run_sync
from ..verify.diagnose import diagnose as run_diagnose
from . import common

NODE = typer.Argument(..., help="Node name, e.g. mysql-s1.")


def _fault(fn: Callable[..., str], node: str) -> None:
    common.console.print(fn(common.open_cluster(change=True), node), markup=False)


def kill(node: str = NODE) -> None:
    """Kill a node's server with SIGKILL (no clean shutdown).

    Example: replab kill mysql-s1
    """
    _fault(nemesis.kill, node)


def stop(node: str = NODE) -> None:
    """Stop a node cleanly (SHUTDOWN, then TERM, then KILL).

    Example: replab stop mysql-s1
    """
    _fault(nemesis.stop, node)


def start(node: str = NODE) -> None:
    """Start a stopped or killed node; a replica fetches everything it missed.

    Example: replab start mysql-s1
    """
    _fault(nemesis.start, node)


def restart(node: str = NODE) -> None:
    """Stop a node cleanly and start it again.

    Example: replab restart mysql-m
    """
    _fault(nemesis.restart, node)


def pause(node: str = NODE) -> None:
    """Freeze a node's server (SIGSTOP): connections stay open, nothing answers.

    Example: replab pause mysql-s2
    """
    _fault(nemesis.pause, node)


def resume(node: str = NODE) -> None:
    """Unfreeze a paused node (SIGCONT).

    Example: replab resume mysql-s2
    """
    _fault(nemesis.resume, node)


DIRECTION = typer.Option(None, "--direction", help="One way only: to-replica (the replica hears nothing; the "
                         "primary still receives its requests and acknowledgements) or to-primary (the reverse); "
                         "for group/galera members: out (nothing the member sends arrives) or in (it hears "
                         "nothing). Default: both.")


MORE = typer.Argument(None, help="More group/galera members to cut off, each from every other member.")
FROM = typer.Option(None, "--from", metavar="SOURCE", help="Chain, fan-in, active-active, ring: only the edge "
                    "from this source into NODE (default: every edge into NODE).")


def partition(node: str = NODE, direction: str = DIRECTION, more: list[str] = MORE, source: str = FROM) -> None:
    """Cut the network link between a replica and the primary, both ways or one (the primary: every link);
    on a chain, fan-in, active-active or ring, the edges INTO a node (or the one --from a source); on a
    group/Galera cluster, cut members off from every other member.

    The link runs through a relay replab controls; a cut link drops traffic silently, like a pulled
    cable. The replica notices after slave_net_timeout (10 s). Group/Galera members run each in a network
    namespace of its own, and the cut drops packets between them (docs/membernet.md).

    Example: replab partition mysql-s1
    Example: replab partition mysql-s1 --direction to-replica
    Example: replab partition mysql-s1 --from mysql-m2   (fan-in: one channel)
    Example: replab partition mysql-s2   (group/galera: a minority member)
    Example: replab partition mysql-m mysql-s1   (group/galera: no quorum left)
    Example: replab partition mysql-s2 --direction out   (group/galera)
    """
    cluster = common.open_cluster(change=True)
    common.console.print(nemesis.partition(cluster, node, direction=direction, also=more or None, source=source),
                         markup=False)


def crash(node: str = NODE) -> None:
    """The node's host dies: SIGKILL its server and drop what its links had not yet delivered from it.

    Unlike kill (the process dies, the host's kernel still delivers what it had sent), bytes the server
    had written but no replica had received never arrive: asynchronous writes acknowledged after the last
    byte a replica got are lost at a failover.

    Example: replab crash mysql-m
    """
    _fault(nemesis.crash, node)


def link(
    node: str = typer.Argument(..., help="Replica whose link to its source is meant, e.g. mysql-s1."),
    delay: str = typer.Option(None, "--delay", help="Added to each direction shaped, e.g. 20ms (both "
                              "directions: +40 ms per round trip)."),
    jitter: str = typer.Option(None, "--jitter", help="Spread of the delay, uniform +/-, e.g. 5ms (order kept)."),
    rate: str = typer.Option(None, "--rate", help="Bandwidth, e.g. 2mbit, 512kbit, 1gbit."),
    direction: str = typer.Option(None, "--direction", help="to-replica (the binary log's way) or to-primary "
                                  "(requests, semi-sync acks). Default: both."),
    clear: bool = typer.Option(False, "--clear", help="A plain link again (that direction, or both)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output (the link as applied)."),
    source: str = FROM,
) -> None:
    """Give a replica's link real-network conditions: delay, jitter, rate, per direction; or show it.

    Example: replab link mysql-s1 --delay 20ms --jitter 5ms --rate 2mbit
    Example: replab link mysql-s1 --delay 40ms --direction to-replica
    Example: replab link mysql-s1            (show it)
    Example: replab link mysql-s1 --clear
    Example: replab link mysql-s1 --from mysql-m1 --delay 30ms   (fan-in)
    """
    changes = clear or any(v is not None for v in (delay, jitter, rate))
    cluster = common.open_cluster(change=changes)
    sentence = nemesis.link(cluster, node, delay=delay, jitter=jitter, rate=rate, direction=direction, clear=clear,
                            source=source)
    if json_out and edges.applies(cluster):  # the shapes with edges: each edge into the node
        common.print_json({"node": node, "links": edges.states(cluster, node, source)})
    elif json_out:
        common.print_json({"node": node, **(nemesis.links_state(cluster).get(node) or {})})
    else:
        common.console.print(sentence, markup=False)


def heal(node: str = typer.Argument(None, help="Node to heal (default: every cut link)."),
         source: str = FROM) -> None:
    """Restore a cut link; replication resumes where it stopped.

    Example: replab heal mysql-s1
    Example: replab heal mysql-s1 --from mysql-m2   (fan-in: one channel)
    """
    common.console.print(nemesis.heal(common.open_cluster(change=True), node, source=source), markup=False)


def drift(
    node: str = NODE,
    drop_column: str = typer.Option(None, "--drop-column", metavar="TABLE.COLUMN", help="Drop a column."),
    add_column: str = typer.Option(None, "--add-column", metavar="TABLE.COLUMN:TYPE", help="Add a column."),
    modify_column: str = typer.Option(None, "--modify-column", metavar="TABLE.COLUMN:TYPE",
                                      help="Change a column's type."),
    delete_rows: str = typer.Option(None, "--delete-rows", metavar="TABLE:N", help="Delete the first N rows."),
    update_rows: str = typer.Option(None, "--update-rows", metavar="TABLE:N", help="Change the first N rows."),
    insert_rows: str = typer.Option(None, "--insert-rows", metavar="TABLE:N",
                                    help="Insert N rows the primary does not have."),
    binlog: bool = typer.Option(False, "--binlog", help="Write the change to the node's binary log too "
                                "(an errant transaction)."),
    force: bool = typer.Option(False, "--force", help="Allow drift on the primary."),
) -> None:
    """Change one node behind replication's back (local change, sql_log_bin=0, unless --binlog).

    Tables are in the cluster's database (mydb).

    Example: replab drift mysql-s2 --drop-column events.name
    """
    cluster = common.open_cluster(change=True)
    sentence = nemesis.drift(cluster, node, drop_column=drop_column, add_column=add_column,
                             modify_column=modify_column, delete_rows=delete_rows, update_rows=update_rows,
                             insert_rows=insert_rows, binlog=binlog, force=force)
    common.console.print(sentence, markup=False)


def diagnose(
    node: str = typer.Argument(None, help="Replica to explain (default: every replica)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Explain each replica that is broken or drifting: error, statement, table, cause, next writes.

    Exit code 0: every replica examined is healthy; 1: one is broken, drifting or down; 2: could not
    diagnose (reason given).

    Example: replab diagnose mysql-s2
    """
    found = run_diagnose(common.open_cluster(), node)
    if json_out:
        common.print_json([d.to_dict() for d in found])
    else:
        for d in found:
            common.console.print(d.render(), markup=False)
    if any(d.severity != "ok" for d in found):
        raise typer.Exit(1)


def repair(
    node: str = NODE,
    method: str = typer.Option("auto", "--method", help="auto (by size), dump (mariadb-dump/mysqldump), "
                               "backup (MariaDB: mariadb-backup, streamed) or clone (MySQL: the clone plugin)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for the rebuilt replica to catch "
                                  "up."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Rebuild a broken replica from the primary while writes go on, reattach it, wait, verify.

    auto takes a dump below 64 MB of user data, else the server's own physical copy, and says which.

    Example: replab repair mysql-s2 --method dump
    """
    report = run_repair(common.open_cluster(change=True), node, method=method, timeout=timeout)
    if json_out:
        common.print_json(report.to_dict())
    else:
        for step in report.steps[:1] if method == "auto" else []:
            common.say(step)
        common.console.print(report.sentence(), markup=False)
    if not report.verified:
        raise typer.Exit(1)


def sync(
    node: str = NODE,
    via: str = typer.Option("auto", "--via", help="auto, replica (on the node, sql_log_bin=0) or primary "
                            "(statement-based, replicates)."),
    table: list[str] = typer.Option(None, "--table", help="Only this table (repeatable; default: all in mydb)."),  # noqa: B008
    wait: float = typer.Option(30.0, "--wait", "-w", help="Seconds to wait for the replica to apply the "
                               "primary's position."),
    from_check: bool = typer.Option(False, "--from-check", help="Use the row ids of the last replab check "
                                    "instead of comparing the tables again."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Repair exactly the rows of a replica that differ from the primary (the ids check finds: insert the
    missing, delete the extra, rewrite the changed), then verify them. Safe while a feed runs.

    Refused where a row sync cannot help (schema differs, replication broken, no primary key): use repair.
    Exit code 0: synced and verified; 1: rows still differ; 2: refused.

    Example: replab sync mysql-s1 --via replica
    """
    report = run_sync(common.open_cluster(change=True), node, via=via, tables=list(table) if table else None,
                      wait=wait, from_check=from_check)
    if json_out:
        common.print_json(report.to_dict())
    else:
        for step in report.steps:
            common.say(step)
        common.console.print(report.sentence(), markup=False)
    if not report.verified:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for fn in (kill, crash, stop, start, restart, pause, resume, partition, heal, link, drift, diagnose, repair,
               sync):
        app.command(fn.__name__)(fn)
