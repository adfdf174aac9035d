"""The built-in scenarios, each with the outcome it expects (``replab scenario list`` shows them).

Hold fractions are of the run's --duration (default 6 s of feed in total).
"""

from __future__ import annotations

import time

from ..core.errors import ConfigError
from ..faults import failover, nemesis
from ..servers import db
from ..verify import ledger
from . import app_scenarios
from .galera_scenarios import GALERA_SCENARIOS
from .group_scenarios import GROUP_SCENARIOS
from .link_steps import (
    commits_over_distance,
    expect_link_view,
    expect_lost_between,
    expect_semisync_bound,
    expect_thin_link,
    mark,
    on_primary,
    record_link,
    settle,
    thin_measure,
    thin_start,
    wait_sent,
)
from .scenarios import (
    ByFlavor,
    Context,
    Expectation,
    Phase,
    Scenario,
    Step,
    act,
    check,
    diagnose,
    end_fault,
    errnos_text,
    expect,
    expect_caught_up,
    expect_column_missing,
    expect_consistent,
    expect_diagnosis,
    expect_inconsistent,
    expect_metric_above,
    expect_metric_below,
    expect_no_replication_error,
    expect_replication_error,
    fault,
    heal,
    hold,
    measure_lag,
    record_columns,
    stall_apply,
    start_feed,
    stop_feed,
    wait_caught_up,
    wait_lag_below,
)
from .shape_scenarios import SHAPE_SCENARIOS

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
# What a replica-only drop of a middle column does under ROW: the same failure, numbered per server
# (MariaDB: 1677 "cannot be converted"; MySQL: 13146, with the worker's own message in
# performance_schema.replication_applier_status_by_worker).
MIDDLE_DROP: ByFlavor = {"mariadb": (1677,), "mysql": (13146,)}
STATEMENT_DROP: ByFlavor = {"mariadb": (1054,), "mysql": (1054,)}


def _load(fraction: float = 0.3) -> Phase:
    return Phase("load", [start_feed(), hold(fraction), check("under-load")],
                 "frequent inserts on the primary; every node checked against the ledger")


def seed() -> Scenario:
    return Scenario(
        "seed",
        "The original task: a 3-node cluster; frequent inserts with consistency checks on all instances; "
        "mysql-s1 turned off while inserts go on, then on again, and it fetches everything it missed; a column "
        "removed on a replica, and what replication does about it.",
        phases=[
            _load(0.3),
            Phase("s1-off", [fault("stop", S1), hold(0.3)], "mysql-s1 shut down while the inserts go on"),
            Phase("s1-on", [heal("start", S1), wait_caught_up([S1], metric="s1_catch_up_s"), stop_feed(),
                            check("after-restart")],
                  "mysql-s1 started again: it fetches what it missed from the primary's binary log"),
            Phase("drop-column", [fault("drift", S1, drop_column="events.name"), start_feed(), hold(0.25),
                                  stop_feed(), wait_caught_up([S2]), record_columns(S1), diagnose(S1),
                                  check("after-drop", wait=2)],
                  "column events.name dropped on mysql-s1 only (sql_log_bin=0) while inserts go on (ROW format)"),
        ],
        expectations=[
            expect_consistent("under-load"),
            expect_consistent("after-restart"),
            expect_caught_up([S1]),
            expect_metric_below("s1_catch_up_s", 30),
            expect_replication_error(S1, MIDDLE_DROP),
            expect_diagnosis(S1, MIDDLE_DROP, "dropped on this replica only"),
            expect_consistent("after-drop", nodes=[M, S2]),
            expect_no_replication_error([S2]),
        ],
    )


