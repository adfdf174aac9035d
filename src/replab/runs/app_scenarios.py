"""Built-in scenarios about what an application sees: stale reads from replicas, reads that go back in
time behind a round-robin read endpoint, and writes through a proxy while the primary is lost.

Lag is made deterministic with a delayed replica (``MASTER_DELAY`` / ``SOURCE_DELAY``): the replica applies
each transaction a fixed time after its commit on the source, so the anomalies do not depend on how busy
the machine is.
"""

from __future__ import annotations

import threading
import time

from ..cluster import roles
from ..engines import haproxy
from ..faults import failover, nemesis
from ..workload.reads import ReadOptions, Reads
from .scenarios import (
    Context,
    Expectation,
    Phase,
    Scenario,
    Step,
    act,
    check,
    expect,
    expect_consistent,
    expect_metric_below,
    hold,
    start_feed,
    stop_feed,
    wait_caught_up,
)

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
DELAY_S = 1  # the lagging replica's SOURCE_DELAY


def _delay(node: str, seconds: int) -> Step:
    def fn(ctx: Context) -> str:
        ctx.cluster.set_replica_delay(node, seconds)
        return (f"{node}: applies every transaction {seconds} s after its commit on the source" if seconds else
                f"{node}: applies at once again")
    return Step(f"delay {node} {seconds}s", fn, "fault" if seconds else "heal", node)


def _reads(label: str, read_from: str, fraction: float, causal: bool = False, rate: float = 40.0) -> Step:
    """Read sessions for ``fraction`` of the run; the result is kept as ``facts['reads'][label]``."""
    def fn(ctx: Context) -> str:
        r = Reads(ctx.cluster, ReadOptions(rate=rate, read_from=read_from, causal=causal, sessions=2)).start()
        time.sleep(max(1.0, ctx.params.duration * fraction))
        res = r.stop()
        ctx.facts.setdefault("reads", {})[label] = res
        ctx.timeline.add_reads(label, res)  # its span and every violation, for the report's read lanes
        s = res.summary()
        ctx.metrics[f"{label}_reads"] = res.reads
        ctx.metrics[f"{label}_read_your_writes"] = res.ryw
        ctx.metrics[f"{label}_monotonic"] = res.monotonic
        if s["staleness_ms"]["p50"] is not None:
            ctx.metrics[f"{label}_staleness_p50_ms"] = round(s["staleness_ms"]["p50"], 1)
            ctx.metrics[f"{label}_staleness_max_ms"] = round(s["staleness_ms"]["max"], 1)
        if causal and s["causal_wait_ms"]["p50"] is not None:
            ctx.metrics[f"{label}_causal_wait_p50_ms"] = round(s["causal_wait_ms"]["p50"], 1)
            ctx.metrics[f"{label}_causal_wait_p99_ms"] = round(s["causal_wait_ms"]["p99"], 1)
        ctx.timeline.event("note", f"{label}: {res.line()}", None)
        return res.line()
    return act(f"reads {label}", fn)


def _expect_reads(label: str, *, ryw: str, monotonic: str, nodes: dict[str, tuple[str, str]] | None = None
                  ) -> Expectation:
    """``ryw``/``monotonic``: "none", "all" (every read), "some" (at least one) or "any" (not asserted: an
    asynchronous replica a few ms behind misses a row read right after its write, or not, by timing);
    ``nodes``: the same per node."""
    def holds(rule: str, got: int, reads: int) -> bool:
        return {"none": got == 0, "all": reads > 0 and got == reads, "some": got > 0, "any": True}[rule]

    def fn(ctx: Context) -> tuple[bool, list[str]]:
        res = ctx.facts.get("reads", {}).get(label)
        if res is None:
            return False, [f"reads {label!r} did not run"]
        ok = res.reads > 0 and res.errors == 0 and holds(ryw, res.ryw, res.reads) and \
            holds(monotonic, res.monotonic, res.reads)
        for node, (r_rule, m_rule) in (nodes or {}).items():
            n = res.per_node.get(node)
            ok = ok and n is not None and holds(r_rule, n.ryw, n.reads) and holds(m_rule, n.monotonic, n.reads)
        return ok, [res.line()]
    return expect(f"reads-{label}", f"{label}: read-your-writes violations {ryw}, monotonic-read violations "
                  f"{monotonic}" + (f"; per node {nodes}" if nodes else ""), fn)


def read_your_writes() -> Scenario:
    return Scenario(
        "read-your-writes",
        f"{S2} lags {DELAY_S} s (SOURCE_DELAY). Sessions write a row on the primary and read it back at once: "
        f"from {S2} every read misses the session's own acknowledged row (counted exactly, with its staleness); "
        f"from the primary none does; with --causal (wait for the session's GTID first) none does on {S2} "
        "either, and the latency that costs is measured.",
        phases=[
            Phase("lag", [_delay(S2, DELAY_S), start_feed(rate=100)], f"{S2} set {DELAY_S} s behind; inserts"),
            Phase("reads", [_reads("primary", M, 0.2), _reads("lagging", S2, 0.3),
                            _reads("causal", S2, 0.3, causal=True)],
                  "sessions that write then read: from the primary, from the lagging replica, and causally"),
            Phase("catch-up", [_delay(S2, 0), stop_feed(), wait_caught_up(), check("final")],
                  f"{S2} applies at once again"),
        ],
        expectations=[_expect_reads("primary", ryw="none", monotonic="none"),
                      _expect_reads("lagging", ryw="all", monotonic="none"),
                      _expect_reads("causal", ryw="none", monotonic="none"),
                      expect_consistent("final")],
    )


