"""The ledger of acknowledged writes: what the primary said yes (or no, or nothing) to.

Feeds insert rows with ids they allocate themselves, and a row's content is a function of its id
(``some-event-N``, ``N``, ``some-descr-N``), so the ledger only stores *which* ids got which outcome.
It is a file of runs ``(start, end, outcome)`` (three little-endian int64, ``end`` exclusive) in
``<home>/ledger/<table>.runs``. A writer appends only the contiguous prefix of ids whose outcome is
known, so every id below the last run's end has an outcome: the file is complete and correct whenever
it is read, even while a feed runs. 10,000,000 single-row writes take a few thousand runs.

Verifying a node streams the runs and lets the server summarize each chunk of ids (count and the number
of rows whose content is right); only a chunk that does not match is fetched and diffed row by row by
the pure ``diff_rows``.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import heapq
import os
import queue
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import quote_ident, validate_identifier
from ..core.errors import ReplabError

OK, FAILED, UNKNOWN = 1, 2, 3
OUTCOMES = {OK: "ok", FAILED: "failed", UNKNOWN: "unknown"}
RECORD = 24  # bytes per run
CHUNK = 100_000  # ids per server-side summary when verifying


def row_content(n: int) -> tuple[str, int, str]:
    """The (name, counter, description) a feed writes for id ``n``."""
    return f"some-event-{n}", n, f"some-descr-{n}"


def ledger_path(home: Path, table: str = "events") -> Path:
    validate_identifier(table, "table name")
    return Path(home) / "ledger" / f"{table}.runs"


@dataclass
class Run:
    start: int
    end: int  # exclusive
    outcome: int

    def __len__(self) -> int:
        return self.end - self.start


def read_runs(path: Path, block: int = 65536) -> Iterator[Run]:
    """Stream the runs of a ledger file (a torn last record, from a writer mid-append, is ignored)."""
    if not path.exists():
        return
    size = path.stat().st_size // RECORD * RECORD
    with open(path, "rb") as fh:
        done = 0
        while done < size:
            data = fh.read(min(block * RECORD, size - done))
            if not data:
                break
            done += len(data)
            arr = array("q")
            arr.frombytes(data)
            for i in range(0, len(arr), 3):
                yield Run(arr[i], arr[i + 1], arr[i + 2])


@dataclass
class LedgerSummary:
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    runs: int = 0
    first: int | None = None
    end: int | None = None  # every id below this has an outcome (within the ledger's segments)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(runs: Iterable[Run]) -> LedgerSummary:
    s = LedgerSummary()
    for r in runs:
        s.runs += 1
        if r.outcome == OK:
            s.acknowledged += len(r)
        elif r.outcome == FAILED:
            s.failed += len(r)
        else:
            s.unknown += len(r)
        s.first = r.start if s.first is None else min(s.first, r.start)
        s.end = r.end if s.end is None else max(s.end, r.end)
    return s


class LedgerWriter:
    """Thread-safe appender used by a feed. Holds an exclusive lock on the ledger while open.

    ``record(start, count, outcome)`` may come in any order from many threads; runs reach the file in id
    order, and only once every lower id of this segment has an outcome.
    """

    def __init__(self, path: Path, first_id: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock_fh = open(path.with_suffix(".lock"), "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise ReplabError(f"another feed is writing the ledger {path}",
                              hint="wait for it to end (or stop it with Ctrl-C) before starting another") from None
        self._fh = open(path, "ab")
        size = os.fstat(self._fh.fileno()).st_size
        if size % RECORD:
            os.ftruncate(self._fh.fileno(), size - size % RECORD)  # torn record from a killed writer
        self._mu = threading.Lock()
        self._heap: list[tuple[int, int, int]] = []
        self._next = first_id
        self._buf: list[list[int]] = []
        self.counts = {OK: 0, FAILED: 0, UNKNOWN: 0}  # rows per outcome
        self.statements = 0  # acknowledged statements

    @property
    def resolved_until(self) -> int:
        return self._next

    def record(self, start: int, count: int, outcome: int, statements: int = 1) -> None:
        """Record the outcome of ids start..start+count-1 (acknowledged by ``statements`` statements)."""
        with self._mu:
            self.counts[outcome] += count
            self.statements += statements if outcome == OK else 0
            heapq.heappush(self._heap, (start, start + count, outcome))
            while self._heap and self._heap[0][0] == self._next:
                s, e, o = heapq.heappop(self._heap)
                last = self._buf[-1] if self._buf else None
                if last and last[1] == s and last[2] == o:
                    last[1] = e
                else:
                    self._buf.append([s, e, o])
                self._next = e

    def flush(self) -> None:
        with self._mu:
            buf, self._buf = self._buf, []
        if buf:
            arr = array("q", [v for run in buf for v in run])
            self._fh.write(arr.tobytes())
            self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()


# --- verification --------------------------------------------------------------------------------

@dataclass
class LedgerDiff:
    """What one node holds against the ledger: ids missing, unexpected (never acknowledged), altered."""

    missing: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    altered: list[int] = field(default_factory=list)
    missing_count: int = 0
    unexpected_count: int = 0
    altered_count: int = 0
    keep: int = 1000  # ids kept per kind as evidence; counts are always exact

    def add(self, kind: str, ids: Iterable[int]) -> None:
        lst: list[int] = getattr(self, kind)
        n = 0
        for i in ids:
            n += 1
            if len(lst) < self.keep:
                lst.append(i)
        setattr(self, kind + "_count", getattr(self, kind + "_count") + n)

    def merge(self, other: LedgerDiff) -> None:
        for kind in ("missing", "unexpected", "altered"):
            self.add(kind, getattr(other, kind))
            extra = getattr(other, kind + "_count") - len(getattr(other, kind))
            setattr(self, kind + "_count", getattr(self, kind + "_count") + extra)

    @property
    def clean(self) -> bool:
        return not (self.missing_count or self.unexpected_count or self.altered_count)


def expected_outcome(run_outcome: int, id_: int, primary_has: set[int] | None) -> bool | None:
    """Should a row with this id exist? True/False, or None when the ledger cannot say."""
    if run_outcome == OK:
        return True
    if run_outcome == FAILED:
        return False
    if primary_has is None:
        return None
    return id_ in primary_has


def diff_rows(runs: Iterable[Run], rows: Iterable[tuple[Any, ...]],
              primary_has: set[int] | None = None, present: tuple[bool, ...] = (True, True, True),
              content: bool = True) -> LedgerDiff:
    """Pure streaming merge of ledger runs (sorted by id) with a node's rows ``(id, name, counter,
    description)`` sorted by id, both restricted to the same id range by the caller.

    Unknown outcomes count as acknowledged when ``primary_has`` holds the id, as failed otherwise.
    Rows whose id is in no run are not the ledger's business and are skipped, and so is a row at the id
    of a failed write whose content is not the feed's (another client's row: the checksums compare it).
    ``present`` says which of (name, counter, description) the node has; a column it lacks is not
    compared (the schema diff says so). ``content=False``: existence only, no ``altered`` rows (the checker
    compares content against the primary, which may have changed a row after the feed wrote it).
    """
    diff = LedgerDiff()
    run_iter = iter(runs)
    run = next(run_iter, None)
    missing: list[int] = []
    unexpected: list[int] = []
    altered: list[int] = []
    cursor = run.start if run else 0  # next id of the current run not yet matched against a row

    def close_until(limit: int) -> None:
        """Ids of the current run in [cursor, limit) have no row on the node."""
        nonlocal cursor
        assert run is not None
        for i in range(cursor, min(limit, run.end)):
            if expected_outcome(run.outcome, i, primary_has):
                missing.append(i)
        cursor = max(cursor, min(limit, run.end))

    for row in rows:
        rid = int(row[0])
        while run is not None and run.end <= rid:
            close_until(run.end)
            run = next(run_iter, None)
            cursor = run.start if run else 0
        if run is None or rid < run.start:
            continue
        close_until(rid)
        cursor = rid + 1
        expected = expected_outcome(run.outcome, rid, primary_has)
        ours = not any(p and got != want for p, got, want in zip(present, row[1:4], row_content(rid), strict=True))
        if expected is False:
            if ours:  # a write that failed (or never committed on the primary) is here anyway
                unexpected.append(rid)
        elif content and not ours:
            altered.append(rid)
    while run is not None:
        close_until(run.end)
        run = next(run_iter, None)
        cursor = run.start if run else 0
    diff.add("missing", missing)
    diff.add("unexpected", unexpected)
    diff.add("altered", altered)
    return diff


def chunks(runs: Iterable[Run], size: int = CHUNK) -> Iterator[list[Run]]:
    """Runs cut into groups, each within one aligned block of ids ``[k*size, (k+1)*size)`` (a long run is
    split): aligned groups let the checker answer a group's row count from its own chunk counts."""
    group: list[Run] = []
    block: int | None = None
    for r in runs:
        start = r.start
        while start < r.end:
            b = start // size
            if group and b != block:
                yield group
                group = []
            block = b
            end = min(r.end, (b + 1) * size)
            group.append(Run(start, end, r.outcome))
            start = end
    if group:
        yield group


