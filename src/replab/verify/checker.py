"""The consistency checker: collect facts from every node (read-only SELECTs), then judge them.

``collect()`` does the I/O: it snapshots the ledger and each table's highest id, captures the primary's
GTID position, waits (bounded) for every reachable replica to apply it, then gathers schema, chunked
checksums over id ranges (``rowhash``: 64 bits of SHA-256 per row, combined per chunk without
cancellation, over the columns a node shares with the primary), narrows mismatching chunks to row ids,
re-checks those ids once the replicas applied a newer position (a row in flight while the check ran is
lag, not divergence), reads the rows a replica holds that the primary does not show once more on the
primary with shared locks (under semi-sync AFTER_SYNC a replica can apply a transaction before the
primary's own commit is visible: the locking read waits for that commit), and verifies the ledger: which
acknowledged writes must exist everywhere. Content is compared against the primary (the checksums), never
against what the feed first wrote: a row the primary itself changed later is not a divergence.
``judge()`` is pure: facts in, ``CheckReport`` out, so it is unit-tested on recorded data.

Nothing here writes: no checksum table, no statement that replicates.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import galera, group, replication, roles
from ..core.config import quote_ident, validate_identifier
from ..core.errors import ConfigError, ReplabError, SqlError
from ..engines.base import RUNNING, bring_back
from ..servers import db
from . import counters, ledger
from .counters import CounterVerdict
from .rowhash import (
    DIGEST_MAX_LEN,
    INT_TYPES,
    TEXT_DIGEST_MAX,
    aggregate_sql,
    combine,
    diff_row_hashes,
    differing_chunks,
    digest_sql,
    integer_columns,
    max_text_len,
    raw_columns,
    row_hash_sql,
    table_checksum,
    text_digest_sql,
)

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

KINDS = ("missing_rows", "extra_rows", "changed_rows", "schema", "replication", "unreachable")
CHUNK_IDS = 25_000  # ids per chunk: 10,000 spent 3% more CPU on per-query work at 10M rows
KEEP_IDS = 1000
SETTLE_IDS = 1000  # at most this many rows a replica holds differently are re-read on the primary with locks
RECHECK_IDS = 2000  # up to this many differing ids are re-read by id; more: their whole chunks
IN_BATCH = 500  # ids per IN list
SUB_IDS = 1000  # a differing chunk is narrowed in sub-ranges of this many ids before rows are read
LOCK_WAIT_TIMEOUT = 1205
LEDGER_WORKERS = 2  # connections per node verifying the ledger (the server scans)


class CheckError(ReplabError):
    """The check could not be made (primary down, unknown table): exit code 2."""


# --- facts ----------------------------------------------------------------------------------------

@dataclass
class TableFacts:
    columns: list[tuple[str, str, str]]  # (name, column_type, is_nullable) in ordinal order
    keys: list[tuple[str, int, str, int]]  # (index, seq, column, non_unique)
    rows: int | None = None  # rows compared (ids up to the bound)
    checksum: str | None = None
    compared_columns: list[str] = field(default_factory=list)


@dataclass
class NodeFacts:
    name: str
    role: str
    reachable: bool
    error: str | None = None
    io_running: bool | None = None
    sql_running: bool | None = None
    last_errno: int | None = None
    last_error: str | None = None
    lag_ms: int | None = None
    caught_up: bool | None = None
    tables: dict[str, TableFacts] = field(default_factory=dict)


@dataclass
class RowDiff:
    node: str
    table: str
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    note: str | None = None  # e.g. "table checksum differs; no integer primary key to narrow down"


@dataclass
class Facts:
    primary: str
    database: str
    gtid: str
    wait: float
    tables: list[str]
    nodes: list[NodeFacts]
    row_diffs: list[RowDiff] = field(default_factory=list)
    ledger: dict[str, Any] | None = None  # LedgerSummary.to_dict()
    ledger_diffs: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> counts and ids
    elapsed: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)  # roles.Epoch: which primary wrote which ids
    role_changes: list[dict[str, Any]] = field(default_factory=list)  # promotions (failover.py)
    demoted: list[str] = field(default_factory=list)  # former primaries out of the cluster, not checked


# --- verdict --------------------------------------------------------------------------------------

@dataclass
class Problem:
    node: str
    kind: str
    table: str | None
    detail: str
    rows: list[int] = field(default_factory=list)
    row_count: int = 0
    source: str = "checksum"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LostWrites:
    """Acknowledged writes lost in a role change: acknowledged by a former primary, on no node now."""

    acknowledged_by: str
    lost_at: dict[str, Any] | None  # the role change (kind, new_primary, at) that left them behind
    ids: list[int]
    count: int
    exact: bool  # False: more were missing than the evidence kept, so ``count`` is a lower bound

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        when = ""
        if self.lost_at:
            when = (f" when {self.lost_at.get('new_primary')} was promoted ({self.lost_at.get('kind')} at "
                    f"{time.strftime('%H:%M:%S', time.localtime(float(self.lost_at.get('at') or 0)))})")
        shown = ", ".join(map(str, self.ids[:10])) + (", ..." if len(self.ids) > 10 else "")
        return (f"LOST IN FAILOVER: {'' if self.exact else 'at least '}{self.count} acknowledged write(s) "
                f"acknowledged by {self.acknowledged_by}, lost{when} (ids {shown})")


@dataclass
class CheckReport:
    consistent: bool
    problems: list[Problem]
    facts: Facts
    lost: list[LostWrites] = field(default_factory=list)
    counters: CounterVerdict | None = None  # the counter workload's increments, when one ran

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        led = f.ledger or {}
        ledger_out: dict[str, Any] = {k: int(led.get(k, 0)) for k in ("acknowledged", "failed", "unknown")}
        for kind in ("missing", "unexpected"):
            ledger_out[kind] = {n.name: f.ledger_diffs[n.name][kind + "_count"] for n in f.nodes
                                if n.name in f.ledger_diffs}
        nodes = [{"name": n.name, "role": n.role, "reachable": n.reachable, "caught_up": n.caught_up,
                  "lag_ms": n.lag_ms, "io_running": n.io_running, "sql_running": n.sql_running,
                  "last_errno": n.last_errno, "last_error": n.last_error,
                  "tables": {t: {"rows": tf.rows, "checksum": tf.checksum, "columns": tf.compared_columns}
                             for t, tf in n.tables.items()}}
                 for n in f.nodes]
        return {"consistent": self.consistent, "primary": f.primary, "database": f.database, "gtid": f.gtid,
                "ledger": ledger_out, "nodes": nodes, "problems": [p.to_dict() for p in self.problems],
                "lost_in_failover": [lw.to_dict() for lw in self.lost], "elapsed": round(f.elapsed, 3),
                **({"counters": self.counters.to_dict()} if self.counters is not None else {})}

    def render(self) -> str:
        """Verdict first, then per problem kind: how many, first, worst and last example."""
        f = self.facts
        compared = sum((n.tables[t].rows or 0) for n in f.nodes[:1] for t in n.tables)
        led = f.ledger or {}
        if self.consistent:
            lost = sum(lw.count for lw in self.lost)
            ledger_text = (f"ledger: {int(led.get('acknowledged', 0)) - lost} acknowledged writes present on every "
                           f"node" + (f", {lost} lost in a failover (below)" if lost else "")
                           if f.ledger else "no ledger (no feed has run)")
            lines = [f"CONSISTENT: {len(f.nodes)} nodes agree on {len(f.tables)} table(s) in {f.database} "
                     f"({compared} rows on {f.primary}); {ledger_text}"]
        else:
            kinds = sorted({p.kind for p in self.problems}, key=KINDS.index)
            lines = [f"INCONSISTENT: {len(self.problems)} problem(s): {', '.join(kinds)}"]
            for kind in kinds:
                ps = [p for p in self.problems if p.kind == kind]
                rows = sum(p.row_count for p in ps)
                lines.append(f"{kind}: {len(ps)} problem(s), {rows} row(s)")
                worst = max(ps, key=lambda p: p.row_count)
                for label, p in (("first", ps[0]), ("worst", worst), ("last", ps[-1])):
                    lines.append(f"  {label}: {_describe(p)}")
        for n in f.nodes:
            if not n.reachable:
                lines.append(f"{n.name}: unreachable ({n.error})")
                continue
            tables = ", ".join(_table_summary(tf) for tf in n.tables.values())
            lag = "" if n.lag_ms is None else f", lag {n.lag_ms} ms"
            lines.append(f"{n.name} ({n.role}{lag}): {tables}")
        lines.extend(lw.sentence() for lw in self.lost)
        lines.extend(f"{name}: demoted former primary, out of the cluster (not checked)" for name in f.demoted)
        lines += _checksum_notes(f)
        if self.counters is not None:
            lines.append(self.counters.render())
        return "\n".join(lines)


def _table_summary(tf: TableFacts) -> str:
    rows = "-" if tf.rows is None else str(tf.rows)
    if tf.checksum is None:
        return f"{rows} rows (not compared)" if tf.rows is not None else "- rows"
    return f"{rows} rows, checksum {tf.checksum}"


def _checksum_notes(f: Facts) -> list[str]:
    """Which columns the printed checksums cover, where that is not every column of the primary's table."""
    primary = next((n for n in f.nodes if n.name == f.primary), None)
    out = []
    for t in f.tables:
        ptf = primary.tables.get(t) if primary else None
        if ptf is None or ptf.checksum is None:
            continue
        allcols = [c[0] for c in ptf.columns]
        if ptf.compared_columns != allcols:
            left = [c for c in allcols if c not in ptf.compared_columns]
            out.append(f"{t} checksums cover the columns every node shares: {', '.join(ptf.compared_columns)} "
                       f"(not {', '.join(left)}); rows are compared per node over the columns it shares with "
                       f"{f.primary}")
    return out


