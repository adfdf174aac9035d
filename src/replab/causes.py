"""Pure pieces of ``diagnose``: GTID states compared by source, the primary's binary log reset or purged
under a replica, and the schema a failing DDL statement saw (the primary's table before it ran).

No I/O here: unit-tested on recorded values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .gtid import GtidParseError, GtidSet, minus_intervals


@dataclass
class Column:
    name: str
    position: int
    data_type: str
    column_type: str
    maxlen: int | None



# GTID sets, reduced to what diagnose needs; the one place to swap for replab.gtid's typed GtidSet.
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


def gtid_text(source: str, ranges: Ranges) -> str:
    """MariaDB ``0-4-2`` (the last of the ranges), MySQL ``uuid:3-5``."""
    if ":" not in source and source.count("-") == 1:
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
    """The replica's position of the primary's own GTIDs is not (or no longer) in the primary's binary log."""

    kind: str  # "reset": the primary's GTID sequence restarted below the replica's; "purged": logs removed
    replica_at: str  # the replica's last GTID of the primary's source
    primary_at: str  # the primary's binary log state for that source ("" when empty)
    lost: int  # transactions of the primary this replica never received (at most, for "purged")
    stalled: bool  # IO and SQL threads say Yes, yet nothing arrives


def binlog_gap(replica_executed: str, primary_state: str, primary_id: str, *, io_errno: int, io_error: str,
               io_running: bool, sql_running: bool) -> BinlogGap | None:
    """Is this replica past (reset) or before (purged) what the primary's binary log holds?"""
    rsrc = gtid_sources(replica_executed)
    psrc = gtid_sources(primary_state)
    for src in not_in(replica_executed, primary_state):
        if not from_source(src, primary_id):
            continue
        primary_last = psrc[src][-1][1] if src in psrc else 0
        return BinlogGap("reset", gtid_text(src, rsrc[src]), gtid_text(src, psrc[src]) if src in psrc else "",
                         lost=primary_last, stalled=io_running and sql_running)
    if io_errno == 1236 and ("purged" in io_error or "not in the master's binlog" in io_error
                             or "not in the source's binlog" in io_error):
        own = next((s for s in psrc if from_source(s, primary_id)), None)
        if own is None:
            return None
        replica_last = rsrc[own][-1][1] if own in rsrc else 0
        return BinlogGap("purged", gtid_text(own, rsrc[own]) if own in rsrc else "(none)",
                         gtid_text(own, psrc[own]), lost=max(0, psrc[own][-1][1] - replica_last), stalled=False)
    return None


def gap_sentences(gap: BinlogGap, primary: str, node: str) -> tuple[str, list[str], list[str]]:
    """(summary, causes, next) in plain words for a ``BinlogGap``."""
    fix = (f"rebuild it from a fresh snapshot of {primary} with a valid position: replab repair {node} "
           "(restarting replication cannot help)")
    if gap.kind == "reset":
        now = f"holds only up to {gap.primary_at}" if gap.primary_at else "is empty"
        how = ("IO and SQL threads still say Yes but nothing arrives (a silent stall); the next reconnect "
               "fails with error 1236" if gap.stalled else "replication stopped")
        summary = (f"{primary}'s binary log was reset (RESET MASTER) or purged: this replica's position "
                   f"{gap.replica_at} is no longer in it; {how}")
        causes = [f"{primary}'s binary log {now} while this replica already applied {gap.replica_at}: the "
                  f"primary's GTID sequence restarted below this replica's position",
                  f"lost for this replica: the {gap.lost} transaction(s) {primary} wrote since the reset; they "
                  f"reuse GTID numbers this replica counts as applied, so it would skip them even if it "
                  f"reconnected"]
        return summary, causes, [fix]
    summary = (f"{primary} purged binary logs this replica still needs: its position {gap.replica_at} is older "
               "than the oldest binary log the primary kept (error 1236)")
    causes = [f"{primary} is at {gap.primary_at}; up to {gap.lost} of its transaction(s) after {gap.replica_at} "
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
