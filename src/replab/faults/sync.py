"""Repair exactly the rows of a replica that differ from the primary (pt-table-sync's job, but exact).

The ids come from the checker (``checker.collect``: chunked checksums narrowed down to row ids, rechecked
so that rows that merely lag are not reported), over the primary and this node only; with ``auto``, the
other replicas are asked about those rows alone (do they differ too?). Everything but that one scan of two
nodes reads the differing rows by id (or their 1,000-id sub-ranges), so it grows with the rows to fix.
Each table is then fixed in one pass:

1. on the primary, in a transaction, the rows are read ``FOR UPDATE``: nothing can change them (or insert
   one of the extra ids) until the fix is done;
2. the primary's GTID position is taken and the replica waits until it has applied it, so anything that
   was only lagging has arrived; the replica's rows are read again and only those that still differ are
   written (a row that caught up is counted as lag, not fixed);
3. the fix goes one of two ways:

   - ``replica``: on the replica itself, with ``sql_log_bin=0`` for the session, so no errant GTID appears
     in its binary log (the admin user passes ``read_only``);
   - ``primary``: on the primary, with ``binlog_format=STATEMENT`` for the session, as ``REPLACE`` (the
     primary's own values: a no-op there) and ``DELETE`` of ids the primary does not have (nothing to
     delete there); the statements replicate like any write and the replicas apply them in order.

Then the rows are read on both sides once more and compared (the verification), and ``check`` can be run
over the synced tables. A sync is refused, with the reason, where rows cannot help: the table's schema
differs, the replica's replication is broken, a table has no single-column primary key; ``replab repair``
rebuilds the node instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from ..core.config import quote_ident
from ..core.errors import ConfigError, NodeStateError, ReplabError
from ..engines.base import PAUSED, STOPPED
from ..servers import db
from ..verify import checker

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

WAYS = ("auto", "replica", "primary")
BATCH = 500  # ids per statement


class SyncRefused(ReplabError):
    """A row sync cannot repair this node; the hint says what can."""


@dataclass
class TableSync:
    table: str
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    lagged: list[int] = field(default_factory=list)  # differed at check time, matched once caught up

    @property
    def fixed(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


@dataclass
class SyncReport:
    node: str
    via: str
    why: str
    seconds: float
    verified: bool
    tables: list[TableSync] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    # shapes other than the star: the writers whose rows were compared and fixed (empty: the primary)
    sources: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> int:
        return sum(t.fixed for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fixed": self.fixed}

    def sentence(self) -> str:
        if not self.tables:
            return f"{self.node}: nothing to sync: every row matches {self.why}'s"
        parts = [f"{t.table}: {len(t.missing)} inserted, {len(t.extra)} deleted, {len(t.changed)} rewritten"
                 + (f" ({len(t.lagged)} only lagged, left alone)" if t.lagged else "") for t in self.tables]
        whose = f"{' and '.join(self.sources)}'s" if self.sources else "the primary"
        verdict = f"verified: the rows now match {whose}" if self.verified else "NOT verified: rows still differ"
        through = f"through {' and '.join(self.sources)}" if self.sources else "through the primary"
        how = through if self.via == "primary" else "on the replica itself (sql_log_bin=0)" if self.via == "replica" \
            else f"on the replica itself or {through}"
        return f"{self.node}: synced {self.fixed} row(s) {how}; {'; '.join(parts)}; {verdict}"


def sync(cluster: Cluster, node: str, via: str = "auto", tables: list[str] | None = None, wait: float = 30.0,
         say: Callable[[str], None] | None = None, from_check: bool = False) -> SyncReport:
    """Make replica ``node``'s rows equal to the primary's where they differ (``via`` auto, replica or
    primary). Raises ``SyncRefused`` where a row sync cannot help, ``ConfigError`` on bad arguments.

    ``from_check``: take the ids from the last ``check`` of this cluster instead of comparing the tables
    again (the cost then grows with the rows to fix, not with the table). Every id is still compared
    under lock before it is written, so an id that no longer differs is left alone; a row that diverged
    after that check is not seen."""
    say = say or cluster.say
    if via not in WAYS:
        raise ConfigError(f"unknown sync way {via!r}: choose auto, replica or primary",
                          hint=f"example: replab sync {node} --via replica")
    info = cluster.node(node)
    if info.role != "replica":
        raise ConfigError(f"{node} is not a replica (it is {info.role}); sync makes a replica equal to the "
                          "primary", hint="name a replica, e.g. replab sync mysql-s1")
    state = cluster.engine.state(info)
    if state in (STOPPED, PAUSED):
        verb = "resume" if state == PAUSED else "start"
        raise NodeStateError(f"{node} is {state}", node=node, hint=f"replab {verb} {node} first")
    t0 = time.monotonic()
    if cluster.topology.name != "star":
        return _sync_shape(cluster, node, via, tables, wait, say, from_check)
    last = checker.last_row_diffs(cluster.home) if from_check else None
    if from_check and last is None:
        raise ConfigError("no check has been run on this cluster yet, so there are no ids to sync from",
                          hint=f"run replab check first, or leave out --from-check: replab sync {node}")
    # only the primary and this node are read (no ledger): the other replicas are asked about these rows alone
    facts = checker.collect(cluster, wait=wait, tables=tables, compare=last is None, only=node)
    if last is not None:
        facts.row_diffs = [d for d in last[1] if tables is None or d.table in tables]
        say(f"{node}: the row ids of the check of {time.strftime('%H:%M:%S', time.localtime(last[0]))}")
    return _sync_facts(cluster, node, via, facts, wait, say, t0, ask_others=last is None)


def _sync_shape(cluster: Cluster, node: str, via: str, tables: list[str] | None, wait: float,
                say: Callable[[str], None], from_check: bool) -> SyncReport:
    """A node of a chain, fan-in or active-active: for each writer whose writes it must hold (as ``check``
    compares them), its rows of that writer's table are compared with the writer's and fixed, on the node
    itself or through that writer. A fan-in replica is synced against each of its primaries."""
    if from_check:
        raise ConfigError(f"--from-check reads the ids of the star's last check; a {cluster.topology.name} is "
                          "compared writer by writer", hint=f"leave it out: replab sync {node}")
    t0 = time.monotonic()
    multi = len(cluster.writers()) > 1
    writers = [w for w in cluster.writers() if w != node and node in cluster.holders(w)]
    direct = [e.source for e in cluster.edges_into(node)]
    far = [w for w in writers if w not in direct]
    if via == "primary" and far:
        # an intermediate source logs the replicated REPLACE in rows, and a row it already had unchanged
        # logs nothing: the fix would stop there (measured on a chain's tail)
        raise ConfigError(f"--via primary writes the fix on {far[0]} as statements; {node} gets {far[0]}'s writes "
                          f"through {' and '.join(direct)}, which log(s) them as rows and leave(s) out the rows "
                          "they already have, so the fix would not reach it", hint=f"replab sync {node} --via replica")
    parts: list[tuple[str, SyncReport]] = []
    for writer in writers:
        table = cluster.writer_table(writer)
        wanted = ([table] if not tables or table in tables else []) if multi else tables
        if wanted == []:
            continue
        facts = checker.collect(cluster, wait=wait, tables=wanted, reference=writer, members=[writer, node])
        parts.append((writer, _sync_facts(cluster, node, via, facts, wait, say, t0)))
    if not parts:
        raise ConfigError(f"{node} holds no writer's table named in --table on this {cluster.topology.name}",
                          hint=f"replab sync {node}")
    fixed = [(w, r) for w, r in parts if r.tables]
    if not fixed:
        return SyncReport(node, "(nothing written)", " and ".join(w for w, _ in parts), time.monotonic() - t0, True,
                          sources=[w for w, _ in parts])
    ways = sorted({r.via for _, r in fixed})
    return SyncReport(node, ways[0] if len(ways) == 1 else "+".join(ways), "; ".join(r.why for _, r in fixed),
                      time.monotonic() - t0, all(r.verified for _, r in fixed),
                      [t for _, r in fixed for t in r.tables], [st for _, r in fixed for st in r.steps],
                      sources=[w for w, _ in fixed])


def _sync_facts(cluster: Cluster, node: str, via: str, facts: checker.Facts, wait: float,
                say: Callable[[str], None], t0: float, ask_others: bool = False) -> SyncReport:
    """Fix ``node``'s rows that differ from ``facts.primary``'s (the star's primary, a shape's writer).
    ``ask_others``: the facts hold only the primary and ``node`` (the star's sync without --from-check), so
    the other replicas are asked about the differing rows by id; otherwise the facts' own row diffs say
    which other nodes share the damage."""
    primary = next(n for n in facts.nodes if n.name == facts.primary)
    me = next((n for n in facts.nodes if n.name == node), None)
    _refuse_if_unfixable(node, facts, primary, me)
    diffs = [d for d in facts.row_diffs if d.node == node and (d.missing or d.extra or d.changed or d.note)]
    for d in diffs:
        if d.note:
            raise SyncRefused(f"{node}: {d.table}: {d.note}; a row sync needs the rows' ids",
                              node=node, hint=f"rebuild it: replab repair {node}")
    if not diffs:
        return SyncReport(node, "(nothing written)", f"{facts.primary}", time.monotonic() - t0, True)
    shared = [] if via != "auto" else _others_differ(cluster, node, diffs, primary, wait) if ask_others else \
        _shared(node, diffs, facts.row_diffs)
    ways, why = _choose(node, via, shared, facts)
    say(f"{node}: {why}")
    report = SyncReport(node, ways, why, 0.0, False)
    for d in diffs:
        keys = primary.tables[d.table].keys
        pk = _single_pk(keys)
        if pk is None:
            raise SyncRefused(f"{node}: {d.table} has no single-column primary key, so its rows cannot be "
                              "addressed one by one", node=node, hint=f"rebuild it: replab repair {node}")
        cols = [c[0] for c in primary.tables[d.table].columns]
        ts = _sync_table(cluster, node, ways, d.table, pk, cols, sorted({*d.missing, *d.extra, *d.changed}), wait,
                         facts.primary)
        report.tables.append(ts)
        say(f"{node}: {d.table}: {len(ts.missing)} row(s) inserted, {len(ts.extra)} deleted, "
            f"{len(ts.changed)} rewritten{f', {len(ts.lagged)} only lagged' if ts.lagged else ''}")
    report.verified = _verify(cluster, node, report, primary, wait, facts.primary)
    report.seconds = time.monotonic() - t0
    return report


def _refuse_if_unfixable(node: str, facts: checker.Facts, primary: checker.NodeFacts,
                         me: checker.NodeFacts | None) -> None:
    hint = f"rebuild it from the primary: replab repair {node}"
    if me is None or not me.reachable:
        raise SyncRefused(f"{node} did not answer{f': {me.error}' if me else ''}", node=node,
                          hint=f"replab status; once it answers, replab sync {node}")
    if not (me.io_running and me.sql_running) or me.last_errno:
        err = f" (error {me.last_errno}: {me.last_error})" if me.last_errno else ""
        raise SyncRefused(f"{node}: replication is broken: IO={'Yes' if me.io_running else 'No'} "
                          f"SQL={'Yes' if me.sql_running else 'No'}{err}; rows synced now would not stay in "
                          "sync", node=node, hint=f"{hint} (or see: replab diagnose {node})")
    if me.caught_up is False:
        raise SyncRefused(f"{node} did not apply the primary's position within {facts.wait:g}s, so its rows "
                          "cannot be told apart from lag", node=node, hint=f"a longer --wait, or {hint}")
    for table in facts.tables:
        schema = checker.diff_schema(primary.tables.get(table), me.tables.get(table))
        if schema:
            raise SyncRefused(f"{node}: {table}: the schema differs from the primary's ({schema[0]}); rows "
                              "cannot be copied into another shape", node=node, hint=hint)


def _single_pk(keys: list[tuple[str, int, str, int]]) -> str | None:
    cols = [k[2] for k in keys if k[0] == "PRIMARY"]
    return cols[0] if len(cols) == 1 else None


def _shared(node: str, diffs: list[checker.RowDiff], found: list[checker.RowDiff]) -> list[str]:
    """The other nodes a check found differing on some of the same rows."""
    return sorted({d.node for d in found if d.node != node for mine in diffs if d.table == mine.table
                   and {*d.missing, *d.extra, *d.changed} & {*mine.missing, *mine.extra, *mine.changed}})


def _others_differ(cluster: Cluster, node: str, diffs: list[checker.RowDiff], primary: checker.NodeFacts,
                   wait: float) -> list[str]:
    """The other running replicas whose copies of the differing rows differ from the primary's too (read by
    id: the cost grows with the rows to fix, not the table). A replica that does not apply the primary's
    position within a second (or --wait, if shorter) is left out: its rows cannot be told apart from lag."""
    out: list[str] = []
    with cluster.connect(cluster.primary.name, database=cluster.database) as pconn:
        gtid = str(db.scalar(pconn, cluster.flavor.executed_gtid()) or "")
        others = [r.name for r in cluster.replicas if r.name != node
                  and cluster.engine.state(cluster.node(r.name)) not in (STOPPED, PAUSED)]
        if not others:
            return out
        caught = cluster.wait_caught_up(timeout=min(1.0, wait), names=others, gtid=gtid)
        want: dict[str, dict[int, tuple[Any, ...]]] = {}
        for d in diffs:
            pk = _single_pk(primary.tables[d.table].keys)
            if pk is not None:
                with pconn.cursor() as cur:
                    want[d.table] = _rows(cur, d.table, pk, [c[0] for c in primary.tables[d.table].columns],
                                          sorted({*d.missing, *d.extra, *d.changed}), False)
    for name in others:
        if not caught.get(name):
            continue
        try:
            with cluster.connect(name, database=cluster.database) as conn, conn.cursor() as cur:
                for d in diffs:
                    pk = _single_pk(primary.tables[d.table].keys)
                    if pk is None:
                        continue
                    cols = [c[0] for c in primary.tables[d.table].columns]
                    if _rows(cur, d.table, pk, cols, sorted({*d.missing, *d.extra, *d.changed}), False) \
                            != want[d.table]:
                        out.append(name)
                        break
        except (pymysql.MySQLError, ReplabError):
            continue  # a replica that cannot be read: this sync is about the node named
    return out


def _choose(node: str, via: str, shared: list[str], facts: checker.Facts) -> tuple[str, str]:
    if via == "replica":
        return "replica", f"fixing the rows on {node} itself with sql_log_bin=0 (asked for): no errant GTID"
    if via == "primary":
        return "primary", (f"fixing the rows through {facts.primary} with statement-based logging (asked for): "
                           "the fix replicates like any write")
    if shared:
        return "primary", (f"fixing the rows through {facts.primary} with statement-based logging: "
                           f"{', '.join(shared)} differ(s) on the same rows, and one write there reaches every "
                           "replica")
    return "replica", (f"fixing the rows on {node} itself with sql_log_bin=0: only {node} differs, so nothing "
                       "needs to replicate and no errant GTID appears")


def _select(table: str, pk: str, cols: list[str], n: int, lock: bool) -> str:
    marks = ",".join(["%s"] * n)
    return (f"SELECT {', '.join(map(quote_ident, cols))} FROM {quote_ident(table)} WHERE {quote_ident(pk)} "
            f"IN ({marks}){' FOR UPDATE' if lock else ''}")


def _rows(cur: Any, table: str, pk: str, cols: list[str], ids: list[int], lock: bool) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    at = cols.index(pk)
    for i in range(0, len(ids), BATCH):
        part = ids[i:i + BATCH]
        cur.execute(_select(table, pk, cols, len(part), lock), part)
        for row in cur.fetchall():
            out[int(row[at])] = tuple(row)
    return out


def _sync_table(cluster: Cluster, node: str, via: str, table: str, pk: str, cols: list[str], ids: list[int],
                wait: float, source: str) -> TableSync:
    """Fix ``ids`` of ``table`` on ``node`` to ``source``'s rows (the primary, or a shape's writer)."""
    ts = TableSync(table)
    flavor = cluster.flavor
    with cluster.connect(source, database=cluster.database, read_timeout=max(wait, 10)) as pconn, \
            cluster.connect(node, database=cluster.database, read_timeout=max(wait, 10)) as rconn:
        pcur, rcur = pconn.cursor(), rconn.cursor()
        if via == "primary":  # before the transaction: the session's format cannot change inside one
            pcur.execute("SET SESSION binlog_format = 'STATEMENT'")
        else:
            rcur.execute("SET SESSION sql_log_bin = 0")
        pcur.execute("SET SESSION innodb_lock_wait_timeout = %s", (max(1, int(wait)),))
        pcur.execute("START TRANSACTION")
        try:
            want = _rows(pcur, table, pk, cols, ids, lock=True)  # held until the fix is done
            gtid = str(db.scalar(pconn, flavor.executed_gtid()) or "")
            if not cluster.wait_caught_up(timeout=wait, names=[node], gtid=gtid).get(node):
                raise SyncRefused(f"{node} did not apply {source}'s position within {wait:g}s",
                                  node=node, hint=f"a longer --wait, or rebuild it: replab repair {node}")
            rcur.execute("START TRANSACTION")
            have = _rows(rcur, table, pk, cols, ids, lock=True)
            for i in ids:
                p, r = want.get(i), have.get(i)
                if p == r:
                    ts.lagged.append(i)
                elif r is None:
                    ts.missing.append(i)
                elif p is None:
                    ts.extra.append(i)
                else:
                    ts.changed.append(i)
            cur, conn = (pcur, pconn) if via == "primary" else (rcur, rconn)
            rewrite = [want[i] for i in ts.missing + ts.changed]
            t, k = quote_ident(table), quote_ident(pk)
            for j in range(0, len(ts.extra), BATCH):
                part = ts.extra[j:j + BATCH]
                cur.execute(f"DELETE FROM {t} WHERE {k} IN ({','.join(['%s'] * len(part))})", part)
            head = f"REPLACE INTO {t} ({', '.join(map(quote_ident, cols))}) VALUES "
            row = "(" + ",".join(["%s"] * len(cols)) + ")"
            for j in range(0, len(rewrite), BATCH):
                rows = rewrite[j:j + BATCH]
                cur.execute(head + ",".join([row] * len(rows)), [v for r in rows for v in r])
            rconn.commit()
            if conn is pconn:
                pconn.commit()
        except BaseException:
            for c in (rconn, pconn):
                try:
                    c.rollback()
                except pymysql.MySQLError:
                    pass
            raise
        finally:
            pconn.rollback()  # the locks end here (the fix, if through the primary, is committed)
    return ts


def _verify(cluster: Cluster, node: str, report: SyncReport, primary: checker.NodeFacts, wait: float,
            source: str) -> bool:
    """Every synced row equal on both sides once the replica applied the primary's (``source``'s) position."""
    with cluster.connect(source, database=cluster.database) as pconn:
        gtid = str(db.scalar(pconn, cluster.flavor.executed_gtid()) or "")
    if not cluster.wait_caught_up(timeout=wait, names=[node], gtid=gtid).get(node):
        return False
    ok = True
    with cluster.connect(source, database=cluster.database) as pconn, \
            cluster.connect(node, database=cluster.database) as rconn:
        for ts in report.tables:
            pk = _single_pk(primary.tables[ts.table].keys) or ""
            cols = [c[0] for c in primary.tables[ts.table].columns]
            ids = sorted({*ts.missing, *ts.extra, *ts.changed})
            if not ids:
                continue
            with pconn.cursor() as pc, rconn.cursor() as rc:
                same = _rows(pc, ts.table, pk, cols, ids, False) == _rows(rc, ts.table, pk, cols, ids, False)
            report.steps.append(f"{node}: {ts.table}: the {len(ids)} synced row(s) "
                                f"{'now equal' if same else 'still differ from'} {source}'s")
            ok = ok and same
    return ok