def _describe(p: Problem) -> str:
    where = f"{p.node} {p.table}" if p.table else p.node
    ids = ""
    if p.rows:
        shown = ", ".join(map(str, p.rows[:10]))
        ids = f" (ids {shown}{', ...' if p.row_count > 10 else ''})"
    return f"{where}: {p.detail}{ids}"


def lost_in_failover(facts: Facts) -> list[LostWrites]:
    """Acknowledged writes the current primary lacks that an earlier primary acknowledged (by the ledger's
    epochs): lost in a role change, not a divergence between nodes. Pure."""
    diff = facts.ledger_diffs.get(facts.primary)
    if not diff or not facts.epochs:
        return []
    epochs = [roles.Epoch(int(e["from_id"]), str(e["primary"]), float(e.get("at", 0))) for e in facts.epochs]
    groups: dict[tuple[str, float], list[int]] = {}
    for i in diff.get("missing", []):
        owner = roles.acknowledged_by(epochs, int(i))
        if owner is not None and owner != facts.primary:
            since = max(e.at for e in epochs if e.from_id <= int(i) and e.primary == owner)
            groups.setdefault((owner, since), []).append(int(i))
    exact = int(diff.get("missing_count", 0)) == len(diff.get("missing", []))
    out = []
    for (owner, since), ids in groups.items():
        change = next((c for c in facts.role_changes if c.get("old_primary") == owner
                       and float(c.get("at") or 0) >= since), None)
        out.append(LostWrites(owner, change, sorted(ids), len(ids), exact))
    return out


def _without(ld: dict[str, Any], gone: set[int]) -> dict[str, Any]:
    kept = [i for i in ld.get("missing", []) if i not in gone]
    removed = len(ld.get("missing", [])) - len(kept)
    return {**ld, "missing": kept, "missing_count": int(ld.get("missing_count", 0)) - removed}


def judge(facts: Facts) -> CheckReport:
    """The verdict over collected facts. Pure: no I/O."""
    problems: list[Problem] = []
    lost = lost_in_failover(facts)
    gone = {i for lw in lost for i in lw.ids}
    if gone:  # missing everywhere because a failover lost them: reported as lost, not as divergence
        facts = replace(facts, ledger_diffs={node: _without(ld, gone) for node, ld in facts.ledger_diffs.items()})
    primary = next(n for n in facts.nodes if n.name == facts.primary)
    for n in facts.nodes:
        if not n.reachable:
            problems.append(Problem(n.name, "unreachable", None, f"did not answer: {n.error}", source="node"))
            continue
        if n.role == "replica":
            problems.extend(_replication_problems(n, facts.wait))
        if n.name != facts.primary:
            for table in facts.tables:
                for detail in diff_schema(primary.tables.get(table), n.tables.get(table)):
                    problems.append(Problem(n.name, "schema", table, detail, source="schema"))
    for d in facts.row_diffs:
        for kind, ids, what in (("missing_rows", d.missing, "missing (on the primary, not here)"),
                                ("extra_rows", d.extra, "extra (here, not on the primary)"),
                                ("changed_rows", d.changed, "changed (content differs from the primary)")):
            if ids:
                problems.append(Problem(d.node, kind, d.table, f"{len(ids)} row(s) {what}", sorted(ids)[:KEEP_IDS],
                                        len(ids)))
        if d.note:
            problems.append(Problem(d.node, "changed_rows", d.table, d.note))
    for node, ld in facts.ledger_diffs.items():
        for kind, pkind, what in (("missing", "missing_rows", "acknowledged write(s) missing"),
                                  ("unexpected", "extra_rows", "row(s) the primary never acknowledged")):
            count = int(ld.get(kind + "_count", 0))
            if count:
                found = Problem(node, pkind, "events", f"ledger: {count} {what}", list(ld.get(kind, [])), count,
                                source="ledger")
                same = next((p for p in problems if (p.node, p.kind, p.table, p.source) ==
                             (node, pkind, "events", "checksum")), None)
                problems.extend(fold_ledger(same, found))
    problems.sort(key=lambda p: (KINDS.index(p.kind), p.node, p.table or ""))
    return CheckReport(consistent=not problems, problems=problems, facts=facts, lost=lost)


