"""Who is the primary, as seen by long-running writers, and which primary acknowledged which ledger id.

A promotion (``failover.py``) rewrites the roles in ``cluster.json``. A feed or heartbeat started in another
process holds its own ``Cluster``; ``refresh()`` re-reads the roles when that file changed, so writers follow
the primary across a switchover or failover. While a role change is under way the state carries a
``transition`` and ``writable_primary()`` answers None: nobody should write then.

The ledger says which ids were acknowledged, not by whom. Each feed appends *epochs* to
``<home>/ledger/<table>.epochs``: "from id N on, the primary was P" (one JSON object a line), written when it
starts and whenever it finds a new primary. Ids are taken after a writer connected, so an id at or above an
epoch's start can only have been acknowledged by that epoch's primary (the one before it is fenced or dead
by then). The checker uses this to tell an acknowledged write lost in a failover from a missing row.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import validate_identifier
from ..topologies import Edge, from_state
from . import group

if TYPE_CHECKING:
    from ..engines.base import NodeInfo
    from .cluster import Cluster

PRIMARY, REPLICA, DEMOTED = "primary", "replica", "demoted"
STATE_FILE = "cluster.json"
_seen: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_mu = threading.Lock()


def refresh(cluster: Cluster) -> bool:
    """Re-read roles, node extras, the role-change history and any transition from cluster.json if the
    file changed since this process last looked. True when something was reloaded."""
    path = Path(cluster.home) / STATE_FILE
    with _mu:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return False
        if _seen.get(cluster) == mtime:
            return False
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return False  # mid-replace or removed: keep what we know, look again next time
        _seen[cluster] = mtime
        on_disk = {n.get("name"): n for n in state.get("nodes", []) if isinstance(n, dict)}
        for node in cluster.nodes:
            fresh = on_disk.get(node.name)
            if fresh:
                node.role = str(fresh.get("role", node.role))
                node.extra = dict(fresh.get("extra") or {})
        if isinstance(state.get("topology"), dict) or cluster.topology.name == "star":
            cluster.edges = from_state({**state, "nodes": [n.to_dict() for n in cluster.nodes]})[1]  # moved too
        for key in ("role_changes", "transition"):
            if key in state:
                cluster.state[key] = state[key]
            else:
                cluster.state.pop(key, None)
    if cluster.topology.dynamic_primary:  # the roles on disk may be older than the group's last election
        group.follow_primary(cluster)
    return True


def set_edges(cluster: Cluster, edges: list[Edge]) -> None:
    """Replace the cluster's replication edges and save them, atomically with respect to ``refresh`` in
    other threads (a feed's, a sampler's): one of those reading the file just before would otherwise put the
    old edges back in between, and the save would store them."""
    with _mu:
        cluster.edges = list(edges)
        cluster.save()


def writable_primary(cluster: Cluster, reload: bool = True) -> NodeInfo | None:
    """The node writers should use now, or None while a role change is under way."""
    if reload:
        refresh(cluster)
    if cluster.state.get("transition"):
        return None
    if cluster.topology.dynamic_primary:  # elected by the servers (Group Replication): as the group says now
        found = group.current_primary(cluster)
        return cluster.node(found) if found else None
    return next((n for n in cluster.nodes if n.role == PRIMARY), None)


def role_changes(cluster: Cluster) -> list[dict[str, Any]]:
    """Every promotion so far, oldest first (what ``failover.py`` recorded)."""
    return list(cluster.state.get("role_changes") or [])


# --- epochs: which primary acknowledged which ids ---------------------------------------------------
@dataclass
class Epoch:
    from_id: int
    primary: str
    at: float  # wall clock


def epochs_path(home: Path, table: str = "events") -> Path:
    validate_identifier(table, "table name")
    return Path(home) / "ledger" / f"{table}.epochs"


def record_epoch(home: Path, table: str, from_id: int, primary: str) -> None:
    """Append "from ``from_id`` on, ``primary`` acknowledges" (skipped when it says nothing new)."""
    path = epochs_path(home, table)
    known = read_epochs(home, table)
    if known and known[-1].primary == primary:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps({"from_id": int(from_id), "primary": primary, "at": time.time()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(line)


def read_epochs(home: Path, table: str = "events") -> list[Epoch]:
    """The epochs of a ledger, by id (empty when no feed recorded any)."""
    path = epochs_path(home, table)
    out: list[Epoch] = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            data = json.loads(line)
            out.append(Epoch(int(data["from_id"]), str(data["primary"]), float(data.get("at", 0))))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from a writer that was killed
    return sorted(out, key=lambda e: e.from_id)


def acknowledged_by(epochs: list[Epoch], id_: int) -> str | None:
    """The primary that held the role when id ``id_`` was written (None before the first epoch)."""
    owner = None
    for e in epochs:
        if e.from_id > id_:
            break
        owner = e.primary
    return owner
