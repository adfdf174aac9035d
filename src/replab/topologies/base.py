"""The Topology contract: the shape of a cluster (who replicates from whom, who takes writes, who must end up
holding whose writes, what each node needs configured, which faults and role changes are defined).

A ``Topology`` is to shapes what an ``Engine`` is to places: one module per shape behind the registry in
``__init__.py``. It knows nothing of servers or connections; the builder, status, feed and check ask it.
Everything here is pure, so the rules are unit-tested without servers.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from ..core.config import MAX_NODES
from ..core.errors import ConfigError, NotSupported

PRIMARY, REPLICA = "primary", "replica"
ROLE_CHANGES = ("switchover", "failover", "repoint", "rejoin")
NODE_FAULTS = ("kill", "stop", "start", "pause", "resume")  # node-level: defined on every shape
_CHANNEL = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass(frozen=True)
class Edge:
    """One replication link: ``replica`` applies what ``source`` logs, over connection/channel ``channel``
    ("" is the replica's single default connection; named ones are for a replica of several sources)."""

    source: str
    replica: str
    channel: str = ""

    def __post_init__(self) -> None:
        if self.channel and not _CHANNEL.match(self.channel):
            raise ConfigError(f"invalid channel name {self.channel!r}: lower-case letters, digits, underscores")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edge:
        return cls(str(data["source"]), str(data["replica"]), str(data.get("channel") or ""))

    @property
    def link(self) -> str:
        """The name of this edge's link (the local engine's relay): the replica's name for its default
        connection (as the star has always had), ``replica.channel`` for a named one."""
        return self.replica if not self.channel else f"{self.replica}.{self.channel}"

    def describe(self) -> str:
        return f"{self.source} -> {self.replica}" + (f" ({self.channel})" if self.channel else "")


def short(name: str) -> str:
    """``mysql-m1`` -> ``m1`` (channel names and per-writer table names)."""
    return name.split("-", 1)[1] if name.startswith("mysql-") else name.replace("-", "_")


class Topology(ABC):
    """A shape of asynchronous replication over ``count`` nodes. Subclasses set the class attributes and
    implement ``node_names`` and ``edges``; the rest follows from them (and can be overridden)."""

    name: str = ""
    summary: str = ""
    min_nodes: int = 2
    max_nodes: int = MAX_NODES
    default_nodes: int = 3
    #: the role changes this shape defines (a subset of ROLE_CHANGES); others are refused with a hint
    role_changes: frozenset[str] = frozenset()
    #: faults beyond the node-level ones (kill, stop, start, pause, resume) that apply to this shape
    link_faults: frozenset[str] = frozenset()
    #: loops (a node applying, through others, its own writes) are what the shape is made of
    allows_loops: bool = False
    #: the members commit together (Galera, Group Replication): no asynchronous edges, every member holds
    #: every write once it is acknowledged; status, waits and starts take the shape's own path
    virtually_synchronous: bool = False
    #: the server flavors that can run this shape (others are refused before anything is created)
    flavors: tuple[str, ...] = ("mariadb", "mysql")
    #: the primary is elected by the servers themselves and found from them (not cluster.json's roles)
    dynamic_primary: bool = False
    #: every member takes writes (group multi-primary)
    multi_primary: bool = False

    # --- declared by each shape -------------------------------------------------------------------
    @abstractmethod
    def node_names(self, count: int) -> list[str]:
        """The node names of this shape with ``count`` nodes (call ``check_count`` first)."""

    @abstractmethod
    def edges(self, names: list[str]) -> list[Edge]:
        """The replication edges over ``names`` (as returned by ``node_names``)."""

    @abstractmethod
    def writers(self, names: list[str]) -> list[str]:
        """The nodes that take writes."""

    # --- derived ------------------------------------------------------------------------------------
    def check_count(self, count: int, source: str = "--nodes") -> None:
        """Raise ConfigError (with the counts this shape can have) unless ``count`` fits it."""
        if not isinstance(count, int) or not self.min_nodes <= count <= self.max_nodes:
            raise ConfigError(f"{source} {count}: a {self.name} has {self.count_text()}",
                              hint=f"e.g. replab up --topology {self.name} --nodes {self.default_nodes}")

    def count_text(self) -> str:
        return f"{self.min_nodes} to {self.max_nodes} nodes" if self.min_nodes < self.max_nodes \
            else f"exactly {self.min_nodes} nodes"

    def role(self, name: str, names: list[str]) -> str:
        return PRIMARY if name in self.writers(names) else REPLICA

    def multi_writer(self, names: list[str]) -> bool:
        return len(self.writers(names)) > 1

    def sources_of(self, replica: str, edges: list[Edge]) -> list[Edge]:
        return [e for e in edges if e.replica == replica]

    def holders(self, writer: str, names: list[str], edges: list[Edge]) -> list[str]:
        """The nodes that must end up holding ``writer``'s writes: itself and every node downstream of it
        along the edges (what ``check`` verifies)."""
        seen = [writer]
        frontier = [writer]
        while frontier:
            nxt = []
            for node in frontier:
                for e in edges:
                    if e.source == node and e.replica not in seen:
                        seen.append(e.replica)
                        nxt.append(e.replica)
            frontier = nxt
        return [n for n in names if n in seen]

    def expected_holdings(self, names: list[str], edges: list[Edge] | None = None) -> dict[str, list[str]]:
        """{node: the writers whose writes it must hold}."""
        edges = self.edges(names) if edges is None else edges
        out: dict[str, list[str]] = {n: [] for n in names}
        for w in self.writers(names):
            for h in self.holders(w, names, edges):
                out[h].append(w)
        return out

    def writer_table(self, writer: str, names: list[str], base: str = "events") -> str:
        """The table a feed on ``writer`` writes: ``events`` where one node takes writes (the star's, so a
        promoted primary keeps writing it), ``events_<writer>`` per writer where several do (each writer's
        acknowledged ids are then its own ledger)."""
        return base if not self.multi_writer(names) else f"{base}_{short(writer)}"

    def server_options(self, name: str, names: list[str], flavor: str) -> dict[str, str]:
        """The per-node settings this shape needs (merged into the node's config file).

        log_slave_updates stays on every node (replab's default; it makes an intermediate source log what
        it applies); each writer of a multi-writer shape gets its own MariaDB ``gtid_domain_id`` (else
        gtid_strict_mode stops a replica of two primaries with out-of-order errors) and, where writers
        replicate each other, its own auto_increment offset; replicate_same_server_id stays off, so a node
        skips its own writes coming round a loop."""
        writers = self.writers(names)
        opts: dict[str, str] = {"log_slave_updates": "1"}
        if len(writers) > 1 and name in writers:
            index = writers.index(name)
            if flavor == "mariadb":
                opts["gtid_domain_id"] = str(index + 1)
            if self.allows_loops:
                opts["auto_increment_increment"] = str(len(writers))
                opts["auto_increment_offset"] = str(index + 1)
        if self.allows_loops:
            opts["replicate_same_server_id"] = "0"
        return opts

    def bootstrap_nodes(self, names: list[str], edges: list[Edge]) -> list[str]:
        """Where accounts and schema are created (binlogged, so they replicate): every node no edge feeds,
        or the first writer when every node has a source (a ring)."""
        fed = {e.replica for e in edges}
        roots = [n for n in names if n not in fed]
        return roots or self.writers(names)[:1]

    def require_role_change(self, kind: str) -> None:
        """Refuse a role change this shape does not define, before anything changes."""
        if kind not in self.role_changes:
            have = ", ".join(sorted(self.role_changes)) or "none"
            article = "an" if self.name[0] in "aeiou" else "a"
            raise NotSupported(f"{kind} is not defined for {article} {self.name} topology (its role changes: {have})",
                               hint=self.role_change_hint(kind))

    def role_change_hint(self, kind: str) -> str:
        return "replab topology list shows what each shape defines"

    # --- role changes: which node may be promoted, and the edges afterwards (failover.py asks) -------------
    def promotable(self, primary: str, edges: list[Edge]) -> list[str]:
        """The nodes a switchover or failover may promote: the primary's own replicas (over a single default
        connection). A node further down (a chain's tail) first moves under the primary: replab repoint."""
        return [e.replica for e in edges if e.source == primary and not e.channel
                and len([x for x in edges if x.replica == e.replica]) == 1]

    def switchover_edges(self, old: str, new: str, edges: list[Edge]) -> list[Edge]:
        """The edges after a switchover from ``old`` to its replica ``new``: the two swap places. The star's
        ``m -> s1, m -> s2`` becomes ``s1 -> m, s1 -> s2``; a chain's ``m -> s1 -> s2`` becomes
        ``s1 -> m -> s2`` (still a chain; a switchover back restores it). Every node that changes source
        gets one that holds all it has: ``new`` applied ``old``'s last transaction, ``old`` is fenced."""
        swap = {old: new, new: old}
        return [Edge(swap.get(e.source, e.source), swap.get(e.replica, e.replica), e.channel) for e in edges]

    def failover_edges(self, old: str, new: str, edges: list[Edge], left_out: Collection[str] = ()) -> list[Edge]:
        """The edges after ``old`` died and its replica ``new`` was promoted: ``old`` has none (it is demoted
        until rejoin), its other replicas replicate from ``new``, every other edge stays (a chain's
        ``m -> s1 -> s2`` becomes ``s1 -> s2``). A node in ``left_out`` (it holds transactions ``new``
        lacks) has no edge either."""
        out = []
        for e in edges:
            if e.replica == old or e.replica in left_out or (e.source == old and e.replica == new):
                continue
            out.append(Edge(new, e.replica, e.channel) if e.source == old else e)
        return out

    def rejoin_source(self, node: str, primary: str, edges: list[Edge]) -> str:
        """Where a former primary (or a replica left out) replicates from when it rejoins: the primary."""
        return primary

    def require_fault(self, fault: str) -> None:
        if fault not in NODE_FAULTS and fault not in self.link_faults:
            raise NotSupported(f"{fault} is not defined for a {self.name} topology yet (it defines "
                               f"{', '.join(sorted((*NODE_FAULTS, *self.link_faults)))})",
                               hint="use kill, stop and start of a node (replab topology list)")

    def would_loop(self, replica: str, source: str, edges: list[Edge]) -> bool:
        """Whether making ``replica`` replicate from ``source`` (instead of its current sources) closes a
        cycle: ``source`` already applies, through the others, what ``replica`` logs."""
        rest = [e for e in edges if e.replica != replica]
        return source == replica or _reaches(replica, source, rest)

    def describe(self, count: int | None = None) -> dict[str, Any]:
        """What ``replab topology list`` shows."""
        count = self.default_nodes if count is None else count
        names = self.node_names(count)
        edges = self.edges(names)
        return {"name": self.name, "summary": self.summary, "nodes": self.count_text(),
                "example": names, "edges": [e.describe() for e in edges], "writers": self.writers(names),
                "faults": sorted((*NODE_FAULTS, *self.link_faults)), "role_changes": sorted(self.role_changes)}


def _reaches(start: str, goal: str, edges: list[Edge]) -> bool:
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for e in edges:
            if e.source == node and e.replica not in seen:
                if e.replica == goal:
                    return True
                seen.add(e.replica)
                frontier.append(e.replica)
    return False
