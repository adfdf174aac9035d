"""Explain, in plain words, what replication did on each replica that is broken or drifting.

The facts come from the replica's SHOW SLAVE STATUS, both nodes' information_schema.COLUMNS, their GTID
state, the primary's SHOW BINARY LOGS and gtid_purged (MySQL), the GTID commit stamps at the start of both
binary logs (the primary's log reset, purged, or its GTIDs issued again: ``causes.BinlogGap``, observed on
MariaDB 10.11 and MySQL 9.7) and (for row drift) primary keys of the cluster's tables. What each schema
cause does was observed on MariaDB 10.11 (see docs/faults.md): ROW events carry values by column position, so

- a column dropped on the replica at the END: replication goes on, the primary's last value is ignored;
- dropped in the MIDDLE: every later value shifts one column to the left; when types differ the SQL thread
  stops with 1677 ("Column 1 of table 'mydb.events' cannot be converted from type 'varchar(256 octets)' to
  type 'int(11)'"), when they are compatible the values land in the wrong column silently;
- under STATEMENT a statement naming the missing column stops with 1054;
- a row the replica lacks stops an UPDATE/DELETE event with 1032, a row it has extra stops an INSERT
  with 1062;
- a column whose type differs (even INT -> BIGINT, VARCHAR(64) -> VARCHAR(255)) stops ROW events with 1677;
- an errant transaction (MariaDB: a GTID with the replica's own server_id) under gtid_strict_mode stops the next
  replicated event of that domain with 1950 (out-of-order sequence number).
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import group, replication, roles
from ..core.config import quote_ident
from ..core.errors import ReplabError, SqlError
from ..engines.base import PAUSED, RUNNING, bring_back
from ..servers import db
from ..servers.flavor import ReplicaStatus
from ..servers.gtid import GtidSet
from . import galera_diagnose, group_diagnose
from .causes import (
    BinlogGap,
    Column,
    Stamps,
    before,
    binlog_gap,
    ddl_change,
    errant_gtids,
    gap_sentences,
    gtid_stamps,
    read_past_end,
    reissue_gap,
)
from .diagnosis import Diagnosis

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

SYSTEM_DBS = ("mysql", "information_schema", "performance_schema", "sys")
MAX_KEYS = 200_000
STAMP_PROBE = 2_000  # GTIDs read from the start of each binary log when looking for GTIDs issued twice
STAMP_LIMIT = 50_000  # ... and when some were: to count them
STAMP_SECONDS = 20.0


# --- facts ------------------------------------------------------------------------------------------
def _schema(conn: pymysql.connections.Connection) -> dict[str, list[Column]]:
    rows = db.query(conn, "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, ORDINAL_POSITION AS p, "
                          "DATA_TYPE AS dt, COLUMN_TYPE AS ct, CHARACTER_MAXIMUM_LENGTH AS ml "
                          "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN %s "
                          "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", (SYSTEM_DBS,))
    out: dict[str, list[Column]] = {}
    for r in rows:
        out.setdefault(f"{r['s']}.{r['t']}", []).append(
            Column(r["c"], int(r["p"]), str(r["dt"]).lower(), str(r["ct"]).lower(),
                   int(r["ml"]) if r["ml"] is not None else None))
    return out


def compatible(src: Column, dst: Column) -> bool:
    """Would a ROW event value of ``src``'s type apply to ``dst`` (with the default, empty
    slave_type_conversions)? Observed on MariaDB 10.11: only the identical type does; even VARCHAR(64) into
    VARCHAR(255) or INT into BIGINT stops the SQL thread with error 1677."""
    return src.column_type == dst.column_type


# --- schema drift -----------------------------------------------------------------------------------
def schema_findings(table: str, prim: list[Column], repl: list[Column], fmt: str,
                    conversion_errno: int = 1677) -> tuple[list[str], list[str]]:
    """(causes, next-write predictions) for one table whose columns differ; ``conversion_errno`` is the
    flavor's error for a ROW value that does not fit (MariaDB 1677, MySQL 8.0+ 13146)."""
    causes: list[str] = []
    nxt: list[str] = []
    pnames = [c.name.lower() for c in prim]
    rnames = [c.name.lower() for c in repl]
    missing = [c for c in prim if c.name.lower() not in rnames]
    extra = [c for c in repl if c.name.lower() not in pnames]
    for col in missing:
        at_end = col.position > len(repl) and all(c.position > len(repl) for c in missing)
        where = "the last column" if col.position == len(prim) else f"column {col.position} of {len(prim)}"
        causes.append(f"column `{col.name}` ({where}) of {table} exists on the primary but was dropped on "
                      "this replica only")
        if fmt != "ROW":
            nxt.append(f"the next replicated statement naming `{col.name}` stops the SQL thread with error 1054 "
                       "(Unknown column)")
        if at_end and fmt == "ROW":
            nxt.append(f"ROW events still apply: the primary's trailing `{col.name}` value is ignored here, so "
                       f"{table}.{col.name} stays missing on this replica")
    if missing and fmt != "STATEMENT" and not all(c.position > len(repl) for c in missing):
        first = min(c.position for c in missing)
        clash = [(p, r) for p, r in zip(prim, repl, strict=False) if p.position >= first]
        bad = [(p, r) for p, r in clash if not compatible(p, r)]
        shifted = ", ".join(f"`{p.name}`->`{r.name}`" for p, r in clash)
        if bad:
            p, r = bad[0]
            nxt.append(f"ROW events apply by position, so from column {first} on values shift one column left "
                       f"({shifted}); `{p.name}` ({p.column_type}) cannot go into `{r.name}` ({r.column_type}): "
                       f"the next row event on {table} stops the SQL thread with error {conversion_errno}")
        else:
            nxt.append(f"ROW events apply by position, so from column {first} on values shift one column left "
                       f"({shifted}) and the types fit: rows land in the wrong columns SILENTLY")
    for col in extra:
        causes.append(f"column `{col.name}` of {table} exists on this replica only")
        if col.position <= len(prim):
            nxt.append(f"ROW events apply by position: primary column {col.position} lands in `{col.name}`")
        else:
            nxt.append(f"ROW events fill `{col.name}` with its default; the primary never sees it")
    for pc in prim:
        rc = next((c for c in repl if c.name.lower() == pc.name.lower()), None)
        if rc is not None and rc.column_type != pc.column_type and not (missing or extra):
            causes.append(f"column `{pc.name}` of {table} is {pc.column_type} on the primary but {rc.column_type} "
                          "here")
            if fmt != "STATEMENT":
                nxt.append("row events fit the changed type" if compatible(pc, rc) else
                           f"the next row event on {table} stops the SQL thread with error {conversion_errno} "
                           f"(cannot convert {pc.column_type} to {rc.column_type} while slave_type_conversions is "
                           "empty)")
    return causes, nxt


