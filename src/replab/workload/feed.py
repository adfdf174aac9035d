"""The workload: a rate-limited, multi-connection insert feeder and the heartbeat writer.

Each feeder thread has its own connection (as the application user) and inserts rows whose id it
allocated from a shared counter, so a multi-row INSERT's ids are known without trusting
auto-increment. Every outcome goes to the ledger: ``ok`` when the primary acknowledged, ``failed`` when
it answered with an error (an autocommitted statement that errors is rolled back), ``unknown`` when the
connection broke before the answer. The checker resolves unknown outcomes by what the primary holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from ..cluster import group, replication, roles
from ..cluster.replication import HEARTBEAT_DB, HEARTBEAT_TABLE
from ..core.config import quote_ident, validate_identifier
from ..core.errors import ConfigError, ReplabError, SqlError
from ..engines.base import PAUSED, STOPPED
from ..servers import db
from ..verify import ledger

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

MAX_BATCH = 10_000
HEARTBEAT_INTERVAL = 0.1
NOT_PRIMARY_ERRORS = (1290, 1792, 1836)  # read-only server or transaction: the primary moved (or is moving)


@dataclass
class FeedOptions:
    """What to feed. ``rate`` is rows per second (0 = as fast as possible); with neither ``rows`` nor
    ``duration`` the feed runs until stopped."""

    rate: float = 0.0
    rows: int | None = None
    duration: float | None = None
    threads: int = 1
    batch: int = 1
    table: str = "events"
    heartbeat: bool = True
    node: str | None = None  # write to this node (a writer of a multi-writer shape), not the current primary
    via: str = "direct"  # "proxy": through the proxy's write endpoint, as an application would

    def validate(self) -> None:
        errors: list[str] = []
        if not isinstance(self.rate, (int, float)) or self.rate < 0:
            errors.append(f"--rate must be a number >= 0 (rows per second, 0 = as fast as possible); got {self.rate}")
        if self.rows is not None and self.duration is not None:
            errors.append("give --rows or --duration, not both")
        if self.rows is not None and self.rows < 1:
            errors.append(f"--rows must be at least 1 (got {self.rows})")
        if self.duration is not None and self.duration <= 0:
            errors.append(f"--duration must be more than 0 seconds (got {self.duration})")
        if self.threads < 1 or self.threads > 256:
            errors.append(f"--threads must be between 1 and 256 (got {self.threads})")
        if self.batch < 1 or self.batch > MAX_BATCH:
            errors.append(f"--batch must be between 1 and {MAX_BATCH} (got {self.batch})")
        if self.via not in ("direct", "proxy"):
            errors.append(f"--via must be direct or proxy (got {self.via!r})")
        try:
            validate_identifier(self.table, "table name")
        except ConfigError as exc:
            errors.extend(exc.errors)
        if errors:
            raise ConfigError(errors, hint="example: replab feed --rate 200 --duration 30 --threads 4")


@dataclass
class FeedResult:
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    statements: int = 0
    errors: int = 0
    last_error: str | None = None
    elapsed: float = 0.0
    first_id: int = 0
    next_id: int = 0
    interrupted: bool = False
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


PIPELINE_DEPTH = 8


def insert_head(table: str) -> str:
    return f"INSERT INTO {quote_ident(table)} (id, name, counter, description) VALUES "


def row_values(n: int) -> str:
    """Row ``n`` as the ledger expects it (ints only: no quoting of user data is involved)."""
    return f"({n},'some-event-{n}',{n},'some-descr-{n}')"


def insert_sql(table: str, start: int, count: int) -> str:
    """One INSERT of ids start..start+count-1."""
    return insert_head(table) + ",".join(map(row_values, range(start, start + count)))


def pipelined_sql(head: str, start: int, count: int) -> str:
    """``count`` single-row INSERTs (ids start..), one multi-statement packet; ``head`` from insert_head()."""
    return ";".join(head + row_values(n) for n in range(start, start + count))


def classify(exc: BaseException) -> int:
    """Ledger outcome of a statement that raised: FAILED if the server answered with an error, else UNKNOWN."""
    if isinstance(exc, db.driver_errors()) and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
        if code in (1047, 1180):  # Galera: the node left the Primary component while the commit was in flight
            return ledger.UNKNOWN  # (1180 "error during COMMIT"): the others may have committed the writeset
        if 1000 <= code < 2000:  # a server error: the autocommitted statement did not commit
            return ledger.FAILED
        if code in group.REFUSED_ERRORS:  # Group Replication rolled it back (certification conflict, no quorum)
            return ledger.FAILED
    return ledger.UNKNOWN


class Heartbeat:
    """Writes ``replab.heartbeat`` id=1 ts=NOW(6) on the primary every 100 ms until stopped."""

    def __init__(self, cluster: Cluster, interval: float = HEARTBEAT_INTERVAL) -> None:
        self.cluster = cluster
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._loop, name="replab-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        sql = (f"REPLACE INTO {HEARTBEAT_DB}.{HEARTBEAT_TABLE} (id, ts, server_id) "
               "VALUES (1, NOW(6), @@server_id)")
        conn, target = None, None
        while not self._stop.is_set():
            try:
                primary = roles.writable_primary(self.cluster)  # follows a switchover or failover
                if conn is not None and (primary is None or primary.name != target):
                    conn.close()
                    conn = None
                if primary is None:  # a role change is under way: an admin write now could be errant
                    self._stop.wait(self.interval)
                    continue
                if conn is None:
                    conn, target = self.cluster.connect(primary.name, timeout=1, read_timeout=2), primary.name
                conn.query(sql)
                self.beats += 1
            except (SqlError, pymysql.MySQLError, OSError):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


class Feeder:
    """Inserts into ``<db>.events`` in background threads; ``start()``, ``stop()``, ``result``.

    Example::

        f = Feeder(cluster, rate=500, duration=10, threads=4).start()
        ... inject faults ...
        print(f.wait().ok)
    """

    def __init__(self, cluster: Cluster, options: FeedOptions | None = None, **kwargs: Any) -> None:
        self.cluster = cluster
        self.options = options or FeedOptions(**kwargs)
        self.options.validate()
        self._proxy: tuple[str, int] | None = None
        if self.options.via == "proxy":
            state = cluster.state.get("proxy")
            if not state:
                raise ConfigError("--via proxy: this cluster has no proxy",
                                  hint="build one with a proxy in front: replab down && replab up --proxy haproxy; "
                                  "or leave out --via to write to the primary directly")
            self._proxy = (str(state["host"]), int(state["write_port"]))
        self._by_server_id = {n.server_id: n.name for n in cluster.nodes}
        # As fast as it can, single-row inserts go PIPELINE_DEPTH to a packet: each is still its own
        # autocommitted transaction with its own acknowledgement, but the client waits one round trip
        # per packet instead of per row.
        self._pipelined = self.options.rate <= 0 and self.options.batch == 1
        self._result = FeedResult()
        self._stop = threading.Event()
        self._mu = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._issued = 0
        self._next_id = 0
        self._t0 = 0.0
        self._writer: ledger.LedgerWriter | None = None
        self._heartbeat: Heartbeat | None = None
        self._flusher: threading.Thread | None = None
        self._done = threading.Event()
        self._primary_name = ""  # the primary ids are written to now (see roles.py: epochs)

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Feeder:
        cluster, opts = self.cluster, self.options
        primary = opts.node or cluster.primary.name
        cluster.require_running(primary)
        table = quote_ident(opts.table)
        try:
            with cluster.connect(primary, database=cluster.database, timeout=3) as conn:
                max_id = int(db.scalar(conn, f"SELECT COALESCE(MAX(id), 0) FROM {table}") or 0)
        except pymysql.MySQLError as exc:
            raise ReplabError(f"{primary}: cannot read {cluster.database}.{opts.table}: {exc.args[-1]}",
                              node=primary, hint="feed writes to an existing table with an integer id; "
                              "see: replab sql mysql-m 'SHOW TABLES FROM mydb'") from None
        path = ledger.ledger_path(cluster.home, opts.table)
        first = max(max_id, ledger.last_end(path) - 1) + 1
        self._writer = ledger.LedgerWriter(path, first)
        self._next_id = self._result.first_id = first
        self._primary_name = primary
        roles.record_epoch(cluster.home, opts.table, first, primary)
        self._t0 = time.monotonic()
        if opts.heartbeat:
            self._heartbeat = Heartbeat(cluster).start()
        self._flusher = threading.Thread(target=self._flush_loop, name="replab-ledger", daemon=True)
        self._flusher.start()
        for i in range(opts.threads):
            t = threading.Thread(target=self._worker, name=f"replab-feed-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._reaper, name="replab-feed-reaper", daemon=True).start()
        return self

    def _reaper(self) -> None:
        for t in self._threads:
            t.join()
        self._finish()

    def _finish(self) -> None:
        with self._mu:
            if self._done.is_set():
                return
            self._result.elapsed = time.monotonic() - self._t0
            self._stop.set()
            if self._flusher:
                self._flusher.join(timeout=5)
            if self._writer:
                self._writer.close()
            if self._heartbeat:
                self._heartbeat.stop()
            self._result.next_id = self._next_id
            self._done.set()

    def stop(self, timeout: float = 30.0) -> FeedResult:
        """Stop issuing writes, wait for the statements in flight, close the ledger; return the result."""
        self._stop.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> FeedResult:
        """Wait (at most ``timeout`` s) until the feed ends: rows or duration reached, or stopped."""
        self._done.wait(timeout)
        return self.result

    @property
    def result(self) -> FeedResult:
        """The counts so far (final once the feed has ended)."""
        r = self._result
        if self._writer is not None:
            counts, r.statements = self._writer.counts, self._writer.statements
            r.ok, r.failed, r.unknown = counts[ledger.OK], counts[ledger.FAILED], counts[ledger.UNKNOWN]
        return r

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0 if self.running else self.result.elapsed

    # --- work ----------------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        while not self._stop.wait(0.1):
            if self._writer:
                self._writer.flush()

    def _take(self) -> tuple[int, int] | None:
        """The next (first id, count) to insert, after waiting for the rate limit; None when done."""
        opts = self.options
        with self._mu:
            if self._stop.is_set():
                return None
            count = opts.batch * (PIPELINE_DEPTH if self._pipelined else 1)
            if opts.rows is not None:
                count = min(count, opts.rows - self._issued)
                if count <= 0:
                    return None
            slot = self._t0 + self._issued / opts.rate if opts.rate > 0 else 0.0
            if opts.duration is not None and max(slot, time.monotonic()) - self._t0 >= opts.duration:
                return None
            self._issued += count  # the rate slot is reserved now; ids are allocated once it comes
            if opts.rate <= 0:
                start = self._next_id
                self._next_id += count
                return start, count
        delay = slot - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        with self._mu:
            if self._stop.is_set():
                return None
            start = self._next_id
            self._next_id += count
        return start, count

    def _record(self, start: int, count: int, outcome: int, error: BaseException | None = None) -> None:
        assert self._writer is not None
        self._writer.record(start, count, outcome, statements=count if self._pipelined else 1)
        if outcome == ledger.OK:
            return  # counted by the writer, under its lock
        r = self._result
        with self._mu:
            r.errors += 1
            if error is not None:
                r.last_error = f"{type(error).__name__}: {error}"
                key = str(error.args[0]) if error.args else type(error).__name__
                r.error_kinds[key] = r.error_kinds.get(key, 0) + 1

    def _expired(self) -> bool:
        d = self.options.duration
        return d is not None and time.monotonic() - self._t0 >= d

    def _connect(self) -> Any:
        while not self._stop.is_set() and not self._expired():
            try:
                primary = self.cluster.node(self.options.node) if self.options.node else \
                    roles.writable_primary(self.cluster)  # re-resolved: it may have moved
                if primary is None:
                    self._stop.wait(0.05)
                    continue
                user, password = self.cluster.credentials(db.APP)
                if self._proxy is not None:
                    return self._connect_proxy(user, password)
                self._follow(primary.name)
                # the engine's own way in: a local server's Unix socket (as sysbench in the bench), else TCP
                socket = self.cluster.engine.connect_params(primary).get("unix_socket")
                return db.connect_fast(host=primary.host, port=primary.port, unix_socket=socket, user=user,
                                       password=password, database=self.cluster.database, timeout=2,
                                       read_timeout=10, multi_statements=self._pipelined, node=primary.name)
            except (SqlError, OSError) as exc:
                with self._mu:
                    self._result.errors += 1
                    self._result.last_error = str(exc)
                self._stop.wait(0.2)
        return None

    def _connect_proxy(self, user: str, password: str) -> Any:
        """Through the proxy's write endpoint: the node it routed to is asked for (its server_id), so the
        ledger's epochs still say which primary acknowledged which ids."""
        host, port = self._proxy or ("127.0.0.1", 0)
        conn = db.connect_fast(host=host, port=port, user=user, password=password, database=self.cluster.database,
                               timeout=2, read_timeout=10, multi_statements=self._pipelined, node="proxy")
        try:
            cur = conn.cursor()
            cur.execute("SELECT @@server_id")
            row = cur.fetchone()
            cur.close()
        except Exception as exc:  # noqa: BLE001 - either driver's error: the endpoint broke the session
            with contextlib.suppress(Exception):
                conn.close()
            raise SqlError(f"proxy {host}:{port}: {exc}", node="proxy") from None
        name = self._by_server_id.get(int(row[0])) if row else None
        if name:
            self._follow(name)
        return conn

    def _follow(self, name: str) -> None:
        """Record the epoch when this feed first writes to a new primary: ids from here on are its."""
        with self._mu:
            if name != self._primary_name:
                roles.record_epoch(self.cluster.home, self.options.table, self._next_id, name)
                self._primary_name = name

    def _worker(self) -> None:
        conn = None
        table = self.options.table
        head = insert_head(table)
        while True:
            if conn is None:
                conn = self._connect()
                if conn is None:
                    return
            job = self._take()
            if job is None:
                break
            start, count = job
            done = 0  # statements acknowledged so far (several are in flight when pipelined)
            try:
                if self._pipelined:
                    conn.query(pipelined_sql(head, start, count))
                    done = 1
                    while done < count:
                        conn.next_result()
                        done += 1
                else:
                    conn.query(insert_sql(table, start, count))
            except Exception as exc:  # noqa: BLE001 - every outcome must reach the ledger
                outcome = classify(exc)
                if done:
                    self._record(start, done, ledger.OK)
                # a server error ends a multi-statement packet: the statements after it never ran (FAILED);
                # a broken connection leaves them all UNKNOWN
                self._record(start + done, count - done, outcome, exc)
                moved = bool(exc.args) and exc.args[0] in NOT_PRIMARY_ERRORS  # reconnect to the new primary
                if outcome == ledger.UNKNOWN or self._pipelined or moved:  # a cut packet: start clean
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
                    self._stop.wait(0.05)
                continue
            self._record(start, count, ledger.OK)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def writer_targets(cluster: Cluster, on: list[str] | None) -> list[tuple[str | None, str]]:
    """[(node to write to, table)] for ``feed --on``: each named node must take writes in the cluster's shape
    (ConfigError, nothing written, otherwise). None (no --on): the star's and chain's primary, as always
    (it follows a promotion), or every writer of a multi-writer shape. Where several nodes take writes each
    writes its own table (``events_m1``), so each writer's acknowledged ids are its own ledger."""
    writers = cluster.writers()
    on = expand_on(cluster, on)
    if not on:
        return [(None, "events")] if len(writers) == 1 else [(w, cluster.writer_table(w)) for w in writers]
    out: list[tuple[str | None, str]] = []
    for name in dict.fromkeys(on):
        cluster.node(name)
        if name not in writers:
            raise ConfigError(f"{name} does not take writes in this {cluster.topology.name}: its writers are "
                              f"{', '.join(writers)}", hint=f"replab feed --on {','.join(writers)}")
        out.append((name if len(writers) > 1 else None, cluster.writer_table(name)))
    return out