def fold_ledger(compared: Problem | None, ledger: Problem) -> list[Problem]:
    """The ledger's finding for a node and table the row comparison already found the same kind of problem
    in: the rows both name are one problem, counted once. Returns what is left of the ledger's finding (a
    problem for the ids only the ledger names, or nothing); ``compared`` notes that the ledger agrees."""
    if compared is None:
        return [ledger]
    complete = compared.row_count == len(compared.rows) and ledger.row_count == len(ledger.rows)
    if not complete:  # more ids than were kept: the overlap cannot be told; count the larger finding only
        compared.detail += f"; the ledger finds {ledger.row_count} {_what(ledger)}"
        compared.row_count = max(compared.row_count, ledger.row_count)
        return []
    only = sorted(set(ledger.rows) - set(compared.rows))
    both = ledger.row_count - len(only)
    if both:
        compared.detail += f"; the ledger agrees on {both} of them" if only or both < compared.row_count else \
            "; the ledger agrees"
    if not only:
        return []
    ledger.rows, ledger.row_count = only, len(only)
    ledger.detail = f"ledger: {len(only)} {_what(ledger)}" + (" besides those" if both else "")
    return [ledger]


def _what(ledger: Problem) -> str:
    return "acknowledged write(s) missing" if ledger.kind == "missing_rows" else \
        "row(s) the primary never acknowledged"


def _replication_problems(n: NodeFacts, wait: float) -> list[Problem]:
    out = []
    if n.io_running is None and n.sql_running is None:
        out.append(Problem(n.name, "replication", None, "no replication configured", source="replication"))
        return out
    if not (n.io_running and n.sql_running):
        err = f": error {n.last_errno}: {n.last_error}" if n.last_errno else ""
        out.append(Problem(n.name, "replication", None,
                           f"threads IO={'Yes' if n.io_running else 'No'} SQL={'Yes' if n.sql_running else 'No'}{err}",
                           source="replication"))
    elif n.last_errno:
        out.append(Problem(n.name, "replication", None, f"last error {n.last_errno}: {n.last_error}",
                           source="replication"))
    if n.caught_up is False:
        out.append(Problem(n.name, "replication", None, _not_caught_up(n, wait), source="replication"))
    return out


def _not_caught_up(n: NodeFacts, wait: float) -> str:
    """Why a replica's data was not compared; a longer wait is advised only when it could help."""
    if not n.sql_running:
        why = f" on error {n.last_errno}: {n.last_error}" if n.last_errno else " (stopped by hand, no error)"
        return (f"its SQL thread stopped{why}; it cannot catch up, so its data was not compared (see: replab "
                f"diagnose {n.name})")
    if not n.io_running and n.last_errno:
        return (f"its IO thread stopped on error {n.last_errno}: {n.last_error}; it receives nothing, so its "
                f"data was not compared (see: replab diagnose {n.name})")
    lag = f" (lag {n.lag_ms} ms)" if n.lag_ms is not None else ""
    return (f"did not apply the primary's position within {wait:g}s{lag}; its data was not compared (a longer "
            "--wait may let it catch up)")


def diff_schema(primary: TableFacts | None, node: TableFacts | None) -> list[str]:
    """Plain sentences for every difference of columns (names, types, nullability, order) and keys."""
    if primary is None and node is None:
        return []
    if node is None:
        return ["table is missing on this node"]
    if primary is None:
        return ["table exists only on this node"]
    out = []
    pcols = {c[0]: c for c in primary.columns}
    ncols = {c[0]: c for c in node.columns}
    for name in pcols:
        if name not in ncols:
            out.append(f"column {name} is missing ({pcols[name][1]} on the primary)")
        elif pcols[name][1:] != ncols[name][1:]:
            out.append(f"column {name} is {ncols[name][1]} {'NULL' if ncols[name][2] == 'YES' else 'NOT NULL'}, "
                       f"primary has {pcols[name][1]} {'NULL' if pcols[name][2] == 'YES' else 'NOT NULL'}")
    for name in ncols:
        if name not in pcols:
            out.append(f"column {name} ({ncols[name][1]}) exists only on this node")
    shared_p = [c for c in pcols if c in ncols]
    shared_n = [c for c in ncols if c in pcols]
    if shared_p != shared_n:
        out.append(f"column order differs: {', '.join(shared_n)} (primary: {', '.join(shared_p)})")
    pkeys, nkeys = _keys(primary.keys), _keys(node.keys)
    for k in sorted(set(pkeys) | set(nkeys)):
        if k not in nkeys:
            out.append(f"key {k} {pkeys[k]} is missing")
        elif k not in pkeys:
            out.append(f"key {k} {nkeys[k]} exists only on this node")
        elif pkeys[k] != nkeys[k]:
            out.append(f"key {k} is {nkeys[k]}, primary has {pkeys[k]}")
    return out


def _keys(rows: list[tuple[str, int, str, int]]) -> dict[str, str]:
    keys: dict[str, list[str]] = {}
    unique: dict[str, bool] = {}
    for name, _seq, col, non_unique in sorted(rows, key=lambda r: (r[0], r[1])):
        keys.setdefault(name, []).append(col)
        unique[name] = not non_unique
    return {k: f"{'UNIQUE ' if unique[k] and k != 'PRIMARY' else ''}({', '.join(v)})" for k, v in keys.items()}


# --- collection -----------------------------------------------------------------------------------