# --- row drift ---------------------------------------------------------------------------------------
def _pk(cols: list[Column], pconn: Any, table: str) -> str | None:
    schema, name = table.split(".", 1)
    rows = db.query(pconn, "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE "
                           "TABLE_SCHEMA=%s AND TABLE_NAME=%s AND CONSTRAINT_NAME='PRIMARY'", (schema, name))
    return rows[0]["c"] if len(rows) == 1 else None


def _keys(conn: Any, table: str, pk: str, upto: Any) -> set[Any]:
    schema, name = table.split(".", 1)
    tq = f"{quote_ident(schema)}.{quote_ident(name)}"
    rows = db.query(conn, f"SELECT {quote_ident(pk)} AS k FROM {tq} WHERE {quote_ident(pk)} <= %s "
                          f"ORDER BY 1 LIMIT {MAX_KEYS}", (upto,))
    return {r["k"] for r in rows}


def _shifted_examples(pconn: Any, rconn: Any, table: str, pk: str, prim: list[Column],
                      repl: list[Column]) -> list[str]:
    """Rows where the replica holds, in a column, the value the primary has one column to the left."""
    schema, name = table.split(".", 1)
    tq = f"{quote_ident(schema)}.{quote_ident(name)}"
    pkq = quote_ident(pk)
    prow = {r[pk]: r for r in db.query(pconn, f"SELECT * FROM {tq} ORDER BY {pkq} DESC LIMIT 200")}
    out: list[str] = []
    for r in db.query(rconn, f"SELECT * FROM {tq} ORDER BY {pkq} DESC LIMIT 200"):
        p = prow.get(r[pk])
        if p is None:
            continue
        for i, col in enumerate(repl):
            src = prim[i].name if i < len(prim) else None
            if src and src != col.name and col.name in p and r[col.name] != p[col.name] and r[col.name] == p[src]:
                out.append(f"{pk}={r[pk]}: `{col.name}` = {r[col.name]!r} here (the primary's `{src}`), "
                           f"but {p[col.name]!r} on the primary")
                break
        if len(out) >= 3:
            break
    return out


# --- main --------------------------------------------------------------------------------------------
def _io_problem(cluster: Cluster, name: str, st: Any) -> str | None:
    primary, pstate = cluster.primary.name, cluster.engine.state(cluster.primary)
    if pstate == PAUSED:  # its connections stay open and silent: no error, no reconnect before the timeout
        return (f"{primary} is paused: its connection stays open and nothing arrives; the IO thread waits out "
                f"slave_net_timeout, then retries until it is back ({bring_back(primary, pstate)})")
    if pstate != RUNNING:  # before the IO error: a stopped primary shows as error 2013 at the relay's port
        return (f"{primary} is {pstate}; the IO thread reconnects every second until it is back "
                f"({bring_back(primary, pstate)})")
    if name in cluster.engine.partitioned(cluster.nodes):
        cut = (cluster.engine.link_state(cluster.node(name)) or {}).get("cut") or []
        if len(cut) == 1:
            return _one_way(cluster, name, st, cut[0])
        return (f"its link to {cluster.primary.name} is cut (replab partition); the IO thread "
                f"{'still waits for data' if st.io_running else 'keeps reconnecting'}; heal with: "
                f"replab heal {name}")
    if st.io_state != "Yes" and st.last_io_errno:
        return f"the IO thread cannot read from the primary: error {st.last_io_errno}: {st.last_io_error}"
    return None


