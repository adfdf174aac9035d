"""Lifecycle commands: up, status, sql, connect, down."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import typer

from ..cluster import group
from ..cluster import proxy as proxy_mod
from ..cluster.cluster import Cluster, remove_state
from ..cluster.core import NodeStatus, edge_sentences
from ..core.config import resolve_home
from ..core.errors import ClusterNotFound, ConfigError, ReplabError, StateError
from ..servers import strays
from . import common, galera_view, group_lines
from .diagnosis_lines import print_diagnosis_lines


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)
    app.command("sql")(sql)
    app.command("connect")(connect)
    app.command("down")(down)
    app.command("endpoints")(endpoints)


def up(
    nodes: int = typer.Option(None, "--nodes", "-n", help="Number of nodes, 2-9 (default 3: mysql-m, mysql-s1, "
                              "mysql-s2; each --topology has its own range and default)."),
    topology: str = typer.Option(None, "--topology", "-t", help="The shape: star (default), chain, fan-in, "
                                 "active-active, ring or group (see: replab topology list)."),
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
    semi_sync: bool = typer.Option(False, "--semi-sync", help="Semi-synchronous replication, lossless wait point "
                                   "(AFTER_SYNC): a commit returns once a replica has it."),
    semi_sync_timeout: int = typer.Option(None, "--semi-sync-timeout", metavar="MS", help="With --semi-sync: "
                                          "after this long without a replica's acknowledgement the primary "
                                          "goes asynchronous (default 10000)."),
    proxy: str = typer.Option(None, "--proxy", help="A real proxy in front: haproxy (a write endpoint that "
                              "follows the primary, a read endpoint over the healthy replicas; see replab "
                              "endpoints) or mysql-router (MySQL's star: static routes, the primary first; "
                              "restarted on a role change; see docs/proxy.md)."),
    link_delay: str = typer.Option(None, "--link-delay", help="Shape every replica link from the start: delay "
                                   "added to each direction, e.g. 20ms (see replab link)."),
    link_jitter: str = typer.Option(None, "--link-jitter", help="With --link-delay: its spread, e.g. 5ms."),
    link_rate: str = typer.Option(None, "--link-rate", help="Every replica link's bandwidth, e.g. 2mbit."),
    multi_primary: bool = typer.Option(False, "--multi-primary", help="With --topology group: every member "
                                       "takes writes (conflicting ones fail certification)."),
) -> None:
    """Stand up a primary with replicas, replicating with GTID; print their status.

    On a running cluster it says so and changes nothing; stopped nodes are started again.
    A failed up stops and removes everything it started.

    Example: replab up --nodes 3 --binlog-format ROW
    Example: replab up --server mysql-9.7
    Example: replab up --server mariadb-10.11 --replica-server mariadb-11.8
    Example: replab up --engine compose --image mysql:8.0
    Example: replab up --engine external --config replab.toml
    Example: replab up --semi-sync --semi-sync-timeout 2000
    Example: replab up --link-delay 20ms --link-jitter 2ms
    Example: replab up --topology chain --nodes 3
    Example: replab up --topology fan-in --nodes 3
    Example: replab up --topology group --server mysql-9.7 [--multi-primary]
    Example: replab up --proxy haproxy
    """
    cluster = Cluster.up(nodes=nodes, binlog_format=binlog_format, base_port=base_port,
                         home=common.OPTIONS["home"], config_file=config, server_binary=server,
                         replica_server=replica_server,
                         engine=engine, image=image, say=common.say, semi_sync=semi_sync or None,
                         semi_sync_timeout_ms=semi_sync_timeout, proxy=proxy, link_delay=link_delay,
                         link_jitter=link_jitter, link_rate=link_rate, topology=topology,
                         multi_primary=multi_primary or None)
    if group.is_group(cluster):
        return group_status(cluster, cluster.status(), False)
    if cluster.topology.name == "galera":
        rows = cluster.status()
        common.console.print(galera_view.table(rows))
        common.console.print(galera_view.sentence(rows), markup=False)
    else:
        common.console.print(common.status_table(cluster.status()))
    if cluster.topology.name not in ("star", "galera"):
        common.console.print(common.edge_table(cluster.edge_status()))
    line = common.proxy_line(proxy_mod.status(cluster))
    if line:
        common.console.print(line, markup=False)


def status(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show every node: role, address, state, replication threads, lag, last error, GTID position.

    Example: replab status --json
    """
    cluster = common.open_cluster()
    rows = cluster.status()
    if group.is_group(cluster):
        return group_status(cluster, rows, json_out)
    shaped = cluster.topology.name != "star"
    edges = cluster.edge_status() if shaped else []
    if json_out:
        data: dict[str, Any] = {"home": str(cluster.home), "primary": cluster.primary.name,
                "topology": {r.name: r.source for r in rows if r.role != "primary"},
                "nodes": [r.to_dict() for r in rows], "proxy": proxy_mod.status(cluster)}
        if shaped:  # the star's output stays as it always was
            data.update({"shape": cluster.topology.name, "writers": cluster.writers(),
                         "edges": [e.to_dict() for e in edges]})
        common.print_json(data)
    elif cluster.topology.name == "galera":
        common.console.print(galera_view.table(rows))
        common.console.print(galera_view.sentence(rows), markup=False)
    elif shaped:
        common.console.print(common.status_table(rows))
        common.console.print(common.edge_table(edges))
        for sentence in edge_sentences(cluster.topology.name, edges):
            common.console.print(sentence, markup=False)
    else:
        common.console.print(common.status_table(rows))
        common.console.print(common.topology_line(cluster, rows), markup=False)
        line = common.proxy_line(proxy_mod.status(cluster))
        if line:
            common.console.print(line, markup=False)
        print_diagnosis_lines(cluster, rows)