def _outage(name: str, description: str, down: str, up: str, up_node: str | None = S1) -> Scenario:
    return Scenario(
        name, description,
        phases=[
            _load(0.3),
            Phase("fault", [fault(down, S1), hold(0.4)], f"{down} {S1} while the inserts go on"),
            Phase("recover", [heal(up, up_node), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{up} {S1}; wait until it applied everything"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_metric_below("catch_up_s", 30)],
    )


def drop_column(name: str, column: str, binlog_format: str, errnos: ByFlavor | None) -> Scenario:
    if errnos is None:
        what = f"ROW format: {column} is the last column, so the replica just ignores it: replication goes on"
        expectations = [expect_no_replication_error([S1, S2]), expect_column_missing(S1, column),
                        expect_caught_up([S1, S2]), expect_consistent("final", nodes=[M, S2])]
    else:
        what = (f"{binlog_format} format: dropping {column} on a replica breaks replication there with error "
                f"{errnos_text(errnos)}")
        expectations = [expect_replication_error(S1, errnos), expect_diagnosis(S1, errnos),
                        expect_no_replication_error([S2]), expect_consistent("final", nodes=[M, S2])]
    return Scenario(
        name, f"Column events.{column} dropped on {S1} only; {what}.",
        phases=[
            Phase("load", [start_feed(), hold(0.3), wait_caught_up()], "inserts; replicas caught up"),
            Phase("drop", [fault("drift", S1, drop_column=f"events.{column}"), hold(0.5)],
                  f"ALTER TABLE events DROP COLUMN {column} on {S1} (not binlogged) while inserts go on"),
            Phase("observe", [stop_feed(), wait_caught_up([S2]), wait_caught_up([S1], timeout=3),
                              record_columns(S1), diagnose(S1), check("final", wait=3)],
                  "what did replication do?"),
        ],
        expectations=expectations, binlog_format=binlog_format,
    )


def errant() -> Scenario:
    return Scenario(
        "errant-transaction",
        f"A write on {S2} with its binary log on (an errant transaction: a GTID the primary never had) is "
        "detected by the checker and explained by the diagnosis.",
        phases=[
            Phase("load", [start_feed(), hold(0.4), stop_feed(), wait_caught_up(), check("before")],
                  "inserts; everything consistent"),
            Phase("errant-write", [fault("drift", S2, insert_rows="events:3", binlog=True), diagnose(S2),
                                   check("final", wait=3)],
                  f"3 rows inserted directly on {S2}, binlogged under its own server id"),
        ],
        expectations=[expect_consistent("before"), expect_inconsistent("final", S2),
                      expect_diagnosis(S2, "errant"), expect_consistent("final", nodes=[M, S1])],
    )


def primary_restart() -> Scenario:
    return Scenario(
        "primary-restart",
        "A clean restart, then a kill -9, of the primary under load: replicas reconnect by themselves and no "
        "acknowledged write is lost.",
        phases=[
            _load(0.25),
            Phase("restart", [fault("restart", M), end_fault(M, "restarted"), hold(0.25),
                              wait_caught_up(metric="catch_up_after_restart_s")],
                  "clean shutdown and start of the primary while the feed retries"),
            Phase("kill", [fault("kill", M), hold(0.1), heal("start", M), hold(0.25),
                           wait_caught_up(metric="catch_up_after_kill_s"), stop_feed(), check("final")],
                  "kill -9 of the primary, then start it again (crash recovery)"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_no_replication_error([S1, S2]), expect_metric_below("catch_up_after_kill_s", 30)],
    )


def lag_under_load() -> Scenario:
    return Scenario(
        "lag-under-load",
        f"The primary takes writes faster than {S1} applies them (its apply is stalled by a local lock): lag "
        "grows, then drains once the replica can apply again; peak lag and drain time are reported.",
        phases=[
            Phase("load", [start_feed(), hold(0.2)], "steady inserts; lag near zero"),
            Phase("stall", [stall_apply(S1, fraction=0.5), end_fault(S1)],
                  f"{S1}'s SQL thread waits on a lock while its IO thread keeps receiving"),
            Phase("drain", [wait_lag_below(S1, 100), hold(0.1), stop_feed(), measure_lag(S1, "stall"),
                            wait_caught_up(), check("final")], "the lock is gone: the backlog drains"),
        ],
        expectations=[expect_metric_above("peak_lag_ms", 1000, " ms"), expect_metric_below("drain_s", 30),
                      expect_consistent("final"), expect_no_replication_error([S1, S2])],
    )


def upgrade_rehearsal() -> Scenario:
    return Scenario(
        "upgrade-rehearsal",
        "An upgrade rehearsal: a MariaDB 10.11 primary with MariaDB 11.8 replicas under load; a replica killed "
        "and started again fetches everything it missed; every node consistent.",
        phases=[
            _load(0.3),
            Phase("kill-s1", [fault("kill", S1), hold(0.3), heal("start", S1),
                              wait_caught_up([S1], metric="s1_catch_up_s")],
                  f"kill -9 {S1} (11.8) under load, then start it again"),
            Phase("final", [stop_feed(), wait_caught_up(), check("final")], "everything applied everywhere"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_no_replication_error([S1, S2]), expect_metric_below("s1_catch_up_s", 30)],
        server="mariadb-10.11", replica_server="mariadb-11.8",
    )


BUILTIN: dict[str, Scenario] = {s.name: s for s in [
    seed(),
    _outage("replica-outage", f"{S1} shut down under load and started again: it fetches everything it missed; "
            "no acknowledged write lost; catch-up time measured.", "stop", "start", S1),
    _outage("replica-pause", f"{S1} frozen (SIGSTOP) under load and resumed: no acknowledged write lost; catch-up "
            "time measured.", "pause", "resume", S1),
    _outage("partition", f"The link between {S1} and the primary cut both ways under load, then healed: no "
            "acknowledged write lost; catch-up time measured.", "partition", "heal", S1),
    drop_column("drop-last-column", "description", "ROW", None),
    drop_column("drop-middle-column", "name", "ROW", MIDDLE_DROP),
    drop_column("drop-column-statement", "name", "STATEMENT", STATEMENT_DROP),
    errant(),
    primary_restart(),
    lag_under_load(),
    upgrade_rehearsal(),
]}


# --- losing the primary: switchover, failover, rejoin (failover.py) ------------------------------------
def _switchover(target: str) -> Step:
    """Planned promotion of ``target`` under load; metric ``write_pause_s``."""
    def fn(ctx: Context) -> str:
        change = failover.switchover(ctx.cluster, target)
        ctx.metrics["write_pause_s"] = change.write_pause_s
        return change.sentence()
    return act(f"switchover to {target}", fn)


def _failover(metric: str = "failover_s") -> Step:
    """Promote the most advanced replica; metric: seconds until the new primary accepts writes."""
    def fn(ctx: Context) -> str:
        change = failover.failover(ctx.cluster)
        ctx.metrics[metric] = change.to_writable_s
        ctx.facts.setdefault("failovers", []).append(change.to_dict())
        return change.sentence()
    return act("failover", fn)


def _on_primary(action: str) -> Step:
    """A nemesis action on whichever node is the primary when the step runs (kill, partition)."""
    def fn(ctx: Context) -> str:
        name = ctx.cluster.primary.name
        ctx.facts.setdefault("primaries", []).append(name)
        return getattr(nemesis, action)(ctx.cluster, name)
    return Step(f"{action} the primary", fn, "fault", target=lambda ctx: ctx.cluster.primary.name)


def _wait_fallback(timeout: float = 10.0) -> Step:
    """Wait until the primary's semi-sync gives up on its replicas and goes asynchronous; metric
    ``fallback_s`` (seconds since the link was cut) and a note on the timeline saying when."""
    def fn(ctx: Context) -> str:
        t0, name = time.monotonic(), ctx.cluster.primary.name
        while time.monotonic() - t0 < timeout:
            st = failover.semisync_status(ctx.cluster, name)
            if not st["on"]:
                ctx.metrics["fallback_s"] = round(time.monotonic() - t0, 3)
                ctx.timeline.event("note", f"{name}: semi-sync fell back to asynchronous replication "
                                   f"({st['fallbacks']} fallback(s), {st['no_tx']} commit(s) not acknowledged)", name)
                return f"{name}: semi-sync switched to asynchronous after {ctx.metrics['fallback_s']:.2f}s"
            time.sleep(0.05)
        return f"{name}: semi-sync still on after {timeout:.0f}s"
    return act("wait for the semi-sync fallback", fn)


def _truth(check_name: str) -> Step:
    """Ground truth for the lost writes, by plain SQL (not the checker): acknowledged ids of the ledger that
    the primary does not hold."""
    def fn(ctx: Context) -> str:
        path = ledger.ledger_path(ctx.cluster.home)
        acked = [(r.start, r.end) for r in ledger.read_runs(path) if r.outcome == ledger.OK]
        missing: list[int] = []
        with ctx.cluster.connect(ctx.cluster.primary.name, database=ctx.cluster.database) as conn:
            for lo, hi in acked:
                have = {int(r["id"]) for r in db.query(conn, "SELECT id FROM events WHERE id >= %s AND id < %s",
                                                       (lo, hi))}
                missing += [i for i in range(lo, hi) if i not in have]
        ctx.facts.setdefault("truth", {})[check_name] = missing
        return f"{len(missing)} acknowledged id(s) are not on {ctx.cluster.primary.name}"
    return act(f"ground truth {check_name}", fn)


def _old_primary_rows(node: str) -> Step:
    """Start the demoted old primary (it stays fenced, out of replication) and record which ids it holds."""
    def fn(ctx: Context) -> str:
        sentence = nemesis.start(ctx.cluster, node)
        rows = ctx.cluster.sql(node, f"SELECT id FROM {ctx.cluster.database}.events").rows
        ctx.facts.setdefault("old_rows", {})[node] = {int(r[0]) for r in rows}
        return sentence
    return act(f"start {node} and read it", fn)


def _rejoin(node: str, rebuild: bool) -> Step:
    def fn(ctx: Context) -> str:
        return failover.rejoin(ctx.cluster, node, rebuild=rebuild)
    return act(f"rejoin {node}", fn)


def _topology() -> Step:
    """Record who replicates from whom (for expect_topology)."""
    def fn(ctx: Context) -> str:
        rows = ctx.cluster.status()
        ctx.facts["topology"] = {r.name: (r.role, r.source, r.io_running and r.sql_running) for r in rows}
        return "topology: " + _topology_text(ctx.facts["topology"])
    return act("record topology", fn)


def _topology_text(topo: dict[str, tuple[str, str | None, bool]]) -> str:
    """Who replicates from the primary, and who is out of replication (down, demoted, left out), in words
    (the note said only 'topology: ' when no replica was left)."""
    head = next((n for n, (role, _s, _ok) in topo.items() if role == "primary"), None)
    following = [n for n, (role, src, ok) in topo.items() if role == "replica" and src == head and ok]
    out = [f"{n} ({role})" for n, (role, src, ok) in topo.items()
           if n != head and not (role == "replica" and src == head and ok)]
    text = f"primary {head}; {failover.replicate_from(following, 'it')}"
    return text + (f"; out of replication: {', '.join(out)}" if out else "")


def expect_lost(check_name: str, *, none: bool = False, from_node: str | None = None,
                above_check: str | None = None) -> Expectation:
    """The checker's lost writes of ``check_name`` are exactly the ground truth (ledger ids missing on the
    primary, by SQL); ``none``: there are none; ``from_node``: it acknowledged them and still holds every one;
    ``above_check``: all of them came after that earlier check's ledger end."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep, truth = ctx.checks.get(check_name), ctx.facts.get("truth", {}).get(check_name)
        if rep is None or truth is None:
            return False, [f"check {check_name!r} or its ground truth did not run"]
        got = sorted(i for lw in rep.lost for i in lw.ids)
        ev = [lw.sentence() for lw in rep.lost] or ["no acknowledged write lost"]
        ok = got == sorted(truth) and all(lw.exact for lw in rep.lost)
        if not ok:
            ev.append(f"ground truth: {len(truth)} id(s) {truth[:10]}; checker: {len(got)} {got[:10]}")
        if none:
            ok = ok and not got
        elif not got:
            ok, ev = False, ev + ["expected writes lost (acknowledged while the replicas were cut off)"]
        if from_node and got:
            by = {lw.acknowledged_by for lw in rep.lost}
            held = ctx.facts.get("old_rows", {}).get(from_node, set())
            ok = ok and by == {from_node} and set(got) <= held
            ev.append(f"acknowledged by {', '.join(sorted(by))}; {len(set(got) & held)} of them found on {from_node}")
        if above_check and got:
            earlier = ctx.checks.get(above_check)
            end = int((earlier.facts.ledger or {}).get("end") or 0) if earlier else None
            ok = ok and end is not None and min(got) >= end
            ev.append(f"first lost id {min(got)}; ledger end at check {above_check!r}: {end}")
        return ok, ev
    what = "no acknowledged write lost" if none else "the acknowledged writes lost are named exactly, by id"
    return Expectation(f"lost-{check_name}", f"{what} (check {check_name})", fn)


def expect_topology(primary: str | None = None) -> Expectation:
    """Every running node other than the primary replicates from it, threads running."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        topo = ctx.facts.get("topology")
        if topo is None:
            return False, ["topology was not recorded"]
        head = next((n for n, (role, _s, _ok) in topo.items() if role == "primary"), None)
        bad = [f"{n} (source {src}, running {ok})" for n, (role, src, ok) in topo.items()
               if role == "replica" and (src != head or not ok)]
        ok = not bad and (primary is None or head == primary)
        return ok, [_topology_text(topo) if not bad else f"not following: {bad}"]
    return Expectation("topology", f"every replica replicates from {primary or 'the new primary'}", fn)


def switchover_scenario() -> Scenario:
    return Scenario(
        "switchover",
        f"Under load, a planned promotion of {S1}: writes pause while it catches up, then {M} and {S2} "
        "replicate from it; no acknowledged write is lost and the write pause is measured.",
        phases=[
            _load(0.3),
            Phase("switchover", [_switchover(S1), hold(0.3), stop_feed(), wait_caught_up(), _topology(),
                                 check("final"), _truth("final")], f"{S1} promoted while the feed goes on"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_topology(S1),
                      expect_lost("final", none=True), expect_metric_below("write_pause_s", 5)],
    )


def failover_async() -> Scenario:
    return Scenario(
        "failover-async",
        f"The replicas' links are cut, so they fall behind while {M} keeps acknowledging writes; {M} is killed "
        "(SIGKILL) and the most advanced replica promoted: exactly the writes acknowledged while the replicas "
        "were cut off are reported lost, by id, and no other.",
        phases=[
            Phase("load", [start_feed(), hold(0.3), wait_caught_up(), check("under-load")], "inserts; in sync"),
            Phase("cut", [fault("partition", M), hold(0.25)], f"every replica link to {M} cut; writes go on"),
            Phase("failover", [fault("kill", M), _failover(), hold(0.25), stop_feed(),
                               wait_caught_up(), _topology(), check("final"), _truth("final"),
                               _old_primary_rows(M)],
                  f"{M} killed; failover; the feed follows the new primary"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final", lost_in_failover=True),
                      expect_topology(), expect_lost("final", from_node=M), expect_metric_below("failover_s", 10)],
    )


def failover_semisync() -> Scenario:
    return Scenario(
        "failover-semisync",
        f"With --semi-sync (AFTER_SYNC, 1 s timeout): {M} killed under load and a replica promoted: no "
        "acknowledged write is lost. Then the new primary's replica links are cut: semi-sync falls back to "
        "asynchronous after the timeout (the report says when), the writes acknowledged after that are lost "
        "when it is killed in turn, and exactly those are reported.",
        phases=[
            # with AFTER_SYNC a replica can apply a row before the primary's own commit is visible: the check
            # under load must not take it for an extra row (the checker waits for that commit)
            Phase("load", [start_feed(), hold(0.3), check("under-load")],
                  "frequent inserts on the primary, semi-synchronous; every node checked"),
            Phase("kill", [fault("kill", M), _failover(), hold(0.2), wait_caught_up(), check("after-failover"),
                           _truth("after-failover")], f"{M} killed with semi-sync holding"),
            Phase("fallback", [_on_primary("partition"), _wait_fallback(), hold(0.2), _on_primary("kill"),
                               _failover("second_failover_s"), stop_feed(), wait_caught_up(),
                               _topology(), check("final"), _truth("final")],
                  "links cut: semi-sync times out and goes async; the primary is killed and replaced"),
        ],
        expectations=[expect_consistent("under-load"), expect_lost("after-failover", none=True),
                      expect_consistent("after-failover"), expect_metric_below("fallback_s", 5),
                      expect_lost("final", above_check="after-failover"),
                      expect_consistent("final", lost_in_failover=True),
                      expect_topology()],
        options={"semi_sync": True, "semi_sync_timeout_ms": 1000},
    )


def old_primary_rejoin() -> Scenario:
    return Scenario(
        "old-primary-rejoin",
        f"After an asynchronous failover, the killed {M} comes back holding transactions no replica received: "
        "replab names them (errant transactions), keeps it out of replication, then rebuilds it from the new "
        "primary; every node ends up consistent, and the lost writes stay reported.",
        phases=[
            Phase("load", [start_feed(), hold(0.3), wait_caught_up()], "inserts; in sync"),
            Phase("cut-kill", [fault("partition", M), hold(0.2), fault("kill", M), _failover(),
                               hold(0.2), stop_feed(), wait_caught_up()], f"{M} writes alone, is killed, replaced"),
            Phase("return", [_old_primary_rows(M), _rejoin(M, rebuild=True), wait_caught_up(), _topology(),
                             check("final"), _truth("final")], f"{M} back: errant transactions named; rebuilt"),
        ],
        expectations=[expect_consistent("final", lost_in_failover=True), expect_topology(),
                      expect_lost("final", from_node=M),
                      expect("errant-named", f"{M}'s errant transactions are named when it starts",
                             lambda ctx: (any("errant transaction" in n for n in _notes(ctx)),
                                          [n for n in _notes(ctx) if "errant" in n][:2]))],
    )


def _notes(ctx: Context) -> list[str]:
    return [e.text for e in ctx.timeline.events if e.kind == "action"]


for _s in (switchover_scenario(), failover_async(), failover_semisync(), old_primary_rejoin(),
           *app_scenarios.scenarios(), *SHAPE_SCENARIOS, *GROUP_SCENARIOS, *GALERA_SCENARIOS):
    BUILTIN[_s.name] = _s


# --- links: crash vs kill, one-way cuts, shaped links (link_steps.py) ---------------------------------
def crash_vs_kill() -> Scenario:
    cut_kill = [fault("partition", M), mark("cut-1"), start_feed(), hold(0.2), stop_feed(), mark("kill"),
                wait_sent()]
    return Scenario(
        "crash-vs-kill",
        "Asynchronous replication; the replicas' links are cut and the primary takes writes alone, then is "
        "lost. Killed (kill: the process dies, its host's kernel still delivers what it had sent): after heal "
        "and failover no acknowledged write is lost. Crashed (crash: the host dies with its unsent bytes): "
        "after heal and failover exactly the writes acknowledged after the cut are lost, by id.",
        phases=[
            Phase("load", [start_feed(), hold(0.2), stop_feed(), wait_caught_up(), check("before")],
                  "inserts; every replica in sync"),
            Phase("kill", [*cut_kill, fault("kill", M), heal("heal", None), settle(), _failover("failover_kill_s"),
                           start_feed(), hold(0.1), stop_feed(), wait_caught_up(), check("after-kill"),
                           _truth("after-kill")],
                  f"links of {M} cut, writes on {M} alone, {M} killed, links healed, failover"),
            Phase("crash", [on_primary("partition"), mark("cut-2"), start_feed(), hold(0.2), stop_feed(),
                            mark("crash"), wait_sent(), on_primary("crash"), heal("heal", None), settle(),
                            _failover("failover_crash_s"), start_feed(), hold(0.1), stop_feed(), wait_caught_up(),
                            check("after-crash"), _truth("after-crash")],
                  "the new primary's links cut, writes on it alone, its host crashed, links healed, failover"),
        ],
        expectations=[expect_consistent("before"), expect_lost("after-kill", none=True),
                      expect_consistent("after-kill"), expect_lost("after-crash"),
                      expect_lost_between("after-crash", "cut-2", "crash"),
                      expect_metric_above("crash_dropped_bytes", 0, " bytes"),
                      expect_consistent("after-crash", lost_in_failover=True)],
    )


def crash_semisync() -> Scenario:
    return Scenario(
        "crash-semisync",
        "Semi-synchronous replication (AFTER_SYNC) over links with 20 ms each way: the primary's host crashes "
        "under load, taking the bytes its links had not yet delivered; a replica is promoted and no "
        "acknowledged write is lost (each was on a replica before its commit returned).",
        phases=[
            Phase("load", [start_feed(), hold(0.3), check("under-load")], "semi-synchronous inserts"),
            Phase("crash", [on_primary("crash"), _failover(), hold(0.2), stop_feed(), wait_caught_up(),
                            check("final"), _truth("final")], f"{M}'s host crashes under load; failover"),
        ],
        expectations=[expect_consistent("under-load"), expect_lost("final", none=True), expect_consistent("final")],
        options={"semi_sync": True, "semi_sync_timeout_ms": 60_000, "link_delay": "20ms"},
    )


def one_way_partition() -> Scenario:
    return Scenario(
        "one-way-partition",
        f"Under load, {S1}'s link is cut toward the replica only: its IO thread hears nothing and shows no "
        f"error (silence until slave_net_timeout), while {M} keeps its dump thread, writing into the cut; status "
        f"and diagnose show both views. Then {S2}'s link is cut toward the primary only: {S2} keeps receiving "
        "and applying, the primary hears nothing from it. After heal nothing is lost.",
        phases=[
            Phase("load", [start_feed(), hold(0.2), wait_caught_up()], "inserts; every replica in sync"),
            Phase("to-replica", [fault("partition", S1, direction="to-replica"), hold(0.25),
                                 record_link(S1, "to-replica"), diagnose(S1), heal("heal", S1),
                                 wait_caught_up([S1], metric="s1_catch_up_s")],
                  f"{M} -> {S1} cut; {S1} -> {M} still carried"),
            Phase("to-primary", [fault("partition", S2, direction="to-primary"), hold(0.25),
                                 wait_caught_up([S2], timeout=20, metric="s2_while_cut_s"),
                                 record_link(S2, "to-primary"), diagnose(S2), heal("heal", S2)],
                  f"{S2} -> {M} cut; {M} -> {S2} still carried"),
            Phase("final", [stop_feed(), wait_caught_up(), check("final"), _truth("final")], "healed; all applied"),
        ],
        expectations=[expect_link_view("to-replica", ["to-replica"], io_running=True, dump_thread=True),
                      expect_diagnosis(S1, "cut toward the replica only", "hears nothing", "dump thread"),
                      expect_link_view("to-primary", ["to-primary"], io_running=True, dump_thread=True),
                      expect_diagnosis(S2, "cut toward the primary only", "still receives"),
                      expect_caught_up([S1, S2]), expect_consistent("final"), expect_lost("final", none=True)],
    )


def semisync_over_distance() -> Scenario:
    return Scenario(
        "semi-sync-over-distance",
        "Semi-synchronous replication (AFTER_SYNC) with 0, 10, 40 and 80 ms of round trip on every replica link: "
        "one connection's commit latency (p50, p99) and commits/s against the 1/RTT bound (1000/85 ms = 11.7 "
        "commits/s), in a table and a plot; asynchronous replication at the same distances for comparison.",
        phases=[
            Phase("measure", [commits_over_distance(), wait_caught_up(), check("final")],
                  "single-connection commits at each distance, semi-sync then async"),
        ],
        expectations=[expect_semisync_bound(), expect_consistent("final")],
        options={"semi_sync": True, "semi_sync_timeout_ms": 60_000},
    )


def thin_link() -> Scenario:
    return Scenario(
        "thin-link",
        f"{S1}'s link toward it is throttled to 96 kbit/s while the feed writes a binary log that needs more: "
        f"its lag grows steadily (the report gives the slope, against the one the two rates predict); when the "
        f"rate is restored, the catch-up is measured. {S2}, on a plain link, keeps up throughout.",
        phases=[
            Phase("load", [start_feed(), hold(0.15), wait_caught_up()], "inserts; every replica in sync"),
            Phase("thin", [thin_start(S1, "96kbit"), hold(0.5), thin_measure()],
                  f"{S1}'s link carries less than the binary log grows"),
            Phase("restore", [heal("link", S1, clear=True), wait_caught_up([S1], metric="catch_up_s"), hold(0.1),
                              stop_feed(), wait_caught_up(), check("final")], f"{S1}'s link plain again"),
        ],
        expectations=[expect_thin_link(), expect_metric_below("catch_up_s", 30), expect_caught_up([S1, S2]),
                      expect_consistent("final")],
    )


for _s in (crash_vs_kill(), crash_semisync(), one_way_partition(), semisync_over_distance(), thin_link()):
    BUILTIN[_s.name] = _s


def builtin() -> dict[str, Scenario]:
    """The built-in scenarios by name."""
    return dict(BUILTIN)


def get(name: str) -> Scenario:
    """A built-in scenario by name; ConfigError listing the known ones otherwise."""
    if name not in BUILTIN:
        raise ConfigError(f"unknown scenario {name!r}", hint=f"choose one of: {', '.join(BUILTIN)} "
                          "(replab scenario list)")
    return BUILTIN[name]