def _one_way(cluster: Cluster, name: str, st: Any, direction: str) -> str:
    """A link cut one way: what the replica's IO thread sees, and what the primary's dump thread sees."""
    primary = cluster.primary.name
    try:
        timeout = cluster.sql(name, "SELECT @@GLOBAL.slave_net_timeout").rows[0][0]
        with cluster.connect(primary, timeout=2, read_timeout=5) as conn:
            dumps = replication.dump_threads(conn)
    except (ReplabError, pymysql.MySQLError):
        timeout, dumps = "?", []
    ports = set(cluster.engine.link_ports(cluster.node(name)))
    mine = next((d for d in dumps if d["port"] in ports), None)
    dump = (f"{primary}'s dump thread for it (id {mine['id']}) is still there ('{mine['state'] or 'no state'}' "
            f"for {mine['time_s']}s)" if mine else f"{primary} has no dump thread for it (it dropped the connection)")
    io = "running" if st.io_running else ("connecting" if st.io_state == "Connecting" else "stopped")
    if direction == "to-replica":
        return (f"its link is cut toward the replica only (replab partition --direction to-replica): the IO "
                f"thread ({io}) hears nothing, no error and no reset, until slave_net_timeout={timeout}s passes "
                f"without an event or heartbeat, then it reconnects; {dump}, writing into the cut while its "
                f"requests still arrive; heal with: replab heal {name}")
    return (f"its link is cut toward the primary only (replab partition --direction to-primary): the IO "
            f"thread ({io}) still receives events and heartbeats; {primary} hears nothing from it (no "
            f"semi-sync acknowledgement, no new request); {dump}; heal with: replab heal {name}")


_TABLE_PATTERNS = [
    re.compile(r"on table ([\w$]+\.[\w$]+)"),
    re.compile(r"of table '([\w$]+\.[\w$]+)'"),
]


def _edge_diagnosis(cluster: Cluster, name: str) -> Diagnosis | None:
    """A node of a shape other than the star, by its own edges: a source that is down, an edge whose threads
    stopped on an error (a duplicate key where two primaries wrote the same key is explained). None when
    its edges replicate (the caller then looks further, or says it is fine)."""
    rows = [e for e in cluster.edge_status() if e.replica == name]
    for e in rows:
        via = f"{e.source} -> {e.replica}" + (f" ({e.channel})" if e.channel else "")
        if e.state != RUNNING:
            return None  # the node itself is down: _one says so
        if e.source_state != RUNNING:
            fix = f"replab start {e.source}"
            if "repoint" in cluster.topology.role_changes:
                fix += f", or move it: replab repoint {name} --to SOURCE"
            return Diagnosis(name, "broken", f"not receiving over {via}: its source {e.source} is "
                             f"{'down' if e.source_state == 'stopped' else e.source_state} ({fix})")
        cut = (e.link or {}).get("cut") or []
        if cut and not e.last_errno:
            how = "both ways" if len(cut) == 2 else f"{cut[0]} only"
            io = "still waits for data" if e.io_running else "keeps reconnecting"
            return Diagnosis(name, "broken", f"not receiving over {via}: its link is cut {how} (replab partition); "
                             f"the IO thread {io}; heal with: replab heal {name}"
                             f"{' --from ' + e.source if e.channel else ''}")
        if e.last_errno and not (e.io_running and e.sql_running):
            d = Diagnosis(name, "broken", f"{via}: replication stopped: error {e.last_errno}", errno=e.last_errno,
                          error=e.last_error or "")
            if e.last_errno == 1062 and cluster.topology.multi_writer(cluster.names):
                d.causes.append(f"{e.source} wrote a row whose key {name} already had: two primaries inserted the "
                                "same key (AUTO_INCREMENT ids without auto_increment_increment/offset, or the same "
                                "explicit id on both)")
                d.next_writes.append(f"nothing from {e.source} applies here until that row is resolved; give each "
                                     "primary its own auto_increment_offset (replab's default for this shape)")
            return d
    return None


def diagnose(cluster: Cluster, node: str | None = None) -> list[Diagnosis]:
    """A ``Diagnosis`` for each replica (or just ``node``), explaining errors and drift in plain words.
    On shapes other than the star every node with a source is examined by its edges first."""
    if group.is_group(cluster):  # members, not replicas: each member's own view of the group
        return group_diagnose.diagnose_group(cluster, node)
    if galera_diagnose.is_galera(cluster):  # wsrep nodes: each node's own component and local state
        return galera_diagnose.diagnose_galera(cluster, node)
    if cluster.topology.name != "star":
        fed = [e.replica for e in cluster.edges]
        wanted = [cluster.node(node).name] if node else list(dict.fromkeys(n for n in cluster.names if n in fed))
        out = []
        for name in wanted:
            if cluster.node(name).role == "demoted":  # a failover took it out (a chain's old head): as on the star
                out.append(diagnose_star(cluster, name)[0])
                continue
            found = _edge_diagnosis(cluster, name) if name in fed else None
            if (found is None and cluster.topology.multi_writer(cluster.names)) or name not in fed:
                sources = ", ".join(e.source for e in cluster.edges_into(name)) or "no node"
                state = cluster.engine.state(cluster.node(name))
                found = Diagnosis(name, "ok" if state == RUNNING else "down", f"replicating from {sources}"
                                  if state == RUNNING else f"is {state} (replab start {name})")
            out.append(found if found is not None else diagnose_star(cluster, name)[0])
        return out
    return diagnose_star(cluster, node)


