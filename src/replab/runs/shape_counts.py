"""The live row counts of a shape's writers' tables: for every node, the rows of each writer's table it must
hold (``feed --on mysql-m1,mysql-m2`` on active-active shows ``events_m1`` and ``events_m2`` on both nodes).

One daemon thread per node, its own connection, a sample every ``interval`` seconds; each table is counted by
a ``RowCounter`` (exact ``COUNT(*)`` while the table is small, a base count plus the newest ids when it is
big), so a sample costs the same whatever the table's size. A node that does not answer within ``timeout``
seconds, or is stopped or paused, shows no count (None) until it answers again.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import TYPE_CHECKING, Any

import pymysql

from ..core.config import quote_ident, validate_identifier
from ..core.errors import SqlError
from ..engines.base import RUNNING
from .timeline import BaseCount, RowCounter

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster


class ShapeCounts:
    """``{node: {table: rows or None}}`` of the tables each node must hold, refreshed in the background."""

    def __init__(self, cluster: Cluster, tables: dict[str, list[str]], interval: float = 0.5,
                 timeout: float = 2.0) -> None:
        self.cluster = cluster
        self.tables = {node: [validate_identifier(t, "table name") for t in ts] for node, ts in tables.items()}
        self.interval = interval
        self.timeout = timeout
        self._rows: dict[str, dict[str, int | None]] = {n: dict.fromkeys(ts) for n, ts in self.tables.items()}
        self._stop = threading.Event()
        self._mu = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._bases: list[tuple[str, BaseCount]] = []  # (node, a big table's base count) to end at stop

    def start(self) -> ShapeCounts:
        for node in self.tables:
            t = threading.Thread(target=self._loop, args=(node,), name=f"shape-count-{node}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 1)
        for node, base in self._bases:  # a base count still under way: no further range, the running one ended
            base.cancel(functools.partial(self.cluster.connect, node, timeout=1, read_timeout=2))

    def frame(self) -> dict[str, dict[str, int | None]]:
        with self._mu:
            return {n: dict(ts) for n, ts in self._rows.items()}

    def _connect(self, node: str) -> Any:
        return self.cluster.connect(node, database=self.cluster.database, timeout=self.timeout,
                                    read_timeout=self.timeout)

    def _base_connection(self, node: str) -> Any:
        """A big table's one base count, in ranges that take ``BaseCount.CHUNK_S`` each (see ``BaseCount``)."""
        return self.cluster.connect(node, database=self.cluster.database, timeout=self.timeout,
                                    read_timeout=BaseCount.RANGE_TIMEOUT)

    def _loop(self, node: str) -> None:
        db_name = quote_ident(self.cluster.database)
        counters = {t: RowCounter(f"{db_name}.{quote_ident(t)}", connect=lambda: self._base_connection(node))
                    for t in self.tables[node]}
        with self._mu:
            self._bases += [(node, c.base) for c in counters.values() if c.base is not None]
        conn = None
        while not self._stop.is_set():
            rows: dict[str, int | None] = dict.fromkeys(self.tables[node])
            if self.cluster.engine.state(self.cluster.node(node)) == RUNNING:
                try:
                    conn = conn or self._connect(node)
                    for table, counter in counters.items():
                        with contextlib.suppress(pymysql.err.ProgrammingError):  # 1146: not created there yet
                            rows[table] = counter.count(conn, time.monotonic())
                except (SqlError, pymysql.MySQLError, OSError):
                    for counter in counters.values():
                        counter.gap()
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
            elif conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            with self._mu:
                self._rows[node] = rows
            self._stop.wait(self.interval)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