class _Collector:
    def __init__(self, cluster: Cluster, wait: float, tables: list[str] | None, reference: str | None = None,
                 members: list[str] | None = None, ledger_table: str = "events") -> None:
        self.cluster = cluster
        self.wait = wait
        self.requested = tables
        self.database = cluster.database
        # the node every other is compared with: the primary, or (shapes) the writer of the checked table
        self.primary = reference or cluster.primary.name
        self.members = members  # the nodes that must hold what the reference wrote (None: every node)
        self.ledger_table = ledger_table
        self.conns: dict[str, Any] = {}
        self.pk: dict[str, str | None] = {}
        self.bound: dict[str, int] = {}
        self.plain: dict[str, set[str]] = {}  # integer columns on the primary: hashed as plain numbers
        self.raw: dict[str, set[str]] = {}  # string columns on the primary hashed raw, after their lengths
        self.charsets: dict[tuple[str, str], dict[str, str | None]] = {}  # (node, table) -> {column: charset}
        self.octets: dict[tuple[str, str], dict[str, int | None]] = {}  # (node, table) -> {column: max bytes}
        self.texts: dict[str, bool] = {}  # a chunk's text is bounded by TEXT_DIGEST_MAX: digest the texts
        self.dense: dict[str, bool] = {}  # ids 0..bound mostly used: one query per chunk
        self.counts: dict[tuple[str, str], dict[int, int]] = {}  # (node, table) -> {chunk: rows}
        self.keyed: dict[tuple[str, str], bool] = {}  # (node, table) -> its PRIMARY KEY is the primary's
        self.digest_ready: set[str] = set()  # nodes whose session allows a chunk's digest text

    def known_count(self, node: str, table: str, lo: int, hi: int) -> int | None:
        """Rows of ids [lo, hi) on ``node`` from its chunk counts, when the range is whole chunks up to the
        bound; else None (the caller queries)."""
        counts = self.counts.get((node, table))
        if counts is None or lo % CHUNK_IDS or hi % CHUNK_IDS or lo <= 0 or hi - 1 > self.bound.get(table, -1):
            return None
        return sum(counts.get(c, 0) for c in range(lo // CHUNK_IDS, hi // CHUNK_IDS))

    def conn(self, name: str) -> Any:
        if name not in self.conns:
            self.conns[name] = self.cluster.connect(name, database=self.database, timeout=3,
                                                    read_timeout=self.wait + 120)
        return self.conns[name]

    def close(self) -> None:
        for c in self.conns.values():
            with contextlib.suppress(Exception):
                c.close()

    def q(self, name: str, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn(name).cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    # --- steps ---
    def open_primary(self) -> None:
        cluster = self.cluster
        state = cluster.engine.state(cluster.node(self.primary))
        if state != RUNNING:
            raise CheckError(f"the primary {self.primary} is {state}: cannot check without it", node=self.primary,
                             hint=f"bring it back: {bring_back(self.primary, state)}")
        try:
            self.conn(self.primary)
        except SqlError as exc:
            raise CheckError(f"the primary {self.primary} does not answer: {exc.message}", node=self.primary,
                             hint="see: replab status") from None

    def resolve_tables(self) -> list[str]:
        have = [r[0] for r in self.q(self.primary, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                                     "TABLE_SCHEMA=%s AND TABLE_TYPE='BASE TABLE' ORDER BY TABLE_NAME",
                                     (self.database,))]
        if self.requested is None:
            return have
        for t in self.requested:
            validate_identifier(t, "table name")
            if t not in have:
                raise ConfigError(f"unknown table {t!r} in {self.database} on {self.primary}",
                                  hint=f"tables there: {', '.join(have) or 'none'}")
        return list(self.requested)

    def schema(self, name: str, tables: list[str]) -> dict[str, TableFacts]:
        cols = self.q(name, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
                            "CHARACTER_OCTET_LENGTH FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s "
                            "ORDER BY TABLE_NAME, ORDINAL_POSITION", (self.database,))
        keys = self.q(name, "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM "
                            "information_schema.STATISTICS WHERE TABLE_SCHEMA=%s", (self.database,))
        out: dict[str, TableFacts] = {}
        for t, c, ty, nl, cs, octets in cols:
            if t in tables:
                out.setdefault(t, TableFacts([], [])).columns.append((c, ty, nl))
                self.charsets.setdefault((name, t), {})[c] = cs
                self.octets.setdefault((name, t), {})[c] = None if octets is None else int(octets)
        for t, i, s, c, nu in keys:
            if t in out:
                out[t].keys.append((i, int(s), c, int(nu)))
        return out

    def int_pk(self, tf: TableFacts) -> str | None:
        pk = [k for k in tf.keys if k[0] == "PRIMARY"]
        if len(pk) != 1:
            return None
        ctype = next((c[1] for c in tf.columns if c[0] == pk[0][2]), "")
        return pk[0][2] if ctype.split("(")[0].split()[0] in INT_TYPES else None

    def chunk_sums(self, name: str, table: str, columns: list[str]) -> dict[int, tuple[int, int]]:
        """{chunk: (rows, XOR of row hashes)} for ids up to the bound; chunk c holds ids [c*N, (c+1)*N)."""
        t = quote_ident(table)
        pk = self.pk.get(table)
        if pk is None:
            agg = aggregate_sql(columns, False, self.plain[table], self.raw[table])
            rows = self.q(name, f"SELECT 0, COUNT(*), COALESCE({agg}, 0) FROM {t}")
            return {0: (int(rows[0][1]), int(rows[0][2]))} if rows and rows[0][1] else {}
        p, bound = quote_ident(pk), self.bound[table]
        agg = aggregate_sql(columns, True, self.plain[table], self.raw[table])
        # negative ids (rare): floor division, so chunk -1 is [-N, -1] as _narrow reads it
        rows = self.q(name, f"SELECT ({p} + 1) DIV {CHUNK_IDS} - 1, COUNT(*), {agg} FROM {t} WHERE {p} < 0 "
                            "GROUP BY 1")
        if self.dense.get(table):
            # one range query per chunk (no GROUP BY temporary table: measured 15% of the scan's time), its
            # rows digested in id order: through the primary key, or sorted where the node lacks it
            if name not in self.digest_ready:
                self.q(name, f"SET SESSION group_concat_max_len = {DIGEST_MAX_LEN}")
                self.digest_ready.add(name)
            keyed = self.keyed.get((name, table), True)
            # the rows' texts in one SHA-256 (0.35 s of server CPU per 1M rows vs 0.43 s for a SHA-256 per row,
            # measured on MariaDB 10.11) where a chunk's text on the primary is bounded by TEXT_DIGEST_MAX (so
            # never cut); else the row hashes'
            digest = (text_digest_sql if self.texts.get(table) else digest_sql)(
                columns, self.plain[table], self.raw[table], None if keyed else pk)
            sql = (f"SELECT COUNT(*), {digest} FROM {t}{' FORCE INDEX (PRIMARY)' if keyed else ''} "
                   f"WHERE {p} BETWEEN %s AND %s")
            for c in range(bound // CHUNK_IDS + 1):
                n, x = self.q(name, sql, (c * CHUNK_IDS, min(bound, (c + 1) * CHUNK_IDS - 1)))[0]
                if n:  # (a digest cut at DIGEST_MAX_LEN needs duplicate ids: its count differs from the primary's)
                    rows.append((c, n, int(x, 16)))
        else:  # sparse ids: let the server skip the empty chunks
            rows += self.q(name, f"SELECT {p} DIV {CHUNK_IDS}, COUNT(*), {agg} FROM {t} WHERE {p} BETWEEN 0 AND %s "
                                 "GROUP BY 1", (bound,))
        return {int(c): (int(n), int(x)) for c, n, x in rows}

    def estimated_rows(self, table: str) -> int:
        """The primary's row estimate (information_schema, no scan)."""
        rows = self.q(self.primary, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE "
                                    "TABLE_SCHEMA=%s AND TABLE_NAME=%s", (self.database, table))
        return int(rows[0][0]) if rows else 0

    def learn(self, table: str, primary: TableFacts) -> None:
        """How ``table`` is keyed and hashed, from its columns on the primary (the same on every node)."""
        self.pk[table] = self.int_pk(primary)
        self.plain[table] = integer_columns((c[0], c[1]) for c in primary.columns)
        charsets = self.charsets.get((self.primary, table), {})
        self.raw[table] = raw_columns((c[0], c[1], charsets.get(c[0])) for c in primary.columns)
        octets = self.octets.get((self.primary, table), {})
        longest = max_text_len(((c[0], c[1], octets.get(c[0])) for c in primary.columns), self.plain[table],
                               self.raw[table])
        self.texts[table] = longest is not None and longest * CHUNK_IDS <= TEXT_DIGEST_MAX

    def hash_sql(self, table: str, columns: list[str]) -> str:
        """The row hash of ``table`` over ``columns``: every read of row hashes, locking or not, uses it."""
        return row_hash_sql(columns, self.plain[table], self.raw[table])

    def row_hashes(self, name: str, table: str, columns: list[str], where: str, args: Any) -> dict[int, int]:
        p = quote_ident(self.pk[table] or "id")
        rows = self.q(name, f"SELECT {p}, {self.hash_sql(table, columns)} FROM {quote_ident(table)} WHERE {where}",
                      args)
        return {int(i): int(h) for i, h in rows}

    def settled_hashes(self, table: str, columns: list[str], ids: list[int]) -> dict[int, int] | None:
        """The primary's rows ``ids`` as its writers commit them: a locking read (shared locks) waits for
        every transaction that wrote one of them and has not committed yet. Under semi-sync (AFTER_SYNC) such
        a transaction is in the binary log, and replicas may have applied it, while the primary waits for an
        acknowledgement before its own commit becomes visible; a plain read there misses the row. READ
        COMMITTED: no gap locks, so no insert is held up; autocommit: the locks go with the statement. None
        when a lock was not granted within the check's --wait."""
        p = quote_ident(self.pk[table] or "id")
        h = self.hash_sql(table, columns)
        out: dict[int, int] = {}
        with self.cluster.connect(self.primary, database=self.database, timeout=3,
                                  read_timeout=self.wait + 120) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (max(1, int(self.wait)),))
            for k in range(0, len(ids), 500):
                part = ids[k:k + 500]
                try:
                    cur.execute(f"SELECT {p}, {h} FROM {quote_ident(table)} WHERE {p} IN "
                                f"({', '.join(['%s'] * len(part))}) {self.cluster.flavor.share_lock_clause()}", part)
                except pymysql.err.OperationalError as exc:
                    if exc.args and exc.args[0] == LOCK_WAIT_TIMEOUT:
                        return None
                    raise
                out.update((int(i), int(v)) for i, v in cur.fetchall())
        return out


def collect(cluster: Cluster, wait: float = 30.0, tables: list[str] | None = None, *, reference: str | None = None,
            members: list[str] | None = None, ledger_table: str = "events", compare: bool = True,
            only: str | None = None) -> Facts:
    """Gather every fact a verdict needs. Read-only on every node. ``reference``/``members``: compare these
    nodes with that one (a writer of a shape and the nodes that must hold its writes) instead of every node
    with the primary; ``ledger_table``: whose ledger is verified. ``compare=False``: replication health and
    schemas only (no row comparison, no ledger): what ``sync`` needs besides the ids. ``only``: one replica
    of the star: the primary and it are the only nodes read, and the ledger is not verified (``sync``
    finding the rows of one node: two servers scan instead of all)."""
    t0 = time.monotonic()
    roles.refresh(cluster)  # a role change made by another process
    col = _Collector(cluster, wait, tables, reference, members, ledger_table)
    try:
        return _collect(col, t0, compare, only)
    finally:
        col.close()


def _collect(col: _Collector, t0: float, compare: bool = True, only: str | None = None) -> Facts:
    cluster = col.cluster
    col.open_primary()
    table_names = col.resolve_tables()
    primary_schema = col.schema(col.primary, table_names)
    for t in table_names:
        col.learn(t, primary_schema[t])
    ledger_path = ledger.ledger_path(cluster.home, col.ledger_table)
    ledger_until = ledger.last_end(ledger_path) if col.ledger_table in table_names else 0
    for t in table_names:  # highest id before the GTID capture: every id up to it is in the position
        if col.pk[t]:
            col.bound[t] = int(col.q(col.primary, f"SELECT COALESCE(MAX({quote_ident(col.pk[t] or '')}), 0) "
                                                  f"FROM {quote_ident(t)}")[0][0])
            col.dense[t] = col.bound[t] // CHUNK_IDS <= 4 * col.estimated_rows(t) // CHUNK_IDS + 16
    gtid = replication.executed_gtid(col.conn(col.primary), cluster.flavor)
    nodes = [NodeFacts(n.name, n.role, reachable=True) for n in cluster.nodes if n.role != roles.DEMOTED
             and (col.members is None or n.name in col.members) and (only is None or n.name in (only, col.primary))]
    by_name = {n.name: n for n in nodes}
    _wait_replicas(col, nodes, gtid)
    for n in nodes:
        if n.reachable:
            try:
                n.tables = primary_schema if n.name == col.primary else col.schema(n.name, table_names)
            except (pymysql.MySQLError, SqlError) as exc:
                n.reachable, n.error = False, str(exc)
    comparable = [n for n in nodes if n.reachable and n.name != col.primary and n.caught_up]
    facts = Facts(col.primary, col.database, gtid, col.wait, table_names, nodes,
                  epochs=[asdict(e) for e in roles.read_epochs(cluster.home, col.ledger_table)],
                  role_changes=roles.role_changes(cluster),
                  demoted=[n.name for n in cluster.nodes if n.role == roles.DEMOTED])
    behind = [n for n in nodes if n.reachable and n.name != col.primary and not n.caught_up]
    if not compare:
        facts.elapsed = time.monotonic() - t0
        return facts
    for t in table_names:
        facts.row_diffs.extend(_compare_table(col, t, by_name[col.primary], comparable))
        _count_rows(col, t, behind)
    if ledger_until and only is None:
        _check_ledger(col, facts, ledger_path, ledger_until,
                      [by_name[col.primary], *comparable])
    facts.elapsed = time.monotonic() - t0
    return facts


def _wait_replicas(col: _Collector, nodes: list[NodeFacts], gtid: str) -> None:
    cluster = col.cluster

    def one(n: NodeFacts) -> None:
        node = cluster.node(n.name)
        state = cluster.engine.state(node)
        if state != RUNNING:
            n.reachable, n.error = False, state
            return
        try:
            conn = col.conns[n.name] = cluster.connect(n.name, database=col.database, timeout=3,
                                                       read_timeout=col.wait + 120)
            if col.members is not None:
                _wait_shaped(col, n, conn, gtid)
                return
            if n.role != "replica":
                return
            st = replication.replica_status(conn, cluster.flavor)
            if st is not None:
                n.io_running, n.sql_running = st.io_running, st.sql_running
                n.last_errno, n.last_error = st.last_errno, st.last_error or None
            deadline = time.monotonic() + col.wait
            while True:  # wait in slices: a replica whose SQL or IO thread stopped will not move: stop then
                stalled = st is None or not st.sql_running or (st.io_state == "No" and bool(st.last_io_errno))
                remaining = deadline - time.monotonic()
                step = 0.001 if stalled else max(0.001, min(0.5, remaining))
                n.caught_up = cluster.flavor.wait_ok(db.scalar(conn, cluster.flavor.wait_for_gtid(), (gtid, step)))
                st = replication.replica_status(conn, cluster.flavor)
                if st is not None:
                    n.io_running, n.sql_running = st.io_running, st.sql_running
                    n.last_errno, n.last_error = st.last_errno, st.last_error or None
                if n.caught_up or stalled or remaining <= 0:
                    break
            n.lag_ms = replication.lag_ms(primary_hb, replication.heartbeat(conn), st)
        except (SqlError, pymysql.MySQLError) as exc:
            n.reachable, n.error = False, str(exc)

    primary_hb = replication.heartbeat(col.conn(col.primary))
    others = [n for n in nodes if n.name != col.primary]
    with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
        list(pool.map(one, others))


def _wait_shaped(col: _Collector, n: NodeFacts, conn: Any, gtid: str) -> None:
    """A node of a shape other than the star: wait (in slices, up to ``wait``) until it applied the
    reference's position, through whichever of its edges brings it; its threads as its edges show them."""
    cluster = col.cluster
    if cluster.topology.name == "galera":  # wsrep-applied writesets leave gtid_slave_pos alone: no GTID wait
        n.caught_up = galera.wait_synced(cluster, col.wait).get(n.name, False)
        if n.caught_up:  # and every read on this connection is causal (waits for what the cluster committed)
            db.query(conn, "SET SESSION wsrep_sync_wait = 1")
        return
    deadline = time.monotonic() + col.wait
    while True:
        remaining = deadline - time.monotonic()
        n.caught_up = cluster.flavor.wait_ok(db.scalar(conn, cluster.flavor.wait_for_gtid(),
                                                       (gtid, max(0.001, min(0.5, remaining)))))
        if group.is_group(cluster):  # a group member: it applies what the group certified while ONLINE
            state = group.state_on(conn)
            n.io_running = n.sql_running = state == group.ONLINE
            n.last_error = None if state == group.ONLINE else f"group member state {state}"
            if n.caught_up or remaining <= 0:
                return
            continue
        statuses = list(replication.replica_statuses(conn, cluster.flavor).values())
        broken = [st for st in statuses if not (st.io_running and st.sql_running)]
        worst = broken[0] if broken else (statuses[0] if statuses else None)
        if worst is not None:
            n.io_running, n.sql_running = worst.io_running, worst.sql_running
            n.last_errno, n.last_error = worst.last_errno, worst.last_error or None
        stalled = any(not st.sql_running and st.last_sql_errno for st in statuses)
        if n.caught_up or stalled or remaining <= 0:
            return


def _compare_table(col: _Collector, table: str, primary: NodeFacts, replicas: list[NodeFacts]) -> list[RowDiff]:
    """Chunk sums on every node (in parallel), narrowed to row ids where they differ from the primary's.

    Each replica is compared with the primary over the columns the two share. The per-node summary
    (own row count, checksum) is over the columns ALL compared nodes share, so its checksums are comparable.
    """
    ptf = primary.tables[table]
    pcols = tuple(c[0] for c in ptf.columns)
    pk = col.pk[table]
    jobs: dict[tuple[str, ...], list[NodeFacts]] = {}
    for n in replicas:
        tf = n.tables.get(table)
        if tf is None:
            continue
        ncols = {c[0] for c in tf.columns}
        shared = tuple(c for c in pcols if c in ncols)
        if shared and (pk is None or pk in shared):
            jobs.setdefault(shared, []).append(n)
    common = tuple(c for c in pcols if all(c in cols for cols in jobs))
    cols_of = {primary.name: pcols, **{n.name: cols for cols, ns in jobs.items() for n in ns}}
    work = dict.fromkeys([(primary.name, pcols), *((primary.name, cols) for cols in jobs),
                          *((name, cols) for name, cols in cols_of.items())])
    if common and (pk is None or pk in common):
        work.update(dict.fromkeys((name, common) for name in cols_of))
    for n in [primary, *replicas]:
        tf = n.tables.get(table)
        col.keyed[(n.name, table)] = tf is not None and pk is not None and \
            [k[2] for k in tf.keys if k[0] == "PRIMARY"] == [pk]
    sums: dict[tuple[str, tuple[str, ...]], dict[int, tuple[int, int]]] = {}
    by_node: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for item in work:
        by_node.setdefault(item[0], []).append(item)

    def run_all(items: list[tuple[str, tuple[str, ...]]]) -> None:
        for item in items:  # one connection per node: nodes in parallel, a node's own jobs in sequence
            sums[item] = col.chunk_sums(item[0], table, list(item[1]))

    with ThreadPoolExecutor(max_workers=len(by_node)) as pool:
        list(pool.map(run_all, by_node.values()))
    diffs = []
    for cols, ns in jobs.items():
        psums = sums[(primary.name, cols)]
        for n in ns:
            d = _narrow(col, table, list(cols), n.name, psums, sums[(n.name, cols)])
            if d.missing or d.extra or d.changed or d.note:
                diffs.append(d)
    diffs = _recheck(col, table, jobs, diffs)
    for name, cols in cols_of.items():
        col.counts[(name, table)] = {c: v[0] for c, v in sums[(name, cols)].items()}
    bound = col.bound.get(table)
    for n in [primary, *replicas]:
        tf = n.tables.get(table)
        if tf is None or n.name not in cols_of:
            continue
        own = sums[(n.name, cols_of[n.name])]
        beyond = [i for d in diffs if d.node == n.name for i in d.extra if bound is not None and i > bound]
        tf.rows = sum(v[0] for v in own.values()) + len(beyond)
        if (n.name, common) in sums:
            chunks = list(sums[(n.name, common)].values())
            if beyond and pk is not None:  # its rows past the bound count in its rows: in its checksum too
                hashes = col.row_hashes(n.name, table, list(common), f"{quote_ident(pk)} > %s", (bound,))
                chunks.append((len(beyond), combine((1, hashes[i]) for i in beyond if i in hashes)))
            tf.checksum = table_checksum(chunks, keyed=pk is not None)
            tf.compared_columns = list(common)
    return diffs


def _count_rows(col: _Collector, table: str, nodes: list[NodeFacts]) -> None:
    """Own row count of reachable nodes whose data was not compared (behind, or replication stopped)."""
    for n in nodes:
        tf = n.tables.get(table)
        if tf is None:
            continue
        with contextlib.suppress(pymysql.MySQLError, SqlError):
            tf.rows = int(col.q(n.name, f"SELECT COUNT(*) FROM {quote_ident(table)}")[0][0])


def _narrow(col: _Collector, table: str, cols: list[str], node: str, psums: dict[int, tuple[int, int]],
            nsums: dict[int, tuple[int, int]]) -> RowDiff:
    d = RowDiff(node, table)
    pk = col.pk[table]
    bad = differing_chunks(psums, nsums)
    if pk is None:
        if bad:
            d.note = "table checksum differs (no integer primary key to narrow it down to rows)"
        return d
    p = quote_ident(pk)
    bound = col.bound[table]
    where = f"{p} BETWEEN %s AND %s"
    for c in bad:
        for lo, hi in _sub_ranges(col, table, cols, node, c * CHUNK_IDS, min((c + 1) * CHUNK_IDS - 1, bound)):
            m, e, ch = diff_row_hashes(col.row_hashes(col.primary, table, cols, where, (lo, hi)),
                                       col.row_hashes(node, table, cols, where, (lo, hi)))
            d.missing += m
            d.extra += e
            d.changed += ch
    # beyond the bound: rows the replica holds that the primary does not (read the replica first)
    beyond = col.row_hashes(node, table, cols, f"{p} > %s", (bound,))
    if beyond:
        have = col.row_hashes(col.primary, table, cols, f"{p} > %s AND {p} <= %s", (bound, max(beyond)))
        d.extra += sorted(i for i in beyond if i not in have)
    return d


def _sub_ranges(col: _Collector, table: str, cols: list[str], node: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The id ranges of a differing chunk whose rows must be read: its sub-ranges of SUB_IDS ids whose
    (count, BIT_XOR of row hashes) differ, computed by each server (a few rows changed in a chunk: a few
    thousand row hashes cross the wire instead of the chunk's). The whole chunk when most of it differs,
    or for negative ids."""
    if lo < 0:
        return [(lo, hi)]
    p, t = quote_ident(col.pk[table] or "id"), quote_ident(table)
    agg = aggregate_sql(cols, True, col.plain[table], col.raw[table])
    sql = f"SELECT {p} DIV {SUB_IDS}, COUNT(*), {agg} FROM {t} WHERE {p} BETWEEN %s AND %s GROUP BY 1"

    def sums(name: str) -> dict[int, tuple[int, int]]:
        return {int(s): (int(n), int(x)) for s, n, x in col.q(name, sql, (lo, hi))}

    subs = differing_chunks(sums(col.primary), sums(node))
    if len(subs) * SUB_IDS * 4 > hi - lo + 1:
        return [(lo, hi)]
    return [(max(lo, s * SUB_IDS), min(hi, (s + 1) * SUB_IDS - 1)) for s in subs]


def _recheck(col: _Collector, table: str, jobs: dict[tuple[str, ...], list[NodeFacts]],
             diffs: list[RowDiff], rounds: int = 2) -> list[RowDiff]:
    """Keep only differences that persist once replicas applied a newer primary position."""
    pk = col.pk[table]
    if not diffs or pk is None:
        return diffs
    cols_of = {n.name: list(c) for c, ns in jobs.items() for n in ns}
    for _ in range(rounds):
        gtid = replication.executed_gtid(col.conn(col.primary), col.cluster.flavor)
        kept = []
        for d in diffs:
            ids = set(d.missing) | set(d.extra) | set(d.changed)
            with contextlib.suppress(pymysql.MySQLError):
                db.scalar(col.conn(d.node), col.cluster.flavor.wait_for_gtid(), (gtid, max(1.0, col.wait)))
            fresh = RowDiff(d.node, d.table, note=d.note)
            p = quote_ident(pk)
            held: dict[int, int] = {}  # the replica's rows among the differing ids
            # a few ids: read those rows (the cost grows with the difference); many: whole chunks (range
            # scans, not IN lists of thousands)
            few = len(ids) <= RECHECK_IDS
            parts = [sorted(ids)[k:k + IN_BATCH] for k in range(0, len(ids), IN_BATCH)] if few else \
                [(c * CHUNK_IDS, (c + 1) * CHUNK_IDS - 1) for c in sorted({i // CHUNK_IDS for i in ids})]
            for args in parts:
                where = f"{p} IN ({', '.join(['%s'] * len(args))})" if few else f"{p} BETWEEN %s AND %s"
                nh = col.row_hashes(d.node, table, cols_of[d.node], where, args)
                ph = col.row_hashes(col.primary, table, cols_of[d.node], where, args)
                m, e, ch = diff_row_hashes(ph, nh)
                fresh.missing += [i for i in m if i in ids]  # only what differed before: newer rows are in flux
                fresh.extra += [i for i in e if i in ids]
                fresh.changed += [i for i in ch if i in ids]
                held.update((i, v) for i, v in nh.items() if i in ids)
            _settle(col, table, cols_of[d.node], fresh, held)
            if fresh.missing or fresh.extra or fresh.changed or fresh.note:
                kept.append(fresh)
        if [(k.missing, k.extra, k.changed) for k in kept] == [(d.missing, d.extra, d.changed) for d in diffs]:
            return kept
        diffs = kept
    return diffs


def _settle(col: _Collector, table: str, cols: list[str], diff: RowDiff, held: dict[int, int]) -> None:
    """Rows the replica holds that the primary does not show (extra, changed) may be written on the primary
    and not committed there yet (semi-sync AFTER_SYNC: the replica applied the transaction while the primary
    waits for its acknowledgement). Read them again on the primary with locks, which wait for those commits;
    what still differs then is divergence."""
    doubt = sorted(set(diff.extra) | set(diff.changed))
    if not doubt or len(doubt) > SETTLE_IDS:
        return
    settled = col.settled_hashes(table, cols, doubt)
    if settled is None:
        return
    _m, extra, changed = diff_row_hashes(settled, {i: held[i] for i in doubt if i in held})
    diff.extra, diff.changed = [i for i in doubt if i in extra], [i for i in doubt if i in changed]


def _check_ledger(col: _Collector, facts: Facts, path: Any, until: int, nodes: list[NodeFacts]) -> None:
    facts.ledger = ledger.summarize(ledger.clip_runs(ledger.read_runs(path), until)).to_dict()
    unknown = ledger.unknown_ids(path, until)
    primary_has: set[int] = set()
    table = col.ledger_table
    for lo, hi in unknown:
        primary_has.update(int(r[0]) for r in col.q(col.primary, f"SELECT id FROM {quote_ident(table)} WHERE id >= %s "
                                                    "AND id < %s", (lo, hi)))

    def one(n: NodeFacts) -> None:
        tf = n.tables.get(table)
        if tf is None:
            return
        cols = [c[0] for c in tf.columns]
        def connect() -> Any:
            return col.cluster.connect(n.name, database=col.database, timeout=3, read_timeout=col.wait + 120)

        # existence only: content is compared against the primary by the checksums, and a row the primary
        # itself changed after the feed wrote it is not a divergence
        def known(lo: int, hi: int) -> int | None:
            return col.known_count(n.name, table, lo, hi)

        d = ledger.verify_node(connect, path, table, primary_unknown=primary_has, until=until, columns=cols,
                               workers=LEDGER_WORKERS, content=False, known_count=known)
        facts.ledger_diffs[n.name] = {k: getattr(d, k) for k in ("missing", "unexpected", "missing_count",
                                                                 "unexpected_count")}

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(one, nodes))


@dataclass
class ShapeReport:
    """The verdict on a shape other than the star: one ``CheckReport`` per writer, each comparing the
    writer's table on the nodes that must hold its writes with the writer itself."""

    shape: str
    reports: dict[str, CheckReport]  # writer -> its verdict
    holders: dict[str, list[str]]
    shared: CheckReport | None = None  # the tables every writer writes (the counter workload's), on every node
    counters: CounterVerdict | None = None

    @property
    def consistent(self) -> bool:
        return all(r.consistent for r in self._all()) and (self.counters is None or self.counters.consistent)

    def _all(self) -> list[CheckReport]:
        return [*self.reports.values(), *([self.shared] if self.shared is not None else [])]

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self._all() for p in r.problems]

    def to_dict(self) -> dict[str, Any]:
        acked = sum(int((r.facts.ledger or {}).get("acknowledged", 0)) for r in self.reports.values())
        return {"consistent": self.consistent, "topology": self.shape, "ledger": {"acknowledged": acked},
                "writers": {w: {"holders": self.holders[w], **r.to_dict()} for w, r in self.reports.items()},
                **({"shared": self.shared.to_dict()} if self.shared is not None else {}),
                **({"counters": self.counters.to_dict()} if self.counters is not None else {})}

    def render(self) -> str:
        verdict = "CONSISTENT" if self.consistent else "INCONSISTENT"
        lines = [f"{verdict}: {self.shape}, {len(self.reports)} writer(s), each writer's rows checked on every node "
                 "that must hold them"]
        for w, r in self.reports.items():
            lines.append(f"-- writes of {w} ({', '.join(r.facts.tables)}), must be on: {', '.join(self.holders[w])}")
            lines.extend("   " + line for line in r.render().splitlines())
        if self.shared is not None:
            lines.append(f"-- tables every writer writes ({', '.join(self.shared.facts.tables)}), on every node")
            lines.extend("   " + line for line in self.shared.render().splitlines())
        if self.counters is not None:
            lines.append(self.counters.render())
        return "\n".join(lines)


def check(cluster: Cluster, wait: float = 30.0, tables: list[str] | None = None) -> CheckReport | ShapeReport:
    """Collect facts from every node and judge them. Raises CheckError when a check is impossible.

    The star compares every node with the primary. Other shapes ask the topology: for each writer, the
    nodes that must hold its writes are compared with it, over its table, and its ledger is verified there."""
    if wait < 0:
        raise ConfigError(f"--wait must be >= 0 seconds (got {wait})")
    if cluster.topology.name == "star":
        facts = collect(cluster, wait, tables)
        save_row_diffs(cluster.home, facts)
        report = judge(facts)
        report.counters = counters.collect(cluster, wait)
        report.consistent = report.consistent and (report.counters is None or report.counters.consistent)
        return report
    reports: dict[str, CheckReport] = {}
    holders: dict[str, list[str]] = {}
    multi = len(cluster.writers()) > 1
    for writer in cluster.writers():
        table = cluster.writer_table(writer)
        wanted = ([table] if not tables or table in tables else []) if multi else tables
        if wanted == []:
            continue
        holders[writer] = cluster.holders(writer)
        reports[writer] = judge(collect(cluster, wait, wanted, reference=writer, members=holders[writer],
                                        ledger_table=table))
    shape = ShapeReport(cluster.topology.name, reports, holders)
    if multi and counters.read_record(cluster.home) and (not tables or counters.TABLE in tables):
        everywhere = [n for n in cluster.names if all(n in holders.get(w, []) for w in cluster.writers())]
        shape.shared = judge(collect(cluster, wait, [counters.TABLE], reference=cluster.writers()[0],
                                     members=everywhere, ledger_table=counters.TABLE))
    shape.counters = counters.collect(cluster, wait)
    return shape


LAST_DIFFS = "last-check-rows.json"


def save_row_diffs(home: Any, facts: Facts) -> None:
    """Keep the row ids the check found (in the home, for ``replab sync --from-check``)."""
    path = Path(home) / "run" / LAST_DIFFS
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.time(), "gtid": facts.gtid, "tables": facts.tables,
                                   "row_diffs": [asdict(d) for d in facts.row_diffs]}))
        tmp.replace(path)


def last_row_diffs(home: Any) -> tuple[float, list[RowDiff]] | None:
    """(when, row diffs) of the last check run on this cluster, or None."""
    try:
        data = json.loads((Path(home) / "run" / LAST_DIFFS).read_text())
        return float(data["at"]), [RowDiff(**d) for d in data["row_diffs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
