"""Pure pieces of ``diagnose``: GTID states compared by source, the primary's binary log reset or purged
under a replica, and the schema a failing DDL statement saw (the primary's table before it ran).

No I/O here: unit-tested on recorded values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..servers.gtid import GtidParseError, GtidSet, merge_intervals, minus_intervals


@dataclass
class Column:
    name: str
    position: int
    data_type: str
    column_type: str
    maxlen: int | None



# GTID sets, reduced to what diagnose needs; the one place to swap for replab.servers.gtid's typed GtidSet.
Ranges = list[tuple[int, int]]


def gtid_sources(text: str | None) -> dict[str, Ranges]:
    """{source: [(first, last), ...]} of a GTID state (parsed by ``GtidSet``). MariaDB ``0-1-12,0-4-13`` (the
    last sequence number per domain-server_id; taken as 1..last) gives sources ``0-1``, ``0-4``; MySQL
    ``uuid:1-5:7`` gives ``uuid`` with its ranges. Text that is no GTID set gives no sources."""
    try:
        parsed = GtidSet.parse(text)
    except GtidParseError:
        return {}
    return {(f"{k[0]}-{k[1]}" if isinstance(k, tuple) else k): list(v) for k, v in parsed.sources.items()}


def subtract(have: Ranges, minus: Ranges) -> Ranges:
    """The parts of ranges ``have`` not covered by ``minus``."""
    return minus_intervals(have, minus)


def _mariadb(source: str) -> bool:
    """A ``gtid_sources`` key of MariaDB (``domain-server_id``), not a MySQL UUID."""
    return ":" not in source and source.count("-") == 1


def gtid_text(source: str, ranges: Ranges) -> str:
    """MariaDB ``0-4-2`` (the last of the ranges), MySQL ``uuid:3-5``."""
    if _mariadb(source):
        return f"{source}-{ranges[-1][1]}"
    return source + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in ranges)


def from_source(source: str, source_id: str) -> bool:
    """Was ``source`` (a key of ``gtid_sources``) written by the server whose id is ``source_id``?"""
    return source.lower() == source_id.lower() or source.split("-")[-1] == source_id


def not_in(replica_state: str | None, primary_state: str | None) -> dict[str, Ranges]:
    """GTIDs of the replica's state that the primary's state lacks, per source."""
    primary = gtid_sources(primary_state)
    out = {}
    for src, ranges in gtid_sources(replica_state).items():
        left = subtract(ranges, primary.get(src, []))
        if left:
            out[src] = left
    return out


def errant_gtids(replica_state: str | None, primary_state: str | None, primary_id: str) -> list[str]:
    """GTIDs in the replica's binary log that the primary never wrote: from another source than the primary
    and absent from its binary log state. (Missing GTIDs of the primary's own are a reset or purge.)"""
    return [gtid_text(src, r) for src, r in not_in(replica_state, primary_state).items()
            if not from_source(src, primary_id)]


# --- the primary's binary log reset or purged under a replica ----------------------------------------
@dataclass
class BinlogGap:
    """The replica's position of the primary's own GTIDs is not (or no longer) in the primary's binary log.

    Observed on MariaDB 10.11 and MySQL 9.7 (docs/faults.md): after the primary's binary log is reset, a
    connected replica's IO thread waits at its old byte position in the new, same-named file: nothing
    arrives. When the new file grows past that position the connection drops and the IO thread reconnects
    with the replica's GTID position: refused (MariaDB 1236, MySQL 13114 wrapping 1236) while the primary
    has not yet issued that number again, accepted once it has, and then the primary's new transactions up
    to that number are skipped as already applied (a silent divergence, kind "reissued")."""

    kind: str  # "reset": the primary's sequence restarted below the replica's; "purged": logs the replica
    #            still needs were removed; "reissued": the primary issued GTIDs again that the replica had
    replica_at: str  # the replica's last GTID of the primary's source ("(none)" when it has none)
    primary_at: str  # the primary's binary log state for that source ("" when empty)
    lost: int  # transactions of the primary this replica never received and cannot receive by replication
    stalled: bool  # IO and SQL threads say Yes, yet nothing arrives
    lost_gtids: str = ""  # those transactions as GTIDs ("" when only a count is known)
    exact: bool = True  # False: ``lost`` is an upper bound (MariaDB purge) or a lower one (a bounded read)
    read_at: str = ""  # where the replica's IO thread reads in the primary's binary log ("file at pos")
    past_end: str = ""  # "reset": how the primary's binary log ends now, when the read position lies beyond it
    ahead: bool = True  # "reset": the replica holds numbers of the primary's source that the primary has not
    #                     issued again yet (else the primary is past them and re-issued every one)
    threads: str = "running"  # "reissued": running | io stopped | sql stopped


def read_past_end(read_file: str | None, read_pos: int | None, logs: list[tuple[str, int]]) -> str:
    """Where the primary's binary log ends (``mysql-bin.000001 ends at 1073``) when a replica's IO thread
    reads beyond it, else "". ``logs`` is SHOW BINARY LOGS (name, size), read after the replica's position:
    a log only grows, so a position past its end means the log was reset under the replica."""
    if not read_file or not read_pos or not logs:
        return ""
    sizes = dict(logs)
    if read_file not in sizes:
        # a log that is being read cannot be purged; a reset removes it anyway
        return f"it has no {read_file} any more; its logs now run {logs[0][0]}..{logs[-1][0]}" \
            if read_file > logs[-1][0] else ""
    return f"{read_file} ends at {sizes[read_file]}" if read_pos > sizes[read_file] else ""


def gtid_span(source: str, ranges: Ranges) -> str:
    """Transactions as GTIDs: MySQL ``uuid:1-34``, MariaDB ``0-1-1..34`` (every range of the source)."""
    if _mariadb(source):
        return ",".join(f"{source}-{a}" if a == b else f"{source}-{a}..{b}" for a, b in ranges)
    return gtid_text(source, ranges)


def _count(ranges: Ranges) -> int:
    return sum(b - a + 1 for a, b in ranges)


def binlog_gap(replica_executed: str, primary_state: str, primary_id: str, *, io_errno: int, io_error: str,
               io_running: bool, sql_running: bool, replica_retrieved: str = "", primary_purged: str = "",
               read_at: str = "", past_end: str = "") -> BinlogGap | None:
    """Is this replica past (reset) or before (purged) what the primary's binary log holds?

    A reset shows as the replica holding GTIDs of the primary's own source that the primary lacks, or as
    ``past_end`` (see ``read_past_end``) while the IO thread runs: then the primary may already have issued
    the replica's numbers again. ``primary_purged`` is MySQL's gtid_purged: GTIDs in it that the replica
    has neither applied nor retrieved can never reach it by replication. MariaDB keeps no such set; there
    the IO error says it."""
    rsrc = gtid_sources(replica_executed)
    psrc = gtid_sources(primary_state)
    ahead = [src for src in not_in(replica_executed, primary_state) if from_source(src, primary_id)]
    mine = next((s for s in rsrc if from_source(s, primary_id)), None)
    src = ahead[0] if ahead else mine if past_end and io_running else None
    if src is not None:
        new = psrc.get(src, [])
        reused = subtract(new, subtract(new, rsrc[src]))  # numbers issued again that the replica already has
        return BinlogGap("reset", gtid_text(src, rsrc[src]), gtid_text(src, new) if new else "",
                         lost=_count(reused), stalled=io_running and sql_running,
                         lost_gtids=gtid_span(src, reused) if reused else "", read_at=read_at, past_end=past_end,
                         ahead=bool(ahead))
    own = next((s for s in psrc if from_source(s, primary_id)), None)
    if primary_purged:
        gone = not_in(primary_purged, f"{replica_executed},{replica_retrieved}")
        if gone:
            at = own if own is not None else next(iter(gone))
            return BinlogGap("purged", gtid_text(at, rsrc[at]) if at in rsrc else "(none)",
                             gtid_text(at, psrc[at]) if at in psrc else "", lost=sum(map(_count, gone.values())),
                             stalled=False, lost_gtids=",".join(gtid_span(s, r) for s, r in gone.items()),
                             read_at=read_at)
    if io_errno in (1236, 13114) and ("purged" in io_error or "not in the master's binlog" in io_error
                                      or "not in the source's binlog" in io_error):
        if own is None:
            return None
        replica_last = rsrc[own][-1][1] if own in rsrc else 0
        return BinlogGap("purged", gtid_text(own, rsrc[own]) if own in rsrc else "(none)",
                         gtid_text(own, psrc[own]), lost=max(0, psrc[own][-1][1] - replica_last), stalled=False,
                         exact=False, read_at=read_at)
    return None


# --- the same GTID naming different transactions: what a silent divergence after a reset leaves -----
Stamps = dict[tuple[str, int], str]
_EVENT_HEADER = re.compile(r"^#(\d{6}\s+\d{1,2}:\d\d:\d\d)\s+server id \d+\s")
_GTID_EVENT = re.compile(r"\tGTID[\t ](.*)$")
_MARIADB_GTID = re.compile(r"^(\d+-\d+)-(\d+)\b")
_GTID_NEXT = re.compile(r"^SET @@SESSION\.GTID_NEXT=\s*'(.+):(\d+)'", re.I)


def gtid_stamps(lines: Iterable[str], limit: int) -> tuple[Stamps, bool]:
    """{(source, number): commit stamp} of the first ``limit`` GTIDs in ``mysqlbinlog``/``mariadb-binlog``
    output, and whether the output ended before the limit (the whole log was read).

    The stamp is what replication keeps unchanged on every copy of a transaction: MySQL's
    original_committed_timestamp (microseconds); MariaDB's time of the transaction's first event after its
    GTID event (seconds; the GTID event's own time is not kept: a replica stamps it with the last statement's
    time, the primary with the COMMIT's). Two copies of one GTID with different stamps are two transactions."""
    out: Stamps = {}
    key: tuple[str, int] | None = None
    stamp: str | None = None
    waiting = False  # inside a GTID event: its name and stamp are still to come
    for line in lines:
        head = _EVENT_HEADER.match(line)
        gtid = _GTID_EVENT.search(line) if head else None
        if gtid:
            m = re.search(r"original_committed_timestamp=(\d+)", gtid.group(1))
            maria = _MARIADB_GTID.match(gtid.group(1))
            key = (maria.group(1), int(maria.group(2))) if maria else None  # MySQL: from GTID_NEXT below
            stamp, waiting = (m.group(1) if m else None), True
            continue
        if not waiting:
            continue
        if head and stamp is None:
            stamp = head.group(1)
        elif key is None and (nxt := _GTID_NEXT.match(line)):
            key = (nxt.group(1).lower(), int(nxt.group(2)))
        if key is not None and stamp is not None:
            out[key] = stamp
            key, stamp, waiting = None, None, False
            if len(out) >= limit:
                return out, False
    return out, True


def reissue_gap(primary: Stamps, replica: Stamps, primary_id: str, replica_executed: str, primary_state: str,
                *, complete: bool, io_running: bool = True, sql_running: bool = True) -> BinlogGap | None:
    """GTIDs of the primary's own source that both binary logs hold with different stamps: the primary
    issued them again (after a reset) for other transactions, which this replica skips as applied."""
    numbers: dict[str, list[int]] = {}
    for key, stamp in primary.items():
        other = replica.get(key)
        if other is not None and other != stamp and from_source(key[0], primary_id):
            numbers.setdefault(key[0], []).append(key[1])
    if not numbers:
        return None
    src, nums = next(iter(sorted(numbers.items())))
    ranges: Ranges = merge_intervals((n, n) for n in nums)
    rsrc, psrc = gtid_sources(replica_executed), gtid_sources(primary_state)
    return BinlogGap("reissued", gtid_text(src, rsrc[src]) if src in rsrc else "(none)",
                     gtid_text(src, psrc[src]) if src in psrc else "", lost=_count(ranges), stalled=False,
                     lost_gtids=gtid_span(src, ranges), exact=complete,
                     threads="io stopped" if not io_running else "sql stopped" if not sql_running else "running")


def gap_sentences(gap: BinlogGap, primary: str, node: str, reset: str = "RESET MASTER", reconnects: bool = True
                  ) -> tuple[str, list[str], list[str]]:
    """(summary, causes, next) in plain words for a ``BinlogGap``; ``reset`` names the flavor's statement,
    ``reconnects`` whether its IO thread reconnects by itself when the source fails in mid-stream."""
    fix = (f"rebuild it from a fresh snapshot of {primary} with a valid position: replab repair {node} "
           "(restarting replication cannot help)")
    lost = f" ({gap.lost_gtids})" if gap.lost_gtids else ""
    if gap.kind == "reset":
        now = f"holds only up to {gap.primary_at}" if gap.primary_at else "is empty"
        how = ("IO and SQL threads still say Yes but nothing arrives (a silent stall)" if gap.stalled
               else "replication stopped")
        summary = (f"{primary}'s binary log was reset ({reset}) or purged: this replica's position "
                   f"{gap.replica_at} is no longer in it; {how}")
        causes = [f"{primary}'s binary log {now} while this replica already applied {gap.replica_at}: the "
                  f"primary's GTID sequence restarted below this replica's position" if gap.ahead else
                  f"this replica's IO thread reads {gap.read_at}, beyond the end of {primary}'s binary log "
                  f"({gap.past_end}): the log restarted under it, and {primary} has since issued GTID numbers "
                  f"up to {gap.primary_at} again"]
        if gap.ahead and gap.past_end:
            causes.append(f"its IO thread reads {gap.read_at}, beyond the end of {primary}'s binary log "
                          f"({gap.past_end})")
        further = f", and every further one up to {gap.replica_at}" if gap.ahead else ""
        causes.append(f"lost for this replica: the {gap.lost} transaction(s){lost} {primary} wrote since the reset "
                      f"under GTID numbers this replica counts as applied: it skips them{further}")
        nxt = [fix]
        if gap.stalled:
            where = f" ({gap.read_at})" if gap.read_at else ""
            fails = ("its read fails there and the IO thread reconnects by itself" if reconnects else
                     "its read fails there: the IO thread stops (error 1236, 'I/O error reading log event'); "
                     "started again")
            then = (f"{fails}, it is refused (error 1236) while {primary} has not yet issued {gap.replica_at} "
                    "again, and once it has, accepted: it replicates on silently without everything numbered up "
                    "to there" if gap.ahead else
                    f"{fails}, it replicates on silently, without the transactions numbered up to {gap.replica_at}")
            nxt.insert(0, f"when {primary}'s new binary log grows past this replica's read position{where}, {then}")
        return summary, causes, nxt
    if gap.kind == "reissued":
        skips = f"{primary}'s new transactions with those numbers"
        now = {"running": f"it skipped {skips} and replicates on without them (a silent divergence)",
               "io stopped": f"its IO thread stopped; started again, it skips {skips} and replicates on without "
                             "them",
               "sql stopped": f"it skipped {skips}; then its SQL thread stopped"}[gap.threads]
        summary = (f"{primary}'s binary log was reset ({reset}) and its GTID numbers issued again: this "
                   f"replica's history {gap.lost_gtids} is not in it any more; {now}")
        causes = [f"{gap.lost_gtids} name other transactions on {primary} than the ones this replica applied "
                  "(their commit times in the two binary logs differ): the primary's GTID sequence restarted "
                  "after this replica had applied them",
                  f"lost for this replica: {'' if gap.exact else 'at least '}{gap.lost} transaction(s) of "
                  f"{primary}{lost}; GTID auto-positioning skips a GTID the replica already has, so they never "
                  "reach it"]
        return summary, causes, [fix]
    summary = (f"{primary} purged binary logs this replica still needs: its position {gap.replica_at} is older "
               "than the oldest binary log the primary kept (error 1236)")
    amount = f"up to {gap.lost}" if not gap.exact else str(gap.lost)
    causes = [f"{primary} is at {gap.primary_at}; {amount} of its transaction(s){lost} after {gap.replica_at} "
              "were in the purged logs and can never reach this replica by replication"]
    return summary, causes, [fix]


# --- the schema a failing DDL statement saw ----------------------------------------------------------
_IDENT = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_ALTER = re.compile(rf"^\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+({_IDENT}(?:\s*\.\s*{_IDENT})?)\s+(.*)$",
                    re.I | re.S)
_NOT_COLUMN = {"INDEX", "KEY", "PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "FULLTEXT", "SPATIAL", "PARTITION",
               "CHECK", "PERIOD", "SYSTEM"}


@dataclass
class DdlChange:
    """What an ALTER TABLE statement adds and drops (column names)."""

    table: str  # schema.table
    added: list[str]
    dropped: list[str]


def _unquote(ident: str) -> str:
    ident = ident.strip()
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


def _clauses(text: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    return [*out, "".join(cur)]


def ddl_change(statement: str | None, default_db: str | None) -> DdlChange | None:
    """Parse ``ALTER TABLE t ADD [COLUMN] x ..., DROP [COLUMN] y`` (other statements: None)."""
    m = _ALTER.match(statement or "")
    if not m:
        return None
    parts = [_unquote(p) for p in re.split(r"\s*\.\s*", m.group(1), maxsplit=1)]
    if len(parts) == 1:
        if not default_db:
            return None
        parts.insert(0, default_db)
    change = DdlChange(f"{parts[0]}.{parts[1]}", [], [])
    for clause in _clauses(m.group(2)):
        c = re.match(rf"\s*(ADD|DROP)\s+(?:COLUMN\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?({_IDENT})", clause, re.I)
        if c and c.group(2).upper() not in _NOT_COLUMN:
            (change.added if c.group(1).upper() == "ADD" else change.dropped).append(_unquote(c.group(2)))
    return change if change.added or change.dropped else None


def before(columns: list[Column], change: DdlChange) -> list[Column]:
    """The primary's columns as they were before ``change`` ran there (a dropped column's type is unknown)."""
    added = {a.lower() for a in change.added}
    kept = [c for c in columns if c.name.lower() not in added]
    kept += [Column(d, 0, "?", "? (dropped by the failing statement)", None) for d in change.dropped
             if all(c.name.lower() != d.lower() for c in kept)]
    return [replace(c, position=i + 1) for i, c in enumerate(kept)]
