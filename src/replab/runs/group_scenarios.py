"""The built-in scenarios of MySQL Group Replication (``--topology group``), each with the outcome it expects.

- ``group-primary-kill``: under writes, SIGKILL the primary. The group elects a new primary by itself, the
  feed follows it (the write outage is measured from the kill to the first write the new primary
  acknowledges), 0 acknowledged writes are lost, and the old primary rejoins on start (how, and how long).
- ``group-multi-primary-conflict``: multi-primary, the counter workload on every member at once. Conflicting
  increments fail certification (counted as failed writes, never acknowledged); the final counters equal
  the acknowledged increments exactly on every member.
"""

from __future__ import annotations

import time
from typing import Any

import pymysql

from ..cluster import group
from ..faults import nemesis
from ..workload import counter
from .scenarios import (
    Context,
    Expectation,
    Phase,
    Scenario,
    Step,
    act,
    check,
    diagnose,
    expect,
    expect_consistent,
    expect_metric_below,
    fault,
    heal,
    hold,
    lost_increments,
    start_feed,
    stop_feed,
)

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
SERVER = "mysql-9.7"
RATE = 100.0  # rows/s: what a group on a shared 2-core machine commits with room to spare
ELECTION_LIMIT_S = 60.0  # suspicion (5 s) + member_expel_timeout (5 s) + the election, on a busy machine


def _acked(ctx: Context) -> int:
    return int(ctx.feeder.result.ok) if ctx.feeder is not None else 0


def kill_primary_measured(timeout: float = ELECTION_LIMIT_S + 30) -> Step:
    """SIGKILL the group's current primary; wait until the group has elected another one (``election_s``)
    and until the feed has a write acknowledged by it (``write_outage_s``, from the kill)."""
    def fn(ctx: Context) -> str:
        cluster = ctx.cluster
        old = group.current_primary(cluster, max_age=0) or cluster.primary.name
        sentence = nemesis.kill(cluster, old)
        t0, acked0 = time.monotonic(), _acked(ctx)
        ctx.facts["killed"] = {"node": old, "acked_at_kill": acked0}
        new = None
        while time.monotonic() - t0 < timeout:
            new = group.current_primary(cluster, max_age=0)
            if new is not None and new != old:
                ctx.metrics["election_s"] = round(time.monotonic() - t0, 3)
                break
            time.sleep(0.05)
        while time.monotonic() - t0 < timeout and ctx.feeder is not None:
            if _acked(ctx) > ctx.facts["killed"]["acked_at_kill"]:
                ctx.metrics["write_outage_s"] = round(time.monotonic() - t0, 3)
                break
            time.sleep(0.02)
        ctx.facts["new_primary"] = new
        return (f"{sentence}; the group elected {new or 'nobody'} after {ctx.metrics.get('election_s', '?')}s; "
                f"the feed's first write acknowledged by it {ctx.metrics.get('write_outage_s', '?')}s after the kill")
    return Step(f"kill the primary ({M})", fn, "fault", M)


def _rejoin_metric(node: str) -> Step:
    def fn(ctx: Context) -> str:
        rejoin = next((r for r in reversed(ctx.cluster.state.get("rejoins") or []) if r.get("node") == node), None)
        if rejoin is None:
            return f"{node}: no rejoin recorded"
        ctx.metrics["rejoin_s"] = rejoin["seconds"]
        ctx.facts["rejoin"] = rejoin
        ctx.facts["members_after"] = group.member_rows(ctx.cluster)
        return f"{node}: rejoined in {rejoin['seconds']}s by {rejoin['recovery']}"
    return act(f"rejoin of {node}", fn)


def _new_primary() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        killed = (ctx.facts.get("killed") or {}).get("node")
        new = ctx.facts.get("new_primary")
        return bool(new) and new != killed, [f"killed {killed}; the group elected {new or 'nobody'}"]
    return expect("new-primary", "the group elects another primary by itself", fn)


