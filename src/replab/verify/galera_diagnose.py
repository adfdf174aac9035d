"""``replab diagnose`` on a Galera cluster: one plain explanation per node, from each node's own wsrep state
(``SHOW GLOBAL STATUS LIKE 'wsrep%'``: cluster status, component size, local state, receive queue, gcache
range), and for a node that is down, from its ``grastate.dat``.

The case that needs explaining most is a node in a non-Primary component: it refuses every query (1047)
until it is in a Primary component again. When a majority still runs (the node is cut off, a minority) it
comes back by itself on heal; when no Primary component is left anywhere (quorum lost), only an operator
can make one, with ``pc.bootstrap=YES`` on the node with the latest state. That is a decision with a risk,
and the diagnosis says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cluster import galera
from ..engines.base import PAUSED, RUNNING
from .diagnosis import Diagnosis

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

PRIMARY = "Primary"
BOOTSTRAP_SQL = "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'"
BOOTSTRAP_RISK = ("risk: the bootstrapped node becomes a new Primary component on its own. If the nodes it "
                  "cannot see still run and one of them is bootstrapped too (or they regain quorum among "
                  "themselves), two clusters accept writes (split brain); bootstrap ONE side only, after making "
                  "sure the others are down or fenced. Writes the others acknowledged that this node never "
                  "received are lost to the new component: when they rejoin, their data is replaced by a state "
                  "transfer from it")


def is_galera(cluster: Any) -> bool:
    return getattr(cluster.topology, "name", "") == "galera"


def diagnose_galera(cluster: Cluster, node: str | None = None) -> list[Diagnosis]:
    """A ``Diagnosis`` for each node (or just ``node``); every node's state is read once."""
    views = {n: galera.node_wsrep(cluster, n) for n in cluster.names}
    wanted = [cluster.node(node).name] if node else cluster.names
    return [_one(cluster, name, views) for name in wanted]


def _int(value: Any, default: int = -1) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _primary(views: dict[str, dict[str, str] | None]) -> dict[str, dict[str, str]]:
    return {n: v for n, v in views.items() if v and v.get("wsrep_cluster_status") == PRIMARY}


def _one(cluster: Cluster, name: str, views: dict[str, dict[str, str] | None]) -> Diagnosis:
    total = len(cluster.names)
    view = views.get(name)
    if view is None:
        state = cluster.engine.state(cluster.node(name))
        if state == PAUSED:
            return _paused(name, views, total)
        if state != RUNNING:
            return _down(cluster, name, state, views)
        return Diagnosis(name, "down", "runs but does not answer (hung, or busy with a state transfer)",
                         next_writes=[f"see its error log: {cluster.node(name).errlog}"])
    status = view.get("wsrep_cluster_status", "?")
    local = view.get("wsrep_local_state_comment", "?")
    size = _int(view.get("wsrep_cluster_size"), 0)
    if status != PRIMARY:
        return _non_primary(cluster, name, view, views, total)
    newest = max(_int(v.get("wsrep_cluster_conf_id"), 0) for v in _primary(views).values())
    if _int(view.get("wsrep_cluster_conf_id"), 0) < newest:  # e.g. just resumed: has not seen the views since
        return Diagnosis(name, "drift", f"{local} in a Primary component of {size}, but its view is old "
                         f"(configuration {view.get('wsrep_cluster_conf_id')}, the others are at {newest}): it was "
                         "paused or cut off and has not processed the membership changes yet; it takes no part in "
                         "the others' commits until it rejoins (by IST)",
                         next_writes=["wait a few seconds, then replab diagnose again"])
    if local == galera.SYNCED:
        queue = _int(view.get("wsrep_local_recv_queue"), 0)
        tail = f"; {queue} writeset(s) waiting to be applied" if queue else ""
        return Diagnosis(name, "ok", f"Synced in the Primary component ({size} of {total} nodes, last committed seqno "
                         f"{view.get('wsrep_last_committed', '?')}){tail}")
    return _transfer(cluster, name, local, view, views)


