"""Rebuild a broken replica from the primary while writes go on, reattach it, wait, verify.

Three methods, each with the server's own tools and a consistent snapshot with its GTID position:

- ``dump``: ``mariadb-dump``/``mysqldump --single-transaction`` of every user database, loaded into the
  replica with ``sql_log_bin=0``;
- ``backup`` (MariaDB): ``mariadb-backup --backup --stream=mbstream`` of the primary piped into
  ``mbstream -x`` in the replica's emptied data dir, prepared in place; the position comes from
  ``mariadb_backup_binlog_info``;
- ``clone`` (MySQL): ``CLONE INSTANCE FROM`` the primary (the clone plugin, ``mysql_clone.so``); the server
  stops to finish it and is started again on the copy.

``auto`` (the default) takes a dump while the user data is small, else the physical copy.

Then the replica's own binary log history is reset (this drops errant GTIDs), ``gtid_slave_pos`` is set
to the snapshot's position and the replica is attached again with MASTER_USE_GTID=slave_pos. Credentials
reach the tools only through 0600 option files (``--defaults-extra-file``), never through argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cluster import replication
from ..core.config import quote_ident
from ..core.errors import ConfigError, NodeStateError, NotSupported, ReplicationError
from ..engines.base import PAUSED, STOPPED
from ..servers import db
from ..verify import checker, rowhash

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

METHODS = ("auto", "dump", "backup", "clone")
DUMP_BELOW = 64 * 1024 * 1024  # bytes of user data: below, a dump is as quick as a physical copy
SYSTEM_DBS = {"mysql", "information_schema", "performance_schema", "sys"}


@dataclass
class RepairReport:
    """What a repair did and what it found afterwards."""

    node: str
    method: str
    gtid: str
    seconds: float
    catch_up_seconds: float
    verified: bool
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    source: str = ""  # shapes other than the star: the node it was rebuilt from (its own source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        whom = f"its source {self.source}" if self.source else "the primary"
        verdict = f"consistent with {whom}" if self.verified else f"NOT consistent with {whom}"
        return (f"{self.node}: rebuilt from {self.method} at GTID {self.gtid} in {self.seconds:.1f}s, caught up "
                f"in {self.catch_up_seconds:.1f}s, {verdict} ({len(self.tables)} table(s) compared)")


def _run(argv: list[str], what: str, node: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run(argv, stderr=subprocess.PIPE, text=True, timeout=600, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise ReplicationError(f"{node}: {what} failed (exit {proc.returncode})", node=node, log_tail=tail,
                               action=os.path.basename(argv[0]))
    return proc


def _user_databases(cluster: Cluster, donor: str | None = None) -> list[str]:
    rows = cluster.sql(donor or cluster.primary.name, "SHOW DATABASES").rows
    return [r[0] for r in rows if r[0] not in SYSTEM_DBS]


def _work_dir(cluster: Cluster, node: str) -> Path:
    path = cluster.home / "run" / f"repair-{node}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    return path


def _dump(cluster: Cluster, node: str, work: Path, donor: str | None = None) -> str:
    """Dump every user database of the primary (or ``donor``: a shape's node's own source), load it into the
    replica; return the snapshot GTID."""
    engine, flavor, creds = cluster.engine, cluster.flavor, cluster.credentials_file
    engine.require("snapshot", node)
    primary, replica = cluster.node(donor) if donor else cluster.primary, cluster.node(node)
    out = work / "snapshot.sql"
    with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        # the engine says how the tool reaches the node (socket, TCP, docker exec); the login is in a 0600 file
        _run([*engine.tool_argv("dump", primary, creds), *flavor.snapshot_args(_user_databases(cluster, donor))],
             f"dump of {donor}" if donor else "dump of the primary", node, stdout=fh)
    gtid = ""
    with open(out) as fh:  # MariaDB prints the position near the end of the file, MySQL near the start
        for statement in _statements_naming_gtids(fh):
            gtid = flavor.snapshot_position(statement) or gtid
    if not gtid:
        raise ReplicationError(f"{node}: the dump records no GTID position", node=node)
    with cluster.connect(node) as conn, conn.cursor() as cur:
        for statement in flavor.before_restore():
            cur.execute(statement)
    with open(out) as fh:
        _run([*engine.tool_argv("client", replica, creds), "--init-command=SET SESSION sql_log_bin=0"],
             f"loading the dump into {node}", node, stdin=fh)
    return gtid


def _statements_naming_gtids(lines: Iterable[str]) -> Iterator[str]:
    """Comment lines, and whole statements that set GTIDs: MySQL writes a GTID_PURGED of several sources
    over several lines (``'uuid1:1-5,\nuuid2:1-3'``)."""
    buf = ""
    for line in lines:
        if buf or ("GTID" in line.upper() and not line.startswith("--")):
            buf += line
            if buf.rstrip().endswith(";"):
                yield buf
                buf = ""
        elif line.startswith("--"):
            yield line


def _backup(cluster: Cluster, node: str, work: Path) -> str:
    """Physical copy of the primary with mariadb-backup, streamed (``--stream=mbstream``) straight into the
    replica's emptied data dir by ``mbstream -x`` (nothing staged in a file), then prepared in place."""
    cluster.engine.require("backup", node)
    tool = cluster.engine.program("backup")
    unpack = shutil.which("mbstream") or str(Path(tool).with_name("mbstream"))
    primary, replica = cluster.primary, cluster.node(node)
    user, password = cluster.credentials()
    # one 0600 option file: the primary's server settings (data dir, redo log) plus the credentials
    # (mariadb-backup accepts only one of --defaults-file / --defaults-extra-file first on its command line)
    creds = work / "creds.cnf"
    db.write_option_file(creds, {group: {"user": user, "password": password, "socket": primary.socket}
                                 for group in ("mariadb-backup", "mariabackup", "xtrabackup")})
    opts = work / "backup.cnf"
    fd = os.open(opts, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(Path(primary.cnf).read_text() + "\n" + creds.read_text())
    creds.unlink()
    if cluster.engine.state(replica) != STOPPED:
        cluster.stop_node(node)
    datadir = Path(replica.datadir)
    shutil.rmtree(datadir)
    datadir.mkdir(mode=0o700)
    tmp = work / "tmp"
    tmp.mkdir()
    with subprocess.Popen([tool, f"--defaults-file={opts}", "--backup", "--stream=mbstream",
                           f"--target-dir={tmp}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as src:
        assert src.stdout is not None
        sink = subprocess.run([unpack, "-x", "-C", str(datadir)], stdin=src.stdout, stderr=subprocess.PIPE,
                              timeout=3600)
        src.stdout.close()
        err = src.stderr.read().decode(errors="replace") if src.stderr else ""
        src.wait(timeout=60)
    if src.returncode or sink.returncode:
        tail = (err or sink.stderr.decode(errors="replace")).strip().splitlines()[-8:]
        raise ReplicationError(f"{node}: mariadb-backup --stream of the primary failed (exit "
                               f"{src.returncode or sink.returncode})", node=node, log_tail=tail, action="backup")
    _run([tool, "--prepare", f"--target-dir={datadir}"], "mariadb-backup --prepare", node)
    info = next((datadir / n for n in ("mariadb_backup_binlog_info", "xtrabackup_binlog_info")
                 if (datadir / n).exists()), None)
    fields = info.read_text().split() if info else []
    if len(fields) < 3:
        raise ReplicationError(f"{node}: the backup has no GTID position ({info})", node=node)
    cluster.start_node(node)
    return fields[2]


def _clone(cluster: Cluster, node: str, work: Path) -> str:
    """MySQL's clone plugin: the replica pulls a physical copy of the primary over the server protocol
    (``CLONE INSTANCE FROM``), then is started again on it; the position is the copy's gtid_executed."""
    cluster.engine.require("clone", node)
    flavor, primary = cluster.flavor, cluster.primary
    user, password = cluster.credentials()
    for name, donor in ((primary.name, ""), (node, f"{primary.host}:{primary.port}")):
        with cluster.connect(name) as conn, conn.cursor() as cur:
            for statement, args in flavor.clone_setup(donor):
                try:
                    cur.execute(statement, args or None)
                except db.driver_errors() as exc:
                    if not (exc.args and exc.args[0] in (1125, 1968)):  # the plugin is there already
                        raise
    replica = cluster.node(node)
    with cluster.connect(node, read_timeout=3600) as conn, conn.cursor() as cur:
        try:
            cur.execute(flavor.clone_statement(), (user, primary.host, primary.port, password))
        except db.driver_errors() as exc:
            # 3707: cloned, and the server shut down to finish it (nothing supervises it to restart it)
            if not (exc.args and exc.args[0] in (3707, 2013)):
                raise ReplicationError(f"{node}: CLONE INSTANCE FROM {primary.name} failed: {exc.args[-1]}",
                                       node=node, action="clone") from None
    deadline = time.monotonic() + 120
    while cluster.engine.state(replica) != STOPPED and time.monotonic() < deadline:
        time.sleep(0.1)
    if cluster.engine.state(replica) != STOPPED:
        cluster.stop_node(node)
    cluster.start_node(node)
    with cluster.connect(node) as conn:
        return str(db.scalar(conn, flavor.executed_gtid()) or "")


def choose_method(cluster: Cluster) -> tuple[str, str]:
    """The rebuild a replica gets by default, and why: a dump while the user data is small, else the
    server's own physical copy (MySQL: the clone plugin; MariaDB: mariadb-backup streamed)."""
    flavor = cluster.flavor
    with cluster.connect(cluster.primary.name) as conn, conn.cursor() as cur:
        for statement in flavor.fresh_table_stats():
            cur.execute(statement)
        cur.execute("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')")
        size = int((cur.fetchone() or (0,))[0] or 0)
    physical = flavor.physical_rebuild
    mb = size / 1024 / 1024
    if size < DUMP_BELOW or physical not in cluster.engine.capabilities:
        why = "" if size < DUMP_BELOW else f"; the {cluster.engine.name} engine cannot {physical}"
        return "dump", f"{mb:,.0f} MB of user data on {cluster.primary.name}: a dump (below {DUMP_BELOW >> 20} MB){why}"
    return physical, (f"{mb:,.0f} MB of user data on {cluster.primary.name}: a physical copy "
                      f"({'the clone plugin' if physical == 'clone' else 'mariadb-backup, streamed'}; a dump "
                      f"below {DUMP_BELOW >> 20} MB)")


def repair(cluster: Cluster, node: str, method: str = "auto", timeout: float = 120.0) -> RepairReport:
    """Rebuild replica ``node`` from the primary (``method`` auto, dump, backup or clone), reattach it with
    GTID, wait until it has caught up and compare it with the primary. Writes may go on meanwhile; ``auto``
    picks by the size of the user data (``choose_method``) and says what it chose."""
    if method not in METHODS:
        raise ConfigError(f"unknown repair method {method!r}: choose auto, dump, backup or clone")
    if method == "backup" and cluster.flavor.name != "mariadb":
        raise NotSupported("repair --method backup uses mariadb-backup, which works on MariaDB only",
                           hint=f"use: replab repair {node} --method clone (MySQL's clone plugin) or dump")
    if method == "clone" and cluster.flavor.physical_rebuild != "clone":
        raise NotSupported("repair --method clone uses MySQL's clone plugin; MariaDB has none",
                           hint=f"use: replab repair {node} --method backup (mariadb-backup) or dump")
    info = cluster.node(node)
    if cluster.topology.name != "star" and not cluster.topology.virtually_synchronous:
        return _repair_shape(cluster, node, method, timeout)
    if info.role != "replica":
        raise ConfigError(f"{node} is the primary; repair rebuilds a replica from it",
                          hint="name a replica, e.g. replab repair mysql-s1")
    cluster.require_running(cluster.primary.name)
    state = cluster.engine.state(info)
    if state == PAUSED:
        raise NodeStateError(f"{node} is paused", node=node, hint=f"replab resume {node} first")
    t0 = time.monotonic()
    steps: list[str] = []
    if method == "auto":
        method, why = choose_method(cluster)
        steps.append(f"{node}: rebuilding by {method}: {why}")
        cluster.say(steps[-1])
    if method in ("dump", "clone") and state == STOPPED:
        cluster.start_node(node)
    work = _work_dir(cluster, node)
    try:
        gtid = {"dump": _dump, "backup": _backup, "clone": _clone}[method](cluster, node, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps.append(f"{node}: restored a consistent snapshot of {cluster.primary.name} taken at GTID {gtid}")
    cluster.say(steps[-1])
    flavor = cluster.flavor
    with cluster.connect(node) as conn, conn.cursor() as cur:
        for statement, args in flavor.after_restore(gtid):
            cur.execute(statement, args or None)
    cluster.attach(node)
    info.extra.pop("left_out", None)  # a replica a forced failover left out replicates again
    cluster.save()
    steps.append(f"{node}: reattached to {cluster.primary.name} with GTID auto-positioning from {gtid}")
    cluster.say(steps[-1])
    t1 = time.monotonic()
    cluster.wait_threads([node], timeout=30)
    if not cluster.wait_caught_up(timeout=timeout, names=[node]).get(node):
        raise ReplicationError(f"{node}: rebuilt but did not catch up within {timeout:.0f}s", node=node,
                               hint=f"replab diagnose {node}")
    catch_up = time.monotonic() - t1
    tables = compare(cluster, node)
    problems = _checker_problems(cluster, node, timeout)
    steps += problems
    report = RepairReport(node, method, gtid, time.monotonic() - t0, catch_up,
                          all(t["match"] for t in tables.values()) and not problems, tables, steps)
    return report


def _repair_shape(cluster: Cluster, node: str, method: str, timeout: float) -> RepairReport:
    """A chain's replica or an active-active's extra replica: rebuilt from a dump of its own source (the
    edge into it), reattached along that edge, compared with that source, then checked. Refused, before
    anything changes, for a node that takes writes and for a node of several sources (a fan-in replica: one
    source's snapshot lacks the others' writes; ``replab sync`` fixes its rows against each primary)."""
    info, shape = cluster.node(node), cluster.topology.name
    into = cluster.edges_into(node)
    if info.role != "replica" or not into:
        raise ConfigError(f"{node} takes writes on this {shape}; repair rebuilds a node that only replicates, "
                          "from its source", hint="name a replica: replab topology list shows who replicates from "
                          "whom")
    if len(into) > 1:
        raise NotSupported(f"{node} replicates from {len(into)} sources ({', '.join(e.source for e in into)}); a "
                           "rebuild from one source's snapshot would lack the others' writes",
                           hint=f"fix its rows against each source instead: replab sync {node}")
    if method not in ("auto", "dump"):
        raise NotSupported(f"repair --method {method} is for the star; on a {shape} a node is rebuilt from a dump "
                           "of its own source", hint=f"replab repair {node} --method dump")
    edge = into[0]
    donor = edge.source
    cluster.require_running(donor)
    state = cluster.engine.state(info)
    if state == PAUSED:
        raise NodeStateError(f"{node} is paused", node=node, hint=f"replab resume {node} first")
    t0 = time.monotonic()
    steps = [f"{node}: rebuilding by dump of {donor}, its source on this {shape}"]
    cluster.say(steps[-1])
    if state == STOPPED:
        cluster.start_node(node)
    work = _work_dir(cluster, node)
    try:
        gtid = _dump(cluster, node, work, donor)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps.append(f"{node}: restored a consistent snapshot of {donor} taken at GTID {gtid}")
    cluster.say(steps[-1])
    with cluster.connect(node) as conn, conn.cursor() as cur:
        for statement, args in cluster.flavor.after_restore(gtid):
            cur.execute(statement, args or None)
    cluster.attach_edge(edge)
    steps.append(f"{node}: reattached to {donor} ({edge.describe()}) with GTID auto-positioning from {gtid}")
    cluster.say(steps[-1])
    t1 = time.monotonic()
    cluster.wait_edges(timeout=30, only=[edge])
    with cluster.connect(donor) as conn:
        position = replication.executed_gtid(conn, cluster.flavor)
    if not cluster.wait_caught_up(timeout=timeout, names=[node], gtid=position).get(node):
        raise ReplicationError(f"{node}: rebuilt but did not catch up with {donor} within {timeout:.0f}s", node=node,
                               hint=f"replab diagnose {node}")
    catch_up = time.monotonic() - t1
    tables = compare(cluster, node, reference=donor)
    problems = _checker_problems(cluster, node, timeout)
    steps += problems
    return RepairReport(node, "dump", gtid, time.monotonic() - t0, catch_up,
                        all(t["match"] for t in tables.values()) and not problems, tables, steps, source=donor)


def _checker_problems(cluster: Cluster, node: str, wait: float) -> list[str]:
    """What the checker (ledger, chunked checksums, schema) finds wrong with ``node``; [] when it is clean."""
    # other replicas may be broken on purpose: do not let the checker wait for them for long
    report = checker.check(cluster, wait=min(wait, 10.0))
    return [f"checker: {p.node}: {p.kind} {p.table or ''} {p.detail}".rstrip()
            for p in report.problems if p.node == node]


def _table_checksum(conn: Any, schema: str, table: str, cols: list[str], pk: str, upto: Any) -> tuple[int, int]:
    """(row count, checksum) with the checker's row hash (non-linear, unambiguous encoding)."""
    tq = f"{quote_ident(schema)}.{quote_ident(table)}"
    row = db.query(conn, f"SELECT COUNT(*) AS n, COALESCE({rowhash.aggregate_sql(cols, True)}, 0) AS x "
                         f"FROM {tq} WHERE {quote_ident(pk)} <= %s", (upto,))[0]
    return int(row["n"]), int(row["x"])


def compare(cluster: Cluster, node: str, timeout: float = 30.0,
            reference: str | None = None) -> dict[str, dict[str, Any]]:
    """Row count and checksum of each table of the cluster database, primary (or ``reference``) vs ``node``,
    up to the highest primary key the primary had when the comparison started (so inserts going on do not
    disturb it)."""
    schema = cluster.database
    out: dict[str, dict[str, Any]] = {}
    with cluster.connect(reference or cluster.primary.name) as pconn:
        tables = db.query(pconn, "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                                 "AND TABLE_TYPE='BASE TABLE'", (schema,))
        plan: list[tuple[str, list[str], str, Any, tuple[int, int]]] = []
        for row in tables:
            table = row["t"]
            cols = [r["c"] for r in db.query(pconn, "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE "
                                                    "TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
                                             (schema, table))]
            pks = db.query(pconn, "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE "
                                  "TABLE_SCHEMA=%s AND TABLE_NAME=%s AND CONSTRAINT_NAME='PRIMARY'", (schema, table))
            if len(pks) != 1:
                continue
            pk = pks[0]["c"]
            upto = db.scalar(pconn, f"SELECT COALESCE(MAX({quote_ident(pk)}), 0) FROM "
                                    f"{quote_ident(schema)}.{quote_ident(table)}")
            plan.append((table, cols, pk, upto, _table_checksum(pconn, schema, table, cols, pk, upto)))
        gtid = replication.executed_gtid(pconn, cluster.flavor)
    cluster.wait_caught_up(timeout=timeout, names=[node], gtid=gtid)
    with cluster.connect(node) as rconn:
        for table, cols, pk, upto, primary_sum in plan:
            try:
                replica_sum = _table_checksum(rconn, schema, table, cols, pk, upto)
            except Exception as exc:  # noqa: BLE001 - a missing table or column is a mismatch, not a crash
                replica_sum = (-1, -1)
                cluster.say(f"{node}: cannot checksum {schema}.{table}: {exc}")
            out[f"{schema}.{table}"] = {"rows_primary": primary_sum[0], "rows_replica": replica_sum[0],
                                        "upto": upto, "match": primary_sum == replica_sum}
    return out