def diagnose_star(cluster: Cluster, node: str | None = None) -> list[Diagnosis]:
    """The star's (and a chain's, once its edges replicate) diagnosis against the primary."""
    names = [cluster.node(node).name] if node else [r.name for r in cluster.replicas]
    if node and cluster.node(node).role == "primary":
        return [Diagnosis(node, "ok", "is the primary; diagnose explains replicas (try: replab diagnose)")]
    primary = cluster.primary
    pconn = None
    if cluster.engine.state(primary) == RUNNING:
        try:
            pconn = cluster.connect(primary.name, timeout=2, read_timeout=10, dict_rows=False)
        except SqlError:
            pconn = None
    stamps: dict[tuple[str, int], tuple[Stamps, bool] | None] = {}  # stamps read, by (node, limit): the primary once
    try:
        return [_one(cluster, name, pconn, stamps) for name in names]
    finally:
        if pconn is not None:
            pconn.close()


def _one(cluster: Cluster, name: str, pconn: Any, stamps: dict[tuple[str, int], tuple[Stamps, bool] | None]
         ) -> Diagnosis:
    state = cluster.engine.state(cluster.node(name))
    if state != RUNNING:
        hint = f"replab resume {name}" if state == "paused" else f"replab start {name}"
        return Diagnosis(name, "down", f"is {state}; when it is back it resumes from its saved GTID position "
                                       f"and fetches what it missed ({hint})")
    fmt = cluster.binlog_format
    try:
        with cluster.connect(name, timeout=2, read_timeout=10) as rconn:
            return _examine(cluster, name, rconn, pconn, fmt, stamps)
    except (SqlError, pymysql.MySQLError) as exc:
        return Diagnosis(name, "down", f"does not answer ({exc})")


def _examine(cluster: Cluster, name: str, rconn: Any, pconn: Any, fmt: str,
             stamps: dict[tuple[str, int], tuple[Stamps, bool] | None]) -> Diagnosis:
    st = replication.replica_status(rconn, cluster.flavor)
    out = _out_of_replication(cluster, name, rconn, pconn)
    if out is not None:
        return out
    if st is None:
        return Diagnosis(name, "broken", "is not replicating at all (no replication configured)",
                         causes=["RESET SLAVE ALL or a rebuild left it without a source"])
    d = Diagnosis(name, "ok", "replicating; schema and GTID history match the primary")
    flavor = cluster.flavor
    rstate = str(db.scalar(rconn, flavor.binlog_gtid_state()) or "")
    # the replica's position before the primary's state: under writes the primary only moves ahead meanwhile,
    # so a replica "ahead" of the primary is a real reset, never the order of two reads
    rexec = replication.executed_gtid(rconn, flavor)
    rschema = _schema(rconn)
    pschema = _schema(pconn) if pconn is not None else {}
    gap = None
    if pconn is not None:
        pstate = str(db.scalar(pconn, flavor.binlog_gtid_state()) or "")
        pid = str(db.scalar(pconn, flavor.gtid_source_id()))
        # what the primary wrote or applied: its binary log state plus its executed position (a promoted
        # replica without log_slave_updates has applied the old primary's GTIDs without logging them)
        d.errant_gtids = errant_gtids(rstate, f"{pstate},{replication.executed_gtid(pconn, flavor)}", pid)
        gap = _binlog_gap(cluster, name, st, rexec, pconn, pstate, pid, stamps)
    ddl = None
    if st.last_sql_errno:  # a failing DDL: compare with the primary's table as it was before the statement
        ddl = ddl_change(_query_of(st.last_sql_error), _default_db(st.last_sql_error))
        if ddl and ddl.table in pschema:
            pschema = {**pschema, ddl.table: before(pschema[ddl.table], ddl)}
    # schema drift
    drift_tables: list[str] = []
    for table, pcols in pschema.items():
        if table.startswith(replication.HEARTBEAT_DB + "."):
            continue
        rcols = rschema.get(table)
        if rcols is None:
            d.causes.append(f"table {table} exists on the primary but not on this replica")
            d.next_writes.append(f"the next replicated write to {table} stops the SQL thread with error 1146")
            drift_tables.append(table)
            continue
        if [(c.name, c.column_type) for c in pcols] != [(c.name, c.column_type) for c in rcols]:
            causes, nxt = schema_findings(table, pcols, rcols, fmt, cluster.flavor.conversion_errno)
            d.causes += causes
            d.next_writes += nxt
            drift_tables.append(table)
            pk = _pk(pcols, pconn, table)
            if pk and fmt != "STATEMENT":
                d.shifted += _shifted_examples(pconn, rconn, table, pk, pcols, rcols)
    if d.errant_gtids:
        d.causes.append(f"errant transaction(s) {', '.join(d.errant_gtids)}: written on this replica with the "
                        "binary log on, never on the primary")
        failover_too = "a failover to this replica would also send these transactions to the others"
        if cluster.flavor.errant_next_errno:  # MariaDB; MySQL's own-UUID GTIDs never collide
            d.next_writes.append("with gtid_strict_mode the next replicated event of that domain stops the SQL "
                                 f"thread with error {cluster.flavor.errant_next_errno} (out-of-order GTID); "
                                 f"{failover_too}")
        else:
            d.next_writes.append(failover_too)
    # the error itself
    if gap is not None:
        d.binlog = asdict(gap)
        d.summary, causes, d.next_writes = gap_sentences(gap, cluster.primary.name, name, flavor.reset_binlog(),
                                                         flavor.reconnects_after_read_error)
        d.causes = causes + d.causes
        d.errno, d.error = st.last_io_errno, st.last_io_error
        if gap.kind == "reissued" and st.last_sql_errno:  # e.g. 1032: a row whose INSERT it skipped
            d.errno, d.error = st.last_sql_errno, st.last_sql_error
        silent = gap.kind == "reissued" and st.io_running and st.sql_running and not d.errno
        d.severity = "drift" if silent else "broken"
    elif st.last_sql_errno or not st.sql_running:
        d.severity = "broken"
        d.errno, d.error = st.last_sql_errno, st.last_sql_error
        d.summary = f"SQL thread stopped: error {st.last_sql_errno}" if st.last_sql_errno else "SQL thread stopped"
        _explain_error(d, cluster, pconn, rconn, rschema, pschema)
        if ddl:
            _explain_ddl(d, ddl, rschema, pschema)
        _failing_event(d, cluster, rconn, pschema)
    elif io := _io_problem(cluster, name, st):
        d.severity = "broken"
        d.summary = io if "toward the primary only" in io else f"not receiving: {io}"
        d.errno, d.error = st.last_io_errno, st.last_io_error
    elif d.causes:
        d.severity = "drift"
        d.summary = "replicating, but drifted from the primary: " + "; ".join(d.causes[:2])
    if pconn is not None and d.severity != "down" and st.sql_running and (gap is None or gap.kind == "reissued"):
        _row_drift(d, cluster, pconn, rconn, pschema, drift_tables)
    return d


