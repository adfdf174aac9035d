"""A run's timeline: per-node samples (row count, lag, replication threads) and events, with timestamps.

A ``Sampler`` runs one small thread per node that records a ``Sample`` at least every 250 ms while a
scenario runs; everything else (faults, heals, phases, errors) is an ``Event``. Times are seconds since
the timeline started (monotonic clock), plus the wall-clock start, so the whole thing serializes to JSON
and can be turned into plots by ``report.py`` without any server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from . import db, replication
from .config import quote_ident, validate_identifier
from .engines.base import PAUSED, RUNNING, STOPPED
from .errors import ReplabError

if TYPE_CHECKING:
    from .cluster import Cluster

EVENT_KINDS = ("phase_start", "phase_end", "fault", "heal", "error", "recovered", "action", "note")
DEFAULT_INTERVAL = 0.2


@dataclass
class Sample:
    """What one node looked like at time ``t`` (seconds since the timeline started)."""

    t: float
    node: str
    state: str  # running | stopped | paused | unreachable
    rows: int | None = None
    lag_ms: int | None = None
    io_running: bool | None = None
    sql_running: bool | None = None
    last_errno: int | None = None
    sql_errno: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    """Something that happened at time ``t``: a fault, a heal, a phase boundary, an error seen."""

    t: float
    kind: str
    text: str
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Window:
    """A span during which a fault was in force on a node (``end`` None: never healed)."""

    node: str | None
    start: float
    end: float | None
    text: str


class Timeline:
    """Samples and events of one run; thread-safe to append to from the sampler and the scenario."""

    def __init__(self, started_at: float | None = None) -> None:
        self.started_at = started_at if started_at is not None else time.time()
        self._t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.interval: float | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the timeline started."""
        return round(time.monotonic() - self._t0, 3)

    def add_sample(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def event(self, kind: str, text: str, node: str | None = None, **data: Any) -> Event:
        """Record an event now; ``kind`` is one of EVENT_KINDS."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        ev = Event(self.now(), kind, text, node, dict(data))
        with self._lock:
            self.events.append(ev)
        return ev

    # --- views ----------------------------------------------------------------------------------
    def nodes(self) -> list[str]:
        return sorted({s.node for s in self.samples})  # stable order (and plot colours) across runs

    def series(self, node: str, attr: str) -> tuple[list[float], list[Any]]:
        """(times, values) of one sample attribute for one node, in time order."""
        pts = sorted((s.t, getattr(s, attr)) for s in self.samples if s.node == node)
        return [p[0] for p in pts], [p[1] for p in pts]

    def fault_windows(self) -> list[Window]:
        """Fault events paired with the next heal on the same node (a heal without node heals all)."""
        open_: list[Window] = []
        done: list[Window] = []
        for ev in sorted(self.events, key=lambda e: e.t):
            if ev.kind == "fault":
                open_.append(Window(ev.node, ev.t, None, ev.text))
            elif ev.kind == "heal":
                for w in [w for w in open_ if ev.node is None or w.node == ev.node]:
                    w.end = ev.t
                    open_.remove(w)
                    done.append(w)
        return sorted(done + open_, key=lambda w: w.start)

    def phases(self) -> list[tuple[str, float, float | None]]:
        """(name, start, end) of every phase, from phase_start/phase_end events."""
        out: list[tuple[str, float, float | None]] = []
        for ev in sorted(self.events, key=lambda e: e.t):
            if ev.kind == "phase_start":
                out.append((ev.text, ev.t, None))
            elif ev.kind == "phase_end" and out and out[-1][0] == ev.text:
                out[-1] = (ev.text, out[-1][1], ev.t)
        return out

    def peak_lag(self, node: str, start: float = 0.0, end: float | None = None) -> tuple[int | None, float | None]:
        """(peak lag in ms, time of the peak) of ``node`` within [start, end]."""
        best: tuple[int | None, float | None] = (None, None)
        for s in self.samples:
            if s.node == node and s.lag_ms is not None and s.t >= start and (end is None or s.t <= end):
                if best[0] is None or s.lag_ms > best[0]:
                    best = (s.lag_ms, s.t)
        return best

    def last_sample(self, node: str) -> Sample | None:
        mine = [s for s in self.samples if s.node == node]
        return max(mine, key=lambda s: s.t) if mine else None

    # --- serialization ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "started_at": self.started_at,
                "interval_s": self.interval,
                "samples": [s.to_dict() for s in sorted(self.samples, key=lambda s: (s.t, s.node))],
                "events": [e.to_dict() for e in sorted(self.events, key=lambda e: e.t)],
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        tl = cls(started_at=float(data.get("started_at") or 0.0))
        tl.interval = data.get("interval_s")
        tl.samples = [Sample(**s) for s in data.get("samples", [])]
        tl.events = [Event(**e) for e in data.get("events", [])]
        return tl


class Sampler:
    """Background sampling of every node of a cluster onto a timeline (one daemon thread per node).

    Row count is ``COUNT(*)`` of the watched table (a primary-key scan: about a millisecond for the few
    thousand rows a scenario writes); lag comes from the heartbeat row, falling back to
    Seconds_Behind_Master. A stopped or paused node is recorded without SQL (a paused server would
    hang the query). Replication errors and thread changes are recorded as events as they appear.
    """

    def __init__(self, cluster: Cluster, timeline: Timeline, interval: float = DEFAULT_INTERVAL,
                 table: str = "events") -> None:
        if not 0.01 <= interval <= 0.25:
            raise ValueError("sampling interval must be between 0.01 and 0.25 s")
        self.cluster = cluster
        self.timeline = timeline
        self.interval = interval
        self.table = f"{quote_ident(cluster.database)}.{quote_ident(validate_identifier(table, 'table'))}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._primary_hb: tuple[Any, Any] | None = None

    def start(self) -> Sampler:
        self.timeline.interval = self.interval
        for node in self.cluster.nodes:
            t = threading.Thread(target=self._loop, args=(node.name,), name=f"sampler-{node.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self, name: str) -> None:
        conn: pymysql.connections.Connection | None = None
        prev: Sample | None = None
        while not self._stop.is_set():
            t_next = time.monotonic() + self.interval
            sample, conn = self._sample(name, conn)
            self.timeline.add_sample(sample)
            self._note_changes(prev, sample)
            prev = sample
            self._stop.wait(max(0.0, t_next - time.monotonic()))
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _sample(self, name: str, conn: pymysql.connections.Connection | None
                ) -> tuple[Sample, pymysql.connections.Connection | None]:
        node = self.cluster.node(name)
        t = self.timeline.now()
        state = self.cluster.engine.state(node)
        if state in (STOPPED, PAUSED):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            return Sample(t, name, state), None
        try:
            if conn is None:
                conn = self.cluster.connect(name, timeout=1, read_timeout=1.0)
            sample = Sample(t, name, RUNNING)
            sample.rows = _int_or_none(db.scalar(conn, f"SELECT COUNT(*) FROM {self.table}"))
            hb = replication.heartbeat(conn)
            if node.role == "primary":
                self._primary_hb = hb
            else:
                st = replication.replica_status(conn, self.cluster.flavor)
                sample.io_running = st.io_running if st else False
                sample.sql_running = st.sql_running if st else False
                sample.last_errno = st.last_errno if st else None
                sample.sql_errno = st.last_sql_errno if st else None
                sample.lag_ms = replication.lag_ms(self._primary_hb, hb, st)
            return sample, conn
        except (pymysql.MySQLError, ReplabError, OSError):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            return Sample(t, name, "unreachable"), None

    def _note_changes(self, prev: Sample | None, cur: Sample) -> None:
        if prev is None:
            return
        if cur.last_errno and cur.last_errno != (prev.last_errno or 0):
            error = self._last_error(cur.node)
            thread = "SQL" if cur.sql_errno else "IO"
            self.timeline.event("error", f"{thread} thread error {cur.last_errno}: {error}", cur.node,
                                errno=cur.last_errno, thread=thread.lower())
        elif prev.last_errno and not cur.last_errno and cur.state == RUNNING:
            self.timeline.event("recovered", "replication error cleared", cur.node)
        if prev.state != cur.state:
            self.timeline.event("note", f"state {prev.state} -> {cur.state}", cur.node)

    def _last_error(self, name: str) -> str:
        with contextlib.suppress(Exception):
            with self.cluster.connect(name, timeout=1, read_timeout=1.0) as conn:
                st = replication.replica_status(conn, self.cluster.flavor)
                if st:
                    return st.last_error
        return "(message unavailable)"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
