"""Partitions between the members of a group (Group Replication) or a Galera cluster.

``isolate(cluster, nodes, direction)`` cuts each named member off from every other member (so
``isolate(c, ["mysql-m", "mysql-s1"])`` leaves three singletons: no quorum anywhere), through the cluster's
member network (engines/membernet.py: a namespace per member, silent nft drops between them). replab itself
still reaches every member (status, diagnose, the feed's connections to a minority member), as a client on
the member's side of the cut would. ``heal`` removes the cuts. Each returns the sentence ``replab partition``
/ ``heal`` prints: what was cut, how the members will notice (their own timeouts, read from the servers
before the cut), and how to heal.

Directions (one member's view): ``both``; ``out``: nothing it sends reaches the others (it still hears
them); ``in``: it hears nothing from them (what it sends still arrives). TCP needs both ways, so a one-way
cut stops every connection; what differs is what each side's failure detector still receives.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.errors import ConfigError, NodeStateError, NotSupported, SqlError
from ..engines.base import RUNNING
from ..engines.membernet import MemberNet, unusable

if TYPE_CHECKING:
    from ..cluster.cluster import Cluster

DIRECTIONS = ("both", "out", "in")


def net_of(cluster: Cluster) -> MemberNet | None:
    """The cluster's member network (None: its nodes are not group members on one)."""
    return MemberNet.load(cluster.home)


def has_net(cluster: Cluster) -> bool:
    """Whether partitions of this cluster are between members: it has a member network, or its shape is a
    group/Galera one (then, without a network, isolate/heal say why there is none)."""
    return net_of(cluster) is not None or bool(getattr(cluster.topology, "virtually_synchronous", False))


def _net(cluster: Cluster) -> MemberNet:
    net = net_of(cluster)
    if net is None:
        why = unusable() or f"the cluster was built without one (engine {cluster.engine.name})"
        raise NotSupported(f"this cluster's members share one network, so they cannot be cut off from each "
                           f"other: {why}", hint="partitions between members need the local engine, as root, "
                           "with ip and nft (make system-deps DEPS=net); then replab down && replab up again")
    return net


def _kind(cluster: Cluster) -> str:
    name = getattr(cluster.topology, "name", "")
    return "galera" if "galera" in name else "group" if "group" in name else name


def _members(cluster: Cluster, net: MemberNet) -> list[str]:
    return [n.name for n in cluster.nodes if n.name in net.names]


def _check(cluster: Cluster, net: MemberNet, nodes: list[str]) -> list[str]:
    members = _members(cluster, net)
    if not nodes:
        raise ConfigError("name the member(s) to cut off, e.g. replab partition mysql-s2")
    for name in nodes:
        if name not in members:
            cluster.node(name)  # unknown node: the usual error naming the nodes
            raise ConfigError(f"{name} is not a group member on the member network ({', '.join(members)})")
    if len(set(nodes)) != len(nodes):
        raise ConfigError(f"a member is named twice: {' '.join(nodes)}")
    return members


def _first_answer(cluster: Cluster, names: list[str], statement: str) -> str | None:
    for name in names:
        try:
            if cluster.engine.state(cluster.node(name)) != RUNNING:
                continue
            rows = cluster.sql(name, statement, timeout=3).rows
            return str(rows[0][0]) if rows and rows[0][0] is not None else None
        except (SqlError, NodeStateError):
            continue
    return None


def _notice(cluster: Cluster, members: list[str]) -> str:
    """How the members will notice (their failure detector's settings, read now)."""
    kind = _kind(cluster)
    if kind == "group":
        raw = _first_answer(cluster, members, "SELECT CONCAT(@@group_replication_member_expel_timeout, ' ', "
                                              "@@group_replication_unreachable_majority_timeout)")
        expel, majority = (raw.split() + ["?", "?"])[:2] if raw else ("?", "?")
        hold = "forever (group_replication_unreachable_majority_timeout=0)" if majority == "0" else \
            f"for group_replication_unreachable_majority_timeout={majority}s, then it leaves the group in ERROR"
        return (f"the others see a cut member UNREACHABLE after ~5 s and expel it "
                f"group_replication_member_expel_timeout={expel}s later, if they keep a majority; a member in a "
                f"minority blocks its writes (they hang: never acknowledged) {hold}")
    if kind == "galera":
        opts = _first_answer(cluster, members, "SELECT @@wsrep_provider_options") or ""
        found = {k: v for k, v in re.findall(r"evs\.(suspect_timeout|inactive_timeout) = ([^;]+)", opts)}
        suspect, inactive = found.get("suspect_timeout", "PT5S").strip(), found.get("inactive_timeout",
                                                                                      "PT15S").strip()
        return (f"the others suspect a cut node after evs.suspect_timeout={suspect} and drop it from the view "
                f"(evs.inactive_timeout={inactive} at most); a node outside the primary component goes "
                "non-Primary and refuses queries (ERROR 1047 WSREP has not yet prepared node for application use)")
    return "the members notice through their own failure detector"


