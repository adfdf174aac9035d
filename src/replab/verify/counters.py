"""The counter workload's verdict: acknowledged increments of a few hot rows against what each node holds.

Increments commute, so the record is only a total per row: how many increments were acknowledged (``ok``)
and how many had an unknown outcome (the connection broke before the answer). The rows start at 0 and only
the counter workload changes them, so a node holding ``v`` for a row with ``ok`` acknowledged and ``u``
unknown increments lost at least ``ok - v`` acknowledged ones (exactly that many when ``u`` is 0) and at most
``ok + u - v``; a value above ``ok + u`` means increments were applied that nobody acknowledged or asked
for (applied twice). Pure: unit-tested on recorded numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from ..core.config import quote_ident, validate_identifier
from ..core.errors import ReplabError
from ..engines.base import RUNNING
from ..servers import db

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

TABLE = "counters"


@dataclass
class RowVerdict:
    id: int
    acknowledged: int
    unknown: int
    observed: int | None  # None: the node did not answer or lacks the row
    lost_min: int = 0
    lost_max: int = 0
    extra: int = 0

    @property
    def exact(self) -> bool:
        return self.lost_min == self.lost_max


def row_verdict(row_id: int, acknowledged: int, unknown: int, observed: int | None) -> RowVerdict:
    """Lost and extra increments of one row on one node (see the module docstring)."""
    v = RowVerdict(row_id, acknowledged, unknown, observed)
    if observed is None:
        return v
    v.lost_min = max(0, acknowledged - observed)
    v.lost_max = max(0, acknowledged + unknown - observed)
    v.extra = max(0, observed - acknowledged - unknown)
    return v


@dataclass
class CounterVerdict:
    """Per node: the rows' verdicts; ``lost`` counts acknowledged increments missing there (at least)."""

    nodes: dict[str, list[RowVerdict]] = field(default_factory=dict)

    def lost(self, node: str) -> tuple[int, int]:
        rows = self.nodes.get(node, [])
        return sum(r.lost_min for r in rows), sum(r.lost_max for r in rows)

    def extra(self, node: str) -> int:
        return sum(r.extra for r in self.nodes.get(node, []))

    @property
    def consistent(self) -> bool:
        return all(r.lost_min == 0 and r.extra == 0 and r.observed is not None
                   for rows in self.nodes.values() for r in rows)

    def to_dict(self) -> dict[str, Any]:
        return {"consistent": self.consistent,
                "nodes": {n: {"lost": list(self.lost(n)), "extra": self.extra(n),
                              "rows": [asdict(r) for r in rows]} for n, rows in self.nodes.items()}}

    def render(self) -> str:
        lines = []
        for node, rows in self.nodes.items():
            lo, hi = self.lost(node)
            acked = sum(r.acknowledged for r in rows)
            lost = f"{lo}" if lo == hi else f"{lo} to {hi}"
            bad = [r for r in rows if r.lost_min or r.extra or r.observed is None]
            head = f"counters on {node}: {acked} acknowledged increments of {len(rows)} hot rows, {lost} lost"
            if self.extra(node):
                head += f", {self.extra(node)} extra (applied though never acknowledged)"
            lines.append(head)
            for r in bad[:5]:
                lines.append(f"  row {r.id}: holds {r.observed if r.observed is not None else 'nothing'}, "
                             f"{r.acknowledged} acknowledged" + (f" (+{r.unknown} unknown)" if r.unknown else ""))
        return "\n".join(lines)


def judge(record: dict[int, tuple[int, int]], observed: dict[str, dict[int, int]]) -> CounterVerdict:
    """``record``: {row: (acknowledged, unknown)}; ``observed``: {node: {row: value}}."""
    out = CounterVerdict()
    for node, values in observed.items():
        out.nodes[node] = [row_verdict(k, ok, unk, values.get(k)) for k, (ok, unk) in sorted(record.items())]
    return out


# --- the record on disk: <home>/ledger/counters.json -------------------------------------------------------
def record_path(home: Path, table: str = TABLE) -> Path:
    validate_identifier(table, "table name")
    return Path(home) / "ledger" / f"{table}.json"


def read_record(home: Path, table: str = TABLE) -> dict[int, tuple[int, int]]:
    try:
        data = json.loads(record_path(home, table).read_text())
        return {int(k): (int(v[0]), int(v[1])) for k, v in data.get("rows", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def add_to_record(home: Path, counts: dict[int, tuple[int, int]], table: str = TABLE) -> None:
    """Add a feed's totals to the record (replaced atomically)."""
    have = read_record(home, table)
    for k, (ok, unk) in counts.items():
        a, b = have.get(k, (0, 0))
        have[k] = (a + ok, b + unk)
    path = record_path(home, table)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": {str(k): list(v) for k, v in sorted(have.items())}}))
    os.replace(tmp, path)


def collect(cluster: Cluster, wait: float = 30.0, table: str = TABLE) -> CounterVerdict | None:
    """What every running node holds of the hot rows, judged against the record (None: no counter feed ran).
    Waits first (up to ``wait``) until every node holds what each writer wrote. Read-only."""
    record = read_record(cluster.home, table)
    if not record:
        return None
    with contextlib.suppress(ReplabError, pymysql.MySQLError):
        if cluster.topology.name == "star":
            cluster.wait_caught_up(timeout=wait)
        else:
            cluster.wait_holders(timeout=wait)
    observed: dict[str, dict[int, int]] = {}
    for node in cluster.nodes:
        if cluster.engine.state(node) != RUNNING:
            observed[node.name] = {}
            continue
        try:
            with cluster.connect(node.name, database=cluster.database, timeout=3) as conn:
                rows = db.query(conn, f"SELECT id, n FROM {quote_ident(table)}")
            observed[node.name] = {int(r["id"]): int(r["n"]) for r in rows}
        except (ReplabError, pymysql.MySQLError):
            observed[node.name] = {}
    return judge(record, observed)