def monotonic_reads() -> Scenario:
    return Scenario(
        "monotonic-reads",
        f"Two replicas at different lags ({S1} current, {S2} {DELAY_S} s behind) behind the proxy's round-robin "
        f"read endpoint: consecutive reads of a session go back in time when they land on {S2}, and only there; "
        f"pinned to {S1} a session never goes back; causal reads never do.",
        phases=[
            Phase("lag", [_delay(S2, DELAY_S), start_feed(rate=100)], f"{S2} set {DELAY_S} s behind; inserts"),
            Phase("reads", [_reads("round-robin", "proxy", 0.35), _reads("pinned", S1, 0.2),
                            _reads("causal", "proxy", 0.3, causal=True)],
                  "the proxy's read endpoint, one replica, and causal reads"),
            Phase("catch-up", [_delay(S2, 0), stop_feed(), wait_caught_up(), check("final")],
                  f"{S2} applies at once again"),
        ],
        expectations=[_expect_reads("round-robin", ryw="some", monotonic="some",
                                    nodes={S1: ("any", "none"), S2: ("all", "some")}),
                      _expect_reads("pinned", ryw="any", monotonic="none"),
                      _expect_reads("causal", ryw="none", monotonic="none"),
                      expect_consistent("final")],
        options={"proxy": "haproxy"},
    )


def _kill_and_fail_over() -> Step:
    """Kill the primary under a feed through the proxy and fail over; metrics: ``outage_s`` (the kill to
    the first write acknowledged through the write endpoint afterwards), ``proxy_follow_s``."""
    def fn(ctx: Context) -> str:
        feeder, cluster = ctx.feeder, ctx.cluster
        old = cluster.primary.name
        before = feeder.result.ok
        t_kill = time.monotonic()
        nemesis.kill(cluster, old)
        first_ack: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if feeder.result.ok > before:
                    first_ack.append(time.monotonic())
                    return
                time.sleep(0.002)

        # acknowledgements after the kill can only come from the new primary (the old one is dead)
        watcher = threading.Thread(target=watch, daemon=True)
        change = failover.failover(cluster)
        before = feeder.result.ok
        watcher.start()
        watcher.join(timeout=15)
        done.set()
        ctx.metrics["failover_s"] = change.to_writable_s
        if change.proxy_s is not None:
            ctx.metrics["proxy_follow_s"] = change.proxy_s
        if first_ack:
            ctx.metrics["outage_s"] = round(first_ack[0] - t_kill, 3)
        ctx.facts["routes"] = haproxy.serving(cluster.home)
        ctx.facts["new_primary"] = change.new_primary
        return change.sentence() + (f"; first write acknowledged through the proxy {ctx.metrics['outage_s']:.2f}s "
                                    "after the kill" if first_ack else "; no write acknowledged through the proxy")
    return Step("kill the primary and fail over", fn, "fault", None)


def _expect_app_view() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        feeds = ctx.feeds
        routes, new = ctx.facts.get("routes") or {}, ctx.facts.get("new_primary")
        errors = {k: v for f in feeds for k, v in f.error_kinds.items()}
        epochs = [e.primary for e in roles.read_epochs(ctx.cluster.home)]
        ok = bool(feeds) and routes.get("write") == [new] and bool(epochs) and epochs[-1] == new and \
            "outage_s" in ctx.metrics
        return ok, [f"write endpoint routes to {routes.get('write')} (new primary {new}); "
                    f"errors the application got: {errors or 'none'}; epochs {epochs[-3:]}"]
    return expect("app-view", "the application writing through the proxy reaches the new primary without "
                  "a proxy restart; its errors are listed", fn)


def _expect_lost_none(check_name: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        if rep is None:
            return False, [f"check {check_name!r} did not run"]
        return rep.lost == [], [lw.sentence() for lw in rep.lost] or ["no acknowledged write lost"]
    return Expectation(f"lost-{check_name}", f"no acknowledged write lost (check {check_name})", fn)


def proxy_failover() -> Scenario:
    return Scenario(
        "proxy-failover",
        f"An application writes through the proxy's write endpoint (semi-sync, AFTER_SYNC) while {M} is killed "
        "and replab fails over: the endpoint follows the new primary without a restart; the report shows the "
        "errors the application got, the outage (the kill to the first write acknowledged through the proxy), "
        "and 0 acknowledged writes lost.",
        phases=[
            Phase("load", [start_feed(via="proxy"), hold(0.3), check("under-load")],
                  "inserts through the proxy's write endpoint"),
            Phase("failover", [_kill_and_fail_over(), hold(0.3), stop_feed(), wait_caught_up(), check("final")],
                  f"{M} killed; failover; the proxy follows"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), _expect_lost_none("final"),
                      _expect_app_view(), expect_metric_below("outage_s", 10)],
        options={"proxy": "haproxy", "semi_sync": True, "semi_sync_timeout_ms": 5000},
    )


def scenarios() -> list[Scenario]:
    return [read_your_writes(), monotonic_reads(), proxy_failover()]
