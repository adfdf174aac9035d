"""A run's history: per-node samples (state, rows, GTID transactions, lag, replication threads) and events.

One ``Sampler`` feeds it, for the scenario runner and the live view of ``replab feed`` alike: one thread
per node, each with its own connection and short timeouts, so a node that stops answering never stalls the
others (or the writes). A sample costs the same on an empty table and on a 10M-row one: the GTID position
is one variable, and rows are counted incrementally by primary key (see ``RowCounter``); exact counts are
the checker's job. Everything else (faults, heals, phases, errors) is an ``Event``. Times are seconds since
the timeline started (monotonic clock), plus the wall-clock start, so the whole thing serializes to JSON
and is rendered by ``report.py`` without any server.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import galera, group, replication
from ..cluster import proxy as proxy_view
from ..core.config import quote_ident, validate_identifier
from ..core.errors import ReplabError
from ..engines.base import PAUSED, RUNNING, STOPPED, UNREACHABLE
from ..faults import nemesis
from ..servers import db

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

EVENT_KINDS = ("phase_start", "phase_end", "fault", "heal", "error", "recovered", "action", "note")
DEFAULT_INTERVAL = 0.2
DEFAULT_TIMEOUT = 0.8  # per query, per node: a silent node costs its own thread this much, nobody else

MEMBER_HEALTHY = ("ONLINE", "Synced")  # a group member / Galera node that serves: the running lane

# lanes: what a DBA reads off a node at a glance (the seed's own word OUT for a node that is down)
LANE_RUNNING, LANE_OUT, LANE_PAUSED, LANE_SILENT, LANE_CUT = "running", "OUT", "paused", "not answering", "cut off"
LANE_DEMOTED = "demoted"  # a former primary after a failover: running, out of replication


@dataclass
class Sample:
    """What one node looked like at time ``t`` (seconds since the timeline started); ``took`` is how long
    the sample took (its answers lie between ``t`` and ``t + took``)."""

    t: float
    node: str
    state: str  # running | stopped | paused | unreachable
    rows: int | None = None
    lag_ms: int | None = None
    io_running: bool | None = None
    sql_running: bool | None = None
    last_errno: int | None = None
    sql_errno: int | None = None
    tx: int | None = None  # transactions in the node's executed GTID set
    took: float = 0.0
    role: str | None = None  # primary | replica | demoted when sampled (None: a report older than roles)
    cut: bool | None = None  # a replica whose link the engine has cut (partition); None: not known
    counted: float | None = None  # when its GTID position and count had been read (``t`` <= it <= ``done``)
    counting: bool = False  # rows unknown only because the table's one exact count is still running
    # a Group Replication member's own state (ONLINE, RECOVERING, UNREACHABLE, ERROR, OFFLINE) and role
    # (PRIMARY, SECONDARY); a Galera node's local state (Synced, Donor/Desynced, Joiner, ...) or
    # "non-Primary" when its component has no quorum. None on asynchronous shapes.
    member: str | None = None
    member_role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def done(self) -> float:
        return self.t + self.took


@dataclass
class ProxySample:
    """How the proxy routed to one backend node at time ``t``: HAProxy's status of the node in the write and
    in the read backend (``UP``, ``DOWN``, ``MAINT``, ``DRAIN``, ``NOLB``; None when the proxy did not say),
    the health agent's reason for each, and the proxy's own state (running, stopped, paused, unreachable)."""

    t: float
    node: str
    proxy: str = RUNNING
    write: str | None = None
    read: str | None = None
    why_write: str = ""
    why_read: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxySample:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ReadRun:
    """One run of read sessions (``feed --reads`` / a scenario's reads step): where they read, when, and
    the violations counted, per node (``nodes``: ``{node: {reads, read_your_writes, monotonic, first, last}}``,
    ``first``/``last`` the times of its first and last read)."""

    label: str
    read_from: str
    causal: bool
    start: float
    end: float
    reads: int
    read_your_writes: int
    monotonic: int
    errors: int = 0
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReadMark:
    """One read that violated read-your-writes (the session's own acknowledged row missing: a stale read,
    ``staleness_ms`` until it was visible, None if never within the wait) or monotonic reads (an older
    state than the session's previous read), at time ``t`` on ``node``, in read run ``run``."""

    t: float
    node: str
    kind: str  # read-your-writes | monotonic
    run: str
    staleness_ms: float | None = None

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


@dataclass
class Segment:
    """A stretch of one node's state lane: ``lane`` (running, OUT, paused, ...) from ``start`` to ``end``."""

    node: str
    start: float
    end: float
    lane: str
    errno: int | None = None
    why: str = ""  # a proxy lane: the health agent's reason

    @property
    def label(self) -> str:
        return f"{self.lane} {self.errno}" if self.errno else self.lane


@dataclass
class CatchUp:
    """A replica back from an outage: how far behind it came back and how long it took to catch up."""

    node: str
    out_from: float
    back_at: float
    missed_tx: int | None
    caught_up_at: float | None
    exact: bool = True  # False: at least ``missed_tx`` (it may have applied some before it was measured)
    measured_s: float | None = None  # the catch-up ``start`` measured (the figure it printed)

    @property
    def outage_s(self) -> float:
        return round(self.back_at - self.out_from, 2)

    @property
    def seconds(self) -> float | None:
        if self.measured_s is not None:
            return round(self.measured_s, 2)
        return None if self.caught_up_at is None else round(self.caught_up_at - self.back_at, 2)

    @property
    def rate(self) -> float | None:
        s = self.seconds
        if not self.missed_tx or not s:
            return None
        return self.missed_tx / s


def gtid_transactions(gtid: str | None) -> int | None:
    """How many transactions a GTID position stands for: MariaDB ``d-s-n`` per domain (n each), MySQL
    ``uuid:1-5:7`` (interval lengths). Kept in one place until replab/gtid.py's GtidSet replaces it."""
    if gtid is None:
        return None
    total = 0
    for part in gtid.replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            for rng in part.split(":")[1:]:
                lo, _, hi = rng.partition("-")
                if lo.isdigit():
                    total += (int(hi) if hi.isdigit() else int(lo)) - int(lo) + 1
        else:
            bits = part.split("-")
            if len(bits) == 3 and bits[2].isdigit():
                total += int(bits[2])
    return total


def lane_of(sample: Sample, cut: bool = False) -> tuple[str, int | None]:
    """The lane a sample puts its node in, and the error number for a stopped replication thread."""
    if sample.state == STOPPED:
        return LANE_OUT, None
    if sample.state == PAUSED:
        return LANE_PAUSED, None
    if sample.state != RUNNING:
        return LANE_SILENT, None
    if sample.member and sample.member not in MEMBER_HEALTHY:
        return sample.member, None  # a member not serving (RECOVERING, UNREACHABLE, non-Primary, Joiner...)
    if sample.role == "demoted":
        return LANE_DEMOTED, None
    if sample.sql_running is False and sample.sql_errno:
        return "SQL stopped", sample.sql_errno
    if cut:
        return LANE_CUT, None
    if sample.io_running is False and sample.last_errno:
        return "IO stopped", sample.last_errno
    if sample.sql_running is False or (sample.io_running is False and sample.sql_running is not None):
        return "replication stopped", None
    return LANE_RUNNING, None


# the proxy's view of a backend node
PROXY_WRITE, PROXY_READ, PROXY_BOTH = "write pool", "read pool", "write+read pools"
PROXY_DOWN, PROXY_DRAINED = "down", "drained"
DRAINED_STATUSES = ("MAINT", "DRAIN", "NOLB")


def proxy_lane_of(ps: ProxySample) -> str:
    """The lane a proxy sample puts its backend node in: in the write pool, in the read pool, down (the
    checks keep it out of both) or drained (maintenance or drain: out by an operator's hand); ``proxy
    stopped``/``paused``/``unreachable`` when the proxy itself does not route."""
    if ps.proxy != RUNNING:
        return f"proxy {ps.proxy}"
    if ps.write == "UP" and ps.read == "UP":
        return PROXY_BOTH
    if ps.write == "UP":
        return PROXY_WRITE
    if ps.read == "UP":
        return PROXY_READ
    if ps.write in DRAINED_STATUSES or ps.read in DRAINED_STATUSES:
        return PROXY_DRAINED
    return PROXY_DOWN


def rate_of(samples: list[Sample], window: float = 2.0) -> float | None:
    """Rows per second over the last ``window`` seconds of one node's samples (in time order), counted only
    since its lane last changed: a replica cut off, stopped on an error or back from an outage shows what
    it applies in its new state, not an average that still holds the rows it applied before (a cut-off
    replica showed 180, 149, 121 ... rows/s for two seconds while its count stood still). None once the
    latest sample has no count (down, paused, not answering) or before two samples of the new lane."""
    if not samples or samples[-1].rows is None:
        return None
    last = samples[-1]
    lane = lane_of(last, cut=bool(last.cut))
    since = 0
    for i in range(len(samples) - 1, -1, -1):
        if lane_of(samples[i], cut=bool(samples[i].cut)) != lane:
            since = i + 1
            break
    mine = [s for s in samples[since:] if s.rows is not None and s.t >= last.t - window]
    if len(mine) < 2:
        return None
    first = mine[0]
    dt = last.t - first.t
    return None if dt <= 0 or first.rows is None or last.rows is None else (last.rows - first.rows) / dt


def tick_of(s: Sample, interval: float) -> int:
    """The sampling tick a sample belongs to: every node's thread samples at the same multiples of the
    interval (see ``Sampler``)."""
    return round(s.t / interval)


def frame_of(recent: dict[str, list[Sample]], primary: str, interval: float | None) -> dict[str, Sample | None]:
    """One moment of every node, for the live view and the phase tables: the newest tick that the primary
    and every replica keeping up with the sampling have sampled, each node's sample of that tick. A
    replica's sample counts for a tick only if its count was read before the primary's sample began (the
    sampler has the primary wait for that), so a replica is never shown ahead. A node whose samples lag (it does not
    answer) shows its latest sample that ended before the primary's began.

    ``recent``: each node's samples in time order. Without an interval (a report older than ticks), the
    latest primary sample and, for a replica, its latest that ended before that one began."""
    prim = recent.get(primary) or []
    out: dict[str, Sample | None] = {n: (mine[-1] if mine else None) for n, mine in recent.items()}
    if not prim:
        return out
    if not interval:
        p = prim[-1]
        for name, mine in recent.items():
            if name != primary and mine and p.rows is not None:
                out[name] = next((s for s in reversed(mine) if s.done <= p.t), mine[0])
        return out
    by_tick = {tick_of(s, interval): s for s in prim}
    newest = tick_of(prim[-1], interval)
    paired: dict[str, dict[int, Sample]] = {}
    for name, mine in recent.items():
        if name != primary:
            paired[name] = {tick_of(s, interval): s for s in mine[-8:] if tick_of(s, interval) in by_tick
                            and _read_by(s) <= by_tick[tick_of(s, interval)].t}
    keeping_up = [max(ticks) for ticks in paired.values() if ticks and max(ticks) >= newest - 2]
    shown = min(keeping_up, default=newest)
    p = by_tick[shown]
    out[primary] = p
    for name, ticks in paired.items():
        mine = recent[name]
        if shown in ticks:
            out[name] = ticks[shown]
        elif mine:
            out[name] = next((s for s in reversed(mine) if s.done <= p.t), mine[0])
    return out


def _read_by(s: Sample) -> float:
    return s.counted if s.counted is not None else s.done


def rows_behind_of(replica: Sample | None, primary: Sample | None) -> int | None:
    """Rows ``replica`` lacks of what ``primary`` held, from two samples of one frame: 0 when both are at the
    same GTID position, else the difference of their counts (never below 0); None when either is unknown."""
    if replica is None or primary is None or replica.rows is None or primary.rows is None:
        return None
    if replica.tx is not None and replica.tx == primary.tx:
        return 0
    return max(0, primary.rows - replica.rows)


class Timeline:
    """Samples and events of one run; thread-safe to append to from the sampler and the scenario."""

    def __init__(self, started_at: float | None = None) -> None:
        self.started_at = started_at if started_at is not None else time.time()
        self._t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.proxy_samples: list[ProxySample] = []
        self.read_runs: list[ReadRun] = []
        self.read_marks: list[ReadMark] = []
        self.interval: float | None = None
        self.primary: str | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the timeline started."""
        return round(time.monotonic() - self._t0, 3)

    def add_sample(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def add_proxy_sample(self, sample: ProxySample) -> None:
        with self._lock:
            self.proxy_samples.append(sample)

    def at(self, monotonic: float) -> float:
        """A ``time.monotonic()`` reading on this timeline's clock."""
        return round(monotonic - self._t0, 3)

    def add_reads(self, label: str, result: Any) -> ReadRun:
        """Record a finished run of read sessions (a ``workload.reads.ReadResult``): its span, counts per node
        and every violation at the time its read began."""
        end = self.at(result.stopped) if result.stopped is not None else self.now()
        start = self.at(result.started) if result.started is not None else end
        nodes = {}
        for name, n in sorted(result.per_node.items()):
            first, last = result.spans.get(name, [None, None])
            nodes[name] = {**n.to_dict(), "first": None if first is None else self.at(first),
                           "last": None if last is None else self.at(last)}
        run = ReadRun(label, result.read_from, result.causal, start, end, result.reads, result.ryw,
                      result.monotonic, result.errors, nodes)
        marks = [ReadMark(self.at(when), node, kind, label, None if ms is None else round(ms, 1))
                 for when, node, kind, ms in sorted(result.marks)]
        with self._lock:
            self.read_runs.append(run)
            self.read_marks.extend(marks)
        return run

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
        """Node names, the primary first, then by name (stable order and colours across runs)."""
        names = sorted({s.node for s in self.samples})
        if self.primary in names:
            names.remove(self.primary)
            names.insert(0, self.primary)
        return names

    def of(self, node: str) -> list[Sample]:
        """One node's samples in time order."""
        return sorted((s for s in self.samples if s.node == node), key=lambda s: s.t)

    def series(self, node: str, attr: str) -> tuple[list[float], list[Any]]:
        """(times, values) of one sample attribute for one node, in time order."""
        mine = self.of(node)
        return [s.t for s in mine], [getattr(s, attr) for s in mine]

    @property
    def end(self) -> float:
        return max([s.done for s in self.samples] + [e.t for e in self.events] + [0.0])

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

    # --- who was the primary when -------------------------------------------------------------------
    def primary_changes(self) -> list[tuple[float, str]]:
        """(since, node) for each primary in turn, from the roles the samples recorded: the first primary
        since 0, then, once it is sampled as something else (demoted, a replica), the node sampled as
        primary since then (a switchover or failover). A shape with several writers keeps its first; a
        report older than roles on samples has one primary all along."""
        ordered = sorted(self.samples, key=lambda s: s.t)
        first = next((s.node for s in ordered if s.role == "primary"), None)
        out = [(0.0, self.primary or first or "")]
        role: dict[str, str | None] = {}
        since: dict[str, float] = {}
        for s in ordered:
            if s.role == "primary" and role.get(s.node) != "primary":
                since[s.node] = s.t
            role[s.node] = s.role
            current = out[-1][1]
            if role.get(current) in ("primary", None):
                continue
            heirs = [n for n, r in role.items() if r == "primary" and n != current]
            if heirs:
                heir = min(heirs, key=lambda n: since[n])
                out.append((since[heir], heir))
        return out

    def primary_at(self, t: float) -> str | None:
        """The primary at time ``t`` (see ``primary_changes``)."""
        changes = self.primary_changes()
        i = bisect.bisect_right([c[0] for c in changes], t)
        return changes[max(0, i - 1)][1] or None

    @property
    def final_primary(self) -> str | None:
        return self.primary_changes()[-1][1] or None

    def _cut_windows(self, node: str) -> list[tuple[float, float, str | None]]:
        return [(w.start, w.end if w.end is not None else self.end, w.node) for w in self.fault_windows()
                if w.text.startswith("partition")]

    def _is_cut(self, s: Sample, windows: list[tuple[float, float, str | None]]) -> bool:
        """Cut off: what the engine said when the sample was taken (a replica's ``cut``); otherwise a
        partition window on the node itself or, for a replica, on the primary of that moment."""
        if s.cut is not None:
            return s.cut
        primary = self.primary_at(s.t)
        return any(a <= s.t <= b and (w == s.node or (w == primary and s.role != "demoted"))
                   for a, b, w in windows)

    def segments(self, node: str) -> list[Segment]:
        """The node's state lane: consecutive samples in the same lane merged into one segment."""
        windows = self._cut_windows(node)
        out: list[Segment] = []
        mine = self.of(node)
        for i, s in enumerate(mine):
            lane, errno = lane_of(s, self._is_cut(s, windows))
            end = mine[i + 1].t if i + 1 < len(mine) else s.done
            if out and out[-1].lane == lane and out[-1].errno == errno:
                out[-1].end = end
            else:
                out.append(Segment(node, s.t, end, lane, errno))
        return out

    def proxy_nodes(self) -> list[str]:
        """The backend nodes the proxy was sampled about, in the order of ``nodes()``."""
        seen = {p.node for p in self.proxy_samples}
        return [n for n in self.nodes() if n in seen] + sorted(seen - set(self.nodes()))

    def proxy_segments(self, node: str) -> list[Segment]:
        """How the proxy routed to ``node`` over the run (see ``proxy_lane_of``), consecutive samples in the
        same lane merged; ``why`` is the agent's reason at the segment's first sample."""
        mine = sorted((p for p in self.proxy_samples if p.node == node), key=lambda p: p.t)
        out: list[Segment] = []
        for i, p in enumerate(mine):
            lane = proxy_lane_of(p)
            end = mine[i + 1].t if i + 1 < len(mine) else p.t + (self.interval or 0.2)
            if out and out[-1].lane == lane:
                out[-1].end = end
            else:
                why = p.why_write if lane == PROXY_WRITE else p.why_read if lane == PROXY_READ else \
                    "; ".join(w for w in (p.why_write, p.why_read) if w)
                out.append(Segment(node, p.t, end, lane, None, why))
        return out

    def read_nodes(self) -> list[str]:
        """The nodes that answered reads of a read run, in the order of ``nodes()``."""
        seen = {n for r in self.read_runs for n in r.nodes}
        return [n for n in self.nodes() if n in seen] + sorted(seen - set(self.nodes()))

    def first_errors(self) -> list[Event]:
        """The first replication error event of each node (and of each distinct error number)."""
        seen: set[tuple[str | None, Any]] = set()
        out = []
        for ev in sorted(self.events, key=lambda e: e.t):
            key = (ev.node, ev.data.get("errno"))
            if ev.kind == "error" and key not in seen:
                seen.add(key)
                out.append(ev)
        return out

    def primary_rows_at(self, t: float) -> float | None:
        """The row count of the primary of that moment at time ``t``, interpolated between its samples
        (None before its first)."""
        pts = [(s.t + s.took / 2, s.rows) for s in self.of(self.primary_at(t) or "") if s.rows is not None]
        if not pts or t < pts[0][0]:
            return None
        i = bisect.bisect_right([p[0] for p in pts], t)
        if i >= len(pts):
            return float(pts[-1][1])
        (t0, r0), (t1, r1) = pts[i - 1], pts[i]
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0) if t1 > t0 else float(r1)

    def rows_behind(self, node: str) -> tuple[list[float], list[int | None]]:
        """Rows a replica holds fewer than the primary of that moment, per sample (the primary interpolated
        at the middle of the replica's sample, so skew between the two threads cannot make a replica look
        ahead); None while the node is the primary itself.

        While a node is down or paused its data cannot change: its last count is carried on."""
        ts: list[float] = []
        vals: list[int | None] = []
        last_rows: int | None = None
        for s in self.of(node):
            rows = s.rows if s.rows is not None else (last_rows if s.state in (STOPPED, PAUSED) else None)
            if s.rows is not None:
                last_rows = s.rows
            mid = s.t + s.took / 2
            p = None if self.primary_at(mid) == node else self.primary_rows_at(mid)
            ts.append(s.t)
            vals.append(None if rows is None or p is None else max(0, round(p) - rows))
        return ts, vals

    def catch_ups(self) -> list[CatchUp]:
        """Each replica outage (OUT, paused, not answering) and its catch-up once back. Where ``start``
        measured it (a ``catch_up`` event: from when its replication threads started until it had applied
        what the primary had then, transactions counted exactly), that; otherwise from the samples: the
        primary's GTID count when it came back minus the node's before it went, and when its count reached
        that. An outage that began while the node was the primary (or a demoted one) is no replica's."""
        out: list[CatchUp] = []
        for node in self.nodes():
            mine = self.of(node)
            measures = sorted((e for e in self.events if e.node == node and "catch_up" in e.data), key=lambda e: e.t)
            used: set[int] = set()
            last_tx: int | None = None
            down_from: float | None = None
            replica_then = False
            for i, s in enumerate(mine):
                if s.state != RUNNING or s.tx is None:
                    if down_from is None:
                        down_from = s.t
                        replica_then = s.role in ("replica", None) and self.primary_at(s.t) != node
                    continue
                if down_from is not None and replica_then:
                    measured = next((e for e in measures if e.t >= down_from and id(e) not in used), None)
                    if measured is not None:  # what ``start`` measured: from START SLAVE, exact
                        used.add(id(measured))
                        c = measured.data["catch_up"]
                        back = round(measured.t - float(c["seconds"]), 3)
                        out.append(CatchUp(node, down_from, back, int(c["transactions"]), measured.t,
                                           bool(c.get("exact", True)), float(c["seconds"])))
                        down_from = None
                        last_tx = s.tx
                        continue
                    prim = [p for p in self.of(self.primary_at(s.t) or "") if p.tx is not None]
                    target = next((p.tx for p in reversed(prim) if p.t <= s.t), None)
                    missed = None if target is None or last_tx is None else max(0, target - last_tx)
                    done = next((x.done for x in mine[i:] if x.tx is not None and target is not None
                                 and x.tx >= target), None)
                    out.append(CatchUp(node, down_from, s.t, missed, done))
                down_from = None
                last_tx = s.tx
        return out

    def peak_lag(self, node: str, start: float = 0.0, end: float | None = None) -> tuple[int | None, float | None]:
        """(peak lag in ms, time of the peak) of ``node`` within [start, end]."""
        best: tuple[int | None, float | None] = (None, None)
        for s in self.samples:
            if s.node == node and s.lag_ms is not None and s.t >= start and (end is None or s.t <= end):
                if best[0] is None or s.lag_ms > best[0]:
                    best = (s.lag_ms, s.t)
        return best

    def frame(self) -> dict[str, Sample]:
        """The latest moment every node was sampled at (see ``frame_of``), with the primary of now."""
        latest = {n: self.of(n) for n in self.nodes()}
        found = frame_of(latest, self.final_primary or "", self.interval)
        return {n: s for n, s in found.items() if s is not None}

    def last_sample(self, node: str) -> Sample | None:
        mine = [s for s in self.samples if s.node == node]
        return max(mine, key=lambda s: s.t) if mine else None

    # --- serialization ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "started_at": self.started_at,
                "interval_s": self.interval,
                "primary": self.primary,
                "samples": [s.to_dict() for s in sorted(self.samples, key=lambda s: (s.t, s.node))],
                "events": [e.to_dict() for e in sorted(self.events, key=lambda e: e.t)],
                "proxy_samples": [p.to_dict() for p in sorted(self.proxy_samples, key=lambda p: (p.t, p.node))],
                "read_runs": [r.to_dict() for r in sorted(self.read_runs, key=lambda r: r.start)],
                "read_marks": [m.to_dict() for m in sorted(self.read_marks, key=lambda m: (m.t, m.node))],
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        tl = cls(started_at=float(data.get("started_at") or 0.0))
        tl.interval = data.get("interval_s")
        tl.samples = [Sample.from_dict(s) for s in data.get("samples", [])]
        tl.events = [Event(**e) for e in data.get("events", [])]
        tl.proxy_samples = [ProxySample.from_dict(p) for p in data.get("proxy_samples", [])]
        tl.read_runs = [ReadRun(**_known(ReadRun, r)) for r in data.get("read_runs", [])]
        tl.read_marks = [ReadMark(**_known(ReadMark, m)) for m in data.get("read_marks", [])]
        tl.primary = data.get("primary") or (tl.nodes()[0] if tl.samples else None)
        return tl


class BaseCount:
    """The exact number of rows with ``id <= mark``, counted once, off the sampling path, on its own thread and
    connection, as the sum of primary-key ranges (``id > lo AND id <= hi``), so that it costs the writes
    (almost) nothing however big the table is (on 2 cores, three full scans at once, one per node, cost a
    4-thread feed 7-10% of its rate on a 9M-row table; the paced ranges, no more than the noise):

    - a range is sized to take about ``CHUNK_S`` seconds (it starts at ``FIRST_SPAN`` ids and follows the
      time the last one took, as pt-table-checksum's chunk time does); a gap in the ids is jumped over;
    - after each range the counter sleeps, so counting uses at most ``SHARE`` of one core;
    - one range at a time in the whole process (``_TURN``): the nodes take turns instead of scanning their
      copies of the table at once on the same cores.

    Each range is an exact ``COUNT(*)``, and the rows below the mark do not change under a feed (it writes
    above the mark; deleting or updating old rows is not seen by the view, see ``RowCounter``), so the sum
    is exact. Until it is complete the rows are unknown (the view says "counting…"). A range is never sent
    again while it runs: one thread per count; should its connection break or time out (``RANGE_TIMEOUT``:
    the node was restarted or paused), the next attempt first ends that statement (``KILL QUERY``) and goes
    on from the last range counted."""

    CHUNK_S = 0.05  # what one range should take
    SHARE = 0.1  # of one core's time: after a range, sleep 9 times what it took
    FIRST_SPAN = 100_000
    MAX_SPAN = 5_000_000
    RANGE_TIMEOUT = 10.0  # the read timeout of the count's connection (a range takes CHUNK_S when it answers)
    _TURN = threading.Lock()

    def __init__(self, table: str, connect: Callable[[], Any]) -> None:
        self.table = table
        self.connect = connect
        self.mark: int | None = None
        self.rows: int | None = None
        self.ranges = 0  # ranges counted so far
        self._lo: int | None = None  # every row with id <= _lo is counted in _sum
        self._sum = 0
        self._span = self.FIRST_SPAN
        self._thread: threading.Thread | None = None
        self._server_id: int | None = None  # the connection id of a range that may still run
        self._cancelled = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, mark: int) -> None:
        if self.running or self.rows is not None or self._cancelled.is_set():
            return
        if self.mark != mark or self._lo is None:  # a new mark: count from the start
            self.mark, self._lo, self._sum = mark, None, 0
        self._thread = threading.Thread(target=self._run, name="sampler-count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = None
        try:
            conn = self.connect()
            with conn.cursor() as cur:
                if self._server_id is not None:  # an earlier range whose connection broke: end it first
                    with contextlib.suppress(pymysql.MySQLError):
                        cur.execute(f"KILL QUERY {int(self._server_id)}")
                    self._server_id = None
                assert self.mark is not None
                if self._lo is None:
                    cur.execute(f"SELECT MIN(id) FROM {self.table}")
                    first = (cur.fetchone() or (None,))[0]
                    self._lo = self.mark if first is None else min(self.mark, int(first) - 1)
                while not self._cancelled.is_set():
                    took = self._range(conn, cur)
                    if self._lo >= self.mark:
                        self.rows = self._sum
                        break
                    self._cancelled.wait(took * (1 / self.SHARE - 1))
        except (pymysql.MySQLError, ReplabError, OSError):
            pass  # retried at a later tick, from the last range counted
        finally:
            _close(conn)

    def _range(self, conn: Any, cur: Any) -> float:
        """Count the next range, in turn with every other count; the seconds it took on the server."""
        assert self.mark is not None and self._lo is not None
        while not self._TURN.acquire(timeout=0.5):
            if self._cancelled.is_set():
                return 0.0
        try:
            if self._cancelled.is_set():
                return 0.0
            hi = min(self.mark, self._lo + self._span)
            t0 = time.monotonic()
            self._server_id = conn.thread_id()
            cur.execute(f"SELECT COUNT(*) FROM {self.table} WHERE id > %s AND id <= %s", (self._lo, hi))
            n = int((cur.fetchone() or (0,))[0] or 0)
            if not n:  # a gap in the ids: go on from the next id there is
                cur.execute(f"SELECT MIN(id) FROM {self.table} WHERE id > %s", (hi,))
                low = (cur.fetchone() or (None,))[0]
                hi = self.mark if low is None else max(hi, min(self.mark, int(low) - 1))
            self._server_id = None
            took = time.monotonic() - t0
        finally:
            self._TURN.release()
        self._sum += n
        self._lo = hi
        self.ranges += 1
        # the next range should take about CHUNK_S: scale the span by what this one took (at most doubled)
        scale = 2.0 if took <= self.CHUNK_S / 2 else self.CHUNK_S / took
        self._span = max(1_000, min(self.MAX_SPAN, int(self._span * scale)))
        return took

    def cancel(self, connect: Callable[[], Any]) -> None:
        """Stop counting: no further range starts, and the one that runs is ended on the server."""
        self._cancelled.set()
        server_id = self._server_id
        if self.running and server_id is not None:
            with contextlib.suppress(Exception), connect() as conn, conn.cursor() as cur:
                cur.execute(f"KILL QUERY {int(server_id)}")


class RowCounter:
    """Counts a table's rows in time independent of its size.

    While the table is small (its id span is below ``exact_below``, a bound MIN/MAX read from the index
    gives at no cost), every sample is an exact ``COUNT(*)``. A big table is counted in two parts: the
    rows with ``id <= mark`` (``mark`` is the highest id of the first sample) by one ``BaseCount`` off the
    sampling path, started once ``settle`` seconds have passed (so a transaction that commits late is in
    it); and at every sample the rows above a settled watermark, a range read of the newest ids. Until
    the base count is known the rows are unknown (the view says "counting…"); the watermark moves up to
    the highest id seen at least ``settle`` seconds earlier while the node kept answering. Deleting or
    updating old rows is not seen here (``replab check`` counts exactly).
    """

    def __init__(self, table: str, exact_below: int = 50_000, settle: float = 5.0,
                 connect: Callable[[], Any] | None = None) -> None:
        self.table = table
        self.exact_below = exact_below
        self.settle = settle
        self.base = BaseCount(table, connect) if connect is not None else None
        self.settled: int | None = None  # rows with mark < id <= watermark (all rows while small)
        self.watermark: int | None = None
        self._mark_at = 0.0
        self._marks: deque[tuple[float, int]] = deque()

    @property
    def counting(self) -> bool:
        """Whether the rows are unknown only because the base count has not finished yet."""
        return self.base is not None and self.base.mark is not None and self.base.rows is None

    def gap(self) -> None:
        """The node stopped answering: ids seen so far may not be final; settle again from scratch."""
        self._marks.clear()

    def count(self, conn: Any, now: float) -> int | None:
        if self.watermark is None:  # small table (or no base counter): exact, as long as that is cheap
            lo, hi = _row(conn, f"SELECT MIN(id), MAX(id) FROM {self.table}")
            if self.base is None or hi is None or int(hi) - int(lo) < self.exact_below:
                return int(_row(conn, f"SELECT COUNT(*) FROM {self.table}")[0] or 0)
            hi = int(hi)
            self.watermark, self.settled, self._mark_at = hi, 0, now
            self.base.mark = hi
        new = self.watermark
        while self._marks and self._marks[0][0] <= now - self.settle:
            new = max(new, self._marks.popleft()[1])
        above, top, below_new = _row(
            conn, f"SELECT COUNT(*), MAX(id), COALESCE(SUM(id <= %s), 0) FROM {self.table} WHERE id > %s",
            (new, self.watermark))
        total = (self.settled or 0) + int(above or 0)
        self.settled = (self.settled or 0) + int(below_new or 0)
        self.watermark = new
        self._marks.append((now, int(top or new)))
        assert self.base is not None and self.base.mark is not None
        if self.base.rows is None:
            if now - self._mark_at >= self.settle:
                self.base.start(self.base.mark)
            return None
        return self.base.rows + total


def _member_reader(cluster: Any) -> Callable[[Any], tuple[str | None, str | None]] | None:
    """How a sample reads a node's own member state and role on a virtually synchronous shape (None: an
    asynchronous one)."""
    name = getattr(getattr(cluster, "topology", None), "name", "")
    if name.startswith("group"):
        def on_group(conn: Any) -> tuple[str | None, str | None]:
            rows = db.query(conn, group.MEMBERS_SQL + " WHERE MEMBER_ID = @@server_uuid")
            if not rows or not rows[0]["state"]:
                return group.OFFLINE, None
            return str(rows[0]["state"]), (str(rows[0]["role"]) if rows[0]["role"] else None)
        return on_group
    if name == "galera":
        def on_galera(conn: Any) -> tuple[str | None, str | None]:
            ws = galera.wsrep_status(conn)
            if ws.get("cluster_status") != "Primary":
                return "non-Primary", None
            return (str(ws.get("local_state_comment") or "") or None), None
        return on_galera
    return None


class Sampler:
    """Samples every node of a cluster onto a timeline: one daemon thread per node, its own connection,
    ``timeout`` seconds at most per query, a sample every ``interval`` seconds.

    A stopped or paused node is recorded without SQL (a paused server would hang the query); a node that
    does not answer within the timeout is recorded as unreachable ("not answering") and retried at the
    next tick. Replication errors and state changes are recorded as events as they appear. Every thread
    samples at the same moments (the multiples of ``interval``), the primary's just after the others', so
    ``frame()``, the live view, compares counts taken at about the same moment.
    """

    def __init__(self, cluster: Cluster, timeline: Timeline | None = None, interval: float = DEFAULT_INTERVAL,
                 table: str = "events", timeout: float = DEFAULT_TIMEOUT, exact_below: int = 50_000,
                 settle: float = 5.0) -> None:
        if not 0.01 <= interval <= 1.0:
            raise ValueError("sampling interval must be between 0.01 and 1 s")
        self.cluster = cluster
        self.timeline = timeline if timeline is not None else Timeline()
        self.timeline.primary = cluster.primary.name
        self.interval = interval
        self.timeout = timeout
        self._members = _member_reader(cluster)
        self.exact_below = exact_below
        self.settle = settle
        self.table = f"{quote_ident(cluster.database)}.{quote_ident(validate_identifier(table, 'table'))}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._primary_hb: tuple[Any, Any] | None = None
        self._recent: dict[str, deque[Sample]] = {n.name: deque(maxlen=64) for n in cluster.nodes}
        self._mu = threading.Lock()
        self._read: dict[str, int] = {}  # node -> the newest tick it has sampled
        self._ticked = threading.Condition()
        self._cut: tuple[float, set[str] | None] = (-1.0, None)  # (when asked, the engine's cut-off nodes)
        self._counters: dict[str, RowCounter] = {}

    def start(self) -> Sampler:
        self.timeline.interval = self.interval
        for node in self.cluster.nodes:
            t = threading.Thread(target=self._loop, args=(node.name,), name=f"sampler-{node.name}", daemon=True)
            t.start()
            self._threads.append(t)
        state = proxy_view.proxy_state(self.cluster)
        if state and not proxy_view.is_router(state):  # MySQL Router's static routes: no runtime view to sample
            t = threading.Thread(target=self._proxy_loop, name="sampler-proxy", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _proxy_loop(self) -> None:
        """The proxy's view of every backend node, each interval: HAProxy's status of the node in the write
        and the read backend (``show stat`` on its runtime API). A change of the write pool is noted."""
        writers: list[str] | None = None
        while not self._stop.is_set():
            t = self.timeline.now()
            try:
                st = proxy_view.status(self.cluster)
            except Exception:  # noqa: BLE001 - a missing sample, never a dead sampler
                st = None
            state = str(st.get("state") or UNREACHABLE) if st else UNREACHABLE
            by_node: dict[str, ProxySample] = {n.name: ProxySample(t, n.name, state) for n in self.cluster.nodes}
            for b in (st or {}).get("backends") or []:
                ps = by_node.setdefault(b["node"], ProxySample(t, b["node"], state))
                if b["pool"] == "write":
                    ps.write, ps.why_write = b["status"], b["why"]
                elif b["pool"] == "read":
                    ps.read, ps.why_read = b["status"], b["why"]
            for ps in by_node.values():
                self.timeline.add_proxy_sample(ps)
            now = sorted(n for n, ps in by_node.items() if ps.proxy == RUNNING and ps.write == "UP")
            if state == RUNNING and now != writers:
                if writers is not None:
                    self.timeline.event("note", f"proxy: write pool {', '.join(writers) or 'empty'} -> "
                                        f"{', '.join(now) or 'empty'}")
                writers = now
            self._stop.wait(self.interval - self.timeline.now() % self.interval)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 2)
        self._threads.clear()
        self.stop_counting()

    def stop_counting(self) -> None:
        """End the big tables' exact counts still running (before the final counts take their own)."""
        for name, counter in list(self._counters.items()):
            if counter.base is not None:
                counter.base.cancel(functools.partial(self.cluster.connect, name, timeout=1, read_timeout=2))

    def _count_connection(self, name: str) -> Any:
        # off the sampling path; a range takes BaseCount.CHUNK_S, so a longer silence is a node that does not answer
        return self.cluster.connect(name, timeout=2, read_timeout=BaseCount.RANGE_TIMEOUT)

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the live view -------------------------------------------------------------------------------
    def frame(self) -> dict[str, Sample | None]:
        """One moment of every node (see ``frame_of``): the samples of the newest tick they all have."""
        with self._mu:
            recent = {n: list(q) for n, q in self._recent.items()}
        return frame_of(recent, self.cluster.primary.name, self.interval)

    def wait_first(self, timeout: float = 1.0) -> bool:
        """Wait until every node has one sample (the live view's first frame); whether they all have."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._mu:
                if all(self._recent.values()):
                    return True
            time.sleep(0.01)
        return False

    def rate(self, node: str, window: float = 2.0) -> float | None:
        """Rows per second on ``node`` (``rate_of`` its recent samples)."""
        with self._mu:
            everything = list(self._recent[node])
        return rate_of(everything, window)

    # --- sampling ----------------------------------------------------------------------------------
    def _loop(self, name: str) -> None:
        conn: Any = None
        prev: Sample | None = None
        counter = RowCounter(self.table, exact_below=self.exact_below, settle=self.settle,
                             connect=lambda: self._count_connection(name))
        self._counters[name] = counter
        while not self._stop.is_set():
            tick = round(self.timeline.now() / self.interval)
            if name == self.cluster.primary.name:
                self._after_replicas(name, tick)
            sample, conn = self._sample(name, conn, counter, functools.partial(self._counted, name, tick))
            self._counted(name, tick)
            self.timeline.add_sample(sample)
            with self._mu:
                self._recent[name].append(sample)
            self._note_changes(prev, sample)
            prev = sample
            # every node's thread samples at the same moments: the multiples of the interval
            self._stop.wait(self.interval - self.timeline.now() % self.interval)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _counted(self, name: str, tick: int) -> None:
        """``name`` has read its position and count for ``tick`` (the primary may read its own now)."""
        with self._ticked:
            if self._read.get(name, -1) < tick:
                self._read[name] = tick
                self._ticked.notify_all()

    def _after_replicas(self, primary: str, tick: int) -> None:
        """The primary samples a tick once the other nodes have (at most a quarter interval later): a
        replica's count is then never taken after the primary's, so it never looks ahead, and both are
        taken at about the same moment, so a healthy replica does not look behind either."""
        others = [n.name for n in self.cluster.nodes if n.name != primary]
        with self._ticked:
            self._ticked.wait_for(lambda: self._stop.is_set() or all(self._read.get(o, -1) >= tick for o in others),
                                  timeout=min(0.05, self.interval / 4))

    def _cut_off(self) -> set[str] | None:
        """The nodes the engine has cut off now (asked at most every 0.5 s: for containers it is a docker
        call); None when the engine cannot say."""
        asked, cut = self._cut
        if time.monotonic() - asked < 0.5:
            return cut
        try:
            cut = set(nemesis.partitioned(self.cluster))  # the star's links, shapes' edges, group/galera members
        except Exception:  # noqa: BLE001 - a lane left to the fault windows, never a dead sampler
            cut = None
        self._cut = (time.monotonic(), cut)
        return cut

    def _sample(self, name: str, conn: Any, counter: RowCounter,
                counted: Callable[[], None] | None = None) -> tuple[Sample, Any]:
        node = self.cluster.node(name)
        t = self.timeline.now()
        role = node.role
        state = self.cluster.engine.state(node)
        if state in (STOPPED, PAUSED):
            counter.gap()
            _close(conn)
            return Sample(t, name, state, took=round(self.timeline.now() - t, 3), role=role), None
        try:
            if conn is None:
                conn = self.cluster.connect(name, timeout=self.timeout, read_timeout=self.timeout)
            sample = Sample(t, name, RUNNING, role=role)
            sample.tx = gtid_transactions(str(db.scalar(conn, self.cluster.flavor.executed_gtid()) or ""))
            with contextlib.suppress(pymysql.err.ProgrammingError, pymysql.err.OperationalError):
                sample.rows = counter.count(conn, t)  # a missing table (1146) leaves rows unknown
                sample.counting = sample.rows is None and counter.counting
            sample.counted = self.timeline.now()
            if counted is not None:
                counted()
            if conn.open is False:
                raise pymysql.err.OperationalError(2013, "lost connection")
            if self._members is not None:
                sample.member, sample.member_role = self._members(conn)
            hb = replication.heartbeat(conn)
            if role == "primary":
                self._primary_hb = hb
            else:
                cut = self._cut_off() if role == "replica" else None
                sample.cut = None if cut is None else name in cut
                st = replication.replica_status(conn, self.cluster.flavor)
                sample.io_running = st.io_running if st else False
                sample.sql_running = st.sql_running if st else False
                sample.last_errno = st.last_errno if st else None
                sample.sql_errno = st.last_sql_errno if st else None
                # before the primary's first sample there is no heartbeat to compare with: not known yet
                known = self._primary_hb is not None or hb is None
                sample.lag_ms = replication.lag_ms(self._primary_hb, hb, st) if known else None
            sample.took = round(self.timeline.now() - t, 3)
            return sample, conn
        except (pymysql.MySQLError, ReplabError, OSError):
            counter.gap()
            _close(conn)
            return Sample(t, name, UNREACHABLE, took=round(self.timeline.now() - t, 3), role=role), None

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
        if cur.member and prev.member and cur.member != prev.member:
            self.timeline.event("note", f"member state {prev.member} -> {cur.member}", cur.node)
        if cur.member_role == "PRIMARY" and prev.member_role not in (None, "PRIMARY"):
            self.timeline.event("action", f"election: {cur.node} is the group's primary", cur.node,
                                marker="election")

    def _last_error(self, name: str) -> str:
        with contextlib.suppress(Exception):
            with self.cluster.connect(name, timeout=self.timeout, read_timeout=self.timeout) as conn:
                st = replication.replica_status(conn, self.cluster.flavor)
                if st:
                    return st.last_error
        return "(message unavailable)"


def _known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the keys ``cls`` (a dataclass) does not know (a report written by a newer replab)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _row(conn: Any, sql: str, args: Any = None) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return tuple(cur.fetchone() or ())


def _close(conn: Any) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()