def _transfer(cluster: Cluster, name: str, local: str, view: dict[str, str],
              views: dict[str, dict[str, str] | None]) -> Diagnosis:
    """Joiner / Joined / Donor/Desynced: a state transfer (or a desync) in progress."""
    queue = _int(view.get("wsrep_local_recv_queue"), 0)
    joiners = [n for n, v in views.items() if v and n != name and v.get("wsrep_local_state_comment") == "Joiner"]
    donors = [n for n, v in views.items() if v and n != name and v.get("wsrep_local_state_comment") == "Donor/Desynced"]
    if local == "Joiner":
        frm = f" from {', '.join(donors)}" if donors else ""
        return Diagnosis(name, "drift", f"is a Joiner: a state transfer{frm} is in progress (IST of the writesets it "
                         "missed, or a full SST when the donor's gcache no longer holds them); it takes no queries "
                         "until it is Synced",
                         next_writes=["wait: it goes Joined, then Synced, by itself (replab status shows it; its error "
                                      f"log {cluster.node(name).errlog} says whether IST or SST)"])
    if local == "Joined":
        return Diagnosis(name, "drift", f"is Joined: it received its state and now applies the writesets queued "
                         f"meanwhile ({queue} waiting) before it is Synced",
                         next_writes=["wait: it goes Synced by itself"])
    if local == "Donor/Desynced":
        to = f" to {', '.join(joiners)}" if joiners else ""
        what = (f"is a Donor: it sends a state transfer{to}" if joiners else
                "is Desynced (a donor, or wsrep_desync=ON): it is out of flow control and may lag")
        return Diagnosis(name, "drift", f"{what}; it still takes writes but applies the cluster's writesets late "
                         f"({queue} waiting) until the transfer ends",
                         next_writes=["wait: it goes Joined, then Synced, by itself; if it stays Desynced with no "
                                      f"joiner, replab sql {name} \"SET GLOBAL wsrep_desync=OFF\""])
    return Diagnosis(name, "drift", f"is in the Primary component but {local} (not Synced yet)",
                     next_writes=["wait, then replab diagnose again"])


def _non_primary(cluster: Cluster, name: str, view: dict[str, str], views: dict[str, dict[str, str] | None],
                 total: int) -> Diagnosis:
    size = _int(view.get("wsrep_cluster_size"), 0)
    primary = _primary(views)
    seen = f"it sees {size} of the {total} nodes (needs more than {total // 2} for a Primary component)"
    if primary:  # a majority goes on without it: this one is a minority
        others = ", ".join(primary)
        return Diagnosis(
            name, "broken",
            f"non-Primary: quorum lost here, {seen}; the majority ({others}) is a Primary component and goes on "
            "without it. Every query here is refused (1047 WSREP has not yet prepared node for application use): "
            "a write is never acknowledged",
            causes=[f"{name} cannot reach the others (a partition, or it was paused longer than "
                    "evs.suspect_timeout): replab status shows the cut"],
            next_writes=[f"heal the network and {name} rejoins by itself (IST from a donor's gcache, else SST); do "
                         f"NOT force it with {BOOTSTRAP_SQL}: the majority is alive, bootstrapping {name} would make "
                         "a second cluster taking writes (split brain): the two never merge again, one side's "
                         "writes are discarded (replaced by a state transfer)"])
    running = {n: v for n, v in views.items() if v}
    latest = max(running, key=lambda n: _int(running[n].get("wsrep_last_committed")))
    down = [n for n in cluster.names if n not in running]
    gone = f"; {', '.join(down)} {'is' if len(down) == 1 else 'are'} down or not answering" if down else ""
    back = (f"the down node(s) cannot join a non-Primary component (replab start {down[0]} refuses: bootstrapping "
            "it would split the cluster); " if down else "when the others are reachable again (heal, resume) a "
            "Primary component forms by itself; ")
    return Diagnosis(
        name, "broken",
        f"non-Primary: quorum lost, {seen}{gone}. No node is in a Primary component: every node refuses "
        "queries (1047) until one is",
        causes=["the others cannot be reached (down, paused or cut off): Galera cannot tell a crash from a "
                "partition, so no side may go on alone"],
        next_writes=[f"{back}to restore writes now, bootstrap the node with the latest state ({latest}, last "
                     f"committed seqno {running[latest].get('wsrep_last_committed', '?')}): replab sql {latest} "
                     f"\"{BOOTSTRAP_SQL}\"; once it is Primary (a moment later: replab status), the others rejoin "
                     "it by IST or SST (replab start the ones that are down)", BOOTSTRAP_RISK])