def _out_of_replication(cluster: Cluster, name: str, rconn: Any, pconn: Any) -> Diagnosis | None:
    """A node a role change took out of replication on purpose: the demoted former primary, or a replica a
    forced failover left out because it holds transactions the new primary never had. Said as such, with
    the one command that brings it back (what failover and start print too), not as a broken replica."""
    info = cluster.node(name)
    left: dict[str, Any] = info.extra.get("left_out") or {}
    if info.role != roles.DEMOTED and not left:
        return None
    primary, flavor = cluster.primary.name, cluster.flavor
    errant: list[str] = []
    count = 0
    if pconn is not None:  # what its binary log holds that the primary's lacks, per source (as rejoin counts)
        rstate = str(db.scalar(rconn, flavor.binlog_gtid_state()) or "")
        pstate = str(db.scalar(pconn, flavor.binlog_gtid_state()) or "")
        diff = GtidSet.parse(rstate).subtract(GtidSet.parse(pstate), by_source=True)
        errant, count = diff.ranges(by_source=True), diff.count()
    held = f"{count} transaction(s) (" + ", ".join(errant[:4]) + (", ...)" if len(errant) > 4 else ")")
    if info.role == roles.DEMOTED:
        change = info.extra.get("demoted") or {}
        d = Diagnosis(name, "broken", f"demoted former primary: read-only and out of replication since "
                                      f"{change.get('new_primary') or primary} was promoted",
                      errant_gtids=errant)
        if errant:
            d.causes.append(f"it holds {count} transaction(s) {primary} never had ({', '.join(errant[:4])}"
                            f"{', ...' if len(errant) > 4 else ''}): written while it was the primary, never "
                            f"received by {primary}")
            d.next_writes.append(f"rebuild it from {primary}: replab rejoin {name} --rebuild (those transactions "
                                 "are discarded)")
        else:
            d.next_writes.append(f"nothing it wrote is missing on {primary}: replab rejoin {name} makes it a "
                                 f"replica of {primary}")
        return d
    d = Diagnosis(name, "broken", f"left out of replication by the failover to {left.get('new_primary')}: it "
                                  f"holds transaction(s) {primary} never had; read-only", errant_gtids=errant)
    d.causes.append(f"{held if count else 'those transactions'}: received from {left.get('old_primary')} before the "
                    f"failover, never by {left.get('new_primary')} (promoted with --force although it lacked "
                    "them)")
    d.next_writes.append(f"rebuild it from {primary}: replab rejoin {name} --rebuild (those transactions are "
                         "discarded)")
    return d


