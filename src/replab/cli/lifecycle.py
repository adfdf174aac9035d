"""Lifecycle commands: up, status, sql, connect, down."""

from __future__ import annotations

import os

import typer

from ..cluster import Cluster
from ..errors import ReplabError
from . import common
from .faults import print_diagnosis_lines


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)
    app.command("sql")(sql)
    app.command("connect")(connect)
    app.command("down")(down)


def up(
    nodes: int = typer.Option(None, "--nodes", "-n", help="Number of nodes, 2-9 (default 3: mysql-m, mysql-s1, "
                              "mysql-s2)."),
    binlog_format: str = typer.Option(None, "--binlog-format", help="ROW (default), MIXED or STATEMENT."),
    base_port: int = typer.Option(None, "--base-port", help="First port; nodes use consecutive ports "
                                  "(default: free ports chosen at random)."),
    engine: str = typer.Option(None, "--engine", help="Where servers run: local (default), compose (Docker) or "
                               "external (the servers of replab.toml's [[nodes]])."),
    image: str = typer.Option(None, "--image", help="Server image for --engine compose (default mysql:8.0), "
                              "e.g. mysql:8.4 or mariadb:11.4."),
    server: str = typer.Option(None, "--server", help="Server to run: a name from `replab servers` "
                               "(mysql-9.7, mariadb-11.8...) or the path of a mysqld/mariadbd binary (default: "
                               "the system's server)."),
    replica_server: str = typer.Option(None, "--replica-server", help="A different server for the replicas "
                                       "(same flavor, same or newer version), e.g. to rehearse an upgrade."),
    config: str = typer.Option(None, "--config", help="replab.toml to read (default ./replab.toml)."),
) -> None:
    """Stand up a primary with replicas, replicating with GTID; print their status.

    On a running cluster it says so and changes nothing; stopped nodes are started again.
    A failed up stops and removes everything it started.

    Example: replab up --nodes 3 --binlog-format ROW
    Example: replab up --server mysql-9.7
    Example: replab up --server mariadb-10.11 --replica-server mariadb-11.8
    Example: replab up --engine compose --image mysql:8.0
    Example: replab up --engine external --config replab.toml
    """
    cluster = Cluster.up(nodes=nodes, binlog_format=binlog_format, base_port=base_port,
                         home=common.OPTIONS["home"], config_file=config, server_binary=server,
                         replica_server=replica_server,
                         engine=engine, image=image, say=common.say)
    common.console.print(common.status_table(cluster.status()))


def status(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show every node: role, address, state, replication threads, lag, last error, GTID position.

    Example: replab status --json
    """
    cluster = common.open_cluster()
    rows = cluster.status()
    if json_out:
        common.print_json({"home": str(cluster.home), "nodes": [r.to_dict() for r in rows]})
    else:
        common.console.print(common.status_table(rows))
        print_diagnosis_lines(cluster, rows)


def sql(
    node: str = typer.Argument(..., help="Node name, e.g. mysql-m."),
    statement: str = typer.Argument(..., help="One SQL statement."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    database: str = typer.Option(None, "--database", "-D", help="Default database for the statement."),
) -> None:
    """Run one SQL statement on a node (as the admin user) and print the result.

    Example: replab sql mysql-s1 "SELECT COUNT(*) FROM mydb.events"
    """
    cluster = common.open_cluster()
    result = cluster.sql(node, statement, database=database)
    if json_out:
        common.print_json({"node": node, **result.to_dict()})
        return
    if not result.columns:
        common.console.print(f"{node}: OK, {result.rowcount} row(s) affected")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in result.columns:
        table.add_column(col)
    for row in result.rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    common.console.print(table)


def connect(node: str = typer.Argument(..., help="Node name, e.g. mysql-m.")) -> None:
    """Open the interactive mariadb client on a node, logged in as admin.

    Credentials come from the cluster's option file (mode 0600), never from the command line.

    Example: replab connect mysql-m
    """
    cluster = common.open_cluster()
    argv = cluster.engine.client_argv(cluster.node(node), cluster.credentials_file)
    cluster._require_running(node)
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise ReplabError(f"cannot run {argv[0]}: {exc}") from None


def down(keep_data: bool = typer.Option(False, "--keep-data", help="Stop the servers but keep data dirs, "
                                        "configs and logs (replab up starts them again).")) -> None:
    """Stop every node (clean shutdown, then TERM, then KILL) and remove the cluster's state.

    Example: replab down
    """
    cluster = common.open_cluster()
    cluster.down(keep_data=keep_data)
    common.console.print(f"cluster in {cluster.home} is down" + (" (data kept)" if keep_data else ""))
