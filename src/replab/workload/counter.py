"""The counter workload: concurrent increments of a few hot rows (``feed --updates --hot-rows N``), on one
or several writers at once. Each acknowledged increment is counted per row (increments commute, so totals
are the whole record: ``verify/counters.py``); on asynchronous active-active, increments of the same row on
both primaries overwrite each other (row-based replication applies the other side's after-image), and the
check counts exactly how many acknowledged ones each node lost."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.config import quote_ident
from ..core.errors import ConfigError
from ..servers import db
from ..verify import counters, ledger
from .feed import classify, expand_on

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

MAX_HOT_ROWS = 10_000
COUNTERS_DDL = "CREATE TABLE IF NOT EXISTS {t} (id INT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB"


@dataclass
class CounterResult:
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    elapsed: float = 0.0
    last_error: str | None = None
    by_writer: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "unknown": self.unknown, "elapsed": round(self.elapsed, 3),
                "last_error": self.last_error, "by_writer": self.by_writer}


def prepare(cluster: Cluster, hot_rows: int, table: str = counters.TABLE) -> None:
    """The hot rows (ids 1..N at 0) on the first writer, replicated to every node before the increments."""
    if not 1 <= hot_rows <= MAX_HOT_ROWS:
        raise ConfigError(f"--hot-rows must be between 1 and {MAX_HOT_ROWS} (got {hot_rows})")
    first = cluster.writers()[0]
    t = quote_ident(table)
    with cluster.connect(first, database=cluster.database) as conn, conn.cursor() as cur:
        cur.execute(COUNTERS_DDL.format(t=t))
        cur.execute(f"INSERT IGNORE INTO {t} (id, n) VALUES " + ",".join(f"({i},0)" for i in range(1, hot_rows + 1)))
    if cluster.topology.name == "star":
        cluster.wait_caught_up(timeout=30)
    else:
        cluster.wait_holders(timeout=30)


def shared_writers(cluster: Cluster, on: list[str] | None) -> list[str]:
    """The writers of a counter feed: each must take writes, and every node must get every writer's
    increments (one shared table; a fan-in's primaries never see each other's rows: refused)."""
    writers = cluster.writers()
    on = expand_on(cluster, on)
    chosen = list(dict.fromkeys(on)) if on else writers
    for name in chosen:
        cluster.node(name)
        if name not in writers:
            raise ConfigError(f"{name} does not take writes in this {cluster.topology.name}: its writers are "
                              f"{', '.join(writers)}", hint=f"replab feed --updates --on {','.join(writers)}")
    for w in chosen:
        if set(cluster.holders(w)) != set(cluster.names):
            raise ConfigError(f"feed --updates needs a shape where every node gets every writer's increments; in a "
                              f"{cluster.topology.name} {w}'s reach only {', '.join(cluster.holders(w))}",
                              hint="use it on a star, chain, active-active or ring")
    return chosen


def run(cluster: Cluster, writers: list[str], *, hot_rows: int = 10, threads: int = 2,
        duration: float | None = None, increments: int | None = None, seed: int | None = None,
        stop: threading.Event | None = None, table: str = counters.TABLE) -> CounterResult:
    """Increment random hot rows on each writer (``threads`` connections each) until ``duration`` seconds or
    ``increments`` per writer (or ``stop``); add the acknowledged totals to the record; return the counts."""
    if duration is None and increments is None:
        raise ConfigError("give --duration or --rows to a counter feed")
    prepare(cluster, hot_rows, table)
    stop = stop or threading.Event()
    mu = threading.Lock()
    totals: dict[int, list[int]] = {k: [0, 0] for k in range(1, hot_rows + 1)}
    result = CounterResult(by_writer=dict.fromkeys(writers, 0))
    issued = dict.fromkeys(writers, 0)
    t0 = time.monotonic()
    sql = f"UPDATE {quote_ident(table)} SET n = n + 1 WHERE id = %d"
    user, password = cluster.credentials(db.APP)

    def take(writer: str) -> bool:
        with mu:
            if stop.is_set() or (duration is not None and time.monotonic() - t0 >= duration):
                return False
            if increments is not None and issued[writer] >= increments:
                return False
            issued[writer] += 1
            return True

    def worker(writer: str, rng: random.Random) -> None:
        node = cluster.node(writer)
        conn = None
        while take(writer):
            row = rng.randint(1, hot_rows)
            try:
                if conn is None:
                    socket = cluster.engine.connect_params(node).get("unix_socket")
                    conn = db.connect_fast(host=node.host, port=node.port, unix_socket=socket, user=user,
                                           password=password, database=cluster.database, timeout=2,
                                           read_timeout=10, multi_statements=False, node=writer)
                conn.query(sql % row)
                outcome = ledger.OK
            except Exception as exc:  # noqa: BLE001 - every outcome is counted
                outcome = classify(exc) if conn is not None else ledger.FAILED
                with mu:
                    result.last_error = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
                time.sleep(0.05)
            with mu:
                counts = totals.setdefault(row, [0, 0])
                if outcome == ledger.OK:
                    counts[0] += 1
                    result.ok += 1
                    result.by_writer[writer] += 1
                elif outcome == ledger.UNKNOWN:
                    counts[1] += 1
                    result.unknown += 1
                else:
                    result.failed += 1
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    rng = random.Random(seed)
    pool = [threading.Thread(target=worker, args=(w, random.Random(rng.random())), daemon=True,
                             name=f"replab-counter-{w}-{i}") for w in writers for i in range(threads)]
    try:
        for t in pool:
            t.start()
        for t in pool:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        for t in pool:
            t.join()
    result.elapsed = time.monotonic() - t0
    counters.add_to_record(cluster.home, {k: (v[0], v[1]) for k, v in totals.items()}, table)
    return result