def _binlog_gap(cluster: Cluster, name: str, st: ReplicaStatus, rexec: str, pconn: Any, pstate: str, pid: str,
                stamps: dict[tuple[str, int], tuple[Stamps, bool] | None]) -> BinlogGap | None:
    """The primary's binary log reset or purged under this replica, from its GTID states, its read position
    against the primary's binary logs, MySQL's gtid_purged and, when those agree, the commit stamps."""
    flavor = cluster.flavor
    purged_sql = flavor.purged_gtid()
    read_at = f"{st.source_log_file} at {st.read_source_log_pos}" if st.source_log_file and st.read_source_log_pos \
        else ""
    try:  # read after the replica's status: a log only grows, so a position past its end is a reset
        logs = [(str(r["Log_name"]), int(r["File_size"])) for r in db.query(pconn, "SHOW BINARY LOGS")]
    except pymysql.MySQLError:
        logs = []
    gap = binlog_gap(rexec, pstate, pid, io_errno=st.last_io_errno, io_error=st.last_io_error,
                     io_running=st.io_running, sql_running=st.sql_running,
                     replica_retrieved=str(st.gtid_io_pos or "") if purged_sql else "",
                     primary_purged=str(db.scalar(pconn, purged_sql) or "") if purged_sql else "",
                     read_at=read_at, past_end=read_past_end(st.source_log_file, st.read_source_log_pos, logs))
    if gap is None:  # GTID states agree: did the primary issue some of them again (reset, then healed)?
        gap = _reissued(cluster, name, pid, rexec, pstate, stamps, st.io_running, st.sql_running)
    return gap


def _reissued(cluster: Cluster, name: str, primary_id: str, replica_executed: str, primary_state: str,
              stamps: dict[tuple[str, int], tuple[Stamps, bool] | None], io_running: bool,
              sql_running: bool) -> BinlogGap | None:
    """Compare the commit stamps of the GTIDs at the start of the primary's and this replica's binary logs:
    the same GTID with another stamp is another transaction, issued again after the primary's log was reset.
    A reset restarts the numbering at 1, so the first ``STAMP_PROBE`` GTIDs of each log tell; only then are
    up to ``STAMP_LIMIT`` read, to count what was lost."""
    gap = None
    for limit in (STAMP_PROBE, STAMP_LIMIT):
        for node in (cluster.primary.name, name):
            if (node, limit) not in stamps:
                stamps[(node, limit)] = _read_stamps(cluster, node, limit)
        primary, replica = stamps[(cluster.primary.name, limit)], stamps[(name, limit)]
        if primary is None or replica is None:
            return gap
        gap = reissue_gap(primary[0], replica[0], primary_id, replica_executed, primary_state,
                          complete=primary[1] and replica[1], io_running=io_running, sql_running=sql_running)
        if gap is None or gap.exact:
            return gap
    return gap


def _read_stamps(cluster: Cluster, node: str, limit: int) -> tuple[Stamps, bool] | None:
    """The GTID commit stamps at the start of ``node``'s binary log (``limit`` GTIDs at most), read
    with the flavor's binlog tool from the server (credentials from the 0600 option file); None when the
    engine cannot read binary logs or the tool fails."""
    try:
        cluster.engine.require("binlog")
        base = cluster.engine.tool_argv("binlog", cluster.node(node), cluster.credentials_file)
        with cluster.connect(node, timeout=2, read_timeout=10) as conn:
            logs = db.query(conn, "SHOW BINARY LOGS")
    except (ReplabError, pymysql.MySQLError):
        return None
    first = str(logs[0].get("Log_name") or "") if logs else ""
    if not re.fullmatch(r"[\w.-]+", first):
        return None
    argv = [*base, "--read-from-remote-server", "--to-last-log", "--base64-output=decode-rows", first]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    timer = threading.Timer(STAMP_SECONDS, proc.kill)  # a tool that hangs must not hang diagnose
    timer.start()
    try:
        assert proc.stdout is not None
        found, whole = gtid_stamps(proc.stdout, limit)
        if whole:  # it ended by itself: the whole log was read only if it exited cleanly in time
            whole = proc.wait() == 0
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
    return found, whole


def _query_of(error: str) -> str | None:
    m = re.search(r"Query: '(.*)'$", error, re.S)
    return m.group(1) if m else None


def _default_db(error: str) -> str | None:
    m = re.search(r"Default database: '([^']*)'", error)
    return m.group(1) or None if m else None


def _explain_ddl(d: Diagnosis, ddl: Any, rschema: dict[str, list[Column]], pschema: dict[str, list[Column]]) -> None:
    """The real cause of a source DDL meeting a replica-only change, from the schemas before the statement."""
    d.table = ddl.table
    had = {c.name.lower() for c in pschema.get(ddl.table, [])}
    has = {c.name.lower() for c in rschema.get(ddl.table, [])}
    if d.errno == 1091:
        gone = [c for c in ddl.dropped if c.lower() in had and c.lower() not in has]
        if gone:
            d.summary = (f"SQL thread stopped: error 1091: the primary's ALTER TABLE drops column `{gone[0]}` of "
                         f"{ddl.table}, which this replica no longer had: it had been dropped on this replica only")
    elif d.errno == 1054:
        m = re.search(r"Unknown column '([^']+)'", d.error)
        col = m.group(1) if m else ""
        if col.lower() in had and col.lower() not in has:
            d.summary = (f"SQL thread stopped: error 1054: the primary's ALTER TABLE on {ddl.table} names column "
                         f"`{col}`, which was dropped on this replica only (the primary still had it)")