def _all_online() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rows: dict[str, Any] = ctx.facts.get("members_after") or {}
        states = {n: r.get("member_state") for n, r in rows.items()}
        rejoin = ctx.facts.get("rejoin") or {}
        return bool(states) and all(s == group.ONLINE for s in states.values()), \
            [f"members: {states}", f"rejoin: {rejoin.get('recovery')} in {rejoin.get('seconds')}s"]
    return expect("rejoined", f"{M} rejoins on start: every member ONLINE again", fn)


def _acknowledged(check_name: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        if rep is None:
            return False, [f"check {check_name!r} did not run"]
        acked = int(rep.to_dict().get("ledger", {}).get("acknowledged") or 0)
        after = sum(r.ok for r in ctx.feeds) - int((ctx.facts.get("killed") or {}).get("acked_at_kill") or 0)
        return acked > 0 and after > 0 and rep.consistent, \
            [f"{acked} acknowledged writes, {after} of them after the kill; consistent: {rep.consistent}"]
    return expect(f"zero-lost-{check_name}", "writes acknowledged before and after the election, 0 lost", fn)


def group_primary_kill() -> Scenario:
    return Scenario(
        "group-primary-kill",
        f"Group Replication, single-primary, under writes: SIGKILL the primary ({M}). The group elects a new "
        "primary by itself; the feed finds it from performance_schema.replication_group_members and goes on "
        f"(the write outage is measured); 0 acknowledged writes lost; {M} started again rejoins (distributed "
        "recovery) and every member holds every acknowledged write.",
        phases=[
            Phase("load", [start_feed(rate=RATE), hold(0.3)], f"writes on the primary {M}"),
            Phase("kill", [kill_primary_measured(), hold(0.2), stop_feed()],
                  "SIGKILL of the primary while the writes go on; they follow the new primary"),
            Phase("back", [heal("start", M), _rejoin_metric(M), check("final", wait=60)],
                  f"{M} started again: it rejoins the group (distributed recovery of what it missed)"),
        ],
        expectations=[
            _new_primary(), expect_metric_below("election_s", ELECTION_LIMIT_S),
            expect_metric_below("write_outage_s", ELECTION_LIMIT_S + 10), _all_online(),
            expect_consistent("final"), _acknowledged("final"),
        ],
        server=SERVER, options={"topology": "group"},
    )


def _conflicting_increments(fraction: float, hot_rows: int = 3) -> Step:
    """Every member increments the same few hot rows at once."""
    def fn(ctx: Context) -> str:
        r = counter.run(ctx.cluster, ctx.cluster.writers(), hot_rows=hot_rows, threads=ctx.params.threads,
                        duration=max(2.0, fraction * ctx.params.duration), seed=ctx.params.seed)
        ctx.metrics.update({"increments_acknowledged": r.ok, "increments_failed": r.failed,
                            "increments_unknown": r.unknown})
        ctx.facts["increments"] = r.to_dict()
        per = ", ".join(f"{w} {n}" for w, n in r.by_writer.items())
        return (f"{r.ok} increments of {hot_rows} hot rows acknowledged ({per}), {r.failed} refused "
                f"(last: {r.last_error or '-'}), {r.unknown} unknown")
    return act("increment the same hot rows on every member", fn)



def _refused() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        inc = ctx.facts.get("increments") or {}
        return int(inc.get("failed") or 0) > 0 and int(inc.get("ok") or 0) > 0, \
            [f"acknowledged {inc.get('ok')}, refused {inc.get('failed')} ({inc.get('last_error')}), "
             f"unknown {inc.get('unknown')}"]
    return expect("conflicts-refused", "conflicting increments fail certification and are counted as failed", fn)


def _none_lost() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        lost = {k: v for k, v in ctx.metrics.items() if k.startswith("lost_increments_")}
        return len(lost) == 3 and all(v == 0 for v in lost.values()), [f"{k} = {v}" for k, v in lost.items()] or \
            ["not counted"]
    return expect("zero-increments-lost", "final counters equal the acknowledged increments on every member", fn)


def group_multi_primary_conflict() -> Scenario:
    return Scenario(
        "group-multi-primary-conflict",
        "Group Replication, multi-primary: every member increments the same 3 hot rows at once. Conflicting "
        "transactions fail certification (error 3101: never acknowledged, counted as failed); the final "
        "counters equal the acknowledged increments exactly, on every member.",
        phases=[
            Phase("conflict", [_conflicting_increments(0.6), check("final", wait=60), lost_increments("final")],
                  "the counter workload on every member"),
        ],
        expectations=[_refused(), _none_lost(), expect_consistent("final")],
        server=SERVER, options={"topology": "group-multi-primary"},
    )


def _probe_write(label: str, node: str, timeout: float = 4.0) -> Step:
    """One INSERT on ``node`` with a ``timeout`` s read timeout: acknowledged, failed, or no answer."""
    def fn(ctx: Context) -> str:
        cluster = ctx.cluster
        t0 = time.monotonic()
        try:
            with cluster.connect(node, database=cluster.database, timeout=2, read_timeout=timeout) as conn, \
                    conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS quorum_probe (id INT PRIMARY KEY, label VARCHAR(32))")
                cur.execute("INSERT INTO quorum_probe VALUES (%s, %s)", (len(ctx.facts) + 1, label))
            outcome = "acknowledged"
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            outcome = "no answer" if code in (2013, 2006) else f"failed ({code})"
        ctx.facts[label] = {"node": node, "outcome": outcome, "seconds": round(time.monotonic() - t0, 2)}
        return f"a write on {node}: {outcome} after {ctx.facts[label]['seconds']}s"
    return act(f"write on {node} ({label})", fn)


def _acked_during(label: str) -> Step:
    """How many writes the feed had acknowledged when ``label`` was taken (``facts[label]``)."""
    def fn(ctx: Context) -> str:
        ctx.facts[label] = _acked(ctx)
        return f"{ctx.facts[label]} writes acknowledged so far"
    return act(f"acknowledged at {label}", fn)


def _force(node: str) -> Step:
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        sentence = group.force_members(ctx.cluster, node)
        ctx.metrics["force_s"] = round(time.monotonic() - t0, 3)
        return sentence
    return Step(f"force the membership to {node}", fn, "heal", node)


def _outcome(label: str, wanted: str, what: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        f = ctx.facts.get(label) or {}
        return str(f.get("outcome", "")).startswith(wanted), [f"{f.get('node')}: {f.get('outcome')} after "
                                                              f"{f.get('seconds')}s"]
    return expect(f"write-{label}", what, fn)


def _feed_stalled() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        a, b, c = (ctx.facts.get(k) for k in ("acked-lost", "acked-blocked", "acked-forced"))
        ok = isinstance(a, int) and isinstance(b, int) and isinstance(c, int) and a == b and c > b
        return ok, [f"acknowledged: {a} when the quorum was lost, {b} a while later, {c} after forcing"]
    return expect("writes-stop-then-resume", "no write is acknowledged without quorum; forcing restores writes", fn)


def _diagnosed(node: str, *words: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        lines = ctx.diagnoses.get(node, [])
        return any(all(w in line for w in words) for line in lines), lines[:6] or ["not diagnosed"]
    key = "-".join(w.split()[0].strip("_").replace("_", "-") for w in words)
    return expect(f"diagnosis-{node}-{key}", f"diagnose {node} says: {' ... '.join(words)}", fn)


def group_quorum_loss() -> Scenario:
    return Scenario(
        "group-quorum-loss",
        f"Group Replication, single-primary, under writes: two of the three members ({S1}, {S2}) are lost "
        "(SIGKILL, not a partition: two members cut off together would still see each other, and healing them next "
        "to a forced group of one would join two groups that each took writes). The primary cannot "
        "reach a majority: no write is acknowledged anywhere, a write there never returns; diagnose says the "
        "quorum is lost and how to force the membership (group_replication_force_members) and what it risks. "
        f"Forcing it to {M} alone restores writes; {S1} and {S2} started again rejoin; nothing acknowledged "
        "is lost.",
        phases=[
            Phase("load", [start_feed(rate=RATE), hold(0.2)], f"writes on the primary {M}"),
            Phase("quorum-lost", [fault("kill", S1), fault("kill", S2), act("wait", lambda ctx: time.sleep(8.0)),
                                  _acked_during("acked-lost"), _probe_write("blocked", M), hold(0.2),
                                  _acked_during("acked-blocked"), diagnose(M)],
                  f"{S1} and {S2} gone: {M} alone in a view of three"),
            Phase("forced", [_force(M), act("wait", lambda ctx: time.sleep(2.0)), _probe_write("forced", M),
                             hold(0.2), _acked_during("acked-forced"), stop_feed()],
                  f"the operator forces the membership to {M}"),
            Phase("back", [heal("start", S1), heal("start", S2), check("final", wait=60)],
                  f"{S1} and {S2} started again: they rejoin {M}'s group"),
        ],
        expectations=[
            _outcome("blocked", "no answer", f"a write on {M} without quorum is never acknowledged"),
            _feed_stalled(), _diagnosed(M, "quorum lost"), _diagnosed(M, "group_replication_force_members"),
            _diagnosed(M, "split brain"), _outcome("forced", "acknowledged", f"after forcing, {M} takes writes"),
            expect_consistent("final"),
        ],
        server=SERVER, options={"topology": "group"},
    )


def _wait_majority(node: str, inside: bool, metric: str, timeout: float = 120.0) -> Step:
    """Wait until ``node`` is (``inside``) or is no longer (not ``inside``) in the majority's view as ONLINE;
    ``metric``: how long it took."""
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if (node in group.quorum(ctx.cluster)["majority_members"]) == inside:
                ctx.metrics[metric] = round(time.monotonic() - t0, 3)
                return f"{node} {'back in' if inside else 'out of'} the majority after {ctx.metrics[metric]}s"
            time.sleep(0.1)
        return f"{node} still {'out of' if inside else 'in'} the majority after {timeout:.0f}s"
    return act(f"wait until {node} is {'in' if inside else 'out of'} the majority", fn)


def _majority_goes_on() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        a, b = ctx.facts.get("acked-cut"), ctx.facts.get("acked-cut-later")
        return isinstance(a, int) and isinstance(b, int) and b > a, \
            [f"acknowledged: {a} once {S2} was out, {b} a while later"]
    return expect("majority-goes-on", f"{M} and {S1} keep a majority and go on taking writes", fn)


def group_minority_partition() -> Scenario:
    return Scenario(
        "group-minority-partition",
        f"Group Replication, single-primary, under writes: {S2} is cut off from the other members (the member "
        f"network: its own address, silent drops). {M} and {S1} keep a majority and go on; a write on {S2} is "
        f"never acknowledged; after heal {S2} rejoins by itself (auto-rejoin, distributed recovery) and every "
        "member holds every acknowledged write.",
        phases=[
            Phase("load", [start_feed(rate=RATE), hold(0.2)], f"writes on the primary {M}"),
            Phase("cut", [fault("partition", S2), _wait_majority(S2, False, "noticed_s"), _acked_during("acked-cut"),
                          _probe_write("minority", S2), hold(0.3), _acked_during("acked-cut-later"), diagnose(S2)],
                  f"{S2} cut off from {M} and {S1}"),
            Phase("heal", [heal("heal", S2), _wait_majority(S2, True, "rejoin_s"), stop_feed(),
                           check("final", wait=60)], f"{S2} back on the network"),
        ],
        expectations=[
            _outcome("minority", "failed", f"a write on the minority member {S2} is refused, never acknowledged"),
            _majority_goes_on(), expect_metric_below("rejoin_s", 120), expect_consistent("final"),
        ],
        server=SERVER, options={"topology": "group"},
    )


GROUP_SCENARIOS = [group_primary_kill(), group_multi_primary_conflict(), group_quorum_loss(),
                   group_minority_partition()]
