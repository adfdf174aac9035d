"""The built-in scenarios of the shapes other than the star (chain, fan-in, ring), each with the outcome it
expects. Hold fractions are of the run's --duration, as in ``builtin.py``."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pymysql

from ..cluster import replication
from ..cluster.core import edge_sentences
from ..core.errors import ReplabError
from ..faults import repoint as rp
from ..servers import db
from ..workload import counter
from ..workload.feed import sample_nodes
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
    expect_caught_up,
    expect_consistent,
    expect_diagnosis,
    expect_metric_below,
    expect_no_replication_error,
    fault,
    heal,
    hold,
    lost_increments,
    start_feed,
    stop_feed,
    wait_caught_up,
)

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
M1, M2, M3 = "mysql-m1", "mysql-m2", "mysql-m3"


def _count(ctx: Context, node: str, table: str) -> int | None:
    return next((s.rows for s in sample_nodes(ctx.cluster, table) if s.name == node), None)


def _counts(label: str, node: str, table: str, pause: float = 0.15) -> Step:
    """Record ``node``'s and the table writer's row counts now and a moment later (``facts[label]``)."""
    def fn(ctx: Context) -> str:
        writer = next((w for w in ctx.cluster.writers() if ctx.cluster.writer_table(w) == table), None)
        _drain_relay_log(ctx, node)  # what it received before the fault is applied: only new arrivals count
        first = (_count(ctx, node, table), _count(ctx, writer, table) if writer else None)
        time.sleep(max(pause, 0.1 * ctx.params.duration))
        second = (_count(ctx, node, table), _count(ctx, writer, table) if writer else None)
        ctx.facts[label] = {"node": node, "writer": writer, "table": table, "first": first, "second": second}
        return f"{node} {table}: {first[0]} then {second[0]} rows (its writer {writer}: {first[1]} then {second[1]})"
    return act(f"count {node} {table}", fn)


def _drain_relay_log(ctx: Context, node: str, timeout: float = 20.0) -> None:
    """Wait (at most ``timeout``) until ``node`` applied everything its edges had received: a backlog in its
    relay log is not a write still arriving."""
    cluster = ctx.cluster
    with contextlib.suppress(ReplabError, pymysql.MySQLError), cluster.connect(node) as conn:
        for st in replication.replica_statuses(conn, cluster.flavor).values():
            if st.gtid_io_pos:
                replication.wait_applied(conn, cluster.flavor, st.gtid_io_pos, timeout, received=True)


def _edges(label: str) -> Step:
    """Record what status says about every edge now (``facts[label]``: its sentences, and each edge)."""
    def fn(ctx: Context) -> str:
        rows = ctx.cluster.edge_status()
        lines = edge_sentences(ctx.cluster.topology.name, rows)
        ctx.facts[label] = {"sentences": lines, "edges": [e.to_dict() for e in rows]}
        return "; ".join(lines)
    return act(f"edges {label}", fn)


def _edges_running(replica: str, metric: str | None = None, timeout: float = 30.0) -> Step:
    """Wait until every edge into ``replica`` has both threads running again (a restarted source is
    reconnected to within the IO thread's retry interval, not at once); ``metric``: how long it took."""
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        while True:
            rows = [e for e in ctx.cluster.edge_status() if e.replica == replica]
            down = [e.channel or e.source for e in rows if not (e.io_running and e.sql_running)]
            if not down:
                took = time.monotonic() - t0
                if metric:
                    ctx.metrics[metric] = round(took, 3)
                return f"{replica}: every edge replicating again after {took:.2f}s"
            if time.monotonic() - t0 > timeout:
                return f"{replica}: edge(s) {', '.join(down)} still not replicating after {timeout:.0f}s"
            time.sleep(0.05)
    return act(f"wait for the edges into {replica}", fn)


def _stalled(label: str, what: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        f = ctx.facts.get(label)
        if not f:
            return False, [f"{label} was not recorded"]
        (a, wa), (b, wb) = f["first"], f["second"]
        held = a is not None and a == b and wa is not None and wb is not None and wb > wa
        return held, [f"{f['node']} held {a} then {b} rows of {f['table']} while {f['writer']} went from {wa} to {wb}"]
    return expect(f"stalled-{label}", what, fn)


def _grows(label: str, what: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        f = ctx.facts.get(label)
        if not f:
            return False, [f"{label} was not recorded"]
        (a, _), (b, _) = f["first"], f["second"]
        return a is not None and b is not None and b > a, [f"{f['node']}: {a} then {b} rows of {f['table']}"]
    return expect(f"goes-on-{label}", what, fn)


def _says(label: str, *words: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        lines = (ctx.facts.get(label) or {}).get("sentences", [])
        return any(all(w in line for w in words) for line in lines), lines or ["nothing recorded"]
    return expect(f"status-{label}", f"status says: {' ... '.join(words)}", fn)


def _repoint(node: str, to: str) -> Step:
    def fn(ctx: Context) -> str:
        return rp.repoint(ctx.cluster, node, to)
    return Step(f"repoint {node} --to {to}", fn, kind="heal", node=node)


def chain_relay_down() -> Scenario:
    return Scenario(
        "chain-relay-down",
        f"A chain {M} -> {S1} -> {S2} under writes; the middle ({S1}) is killed: the tail stops receiving and "
        f"status says why; {S2} is repointed to {M} (GTID auto-positioning) and catches up; {S1} comes back. No "
        "acknowledged write lost, none applied twice.",
        phases=[
            Phase("load", [start_feed(), hold(0.25), check("under-load")], "writes on the primary, down the chain"),
            Phase("relay-down", [fault("kill", S1), hold(0.15), _counts("tail", S2, "events"), _edges("cut"),
                                 diagnose(S2)],
                  f"kill -9 of the intermediate source {S1} while the writes go on"),
            Phase("repoint", [_repoint(S2, M), wait_caught_up([S2], metric="tail_catch_up_s")],
                  f"{S2} replicates from {M} now"),
            Phase("back", [heal("start", S1), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{S1} started again: it fetches what it missed"),
        ],
        expectations=[
            expect_consistent("under-load"), _stalled("tail", f"{S2} receives nothing while {S1} is down"),
            _says("cut", f"{S1} -> {S2}", f"its source {S1} is down"),
            expect_diagnosis(S2, f"its source {S1} is down", "repoint"), expect_caught_up([S1, S2]),
            expect_metric_below("tail_catch_up_s", 30), expect_no_replication_error([S1, S2]),
            expect_consistent("final"),
        ],
        options={"topology": "chain"},
    )


def fan_in() -> Scenario:
    return Scenario(
        "fan-in",
        f"Two primaries ({M1}, {M2}) each write their own table; {S1} aggregates both over one named "
        f"connection/channel each. {M1} down stalls only its own channel; {M2}'s goes on; {M1} back: its channel "
        "catches up and everything is consistent.",
        phases=[
            Phase("load", [start_feed(), hold(0.25), check("under-load")], "writes on both primaries"),
            Phase("m1-down", [fault("kill", M1), hold(0.15), _counts("m2-channel", S1, "events_m2"), _edges("down")],
                  f"kill -9 of {M1} while both writers go on"),
            Phase("back", [heal("start", M1), _edges_running(S1, metric="m1_channel_reconnect_s"),
                           wait_caught_up([S1], metric="m1_channel_catch_up_s"), stop_feed(), check("final")],
                  f"{M1} started again; {S1}'s channel m1 reconnects and catches up"),
        ],
        expectations=[
            expect_consistent("under-load"), _grows("m2-channel", f"{S1} goes on applying {M2}'s writes"),
            _says("down", f"{M1} -> {S1} (m1)", f"its source {M1} is down"),
            expect("only-m1-stalls", f"only the channel m1 of {S1} stops", lambda ctx: _only(ctx, "down", "m1")),
            expect_metric_below("m1_channel_reconnect_s", 30), expect_metric_below("m1_channel_catch_up_s", 30),
            expect_no_replication_error([S1]),
            expect_consistent("final"),
        ],
        options={"topology": "fan-in"},
    )


def _only(ctx: Context, label: str, channel: str) -> tuple[bool, list[str]]:
    edges = (ctx.facts.get(label) or {}).get("edges", [])
    down = [e["channel"] for e in edges if not (e["io_running"] and e["sql_running"])]
    return down == [channel], [f"edges not replicating: {', '.join(down) or 'none'}"]


def ring_break() -> Scenario:
    return Scenario(
        "ring-break",
        f"A ring {M1} -> {M2} -> {M3} -> {M1}, every node writing; {M2} down cuts it: {M1}'s writes stop going "
        f"round ({M3} no longer gets them) and status names where the ring is cut; {M2} back: the ring heals and "
        "every node holds every write.",
        phases=[
            Phase("load", [start_feed(), hold(0.25), check("under-load")], "every node writes its own table"),
            Phase("cut", [fault("kill", M2), hold(0.15), _counts("m1-writes", M3, "events_m1"),
                          _counts("m3-writes", M1, "events_m3"), _edges("cut"), diagnose(M3)], f"kill -9 of {M2}"),
            Phase("heal", [heal("start", M2), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{M2} started again: the ring heals"),
        ],
        expectations=[
            expect_consistent("under-load"),
            _stalled("m1-writes", f"{M1}'s writes no longer reach {M3} (the ring is cut at {M2})"),
            _grows("m3-writes", f"{M3}'s writes still reach {M1} ({M3} -> {M1} is whole)"),
            _says("cut", f"{M2} -> {M3}", f"its source {M2} is down"),
            expect_diagnosis(M3, f"{M2} -> {M3}", f"its source {M2} is down"),
            expect_caught_up([M1, M2, M3]), expect_metric_below("catch_up_s", 30),
            expect_no_replication_error([M1, M3]), expect_consistent("final"),
        ],
        options={"topology": "ring"},
    )


SHAPE_SCENARIOS = [chain_relay_down(), fan_in(), ring_break()]


def _increments(fraction: float, hot_rows: int = 10) -> Step:
    """Both primaries increment the same few hot rows for ``fraction`` of the run's duration."""
    def fn(ctx: Context) -> str:
        r = counter.run(ctx.cluster, ctx.cluster.writers(), hot_rows=hot_rows, threads=ctx.params.threads,
                        duration=max(1.0, fraction * ctx.params.duration), seed=ctx.params.seed)
        ctx.metrics["increments_acknowledged"] = r.ok
        per = ", ".join(f"{w} {n}" for w, n in r.by_writer.items())
        return f"{r.ok} increments of {hot_rows} hot rows acknowledged ({per})"
    return act("increment hot rows on both primaries", fn)



def _inserts(label: str, per_node: int, offsets: bool) -> Step:
    """Both primaries insert ``per_node`` rows with AUTO_INCREMENT ids into one table at once; without
    ``offsets`` their sessions use increment 1, offset 1 (as two servers without replab's settings would)."""
    def fn(ctx: Context) -> str:
        cluster = ctx.cluster
        first = cluster.writers()[0]
        with cluster.connect(first, database=cluster.database) as conn:
            db.query(conn, f"CREATE TABLE IF NOT EXISTS {label} (id INT AUTO_INCREMENT PRIMARY KEY, "
                           "who VARCHAR(16) NOT NULL) ENGINE=InnoDB")
        cluster.wait_holders(timeout=30)
        errors: list[str] = []

        def insert(node: str) -> None:
            with cluster.connect(node, database=cluster.database) as conn:
                if not offsets:
                    db.query(conn, "SET SESSION auto_increment_increment = 1, auto_increment_offset = 1")
                for _ in range(per_node):
                    try:
                        db.query(conn, f"INSERT INTO {label} (who) VALUES (%s)", (node,))
                    except pymysql.MySQLError as exc:
                        errors.append(str(exc.args[0]))

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(insert, cluster.writers()))
        time.sleep(1.0)
        with contextlib.suppress(ReplabError):
            cluster.wait_holders(timeout=5)
        rows = cluster.edge_status()
        ctx.facts[label] = {"edges": [e.to_dict() for e in rows], "client_errors": errors,
                            "counts": {n: _count(ctx, n, label) for n in cluster.writers()}}
        broken = [f"{e.source} -> {e.replica}: error {e.last_errno}" for e in rows if e.last_errno]
        tail = f"; edges failing: {', '.join(broken)}" if broken else ""
        return f"{label}: counts {ctx.facts[label]['counts']}{tail}"
    return act(f"concurrent AUTO_INCREMENT inserts ({'with' if offsets else 'without'} offsets)", fn)


def _edge_errno(label: str, errno: int | None) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        f = ctx.facts.get(label)
        if not f:
            return False, [f"{label} was not recorded"]
        seen = [(e["source"], e["replica"], e["last_errno"], e["last_error"]) for e in f["edges"] if e["last_errno"]]
        evidence = [f"{s} -> {r}: error {n}: {m}" for s, r, n, m in seen] or ["no edge has an error"]
        evidence.append(f"rows: {f['counts']}")
        if errno is None:
            return not seen, evidence
        return any(n == errno for _s, _r, n, _m in seen), evidence
    what = "no edge stops on an error" if errno is None else f"an edge stops with error {errno} (duplicate key)"
    return expect(f"{label}-{'clean' if errno is None else errno}", what, fn)


def _lost_above_zero() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        lost = {k: v for k, v in ctx.metrics.items() if k.startswith("lost_increments_")}
        return bool(lost) and any(v > 0 for v in lost.values()), [f"{k} = {v}" for k, v in lost.items()]
    return expect("increments-lost", "asynchronous active-active loses acknowledged increments, counted exactly", fn)


def active_active_conflict() -> Scenario:
    return Scenario(
        "active-active-conflict",
        f"{M1} <-> {M2}, both taking writes. Both increment the same hot rows: the updates overwrite each other "
        "and the primaries diverge silently; check names the rows that differ and counts the lost increments "
        "exactly. Concurrent AUTO_INCREMENT inserts never collide with replab's auto_increment offsets; "
        "without them they collide (1062 on a replication edge).",
        phases=[
            Phase("conflict", [_increments(0.5), check("after-increments", wait=10),
                               lost_increments("after-increments")],
                  "both primaries increment the same 10 rows at once"),
            Phase("inserts", [_inserts("aa_offsets", 100, offsets=True)],
                  "both insert with AUTO_INCREMENT ids, with replab's offsets"),
            Phase("no-offsets", [_inserts("aa_no_offsets", 100, offsets=False), diagnose(M1), diagnose(M2)],
                  "both insert with AUTO_INCREMENT ids, increment 1 offset 1 on both"),
        ],
        expectations=[
            expect_inconsistent_table("after-increments", "counters"), _lost_above_zero(),
            _edge_errno("aa_offsets", None), _edge_errno("aa_no_offsets", 1062),
            expect("diagnosis-1062", "diagnose explains the collision (two primaries inserted the same key)",
                   lambda ctx: _diagnosed_collision(ctx)),
        ],
        nodes=2, options={"topology": "active-active"},
    )


def _diagnosed_collision(ctx: Context) -> tuple[bool, list[str]]:
    lines = [line for n in (M1, M2) for line in ctx.diagnoses.get(n, [])]
    return any("two primaries inserted the same key" in line for line in lines), lines[:4] or ["not diagnosed"]


def expect_inconsistent_table(check_name: str, table: str) -> Expectation:
    """The check is INCONSISTENT over the conflict: the lost increments are counted and every row of
    ``table`` that differs between the primaries is named (whether rows end up differing depends on how the
    two sides' after-images crossed: lost updates can also leave both primaries with the same wrong value)."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        if rep is None:
            return False, [f"check {check_name!r} did not run"]
        hits = [p for p in rep.problems if p.table == table]
        cv = getattr(rep, "counters", None)
        lost = {n: cv.lost(n)[0] for n in cv.nodes} if cv is not None else {}
        evidence = [f"{p.node} {p.table}: {p.kind} {p.detail}" for p in hits[:3]] or [f"no row of {table} differs"]
        evidence.append(f"lost increments counted: {lost or 'none'}")
        return not rep.consistent and (bool(hits) or any(lost.values())), evidence
    return expect(f"conflict-found-{table}", f"check is inconsistent: lost increments counted, the rows of {table} "
                  "that differ between the primaries named", fn)


SHAPE_SCENARIOS.append(active_active_conflict())