def expand_on(cluster: Cluster, on: list[str] | None) -> list[str] | None:
    """``--on all``: every writer of the cluster's shape (every member of a multi-primary group)."""
    return cluster.writers() if on == ["all"] else on


class FeedGroup:
    """Several feeds at once, one per writer (``feed --on mysql-m1,mysql-m2``), each into its own table and
    ledger; the same interface as one ``Feeder`` (its result is the sum; ``results`` per writer)."""

    def __init__(self, cluster: Cluster, options: FeedOptions, targets: list[tuple[str | None, str]]) -> None:
        self.cluster = cluster
        self.feeders: list[Feeder] = []
        for i, (node, table) in enumerate(targets):
            opts = FeedOptions(**{**asdict(options), "node": node, "table": table,
                                  "heartbeat": options.heartbeat and i == 0})  # one heartbeat writer
            self.feeders.append(Feeder(cluster, opts))
        self.options = options

    def start(self) -> FeedGroup:
        started: list[Feeder] = []
        try:
            for f in self.feeders:
                started.append(f.start())
        except BaseException:
            for f in started:
                f.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> FeedResult:
        for f in self.feeders:
            f._stop.set()
        for f in self.feeders:
            f.wait(timeout)
        return self.result

    def wait(self, timeout: float | None = None) -> FeedResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        for f in self.feeders:
            f.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.result

    @property
    def results(self) -> dict[str, FeedResult]:
        return {f.options.node or self.cluster.primary.name: f.result for f in self.feeders}

    @property
    def result(self) -> FeedResult:
        parts = [f.result for f in self.feeders]
        total = FeedResult(elapsed=max(r.elapsed for r in parts), first_id=min(r.first_id for r in parts),
                           next_id=max(r.next_id for r in parts), interrupted=any(r.interrupted for r in parts))
        for r in parts:
            total.ok += r.ok
            total.failed += r.failed
            total.unknown += r.unknown
            total.statements += r.statements
            total.errors += r.errors
            total.last_error = r.last_error or total.last_error
            for k, v in r.error_kinds.items():
                total.error_kinds[k] = total.error_kinds.get(k, 0) + v
        return total

    @property
    def running(self) -> bool:
        return any(f.running for f in self.feeders)

    @property
    def elapsed(self) -> float:
        return max(f.elapsed for f in self.feeders)


