"""What an application's reads see: sessions that write a row and then read it back, from replicas, through
the proxy's read endpoint or from one node, counting the anomalies replication causes.

Each session, paced so that all of them together make ``rate`` reads a second, repeats:

1. insert one row into ``<db>.replab_reads`` on the primary (through the proxy's write endpoint when reads go
   through the proxy); once the server acknowledges it, the row is the session's own write;
2. ``causal``: take a GTID set that holds that write (``Flavor.session_gtid_query``) and make the read's
   server wait for it first (``MASTER_GTID_WAIT`` / ``WAIT_FOR_EXECUTED_GTID_SET``);
3. read, in one statement, which server answered, whether the session's row is there, and the table's
   highest id.

Counted, per server that answered:

- a **read-your-writes violation**: the session's acknowledged row is not there. Exact by construction:
  the write was acknowledged before the read began. The session then polls that server until the row shows
  up; the time from acknowledgement to visible is the read's **staleness** (p50/p99/max), or "not within
  ``stale_limit``";
- a **monotonic-read violation**: the highest id is lower than what the session's previous read saw. On one
  server it never happens (a replica applies transactions in the source's order, so what it holds only
  grows); it happens when consecutive reads land on servers at different lags.

The proxy balances connections, not statements, so reads through it open a connection per read, as a
stateless application (or a pool without affinity) does; reads from ``replicas`` keep one connection per
replica and take them in turn.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cluster import roles
from ..core.config import quote_ident
from ..core.errors import ConfigError, NotSupported, ReplabError, SqlError
from ..servers import db

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

TABLE = "replab_reads"
TABLE_DDL = ("CREATE TABLE IF NOT EXISTS {db}.`replab_reads` (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
             "session INT NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB")
TARGETS = ("replicas", "proxy")
RYW, MONOTONIC = "read-your-writes", "monotonic"  # the kinds of violation marked in ReadResult.marks


@dataclass
class ReadOptions:
    rate: float = 100.0  # reads per second, all sessions together
    read_from: str = "replicas"  # replicas | proxy | a node's name
    causal: bool = False
    sessions: int = 4
    stale_limit: float = 3.0  # seconds a violating read polls for its row before giving up
    causal_timeout: float = 5.0

    def validate(self, cluster: Cluster) -> None:
        errors: list[str] = []
        if not 0 < self.rate <= 100_000:
            errors.append(f"--reads must be between 1 and 100000 reads per second (got {self.rate:g})")
        if not 1 <= self.sessions <= 64:
            errors.append(f"read sessions must be between 1 and 64 (got {self.sessions})")
        names = [n.name for n in cluster.nodes]
        if self.read_from not in (*TARGETS, *names):
            errors.append(f"--read-from {self.read_from!r}: not replicas, proxy or a node of this cluster "
                          f"({', '.join(names)})")
        if errors:
            raise ConfigError(errors, hint="example: replab feed --duration 10 --reads 200 --read-from replicas")
        if self.read_from == "proxy" and not cluster.state.get("proxy"):
            raise ConfigError("--read-from proxy: this cluster has no proxy",
                              hint="build one with a proxy in front: replab down && replab up --proxy haproxy")
        if self.read_from == "replicas" and not cluster.replicas:
            raise ConfigError("--read-from replicas: this cluster has no replica")
        why = cluster.flavor.causal_reads_unsupported() if self.causal else None
        if why:
            raise NotSupported(f"--causal: {why}", hint="leave out --causal")


@dataclass
class NodeReads:
    reads: int = 0
    ryw: int = 0  # read-your-writes violations
    monotonic: int = 0  # monotonic-read violations

    def to_dict(self) -> dict[str, int]:
        return {"reads": self.reads, "read_your_writes": self.ryw, "monotonic": self.monotonic}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class ReadResult:
    read_from: str = ""
    causal: bool = False
    reads: int = 0
    ryw: int = 0
    monotonic: int = 0
    never_visible: int = 0  # violations whose row did not show up within stale_limit
    errors: int = 0
    last_error: str | None = None
    per_node: dict[str, NodeReads] = field(default_factory=dict)
    staleness_ms: list[float] = field(default_factory=list)
    causal_wait_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)  # the whole read: causal wait included
    # when (time.monotonic()) each violation's read began: (when, node, kind, staleness ms or None); kind is
    # "read-your-writes" or "monotonic" (a report draws them on its read lanes)
    marks: list[tuple[float, str, str, float | None]] = field(default_factory=list)
    spans: dict[str, list[float]] = field(default_factory=dict)  # node -> [first read, last read] (monotonic)
    started: float | None = None  # time.monotonic() of start() and stop()
    stopped: float | None = None

    def summary(self) -> dict[str, Any]:
        def dist(values: list[float]) -> dict[str, float | None]:
            return {"p50": _pct(values, 0.5), "p99": _pct(values, 0.99), "max": max(values) if values else None,
                    "mean": statistics.fmean(values) if values else None}
        return {"read_from": self.read_from, "causal": self.causal, "reads": self.reads,
                "read_your_writes_violations": self.ryw, "monotonic_read_violations": self.monotonic,
                "never_visible": self.never_visible, "errors": self.errors, "last_error": self.last_error,
                "staleness_ms": dist(self.staleness_ms), "causal_wait_ms": dist(self.causal_wait_ms),
                "read_ms": dist(self.read_ms), "per_node": {k: v.to_dict() for k, v in sorted(self.per_node.items())}}

    def line(self) -> str:
        """The result in one sentence."""
        if not self.reads:
            return f"reads from {self.read_from}: none completed ({self.errors} error(s): {self.last_error or '-'})"
        st = self.staleness_ms
        stale = (f"; staleness p50 {_pct(st, 0.5):.0f} ms, p99 {_pct(st, 0.99):.0f} ms, max {max(st):.0f} ms"
                 if st else "")
        if self.never_visible:
            stale += f"; {self.never_visible} never visible within the wait"
        cost = ""
        if self.causal and self.causal_wait_ms:
            cost = (f"; causal wait p50 {_pct(self.causal_wait_ms, 0.5):.1f} ms, "
                    f"p99 {_pct(self.causal_wait_ms, 0.99):.1f} ms")
        nodes = ", ".join(f"{n} {v.reads} ({v.ryw} / {v.monotonic})" for n, v in sorted(self.per_node.items()))
        return (f"reads {self.reads} from {self.read_from}{' (causal)' if self.causal else ''}: read-your-writes "
                f"violations {self.ryw}, monotonic-read violations {self.monotonic}{stale}{cost}; per node "
                f"(reads (read-your-writes / monotonic)): {nodes}; errors {self.errors}")


class Reads:
    """Read sessions in background threads; ``start()``, ``stop()`` -> ``ReadResult``."""

    def __init__(self, cluster: Cluster, options: ReadOptions | None = None, **kwargs: Any) -> None:
        self.cluster = cluster
        self.options = options or ReadOptions(**kwargs)
        self.options.validate(cluster)
        self.result = ReadResult(read_from=self.options.read_from, causal=self.options.causal)
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._by_server_id = {n.server_id: n.name for n in cluster.nodes}
        self._table = f"{quote_ident(cluster.database)}.{quote_ident(TABLE)}"

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Reads:
        cluster = self.cluster
        primary = cluster.primary.name
        cluster.require_running(primary)
        with cluster.connect(primary) as conn:  # binlogged: the replicas get the table by replication
            db.query(conn, TABLE_DDL.format(db=quote_ident(cluster.database)))
        # every replica a read may land on must have the table, or a read there fails instead of missing a row
        late = [n for n, ok in cluster.wait_caught_up(timeout=60).items() if not ok]
        if late:
            raise ReplabError(f"reads: {', '.join(late)} did not apply the creation of {self._table} within 60 s "
                              "(far behind, or not replicating)", hint="see: replab status")
        self.result.started = time.monotonic()
        for k in range(self.options.sessions):
            t = threading.Thread(target=self._session, args=(k,), name=f"replab-reads-{k}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 15.0) -> ReadResult:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.result.stopped = time.monotonic()
        return self.result

    # --- connections ---------------------------------------------------------------------------------
    def _app(self, host: str, port: int, socket: str | None = None) -> Any:
        user, password = self.cluster.credentials(db.APP)
        return db.connect_fast(host=host, port=port, unix_socket=socket, user=user, password=password,
                               database=self.cluster.database, timeout=2, read_timeout=10, multi_statements=False)

    def _writer(self) -> Any:
        proxy = self.cluster.state.get("proxy")
        if self.options.read_from == "proxy" and proxy:
            return self._app(str(proxy["host"]), int(proxy["write_port"]))
        node = roles.writable_primary(self.cluster)
        if node is None:
            raise SqlError("a role change is under way: no primary to write to")
        return self._app(node.host, node.port, self.cluster.engine.connect_params(node).get("unix_socket"))

    def _reader_targets(self) -> list[tuple[str, int] | None]:
        """Where reads go: (host, port) per persistent connection, or [None] for a new proxy connection each
        read."""
        opts = self.options
        if opts.read_from == "proxy":
            return [None]
        names = [r.name for r in self.cluster.replicas] if opts.read_from == "replicas" else [opts.read_from]
        return [(self.cluster.node(n).host, self.cluster.node(n).port) for n in names]

    # --- one session -----------------------------------------------------------------------------------
    def _session(self, k: int) -> None:
        opts = self.options
        interval = opts.sessions / opts.rate
        targets = self._reader_targets()
        readers: dict[int, Any] = {}
        writer = None
        last_max = 0
        turn = k  # sessions start on different replicas
        next_at = time.monotonic() + interval * k / opts.sessions
        flavor = self.cluster.flavor
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_at = max(next_at + interval, time.monotonic() - interval)
            slot = turn % len(targets)
            turn += 1
            reader = None
            try:
                if writer is None:
                    writer = self._writer()
                cur = writer.cursor()
                cur.execute(f"INSERT INTO {self._table} (session, at) VALUES (%s, NOW(6))", (k,))
                own = int(cur.lastrowid)
                acked = time.monotonic()
                gtid = None
                if opts.causal:
                    cur.execute(flavor.session_gtid_query())
                    gtid = str(cur.fetchone()[0] or "")
                cur.close()
                target = targets[slot]
                if target is None:
                    proxy = self.cluster.state["proxy"]
                    reader = self._app(str(proxy["host"]), int(proxy["read_port"]))
                else:
                    reader = readers.get(slot) or self._app(*target)
                    readers[slot] = reader
                t0 = time.monotonic()
                rcur = reader.cursor()
                if gtid:
                    rcur.execute(flavor.wait_for_gtid(), (gtid, opts.causal_timeout))
                    waited = flavor.wait_ok(rcur.fetchone()[0])
                    wait_ms = (time.monotonic() - t0) * 1000
                    if not waited:
                        raise ReplabError(f"causal read: the replica did not apply {gtid} within "
                                          f"{opts.causal_timeout:g}s")
                rcur.execute(f"SELECT @@server_id, (SELECT COUNT(*) FROM {self._table} WHERE id=%s), "
                             f"(SELECT COALESCE(MAX(id), 0) FROM {self._table})", (own,))
                server_id, seen, top = rcur.fetchone()
                read_ms = (time.monotonic() - t0) * 1000
                node = self._by_server_id.get(int(server_id), f"server {server_id}")
                stale_ms = None
                never = False
                if not int(seen):
                    stale_ms = self._until_visible(rcur, own, acked)
                    never = stale_ms is None
                rcur.close()
                with self._mu:
                    r = self.result
                    n = r.per_node.setdefault(node, NodeReads())
                    r.reads += 1
                    n.reads += 1
                    r.read_ms.append(read_ms)
                    if gtid:
                        r.causal_wait_ms.append(wait_ms)
                    if not int(seen):
                        r.ryw += 1
                        n.ryw += 1
                        if never:
                            r.never_visible += 1
                        else:
                            r.staleness_ms.append(float(stale_ms or 0.0))
                    if int(top) < last_max:
                        r.monotonic += 1
                        n.monotonic += 1
                        r.marks.append((t0, node, MONOTONIC, None))
                    if not int(seen):
                        r.marks.append((t0, node, RYW, None if never else float(stale_ms or 0.0)))
                    span = r.spans.setdefault(node, [t0, t0])
                    span[1] = max(span[1], t0)
                last_max = max(last_max, int(top))
            except Exception as exc:  # noqa: BLE001 - any failure of a read is counted, and the session goes on
                with self._mu:
                    self.result.errors += 1
                    self.result.last_error = f"{type(exc).__name__}: {exc}"
                for conn in (writer, reader):
                    with contextlib.suppress(Exception):
                        if conn is not None:
                            conn.close()
                writer = None
                readers.pop(slot, None)
                self._stop.wait(0.05)
                continue
            if targets[slot] is None and reader is not None:
                with contextlib.suppress(Exception):
                    reader.close()
        for conn in (writer, *readers.values()):
            with contextlib.suppress(Exception):
                if conn is not None:
                    conn.close()

    def _until_visible(self, cur: Any, own: int, acked: float) -> float | None:
        """Poll the server that missed the row until it has it; ms from acknowledgement, None if never."""
        deadline = acked + self.options.stale_limit
        while time.monotonic() < deadline:  # also after stop(): a violation in flight gets its staleness
            cur.execute(f"SELECT COUNT(*) FROM {self._table} WHERE id=%s", (own,))
            if int(cur.fetchone()[0]):
                return (time.monotonic() - acked) * 1000
            time.sleep(0.002)
        return None
