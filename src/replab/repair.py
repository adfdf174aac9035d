"""Rebuild a broken replica from the primary while writes go on, reattach it, wait, verify.

Two methods, both with the server's own tools and a consistent snapshot with its GTID position:

- ``dump``: ``mariadb-dump --single-transaction --gtid --master-data=2`` of every user database, loaded
  into the replica with ``sql_log_bin=0``;
- ``backup``: ``mariadb-backup --backup`` + ``--prepare`` of the primary's data dir, copied back over the
  replica's (stopped) data dir; the position comes from ``mariadb_backup_binlog_info``.

Then the replica's own binary log history is reset (this drops errant GTIDs), ``gtid_slave_pos`` is set
to the snapshot's position and the replica is attached again with MASTER_USE_GTID=slave_pos. Credentials
reach the tools only through 0600 option files (``--defaults-extra-file``), never through argv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checker, db, replication, rowhash
from .config import quote_ident
from .engines.base import PAUSED, STOPPED
from .engines.local import find_program
from .errors import BinaryNotFound, ConfigError, NodeStateError, ReplicationError

if TYPE_CHECKING:
    from .cluster import Cluster

METHODS = ("dump", "backup")
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        verdict = "consistent with the primary" if self.verified else "NOT consistent with the primary"
        return (f"{self.node}: rebuilt from {self.method} at GTID {self.gtid} in {self.seconds:.1f}s, caught up "
                f"in {self.catch_up_seconds:.1f}s, {verdict} ({len(self.tables)} table(s) compared)")


def _tool(names: list[str], package: str) -> str:
    found = find_program(names)
    if not found:
        raise BinaryNotFound(f"{names[0]} is not installed", hint=f"apt-get install {package}")
    return found


def _run(argv: list[str], what: str, node: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run(argv, stderr=subprocess.PIPE, text=True, timeout=600, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise ReplicationError(f"{node}: {what} failed (exit {proc.returncode})", node=node, log_tail=tail,
                               action=os.path.basename(argv[0]))
    return proc


def _user_databases(cluster: Cluster) -> list[str]:
    rows = cluster.sql(cluster.primary.name, "SHOW DATABASES").rows
    return [r[0] for r in rows if r[0] not in SYSTEM_DBS]


def _work_dir(cluster: Cluster, node: str) -> Path:
    path = cluster.home / "run" / f"repair-{node}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    return path


def _dump(cluster: Cluster, node: str, work: Path) -> str:
    """Dump every user database of the primary, load it into the replica; return the snapshot GTID."""
    dump = _tool(["mariadb-dump", "mysqldump"], "mariadb-client")
    client = _tool(["mariadb", "mysql"], "mariadb-client")
    primary, replica = cluster.primary, cluster.node(node)
    out = work / "snapshot.sql"
    creds = str(cluster.credentials_file)
    with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        _run([dump, f"--defaults-extra-file={creds}", f"--socket={primary.socket}", "--single-transaction",
              "--gtid", "--master-data=2", "--add-drop-database", "--routines", "--triggers", "--events",
              "--databases", *_user_databases(cluster)], "mariadb-dump of the primary", node, stdout=fh)
    gtid = ""
    with open(out) as fh:  # MariaDB prints the deferred position near the end of the file
        for line in fh:
            if line.startswith("--"):
                m = re.search(r"gtid_slave_pos\s*=\s*'([^']*)'", line)
                if m:
                    gtid = m.group(1)
    if not gtid:
        raise ReplicationError(f"{node}: the dump has no GTID position (gtid_slave_pos line)", node=node)
    with cluster.connect(node) as conn, conn.cursor() as cur:
        cur.execute(cluster.flavor.stop_replica())
    with open(out) as fh:
        _run([client, f"--defaults-extra-file={creds}", f"--socket={replica.socket}",
              "--init-command=SET SESSION sql_log_bin=0"], f"loading the dump into {node}", node, stdin=fh)
    return gtid


def _backup(cluster: Cluster, node: str, work: Path) -> str:
    """Physical copy of the primary with mariadb-backup, copied over the replica's data dir."""
    tool = _tool(["mariadb-backup", "mariabackup"], "mariadb-backup")
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
    target = work / "backup"
    base = [tool, f"--defaults-file={opts}"]
    _run([*base, "--backup", f"--target-dir={target}"], "mariadb-backup --backup of the primary", node)
    _run([tool, "--prepare", f"--target-dir={target}"], "mariadb-backup --prepare", node)
    info = next((target / n for n in ("mariadb_backup_binlog_info", "xtrabackup_binlog_info")
                 if (target / n).exists()), None)
    fields = info.read_text().split() if info else []
    if len(fields) < 3:
        raise ReplicationError(f"{node}: the backup has no GTID position ({info})", node=node)
    if cluster.engine.state(replica) != STOPPED:
        cluster.stop_node(node)
    datadir = Path(replica.datadir)
    shutil.rmtree(datadir)
    _run([tool, "--copy-back", f"--target-dir={target}", f"--datadir={datadir}"], "mariadb-backup --copy-back",
         node)
    cluster.start_node(node)
    return fields[2]


