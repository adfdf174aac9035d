"""The built-in scenarios of the shapes other than the star (chain, fan-in, ring), each with the outcome it
expects. Hold fractions are of the run's --duration, as in ``builtin.py``."""

from __future__ import annotations

import time

from ..cluster.core import edge_sentences
from ..faults import repoint as rp
from ..workload.feed import sample_nodes
from .scenarios import (
    Context,
    Expectation,
    Phase,
    Scenario,
    Step,
    act,
    check,
    expect,
    expect_caught_up,
    expect_consistent,
    expect_metric_below,
    expect_no_replication_error,
    fault,
    heal,
    hold,
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
        first = (_count(ctx, node, table), _count(ctx, writer, table) if writer else None)
        time.sleep(max(pause, 0.1 * ctx.params.duration))
        second = (_count(ctx, node, table), _count(ctx, writer, table) if writer else None)
        ctx.facts[label] = {"node": node, "writer": writer, "table": table, "first": first, "second": second}
        return f"{node} {table}: {first[0]} then {second[0]} rows (its writer {writer}: {first[1]} then {second[1]})"
    return act(f"count {node} {table}", fn)


def _edges(label: str) -> Step:
    """Record what status says about every edge now (``facts[label]``: its sentences, and each edge)."""
    def fn(ctx: Context) -> str:
        rows = ctx.cluster.edge_status()
        lines = edge_sentences(ctx.cluster.topology.name, rows)
        ctx.facts[label] = {"sentences": lines, "edges": [e.to_dict() for e in rows]}
        return "; ".join(lines)
    return act(f"edges {label}", fn)


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
            Phase("relay-down", [fault("kill", S1), hold(0.15), _counts("tail", S2, "events"), _edges("cut")],
                  f"kill -9 of the intermediate source {S1} while the writes go on"),
            Phase("repoint", [_repoint(S2, M), wait_caught_up([S2], metric="tail_catch_up_s")],
                  f"{S2} replicates from {M} now"),
            Phase("back", [heal("start", S1), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{S1} started again: it fetches what it missed"),
        ],
        expectations=[
            expect_consistent("under-load"), _stalled("tail", f"{S2} receives nothing while {S1} is down"),
            _says("cut", f"{S1} -> {S2}", f"its source {S1} is down"), expect_caught_up([S1, S2]),
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
            Phase("back", [heal("start", M1), wait_caught_up([S1], metric="m1_channel_catch_up_s"), stop_feed(),
                           check("final")], f"{M1} started again; {S1}'s channel m1 catches up"),
        ],
        expectations=[
            expect_consistent("under-load"), _grows("m2-channel", f"{S1} goes on applying {M2}'s writes"),
            _says("down", f"{M1} -> {S1} (m1)", f"its source {M1} is down"),
            expect("only-m1-stalls", f"only the channel m1 of {S1} stops", lambda ctx: _only(ctx, "down", "m1")),
            expect_metric_below("m1_channel_catch_up_s", 30), expect_no_replication_error([S1]),
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
                          _counts("m3-writes", M1, "events_m3"), _edges("cut")], f"kill -9 of {M2}"),
            Phase("heal", [heal("start", M2), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{M2} started again: the ring heals"),
        ],
        expectations=[
            expect_consistent("under-load"),
            _stalled("m1-writes", f"{M1}'s writes no longer reach {M3} (the ring is cut at {M2})"),
            _grows("m3-writes", f"{M3}'s writes still reach {M1} ({M3} -> {M1} is whole)"),
            _says("cut", f"{M2} -> {M3}", f"its source {M2} is down"),
            expect_caught_up([M1, M2, M3]), expect_metric_below("catch_up_s", 30),
            expect_no_replication_error([M1, M3]), expect_consistent("final"),
        ],
        options={"topology": "ring"},
    )


SHAPE_SCENARIOS = [chain_relay_down(), fan_in(), ring_break()]