CONVERSION_ERRORS = (1677, 13146)  # a ROW event value that does not fit the column: MariaDB, MySQL 8.0+
# MariaDB: "Column 1 of table 'mydb.events' cannot be converted from type 'varchar(256 octets)' to type
# 'int(11)'" (counted from 0); MySQL: "Column 2 (counting the first column as number 1) of table 'mydb.events'
# cannot be converted from type 'varchar(256(bytes))' to type 'int'"
_CONVERSION = re.compile(r"Column (\d+)( \(counting the first column as number 1\))? of table '([^']+)' cannot be "
                         r"converted from type '(.+?)' to type '(.+?)'")


def conversion(error: str) -> tuple[int, str, str] | None:
    """(0-based column index, source type, replica type) of a ROW event conversion error, either flavor."""
    m = _CONVERSION.search(error or "")
    if not m:
        return None
    return int(m.group(1)) - (1 if m.group(2) else 0), m.group(4), m.group(5)


def _explain_error(d: Diagnosis, cluster: Cluster, pconn: Any, rconn: Any, rschema: dict[str, list[Column]],
                   pschema: dict[str, list[Column]]) -> None:
    err = d.error
    for pat in _TABLE_PATTERNS:
        m = pat.search(err)
        if m:
            d.table = m.group(1)
            break
    query = re.search(r"Query: '(.*)'$", err, re.S)
    if query:
        d.statement = query.group(1)
    if d.errno in CONVERSION_ERRORS:
        conv = conversion(err)
        if conv and d.table in pschema and d.table in rschema:
            idx, src_type, dst_type = conv
            pcols, rcols = pschema[d.table], rschema[d.table]
            src = pcols[idx].name if idx < len(pcols) else "?"
            dst = rcols[idx].name if idx < len(rcols) else "?"
            d.summary += (f": a ROW event for {d.table} carries the primary's `{src}` ({src_type}) at column "
                          f"{idx + 1}, where this replica has `{dst}` ({dst_type})")
        d.statement = d.statement or f"a row event on {d.table}"
    elif d.errno == 1054:
        m = re.search(r"Unknown column '([^']+)'", err)
        col = m.group(1) if m else "?"
        d.summary += f": the replicated statement names column `{col}`, which this replica does not have"
    elif d.errno == 1032:
        d.summary += f": an UPDATE/DELETE event for {d.table} found no row to change on this replica"
        d.causes.insert(0, "the row was deleted (or never inserted) on this replica only")
    elif d.errno == 1062:
        m = re.search(r"Duplicate entry '([^']*)' for key '([^']+)'", err)
        key = f" {m.group(2)}={m.group(1)}" if m else ""
        d.summary += f": an INSERT event for {d.table} collides with a row{key} that exists on this replica only"
        d.causes.insert(0, "a row was inserted on this replica behind replication's back")
    elif d.errno == 1950:
        d.summary += ": this replica's binary log already has a later GTID of the same domain (errant transaction)"
    elif d.errno == 1146:
        d.summary += f": table {d.table or ''} does not exist here"
    d.next_writes = [f"nothing more is applied until it is fixed; relay logs pile up. Rebuild it: "
                            f"replab repair {d.node}"]


def _failing_event(d: Diagnosis, cluster: Cluster, rconn: Any, pschema: dict[str, list[Column]],
                   max_lines: int = 12) -> None:
    """The event group the SQL thread stopped at, read from the primary's binary log with mariadb-binlog
    (credentials from the 0600 option file): the original statement (Annotate_rows) and the row image,
    with @N replaced by the primary's column names."""
    try:
        cluster.engine.require("binlog")
        base = cluster.engine.tool_argv("binlog", cluster.primary, cluster.credentials_file)
    except ReplabError:
        return
    rows = db.query(rconn, cluster.flavor.show_replica_status())
    if not rows or cluster.engine.state(cluster.primary) != RUNNING:
        return
    row = rows[0]
    log_file = row.get("Relay_Master_Log_File") or row.get("Relay_Source_Log_File")
    pos = row.get("Exec_Master_Log_Pos") or row.get("Exec_Source_Log_Pos")
    if not log_file or not pos or not re.fullmatch(r"[\w.-]+", str(log_file)):
        return
    gtid = worker_gtid(d.error)
    argv = [*base, "--read-from-remote-server", "--base64-output=decode-rows", "-v", f"--start-position={int(pos)}",
            *(["--to-last-log"] if gtid else []), str(log_file)]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return
    timer = threading.Timer(STAMP_SECONDS, proc.kill)  # a tool that hangs must not hang diagnose
    timer.start()
    try:
        assert proc.stdout is not None
        statement, event = event_group(proc.stdout, gtid, max_lines)
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
    if statement and not d.statement or (d.statement or "").startswith("a row event"):
        d.statement = " ".join(statement) or d.statement
    m = re.search(r"`([\w$]+)`\.`([\w$]+)`", event[0]) if event else None
    table = f"{m.group(1)}.{m.group(2)}" if m else None
    if d.table is None:
        d.table = table
    names = [c.name for c in pschema.get(table or "", [])]  # the event's own table names its columns
    d.event = [re.sub(r"@(\d+)=", lambda m: _column_name(names, int(m.group(1))) + "=", e) for e in event]