def group_status(cluster: Cluster, rows: list[NodeStatus], json_out: bool) -> None:
    """A Group Replication cluster: the node table, each member's group state, and the quorum."""
    quorum = group_lines.quorum_data(cluster)
    if json_out:
        common.print_json({"home": str(cluster.home), "primary": quorum["primary"], "shape": cluster.topology.name,
                           "writers": cluster.writers(), "group": quorum, "nodes": [r.to_dict() for r in rows]})
        return
    common.console.print(common.status_table(rows))
    common.console.print(group_lines.member_table(rows))
    for sentence in group_lines.sentences(cluster, rows, quorum):
        common.console.print(sentence, markup=False)


# Statements that neither change data nor schema (so cannot become an errant transaction on a replica).
_READ_ONLY = {"SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "HELP", "SET", "STOP", "START", "KILL", "USE",
              "DO", "CHECKSUM", "CHECK", "BEGIN", "COMMIT", "ROLLBACK", "LOCK", "UNLOCK", "CHANGE", "RESET",
              "VALUES", "TABLE"}
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# Statements that may change data, schema or accounts, or run code that does (and be binlogged).
_WRITES = {*_WRITE_WORDS, "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "LOAD", "CALL",
           "OPTIMIZE", "ANALYZE", "REPAIR", "INSTALL", "UNINSTALL", "XA", "FLUSH", "PURGE", "HANDLER", "IMPORT",
           "BINLOG", "EXECUTE", "PREPARE", "DEALLOCATE", "SAVEPOINT", "RELEASE", "CACHE", "SHUTDOWN", "RESTART",
           "CLONE", "SIGNAL", "RESIGNAL", "GET", "BACKUP"}


def statement_kind(statement: str) -> str:
    """``read`` (neither data nor schema changes: the read-only and replication-control statements above),
    ``write`` (may change data or schema, and be binlogged; ``WITH ...`` when it holds an INSERT, UPDATE or
    DELETE) or ``unknown`` (its first word starts no statement replab knows, e.g. a typo)."""
    text = re.sub(r"/\*.*?\*/|(--|#)[^\n]*", " ", statement, flags=re.S).strip().lstrip("(").upper()
    words = re.findall(r"[A-Z_]+", text)
    if not words:
        return "read"
    if words[0] == "WITH":
        return "write" if any(w in _WRITE_WORDS for w in words) else "read"
    if words[0] == "SET" and len(words) > 1 and words[1] in ("PASSWORD", "ROLE", "DEFAULT"):
        return "write"  # SET PASSWORD / SET DEFAULT ROLE are binlogged account changes
    if words[0] in _READ_ONLY:
        return "read"
    return "write" if words[0] in _WRITES else "unknown"


def writes_data(statement: str) -> bool:
    """Whether a statement may change data or schema (and be binlogged); see statement_kind."""
    return statement_kind(statement) == "write"


