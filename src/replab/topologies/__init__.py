"""Topologies: the shape of a cluster. ``star`` (one primary, its replicas) is the default.

A registry, not a chain of ifs: a shape is a subclass of ``Topology`` listed in ``TOPOLOGIES``.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigError
from .active_active import ActiveActive
from .base import PRIMARY, REPLICA, Edge, Topology, short
from .chain import Chain
from .fan_in import FanIn
from .galera import Galera
from .group import Group, GroupMultiPrimary
from .ring import Ring
from .star import Star

TOPOLOGIES: dict[str, Topology] = {t.name: t for t in (Star(), Chain(), FanIn(), ActiveActive(), Ring(),
                                                    Group(), GroupMultiPrimary(), Galera())}
DEFAULT = "star"


def get_topology(name: str | None) -> Topology:
    """The shape registered under ``name`` (None: the star)."""
    try:
        return TOPOLOGIES[name or DEFAULT]
    except KeyError:
        raise ConfigError(f"unknown topology {name!r}: choose one of {', '.join(TOPOLOGIES)}",
                          hint="replab topology list shows them") from None


def from_state(state: dict[str, Any]) -> tuple[Topology, list[Edge]]:
    """A cluster's shape and edges from its cluster.json; one written before topologies is a star."""
    data = state.get("topology") or {}
    topo = get_topology(data.get("name") if isinstance(data, dict) else None)
    names = [str(n["name"]) for n in state.get("nodes", [])]
    raw = data.get("edges") if isinstance(data, dict) else None
    if isinstance(raw, list) and raw:
        return topo, [Edge.from_dict(e) for e in raw]
    primary = [str(n["name"]) for n in state.get("nodes", []) if n.get("role") == PRIMARY]
    if topo.name == DEFAULT and len(primary) == 1:  # the star does not store its edges: its roles say them
        return topo, [Edge(primary[0], str(n["name"])) for n in state.get("nodes", []) if n.get("role") == REPLICA]
    return topo, topo.edges(names)


__all__ = ["TOPOLOGIES", "DEFAULT", "PRIMARY", "REPLICA", "Edge", "Topology", "get_topology", "from_state", "short"]
