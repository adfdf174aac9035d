"""The one explanation ``replab diagnose`` gives per node (a replica of an edge, or a group member)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Diagnosis:
    """What is wrong with one replica, why, and what happens next."""

    node: str
    severity: str  # ok | drift | broken | down
    summary: str
    errno: int = 0
    error: str = ""
    table: str | None = None
    statement: str | None = None
    causes: list[str] = field(default_factory=list)
    next_writes: list[str] = field(default_factory=list)
    shifted: list[str] = field(default_factory=list)
    errant_gtids: list[str] = field(default_factory=list)
    event: list[str] = field(default_factory=list)
    binlog: dict[str, Any] | None = None  # the primary's binary log reset/purged under it (BinlogGap fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"{self.node}: {self.summary}"]
        if self.errno:
            lines.append(f"  error {self.errno}: {self.error}")
        if self.statement:
            lines.append(f"  statement: {self.statement}")
        lines += [f"  event: {e}" for e in self.event]
        lines += [f"  cause: {c}" for c in self.causes]
        lines += [f"  shifted: {s}" for s in self.shifted]
        lines += [f"  next writes: {n}" for n in self.next_writes]
        return "\n".join(lines)
