"""Typed GTID sets for both flavors, with gaps.

MySQL writes a set as ``uuid:1-5:7-9,uuid2:1-3`` (intervals of transaction numbers per source UUID, an
optional ``:tag`` before the intervals in 8.3+). MariaDB writes a position as ``0-1-42,1-2-7``
(domain-server_id-seqno): within a domain every seqno up to the last is taken as applied, so a MariaDB
position is one interval ``1-N`` per (domain, server_id). A ``GtidSet`` holds both kinds as sources mapped
to interval lists, so ``contains``, ``subtract`` and ``count`` work the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(:[A-Za-z_][A-Za-z0-9_]{0,31})?$")
_MARIADB = re.compile(r"^(\d+)-(\d+)-(\d+)$")

Interval = tuple[int, int]  # inclusive


class GtidParseError(ValueError):
    """Text that is not a GTID set of either flavor."""


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping inclusive intervals; adjacent ones joined ((1, 2), (3, 3) -> (1, 3))."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def minus_intervals(have: list[Interval], remove: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in have:
        pieces = [(lo, hi)]
        for rlo, rhi in remove:
            nxt: list[Interval] = []
            for plo, phi in pieces:
                if rhi < plo or rlo > phi:
                    nxt.append((plo, phi))
                    continue
                if plo < rlo:
                    nxt.append((plo, rlo - 1))
                if phi > rhi:
                    nxt.append((rhi + 1, phi))
            pieces = nxt
        out.extend(pieces)
    return out


@dataclass(frozen=True)
class GtidSet:
    """A set of transactions: source -> sorted, merged, inclusive intervals.

    The source is a UUID string (MySQL, with its tag if any) or ``(domain, server_id)`` (MariaDB).
    """

    sources: dict[str | tuple[int, int], list[Interval]] = field(default_factory=dict)
    flavor: str = ""  # "mysql" | "mariadb" | "" (empty set, either)

    @classmethod
    def parse(cls, text: str | None) -> GtidSet:
        """Parse either flavor's text form; raise GtidParseError on anything else."""
        body = (text or "").replace("\n", "").replace(" ", "").strip().strip(",")
        if not body:
            return cls()
        sources: dict[str | tuple[int, int], list[Interval]] = {}
        flavors: set[str] = set()
        current: str | None = None
        for part in body.split(","):
            m = _MARIADB.match(part)
            if m:
                domain, server, seqno = (int(x) for x in m.groups())
                sources.setdefault((domain, server), []).append((1, seqno))
                flavors.add("mariadb")
                continue
            bits = part.split(":")
            if not bits or not bits[0]:
                raise GtidParseError(f"not a GTID set: {text!r}")
            head = bits[0]
            rest = bits[1:]
            if rest and re.match(r"^[A-Za-z_]", rest[0]):  # uuid:tag:1-5
                head, rest = f"{head}:{rest[0]}", rest[1:]
            if not _UUID.match(head) or not rest:
                raise GtidParseError(f"not a GTID set: {text!r}")
            current = head.lower()
            for rng in rest:
                lo, _, hi = rng.partition("-")
                if not lo.isdigit() or (hi and not hi.isdigit()):
                    raise GtidParseError(f"bad interval {rng!r} in GTID set {text!r}")
                a, b = int(lo), int(hi or lo)
                if b < a:
                    raise GtidParseError(f"bad interval {rng!r} in GTID set {text!r}")
                sources.setdefault(current, []).append((a, b))
            flavors.add("mysql")
        if len(flavors) > 1:
            raise GtidParseError(f"GTID set mixes MariaDB and MySQL forms: {text!r}")
        return cls({k: merge_intervals(v) for k, v in sources.items()}, flavors.pop())

    # --- set algebra ------------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return any(self.sources.values())

    def count(self) -> int:
        """How many transactions the set holds."""
        return sum(hi - lo + 1 for ivs in self.sources.values() for lo, hi in ivs)

    def union(self, other: GtidSet) -> GtidSet:
        keys = set(self.sources) | set(other.sources)
        merged = {k: merge_intervals(self.sources.get(k, []) + other.sources.get(k, [])) for k in keys}
        return GtidSet(merged, self.flavor or other.flavor)

    def subtract(self, other: GtidSet, by_source: bool = False) -> GtidSet:
        """The transactions of this set that ``other`` lacks.

        MariaDB seqnos count per domain whoever wrote them, so a position is compared per domain: what lies
        above ``other``'s highest seqno in that domain (kept under this set's server_id). ``by_source``
        compares per (domain, server_id) instead, as errant-transaction detection on binlog states must:
        a server's own writes are errant when the other never had that server's seqnos.
        """
        out: dict[str | tuple[int, int], list[Interval]] = {}
        if "mariadb" in (self.flavor, other.flavor) and not by_source:
            theirs = {d: other.domain_last(d) for d in other.domains()}
            for k, v in self.sources.items():
                if isinstance(k, tuple):
                    out[k] = minus_intervals(v, [(1, theirs.get(k[0], 0))])
        else:
            out = {k: minus_intervals(v, other.sources.get(k, [])) for k, v in self.sources.items()}
        return GtidSet({k: v for k, v in out.items() if v}, self.flavor)

    def ranges(self, by_source: bool = False) -> list[str]:
        """Readable ranges: ``uuid:101-110`` (MySQL), ``0-1-101..110`` (MariaDB, per domain and server_id) or
        ``domain 0: 101..110`` (MariaDB positions, per domain)."""
        out: list[str] = []
        if self.flavor != "mariadb":
            for k, ivs in self.items():
                out += [f"{k}:{lo}-{hi}" for lo, hi in ivs]
            return out
        if by_source:
            for k, ivs in self.items():
                assert isinstance(k, tuple)
                out += [f"{k[0]}-{k[1]}-{lo}..{hi}" for lo, hi in ivs]
            return out
        for d in sorted(self.domains()):
            ivs = [iv for k, v in self.sources.items() if isinstance(k, tuple) and k[0] == d for iv in v]
            out.append(f"domain {d}: {min(lo for lo, _ in ivs)}..{max(hi for _, hi in ivs)}")
        return out

    __sub__ = subtract

    def contains(self, other: GtidSet) -> bool:
        """True when every transaction of ``other`` is in this set."""
        return not other.subtract(self)

    def domains(self) -> set[int]:
        """MariaDB replication domains present (empty for MySQL)."""
        return {k[0] for k in self.sources if isinstance(k, tuple)}

    def domain_last(self, domain: int) -> int:
        """MariaDB: the highest seqno in ``domain``, whichever server wrote it."""
        return max((ivs[-1][1] for k, ivs in self.sources.items() if isinstance(k, tuple) and k[0] == domain
                    and ivs), default=0)

    def last(self, source: str | tuple[int, int]) -> int:
        ivs = self.sources.get(source) or []
        return ivs[-1][1] if ivs else 0

    def items(self) -> Iterator[tuple[str | tuple[int, int], list[Interval]]]:
        return iter(sorted(self.sources.items(), key=lambda kv: str(kv[0])))

    def describe_source(self, source: str | tuple[int, int]) -> str:
        if isinstance(source, tuple):
            return f"domain {source[0]}, server_id {source[1]}"
        return f"server uuid {source}"

    def __str__(self) -> str:
        if self.flavor == "mariadb":
            return ",".join(f"{k[0]}-{k[1]}-{v[-1][1]}" for k, v in self.items() if isinstance(k, tuple) and v)
        parts = []
        for k, ivs in self.items():
            rngs = ":".join(f"{lo}-{hi}" if hi != lo else str(lo) for lo, hi in ivs)
            parts.append(f"{k}:{rngs}")
        return ",".join(parts)

    def describe(self) -> str:
        """Human text: each source with its transaction numbers (MariaDB: per domain and server_id)."""
        if not self:
            return "none"
        parts = []
        for k, ivs in self.items():
            rngs = ", ".join(f"{lo}-{hi}" if hi != lo else str(lo) for lo, hi in ivs)
            parts.append(f"{self.describe_source(k)}: #{rngs}")
        return "; ".join(parts)


def transactions_between(before: str | None, after: str | None) -> int:
    """How many transactions ``after`` has that ``before`` lacks, for either flavor."""
    return GtidSet.parse(after).subtract(GtidSet.parse(before)).count()