def repair(cluster: Cluster, node: str, method: str = "dump", timeout: float = 120.0) -> RepairReport:
    """Rebuild replica ``node`` from the primary (``method`` dump or backup), reattach it with GTID, wait
    until it has caught up and compare it with the primary. Writes may go on meanwhile."""
    if method not in METHODS:
        raise ConfigError(f"unknown repair method {method!r}: choose dump or backup")
    info = cluster.node(node)
    if info.role != "replica":
        raise ConfigError(f"{node} is the primary; repair rebuilds a replica from it",
                          hint="name a replica, e.g. replab repair mysql-s1")
    cluster._require_running(cluster.primary.name)
    state = cluster.engine.state(info)
    if state == PAUSED:
        raise NodeStateError(f"{node} is paused", node=node, hint=f"replab resume {node} first")
    t0 = time.monotonic()
    steps: list[str] = []
    if method == "dump" and state == STOPPED:
        cluster.start_node(node)
    work = _work_dir(cluster, node)
    try:
        gtid = _dump(cluster, node, work) if method == "dump" else _backup(cluster, node, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps.append(f"{node}: restored a consistent snapshot of {cluster.primary.name} taken at GTID {gtid}")
    cluster.say(steps[-1])
    flavor = cluster.flavor
    with cluster.connect(node) as conn, conn.cursor() as cur:
        cur.execute(flavor.stop_replica())
        cur.execute(flavor.reset_binlog())
        cur.execute(flavor.set_replica_position(), (gtid,))
    host, port = cluster.engine.source_address(cluster.primary, info)
    repl = cluster.credentials(db.REPL)
    with cluster.connect(node) as conn:
        replication.attach_replica(conn, flavor, host=host, port=port, repl=repl)
    cluster.save()
    steps.append(f"{node}: reattached to {cluster.primary.name} with MASTER_USE_GTID=slave_pos from {gtid}")
    cluster.say(steps[-1])
    t1 = time.monotonic()
    replication.wait_threads(cluster, [node], timeout=30)
    if not replication.wait_caught_up(cluster, timeout=timeout, names=[node]).get(node):
        raise ReplicationError(f"{node}: rebuilt but did not catch up within {timeout:.0f}s", node=node,
                               hint=f"replab diagnose {node}")
    catch_up = time.monotonic() - t1
    tables = compare(cluster, node)
    problems = _checker_problems(cluster, node, timeout)
    steps += problems
    report = RepairReport(node, method, gtid, time.monotonic() - t0, catch_up,
                          all(t["match"] for t in tables.values()) and not problems, tables, steps)
    return report


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


def compare(cluster: Cluster, node: str, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Row count and checksum of each table of the cluster database, primary vs ``node``, up to the highest
    primary key the primary had when the comparison started (so inserts going on do not disturb it)."""
    schema = cluster.database
    out: dict[str, dict[str, Any]] = {}
    with cluster.connect(cluster.primary.name) as pconn:
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
    replication.wait_caught_up(cluster, timeout=timeout, names=[node], gtid=gtid)
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