def feed(cluster: Cluster, rate: float = 0.0, rows: int | None = None, duration: float | None = None,
         threads: int = 1, batch: int = 1, *, table: str = "events",
         on_tick: Callable[[Feeder], None] | None = None, tick: float = 0.25) -> FeedResult:
    """Feed in the foreground until ``rows`` or ``duration`` is reached (or Ctrl-C, which stops cleanly:
    statements in flight finish and the ledger is complete). ``on_tick(feeder)`` runs every ``tick`` s."""
    feeder = Feeder(cluster, FeedOptions(rate=rate, rows=rows, duration=duration, threads=threads, batch=batch,
                                         table=table)).start()
    try:
        while feeder.running:
            if on_tick:
                on_tick(feeder)
            feeder.wait(tick)
    except KeyboardInterrupt:
        feeder.result.interrupted = True
    return feeder.stop()


# --- exact counts ------------------------------------------------------------------------------------
# The live view samples through ``timeline.Sampler`` (constant cost per sample); these exact counts are for
# the end of a feed and for tests.

@dataclass
class NodeSample:
    name: str
    rows: int | None = None  # None: the node did not answer
    lag_ms: int | None = None


def sample_nodes(cluster: Cluster, table: str = "events", silent_after: float = 10.0,
                 progress: Callable[[str], None] | None = None, progress_every: float = 2.0) -> list[NodeSample]:
    """Exact row count (``COUNT(*)``) and heartbeat lag of every node, each node on its own thread.

    A count takes the time it needs (on a big table, seconds): it has no read timeout. Meanwhile each node
    still counting is asked ``SELECT 1`` on a second connection; a node that answers neither for
    ``silent_after`` seconds (or is stopped or paused) is given None rows (``OUT``), and only such a node.
    ``progress`` gets a line every ``progress_every`` s while counts are outstanding."""
    t = f"{quote_ident(cluster.database)}.{quote_ident(validate_identifier(table, 'table name'))}"
    samples = {n.name: NodeSample(n.name) for n in cluster.nodes}
    hbs: dict[str, Any] = {}
    statuses: dict[str, Any] = {}  # a replica's status: lag is '-' when it is not replicating
    done: dict[str, threading.Event] = {n.name: threading.Event() for n in cluster.nodes}

    def one(node: Any) -> None:
        try:
            with cluster.connect(node.name, timeout=2.0, read_timeout=3600) as conn:
                hbs[node.name] = replication.heartbeat(conn)  # before the scan: lag as of now
                if node.role != "primary":
                    statuses[node.name] = replication.replica_status(conn, cluster.flavor)
                samples[node.name].rows = int(db.scalar(conn, f"SELECT COUNT(*) FROM {t}") or 0)
        except (SqlError, pymysql.MySQLError, OSError):
            pass
        finally:
            done[node.name].set()

    def alive(node: Any) -> bool:
        if cluster.engine.state(node) in (STOPPED, PAUSED):
            return False
        try:
            with cluster.connect(node.name, timeout=2.0, read_timeout=2.0) as conn:
                db.scalar(conn, "SELECT 1")
            return True
        except (SqlError, pymysql.MySQLError, OSError):
            return False

    pending = []
    for node in cluster.nodes:
        if cluster.engine.state(node) in (STOPPED, PAUSED):  # a paused server would only time out
            done[node.name].set()
            continue
        threading.Thread(target=one, args=(node,), name=f"count-{node.name}", daemon=True).start()
        pending.append(node)
    t0 = time.monotonic()
    last_seen = dict.fromkeys((n.name for n in pending), t0)
    next_line = t0 + progress_every
    while True:
        pending = [n for n in pending if not done[n.name].wait(0.25 if n is pending[0] else 0)]
        if not pending:
            break
        now = time.monotonic()
        for node in pending:
            if now - last_seen[node.name] >= 1.0 and alive(node):
                last_seen[node.name] = time.monotonic()
        gone = [n for n in pending if time.monotonic() - last_seen[n.name] > silent_after]
        pending = [n for n in pending if n not in gone]  # silent: OUT (its thread ends with the process)
        if not pending:
            break
        if progress is not None and now >= next_line:
            known = ", ".join(f"{s.name} {s.rows:,}" for s in samples.values() if s.rows is not None)
            progress(f"counting rows exactly ({now - t0:.0f} s): {', '.join(n.name for n in pending)} still "
                     f"counting" + (f"; {known}" if known else ""))
            next_line = now + progress_every
    primary_hb = next((hbs.get(n.name) for n in cluster.nodes if n.role == "primary"), None)
    for node in cluster.nodes:
        s = samples[node.name]
        if node.role != "primary" and s.rows is not None:
            s.lag_ms = replication.lag_ms(primary_hb, hbs.get(node.name), statuses.get(node.name))
    return [samples[n.name] for n in cluster.nodes]


def final_counts(cluster: Cluster, table: str = "events", wait: float = 10.0,
                 progress: Callable[[str], None] | None = None) -> list[NodeSample]:
    """Exact counts once replicas applied the primary's position (bounded by ``wait``); None for a silent
    node. A replica whose link is cut is not waited for: it cannot catch up (the feed's last frame froze
    for the whole ``wait`` beside a partitioned replica)."""
    cut = set(cluster.engine.partitioned(cluster.nodes))
    running = [r.name for r in cluster.replicas if cluster.engine.state(r) not in (STOPPED, PAUSED)
               and r.name not in cut]
    with contextlib.suppress(ReplabError, pymysql.MySQLError):
        cluster.wait_caught_up(timeout=wait, names=running)
    return sample_nodes(cluster, table, progress=progress)