def _paused(name: str, views: dict[str, dict[str, str] | None], total: int) -> Diagnosis:
    primary = _primary(views)
    sizes = {_int(v.get("wsrep_cluster_size"), 0) for v in primary.values()}
    if primary and max(sizes) < total:
        where = (f"the others ({', '.join(primary)}) evicted it after evs.suspect_timeout and go on without it; "
                 "on resume it rejoins by IST")
    else:
        where = ("it is still a member: every commit on every node waits for it (flow control and the group "
                 "commit hold the whole cluster) until it is resumed, or evicted after evs.suspect_timeout (5 s)")
    return Diagnosis(name, "down", f"is paused (SIGSTOP): it answers nothing; {where}",
                     next_writes=[f"replab resume {name}"])


def _down(cluster: Cluster, name: str, state: str, views: dict[str, dict[str, str] | None]) -> Diagnosis:
    """A node that is not running: how it will come back, from its saved state and the donors' gcache."""
    saved = galera.grastate(Path(cluster.node(name).datadir))
    primary = _primary(views)
    seqno = _int(saved.get("seqno"))
    how: str
    if not primary:
        running = [n for n, v in views.items() if v]
        if running:
            verb = "runs" if len(running) == 1 else "run"
            how = (f"no node is in a Primary component ({', '.join(running)} {verb} without quorum): it would have "
                   f"nothing to join, and replab start refuses to bootstrap beside them; see: replab diagnose "
                   f"{running[0]}")
        else:
            how = ("no node runs: replab up bootstraps from the node with the latest position (a crashed node's "
                   "is recovered from InnoDB with --wsrep-recover first); the others join it by IST or SST")
        crashed = "; crashed: grastate seqno -1" if seqno < 0 else f"; saved seqno {seqno}"
        return Diagnosis(name, "down", f"is down ({state}{crashed})", next_writes=[how])
    donor, dv = max(primary.items(), key=lambda kv: _int(kv[1].get("wsrep_last_committed")))
    last = _int(dv.get("wsrep_last_committed"))
    cached = _int(dv.get("wsrep_local_cached_downto"))
    cluster_uuid = dv.get("wsrep_local_state_uuid") or dv.get("wsrep_cluster_state_uuid")
    gcache = f"{donor}'s gcache holds seqno {cached} to {last}" if cached > 0 else f"{donor} is at seqno {last}"
    if saved.get("uuid", "").strip("0-") == "" and saved.get("uuid"):
        how = ("it has no state (grastate uuid all zeros: a state transfer failed or never finished; see its error "
               "log): it rejoins by a full SST (mariabackup)")
    elif cluster_uuid and saved.get("uuid") and saved.get("uuid") != cluster_uuid:
        how = (f"its saved state is from another history ({saved.get('uuid')}, the cluster's is {cluster_uuid}): "
               "it rejoins by a full SST (mariabackup)")
    elif seqno < 0:
        why = "it crashed (grastate seqno -1)" if saved.get("uuid") else "it has no grastate.dat"
        how = (f"{why}: replab start first reads its last committed position from InnoDB "
               f"(--wsrep-recover); it rejoins by IST if what it missed is still in the gcache ({gcache}), else "
               "by a full SST (mariabackup)")
    elif cached > 0 and seqno + 1 < cached:
        how = (f"it has seqno {seqno}, {_n(last - seqno, 'writeset')} behind, and {gcache}: the gap is gone from the "
               "gcache, so it rejoins by a full SST (mariabackup)")
    else:
        how = (f"it has seqno {seqno}, {_n(max(0, last - seqno), 'writeset')} behind; {gcache}: it rejoins by IST")
    if max(_int(v.get("wsrep_cluster_size"), 0) for v in primary.values()) >= len(cluster.names):
        others = (f"{', '.join(primary)} still count it as a member: commits wait until they evict it "
                  "(evs.suspect_timeout, 5 s), then they go on without it")
    else:
        others = f"{', '.join(primary)} {'goes' if len(primary) == 1 else 'go'} on in the Primary component without it"
    return Diagnosis(name, "down", f"is down ({state}); {others}", next_writes=[f"replab start {name}: {how}"])