# the start of an event group in mysqlbinlog / mariadb-binlog output: MySQL sets GTID_NEXT, MariaDB prints a
# GTID event ("#261203 13:56:25 server id 1  end_log_pos 380 CRC32 0x5e1f2d3c  GTID 0-1-15 trans")
_GROUP_START = re.compile(r"^SET @@SESSION\.GTID_NEXT= '([^']+)'|^#\d{6}\s.*\sGTID (\d+-\d+-\d+)(?:\s|$)")
_WORKER_GTID = re.compile(r"failed executing transaction '([^']+)'")
SCAN_LINES = 200_000  # binlog lines read past the applied position looking for the failing transaction


def worker_gtid(error: str) -> str | None:
    """The GTID of the transaction MySQL's failing applier worker was executing ("Worker 1 failed executing
    transaction 'uuid:15' at source log ..."), or None (MariaDB names no GTID: its SQL thread stops at the
    failing event, so the group at the applied position is the one)."""
    m = _WORKER_GTID.search(error or "")
    return m.group(1) if m and m.group(1) != "ANONYMOUS" else None


def event_group(lines: Iterable[str], gtid: str | None, max_lines: int = 12) -> tuple[list[str], list[str]]:
    """(statement lines, row-image lines) of one transaction in a binlog tool's ``-v`` output: the one with
    ``gtid``, or, without it, the first one. MySQL's multi-threaded applier reports an applied position
    (Exec_Source_Log_Pos) that can lie before transactions other workers already applied, so the first group
    there is not always the failing one: the worker's GTID tells which."""
    statement: list[str] = []
    event: list[str] = []
    inside = gtid is None
    for n, raw in enumerate(lines):
        line = raw.rstrip("\n")
        m = _GROUP_START.search(line)
        if m:
            if inside and (statement or event):
                break
            inside = gtid is None or (m.group(1) or m.group(2)) == gtid
            continue
        if inside:
            if line.startswith("#Q> "):
                statement.append(line[4:])
            elif line.startswith("### ") and len(event) < max_lines:
                event.append(line[4:])
            if line.startswith("COMMIT"):
                break
        if n > SCAN_LINES or (gtid is None and n > 2000):
            break
    return statement, event


def _column_name(names: list[str], position: int) -> str:
    return f"{names[position - 1]}(@{position})" if 0 < position <= len(names) else f"@{position}"


def _row_drift(d: Diagnosis, cluster: Cluster, pconn: Any, rconn: Any, pschema: dict[str, list[Column]],
               skip: list[str]) -> None:
    """Compare primary keys of the cluster database's tables, up to the highest key the primary had before
    its GTID position was read (so rows still being inserted do not count as drift)."""
    plan: list[tuple[str, str, str, Any]] = []
    for table, cols in pschema.items():
        if not table.startswith(cluster.database + ".") or table in skip:
            continue
        pk = _pk(cols, pconn, table)
        if pk:
            schema, tname = table.split(".", 1)
            tq = f"{quote_ident(schema)}.{quote_ident(tname)}"
            plan.append((table, pk, tq, db.scalar(pconn, f"SELECT COALESCE(MAX({quote_ident(pk)}), 0) FROM {tq}")))
    gtid = str(db.scalar(pconn, cluster.flavor.executed_gtid()) or "")
    with rconn.cursor() as cur:
        cur.execute(cluster.flavor.wait_for_gtid(), (gtid, 3))
        if not cluster.flavor.wait_ok(cur.fetchone()[0]):
            return
    for table, pk, tq, upto in plan:
        try:
            pk_primary, pk_replica = _keys(pconn, table, pk, upto), _keys(rconn, table, pk, upto)
            beyond = [r["k"] for r in db.query(rconn, f"SELECT {quote_ident(pk)} AS k FROM {tq} WHERE "
                                                      f"{quote_ident(pk)} > %s LIMIT 20", (upto,))]
            if beyond:  # newer rows: extra only if the primary does not have them even now
                have = {r["k"] for r in db.query(pconn, f"SELECT {quote_ident(pk)} AS k FROM {tq} WHERE "
                                                        f"{quote_ident(pk)} IN %s", (beyond,))}
                beyond = [k for k in beyond if k not in have]
        except pymysql.MySQLError:
            continue
        missing, extra = sorted(pk_primary - pk_replica), sorted(pk_replica - pk_primary) + beyond
        if missing:
            d.causes.append(f"{len(missing)} row(s) of {table} are missing here ({pk} {_span(missing)})")
            d.next_writes.append("the next UPDATE or DELETE of those rows on the primary stops the SQL thread "
                                 "with error 1032")
        if extra:
            d.causes.append(f"{len(extra)} row(s) of {table} exist only here ({pk} {_span(extra)})")
            d.next_writes.append(f"the next INSERT of {pk} {extra[0]} on the primary stops the SQL thread with "
                                 "error 1062")
        if (missing or extra) and d.severity == "ok":
            d.severity = "drift"
            d.summary = "replicating, but drifted from the primary: " + "; ".join(d.causes[:2])


def _span(keys: list[Any]) -> str:
    return str(keys[0]) if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def short_line(d: Diagnosis) -> str:
    """The one-line form shown under ``replab status``."""
    return f"{d.node}: {d.summary}"