CONTENT = (("name", "CONCAT('some-event-', id)"), ("counter", "id"), ("description", "CONCAT('some-descr-', id)"))


def _summary_sql(table: str, columns: list[str], content: bool = True) -> str:
    t = quote_ident(validate_identifier(table, "table name"))
    good = " AND ".join(f"{quote_ident(c)} <=> {expr}" for c, expr in CONTENT if c in columns and content) or "1"
    return f"SELECT COUNT(*), COALESCE(SUM({good}), 0) FROM {t} WHERE id >= %s AND id < %s"


def _rows_sql(table: str, columns: list[str]) -> str:
    t = quote_ident(validate_identifier(table, "table name"))
    cols = ", ".join(quote_ident(c) if c in columns else "NULL" for c in ("id", "name", "counter", "description"))
    return f"SELECT {cols} FROM {t} WHERE id >= %s AND id < %s ORDER BY id"


def verify_node(conn: Any, path: Path, table: str = "events", *, primary_unknown: set[int] | None = None,
                until: int | None = None, columns: list[str] | None = None, workers: int = 1,
                content: bool = True, known_count: Callable[[int, int], int | None] | None = None) -> LedgerDiff:
    """Verify one node against the ledger. ``conn`` is a PyMySQL connection with the table's database
    selected, or a callable returning a new one; with a callable, ``workers`` connections verify chunks in
    parallel (the server does the scanning, so this scales with the server's cores).

    Only ids below ``until`` (the ledger's end when the check started) are judged. ``primary_unknown``:
    the unknown-outcome ids the primary holds. ``columns``: the node's columns (one it lacks is not
    compared; the schema diff reports it). ``content=False``: check which ids exist, not what they hold;
    then ``known_count(lo, hi)`` may answer the node's row count of ids [lo, hi) without a query (the
    checker's chunk counts), or None.
    """
    columns = columns or ["id", "name", "counter", "description"]
    present = tuple(c in columns for c, _ in CONTENT)
    summary_sql, rows_sql = _summary_sql(table, columns, content), _rows_sql(table, columns)
    runs = (r for r in read_runs(path) if until is None or r.start < until)
    groups = chunks(clip_runs(runs, until))

    def one(c: Any, group: list[Run]) -> LedgerDiff | None:
        lo, hi = group[0].start, group[-1].end
        expected_present = sum(len(r) for r in group if r.outcome == OK)
        simple = all(r.outcome == OK for r in group) and all(a.end == b.start for a, b in
                                                               zip(group, group[1:], strict=False))
        if simple and not content and known_count is not None and known_count(lo, hi) == expected_present:
            return None
        with c.cursor() as cur:
            if simple:
                cur.execute(summary_sql, (lo, hi))
                count, good = cur.fetchone()
                if int(count) == expected_present and int(good) == expected_present:
                    return None
            cur.execute(rows_sql, (lo, hi))
            rows = cur.fetchall()
        return diff_rows(group, rows, primary_unknown, present, content)

    total = LedgerDiff()
    if not callable(conn) or workers <= 1:
        own = conn() if callable(conn) else None
        try:
            for group in groups:
                d = one(own or conn, group)
                if d is not None:
                    total.merge(d)
        finally:
            if own is not None:
                own.close()
        return total
    conns = [conn() for _ in range(workers)]
    free: queue.Queue[Any] = queue.Queue()
    for c in conns:
        free.put(c)

    def task(group: list[Run]) -> LedgerDiff | None:
        c = free.get()
        try:
            return one(c, group)
        finally:
            free.put(c)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: collections.deque[Future[LedgerDiff | None]] = collections.deque()
            for group in groups:  # bounded look-ahead keeps memory flat on any ledger size
                pending.append(pool.submit(task, group))
                if len(pending) >= workers * 4:
                    d = pending.popleft().result()
                    if d is not None:
                        total.merge(d)
            while pending:
                d = pending.popleft().result()
                if d is not None:
                    total.merge(d)
    finally:
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
    return total


def clip_runs(runs: Iterable[Run], until: int | None) -> Iterator[Run]:
    """The runs cut at ``until`` (exclusive): what the ledger held when a check started."""
    for r in runs:
        if until is not None and r.end > until:
            if r.start < until:
                yield Run(r.start, until, r.outcome)
            continue
        yield r


def unknown_ids(path: Path, until: int | None = None) -> list[tuple[int, int]]:
    """The (start, end) ranges of unknown outcome, for resolving them against the primary."""
    return [(r.start, r.end) for r in clip_runs(read_runs(path), until) if r.outcome == UNKNOWN]



def last_end(path: Path) -> int:
    """The end of the ledger's last run (0 for an empty or absent ledger): new feeds start above it."""
    if not path.exists():
        return 0
    size = path.stat().st_size // RECORD * RECORD
    if size == 0:
        return 0
    with open(path, "rb") as fh:
        fh.seek(size - RECORD)
        arr = array("q")
        arr.frombytes(fh.read(RECORD))
    return int(arr[1])