def _quorum(members: list[str], cut_off: list[str]) -> str:
    rest = [m for m in members if m not in cut_off]
    n = len(members)
    groups = [[m] for m in cut_off] + ([rest] if rest else [])
    major = [g for g in groups if 2 * len(g) > n]
    if major:
        keep = major[0]
        minority = [m for g in groups if g is not keep for m in g]
        return (f"{' and '.join(keep)} keep a majority ({len(keep)} of {n}) and go on; "
                f"{', '.join(minority)} {'is' if len(minority) == 1 else 'are'} in a minority")
    return f"no side has a majority of the {n} members: writes stop everywhere (quorum lost)"


def isolate(cluster: Cluster, nodes: list[str], direction: str | None = None) -> str:
    """Cut each of ``nodes`` off from every other member (``direction``: both, out, in); one sentence."""
    direction = direction or "both"
    if direction not in DIRECTIONS:
        raise ConfigError(f"--direction {direction!r}: for group/Galera members use out (nothing the member sends "
                          "arrives), in (it hears nothing) or leave it out for both")
    net = _net(cluster)
    members = _check(cluster, net, nodes)
    already = set(net.cuts())
    pairs = [(n, m) for n in nodes for m in members if m != n]
    wanted = {"both": [p for n, m in pairs for p in ((n, m), (m, n))], "out": pairs,
              "in": [(m, n) for n, m in pairs]}[direction]
    if set(wanted) <= already:
        raise NodeStateError(f"{' '.join(nodes)}: already cut off ({direction})",
                             hint=f"replab heal {' '.join(nodes)}")
    notice = _notice(cluster, members)  # before the cut, while every member answers
    for n, m in pairs:
        net.cut(n, m, {"both": "both", "out": "a-to-b", "in": "b-to-a"}[direction])
    who = " and ".join(nodes)
    sends, hears = ("sends", "hears") if len(nodes) == 1 else ("send", "hear")
    how = {"both": "both ways", "out": f"one way: nothing {who} {sends} reaches the others (they still reach "
                                        f"{who})",
           "in": f"one way: {who} {hears} nothing from the others (what {who} {sends} still arrives)"}[direction]
    each = "each cut off from every other member" if len(nodes) > 1 else "cut off from the other members"
    quorum = _quorum(members, nodes) if direction == "both" else \
        "a one-way cut stops TCP both ways: the members' views may differ until one side expels the other"
    return (f"{who}: {each}, {how} (packets silently dropped, no reset; replab still reaches every member); "
            f"{quorum}; {notice}; heal with: replab heal {' '.join(nodes)}")


def _isolated(members: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """The members ``pairs`` cut off from every other member (else every member some pair touches)."""
    peers: dict[str, set[str]] = {}
    for a, b in pairs:
        peers.setdefault(a, set()).add(b)
        peers.setdefault(b, set()).add(a)
    whole = [m for m in members if peers.get(m, set()) >= set(members) - {m}]
    return whole or [m for m in members if m in peers]


def cut_members(cluster: Cluster) -> list[str]:
    """Members cut off now: those some cut separates from every other member (after ``isolate(["mysql-s2"])``
    only mysql-s2, although the others lost a peer too); failing that, every member a cut touches."""
    net = net_of(cluster)
    if net is None:
        return []
    return _isolated(_members(cluster, net), net.cuts())


def heal(cluster: Cluster, nodes: list[str] | None = None) -> str:
    """Remove the cuts of ``nodes`` (every cut when None or empty)."""
    net = _net(cluster)
    members = _members(cluster, net)
    if nodes:
        _check(cluster, net, nodes)
    before = net.cuts()
    if not before:
        return "nothing to heal: no member is cut off"
    if nodes:
        touched = [p for p in before if set(p) & set(nodes)]
        if not touched:
            raise NodeStateError(f"{' '.join(nodes)}: not cut off", hint="replab heal (heals every cut)")
        for name in nodes:
            net.heal(name)
    else:
        net.heal()
    left = net.cuts()
    back = _isolated(members, [p for p in before if p not in left])
    rest = f"; still cut: {', '.join(f'{a} -> {b}' for a, b in left)}" if left else ""
    how = ("a member expelled rejoins by itself (group_replication_autorejoin_tries) or with START "
           "GROUP_REPLICATION, then catches up by distributed recovery"
           if _kind(cluster) == "group" else
           "a node rejoins the primary component and catches up by IST (or SST)" if _kind(cluster) == "galera"
           else "the members reconnect")
    return f"healed: {', '.join(back)} can reach the other members again; {how}{rest}"