def sql(
    node: str = typer.Argument(..., help="Node name, e.g. mysql-m."),
    statement: str = typer.Argument(..., help="One SQL statement."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    database: str = typer.Option(None, "--database", "-D", help="Default database for the statement."),
    allow_replica_write: bool = typer.Option(False, "--allow-replica-write",
                                             help="Run a statement that writes on a replica anyway (it "
                                             "bypasses read_only and becomes an errant transaction)."),
) -> None:
    """Run one SQL statement on a node (as the admin user) and print the result.

    On a replica, a statement that writes (INSERT, ALTER, ...) is refused unless --allow-replica-write:
    the admin user bypasses read_only, and the write would be an errant transaction (a GTID the primary
    never had). For a deliberate local change see: replab drift.

    Example: replab sql mysql-s1 "SELECT COUNT(*) FROM mydb.events"
    """
    cluster = common.open_cluster()
    kind = statement_kind(statement)
    if cluster.node(node).role == "replica" and kind != "read":
        verb = statement.split(None, 1)[0].upper() if statement.split() else "it"
        if kind == "unknown" and not allow_replica_write:
            raise ConfigError(f"{verb} is not a statement replab recognises, so it cannot tell whether it writes "
                              f"on replica {node}", hint="check the spelling; to send it to the server as it is, "
                              "pass --allow-replica-write")
        if not allow_replica_write:
            raise ConfigError(f"{node} is a replica: {verb} there bypasses read_only (replab's admin may) and "
                              f"becomes an errant transaction, a GTID {cluster.primary.name} never had",
                              hint=f"write on {cluster.primary.name}; for a deliberate replica-only change use "
                              "replab drift, or pass --allow-replica-write")
        if kind == "write":
            common.err_console.print(f"warning: writing on replica {node} (--allow-replica-write): this is an errant "
                                     f"transaction unless you keep it out of the binary log; replab check will "
                                     "report it", markup=False)
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
    cluster.require_running(node)
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise ReplabError(f"cannot run {argv[0]}: {exc}") from None


def down(keep_data: bool = typer.Option(False, "--keep-data", help="Stop the servers but keep data dirs, "
                                        "configs and logs (replab up starts them again).")) -> None:
    """Stop every node and remove the cluster's state. Local servers are ended with SIGKILL (their data
    is deleted next); with --keep-data each shuts down cleanly (SHUTDOWN, then TERM, then KILL).

    Safe to repeat: with no cluster it says so and exits 0. With a damaged cluster.json, or servers left
    behind by a home that was removed, it stops replab's processes found by their home path (never by
    process name). A `replab feed` still running on the cluster is told to stop first.

    Example: replab down
    """
    home = resolve_home(common.OPTIONS["home"])
    try:
        cluster = common.open_cluster(change=True)
    except (ClusterNotFound, StateError) as exc:
        _down_without_state(home, exc)
        return
    feeds = common.running_feeds(home)
    if feeds:
        common.err_console.print(f"warning: a replab feed (pid {', '.join(map(str, feeds))}) is writing to this "
                                 "cluster; it is told to stop now", markup=False)
        common.request_down(home)
        deadline = time.monotonic() + 10
        while common.running_feeds(home) and time.monotonic() < deadline:
            time.sleep(0.1)
    try:
        cluster.down(keep_data=keep_data)
    finally:
        common.request_down(home, on=False)
    common.console.print(f"cluster in {cluster.home} is down" + (" (data kept)" if keep_data else ""))


def _down_without_state(home: Path, why: ReplabError) -> None:
    """`down` where cluster.json is missing or unreadable: stop what runs from this home, by its path."""
    left = strays.find(home)
    if isinstance(why, ClusterNotFound) and not left:
        common.console.print(f"no cluster in {home}; nothing to stop")
        return
    if left:
        common.say(f"{why.message}; stopping replab's processes found by their home path: "
                   f"{', '.join(map(str, left))}")
        survivors = strays.stop(left)
        if survivors:
            raise StateError(f"could not stop {', '.join(map(str, survivors))}", hint="stop them by pid (kill -9)")
    remove_state(home)
    common.console.print(f"stopped {len(left)} process(es) of {home} (found by their home path); removed "
                         "replab's files there")


def endpoints(
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    show_password: bool = typer.Option(False, "--show-password", help="Print the application user's password "
                                       "(in the URLs too); otherwise use the option files."),
) -> None:
    """How your application connects: the proxy's write and read endpoints (with --proxy) and every node,
    as host, port, user, an option file (mode 0600, for --defaults-file) and a URL.

    Passwords are printed only with --show-password. On a stopped cluster it says what would be there. A
    client takes an option file as it is: mariadb --defaults-file=FILE.

    Example: replab endpoints

    Example: replab endpoints --json | jq -r '.endpoints[0].option_file'

    Example: replab endpoints --json --show-password
    """
    cluster = common.open_cluster()
    eps = proxy_mod.endpoints(cluster, show_password=show_password)
    running = {n.name for n in cluster.nodes if cluster.engine.state(n) == "running"}
    proxy = proxy_mod.status(cluster)
    if proxy:
        running |= {"write", "read"} if proxy["state"] == "running" else set()
    if json_out:
        common.print_json({"home": str(cluster.home), "endpoints": [
            {**e.to_dict(), "running": e.name in running} for e in eps]})
        return
    for e in eps:
        what = {"write": "write endpoint", "read": "read endpoint"}.get(e.name, "node")
        to = f" -> {', '.join(e.routes_to) or 'nobody now'}" if e.name in ("write", "read") else ""
        down = "" if e.name in running else "  (not running now: this is where it will be)"
        common.console.print(f"{e.name:<10} {what:<15} {e.host}:{e.port}{to}  user {e.user}  "
                             f"--defaults-file={e.option_file}  {e.url}{down}", markup=False)
