"""The built-in scenarios of the Galera shape, each with the outcome it expects: a node killed under writes
(the others go on, 0 acknowledged lost, it rejoins by IST or SST, measured), conflicting increments on every
node (brute-force aborts and certification failures are refused writes, counted; 0 increments lost), and a
node paused with SIGSTOP (the cluster stalls/throttles while it is gone; commit latency and the flow-control
paused share measured; it recovers on resume)."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time

from ..cluster import galera
from ..core.errors import ReplabError
from ..faults import nemesis
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
    expect_consistent,
    expect_metric_below,
    fault,
    heal,
    hold,
    start_feed,
    stop_feed,
    wait_caught_up,
)

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
OPTIONS = {"topology": "galera"}


def _rows(ctx: Context, node: str, table: str) -> int | None:
    return next((s.rows for s in sample_nodes(ctx.cluster, table) if s.name == node), None)


def _others_write(label: str, down: str) -> Step:
    """Each live writer's own table on itself now and a moment later (``facts[label]``)."""
    def fn(ctx: Context) -> str:
        live = [w for w in ctx.cluster.writers() if w != down]
        first = {w: _rows(ctx, w, ctx.cluster.writer_table(w)) for w in live}
        time.sleep(max(0.5, 0.1 * ctx.params.duration))
        second = {w: _rows(ctx, w, ctx.cluster.writer_table(w)) for w in live}
        ctx.facts[label] = {"first": first, "second": second}
        return "; ".join(f"{w}: {first[w]} then {second[w]} rows" for w in live)
    return act(f"count the writes of the others while {down} is down", fn)


def _go_on(label: str, down: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        f = ctx.facts.get(label)
        if not f:
            return False, [f"{label} was not recorded"]
        ok = all(a is not None and b is not None and b > a for a, b in
                 ((f["first"][w], f["second"][w]) for w in f["first"]))
        return ok, [f"{w}: {f['first'][w]} then {f['second'][w]} rows" for w in f["first"]]
    return expect(f"others-go-on-{label}", f"every other node goes on taking writes while {down} is down", fn)


def _view_without(node: str, timeout: float = 60.0) -> Step:
    """Wait until the other nodes form a Primary component without ``node`` (metric ``view_change_s``: how
    long commits wait after a member dies, until the others evict it)."""
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        others = [n for n in ctx.cluster.names if n != node]
        while time.monotonic() - t0 < timeout:
            states = [galera.node_state(ctx.cluster, n) or {} for n in others]
            if all(s.get("cluster_status") == "Primary" and s.get("cluster_size") == len(others) for s in states):
                took = round(time.monotonic() - t0, 2)
                ctx.metrics["view_change_s"] = took
                return f"{', '.join(others)}: a Primary component of {len(others)} without {node} after {took:.2f}s"
            time.sleep(0.05)
        return f"no Primary component without {node} after {timeout:.0f}s"
    return act(f"wait for a view without {node}", fn)


def _rejoin(node: str) -> Step:
    """Start ``node`` again; record how it got the state it missed (IST or SST) and how long until Synced."""
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        sentence = nemesis.start(ctx.cluster, node, catch_up=0)
        galera.wait_synced(ctx.cluster, timeout=120)
        took = round(time.monotonic() - t0, 2)
        how = galera.join_method(ctx.cluster.node(node))
        ctx.metrics["rejoin_s"] = took
        ctx.metrics["rejoin_method"] = how
        ctx.timeline.event("note", f"{node}: rejoined by {how}, Synced after {took:.1f}s", node)
        return f"{sentence}; rejoined by {how}, Synced after {took:.1f}s"
    return Step(f"start {node}", fn, "heal", node)


def _diagnosed(node: str, key: str, *words: str) -> Expectation:
    """``diagnose NODE`` (a step earlier in the run) said every one of ``words`` in one diagnosis."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        lines = ctx.diagnoses.get(node, [])
        return any(all(w in line for w in words) for line in lines), lines[:6] or ["not diagnosed"]
    return expect(f"diagnosis-{node}-{key}", f"diagnose {node} says: {' ... '.join(words)}", fn)


def _joined_by_transfer() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        how = str(ctx.metrics.get("rejoin_method"))
        return how.startswith(("IST", "SST")), [f"state transfer: {how}, {ctx.metrics.get('rejoin_s')}s"]
    return expect("rejoin-transfer", "the killed node rejoins by a state transfer (IST from the gcache, or SST)", fn)


def galera_node_kill() -> Scenario:
    return Scenario(
        "galera-node-kill",
        f"Three Galera nodes, every one taking writes; {S2} is killed (SIGKILL): the others go on (the Primary "
        "component keeps 2 of 3), no acknowledged write is lost; started again it rejoins by IST (or SST), "
        "measured, and every node holds every acknowledged write.",
        phases=[
            Phase("load", [start_feed(), hold(0.25)], "writes on every node, each into its own table"),
            Phase("kill", [fault("kill", S2), _view_without(S2), _others_write("others", S2), diagnose(S2)],
                  f"kill -9 of {S2}"),
            Phase("rejoin", [_rejoin(S2), hold(0.1), stop_feed(), wait_caught_up(metric="catch_up_s"),
                             check("final")], f"{S2} started again"),
        ],
        expectations=[expect_metric_below("view_change_s", 30), _go_on("others", S2), _joined_by_transfer(),
                      _diagnosed(S2, "down", f"{S2}: is down", "go on in the Primary component without it",
                                 f"replab start {S2}: it crashed", "IST if what it missed is still in the gcache"),
                      expect_metric_below("rejoin_s", 120),
                      expect_consistent("final")],
        options=OPTIONS,
    )


def _conflicting_increments(fraction: float, hot_rows: int = 3) -> Step:
    """Every node increments the same few hot rows at once (``threads`` connections each)."""
    def fn(ctx: Context) -> str:
        before = _conflict_counters(ctx)
        r = counter.run(ctx.cluster, ctx.cluster.writers(), hot_rows=hot_rows, threads=ctx.params.threads,
                        duration=max(1.0, fraction * ctx.params.duration), seed=ctx.params.seed)
        after = _conflict_counters(ctx)
        ctx.metrics.update({"increments_acknowledged": r.ok, "increments_failed": r.failed,
                            "increments_unknown": r.unknown,
                            "bf_aborts": after[0] - before[0], "cert_failures": after[1] - before[1]})
        ctx.facts["last_error"] = r.last_error
        per = ", ".join(f"{w} {n}" for w, n in r.by_writer.items())
        return (f"{r.ok} increments of {hot_rows} hot rows acknowledged ({per}), {r.failed} refused, "
                f"{r.unknown} unknown; brute-force aborts {after[0] - before[0]}, certification failures "
                f"{after[1] - before[1]}; last error: {r.last_error or '-'}")
    return act("increment the same hot rows on every node", fn)


def _conflict_counters(ctx: Context) -> tuple[int, int]:
    bf = cert = 0
    for n in ctx.cluster.names:
        st = galera.node_state(ctx.cluster, n) or {}
        bf += int(st.get("local_bf_aborts") or 0)
        cert += int(st.get("local_cert_failures") or 0)
    return bf, cert


def _no_lost_increments(check_name: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        cv = getattr(rep, "counters", None)
        if cv is None:
            return False, ["no counter verdict"]
        lost = {n: cv.lost(n)[0] for n in cv.nodes}
        return all(v == 0 for v in lost.values()) and bool(rep and rep.consistent), \
            [f"{n}: {v} acknowledged increments lost" for n, v in lost.items()]
    return expect("no-increment-lost", "final counters equal the acknowledged increments exactly, on every node", fn)


def _conflicts_refused() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        m = ctx.metrics
        return int(m.get("increments_failed") or 0) > 0, [
            f"refused {m.get('increments_failed')} (brute-force aborts {m.get('bf_aborts')}, certification "
            f"failures {m.get('cert_failures')}); last error: {ctx.facts.get('last_error')}"]
    return expect("conflicts-refused", "conflicting increments are refused (deadlock 1213) and counted as failed", fn)


def galera_conflict() -> Scenario:
    return Scenario(
        "galera-conflict",
        "Every Galera node increments the same 3 hot rows at once. Conflicting writes are refused, never merged: "
        "brute-force aborts and certification failures come back as deadlock errors (1213) and count as failed "
        "writes; the final counters equal the acknowledged increments exactly on every node.",
        phases=[Phase("conflict", [_conflicting_increments(0.6), check("final", wait=10)],
                      "increments of the same rows on every node")],
        expectations=[_conflicts_refused(), _no_lost_increments("final")],
        options=OPTIONS,
    )


# --- flow control ----------------------------------------------------------------------------------------
class _Probe:
    """Commits one-row inserts on one node back to back, recording (start time, latency) of each."""

    def __init__(self, ctx: Context, node: str) -> None:
        self.ctx, self.node = ctx, node
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="replab-galera-probe")

    def _loop(self) -> None:
        cluster = self.ctx.cluster
        with contextlib.suppress(ReplabError, Exception), cluster.connect(self.node, database=cluster.database,
                                                                         timeout=5, read_timeout=60) as conn:
            db.query(conn, "CREATE TABLE IF NOT EXISTS fc_probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                           "at DOUBLE NOT NULL) ENGINE=InnoDB")
            while not self.stop.is_set():
                t0 = time.monotonic()
                db.query(conn, "INSERT INTO fc_probe (at) VALUES (%s)", (time.time(),))
                self.samples.append((t0, time.monotonic() - t0))
                time.sleep(0.02)

    def between(self, a: float, b: float) -> list[float]:
        return [lat for t, lat in self.samples if a <= t < b or (t < a and t + lat > a)]


def _flow_control(node: str, writer: str, pause_s: float) -> Step:
    def fn(ctx: Context) -> str:
        cluster = ctx.cluster
        for n in cluster.names:  # wsrep_flow_control_paused counts from here
            with contextlib.suppress(ReplabError), cluster.connect(n) as conn:
                db.query(conn, "FLUSH STATUS")
        probe = _Probe(ctx, writer)
        probe.thread.start()
        time.sleep(1.5)
        t_pause = time.monotonic()
        ctx.timeline.event("fault", nemesis.pause(cluster, node), node)
        time.sleep(pause_s)
        t_resume = time.monotonic()
        nemesis.resume(cluster, node)
        ctx.timeline.event("heal", f"{node}: resumed", node)
        time.sleep(3.0)
        t_end = time.monotonic()
        probe.stop.set()
        probe.thread.join(60)
        base = probe.between(t_pause - 1.5, t_pause)
        during = probe.between(t_pause, t_resume)
        after = probe.between(t_resume + 1.0, t_end)
        states = {n: galera.node_state(cluster, n) or {} for n in cluster.names}
        ctx.metrics.update({
            "commit_p50_before_ms": round(1000 * statistics.median(base), 1) if base else None,
            "commit_max_paused_ms": round(1000 * max(during), 1) if during else None,
            "commit_p50_after_ms": round(1000 * statistics.median(after), 1) if after else None,
            "commits_while_paused": len(during),
            "fc_paused_share": {n: s.get("flow_control_paused") for n, s in states.items()},
            "fc_sent": {n: s.get("flow_control_sent") for n, s in states.items()},
            "cluster_size_after": max((int(s.get("cluster_size") or 0) for s in states.values()), default=0),
        })
        m = ctx.metrics
        return (f"{writer} commits: p50 {m['commit_p50_before_ms']} ms before, max {m['commit_max_paused_ms']} ms "
                f"while {node} was paused {pause_s:g}s ({len(during)} commits), p50 {m['commit_p50_after_ms']} ms "
                f"after resume; flow control paused share {m['fc_paused_share']}, FC messages sent {m['fc_sent']}")
    return Step(f"pause {node} {pause_s:g}s under commits on {writer}", fn, "fault", node)


def _stalled_while_paused(pause_s: float) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        m = ctx.metrics
        base, worst = m.get("commit_p50_before_ms"), m.get("commit_max_paused_ms")
        ok = base is not None and worst is not None and worst >= max(10 * base, 250.0)
        return ok, [f"commit latency p50 {base} ms before, max {worst} ms while paused"]
    return expect("throttled", "commits on the other nodes are held back while one node is paused (SIGSTOP): "
                  "a member that does not answer throttles the whole cluster", fn)


def _recovered() -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        m = ctx.metrics
        after, base = m.get("commit_p50_after_ms"), m.get("commit_p50_before_ms")
        ok = after is not None and base is not None and after <= max(5 * base, 50.0) \
            and m.get("cluster_size_after") == 3
        return ok, [f"p50 {after} ms after resume (before: {base} ms); cluster size {m.get('cluster_size_after')}; "
                    f"flow control paused share {m.get('fc_paused_share')}"]
    return expect("recovers", "after resume commits are as fast as before and the cluster has all 3 nodes", fn)


def galera_flow_control(pause_s: float = 3.0) -> Scenario:
    return Scenario(
        "galera-flow-control",
        f"Writes on every Galera node and a latency probe committing on {M}; {S2} is paused (SIGSTOP) for "
        f"{pause_s:g}s, less than the suspect timeout (5 s), so it stays a member: the cluster cannot commit past "
        "it and is throttled (commit latency and the flow-control paused share are measured); on resume it "
        "works off its queue and everything is as fast as before, nothing lost.",
        phases=[
            Phase("load", [start_feed(), hold(0.15)], "writes on every node"),
            Phase("pause", [_flow_control(S2, M, pause_s)], f"SIGSTOP of {S2} for {pause_s:g}s, then SIGCONT"),
            Phase("after", [stop_feed(), wait_caught_up(metric="catch_up_s"), check("final")], "all caught up"),
        ],
        expectations=[_stalled_while_paused(pause_s), _recovered(), expect_consistent("final")],
        options=OPTIONS,
    )


def _minority_write(node: str) -> Step:
    """One INSERT on the cut-off node (its own table): refused (1047) or never answered; never acknowledged."""
    def fn(ctx: Context) -> str:
        cluster = ctx.cluster
        table = cluster.writer_table(node)
        try:
            with cluster.connect(node, database=cluster.database, timeout=3, read_timeout=10) as conn:
                db.query(conn, f"INSERT INTO {table} (id, name, n, descr) VALUES (%s, 'minority', 0, 'minority')",
                         (10**12,))
            outcome = "acknowledged"
        except ReplabError as exc:
            outcome = "failed" if getattr(exc, "errno", None) else "unknown"
            ctx.facts["minority_error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - the driver's own errors: counted the same way
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            outcome = "failed" if code and 1000 <= code < 2000 else "unknown"
            ctx.facts["minority_error"] = str(exc)
        ctx.facts["minority_write"] = outcome
        return f"a write on {node}: {outcome} ({ctx.facts.get('minority_error', '-')})"
    return act(f"write on {node} while it is cut off", fn)


def _minority_refused(node: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        got = ctx.facts.get("minority_write")
        return got in ("failed", "unknown"), [f"write on {node}: {got} ({ctx.facts.get('minority_error', '-')})"]
    return expect("minority-not-acknowledged", f"a write on the minority node {node} is never acknowledged", fn)


def _synced_again(metric: str) -> Step:
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        ok = all(galera.wait_synced(ctx.cluster, timeout=120).values())
        took = round(time.monotonic() - t0, 2)
        ctx.metrics[metric] = took if ok else None
        return f"every node Synced in the Primary component after {took:.1f}s" if ok else "not all Synced"
    return act("wait until every node is Synced again", fn)


def galera_minority_partition() -> Scenario:
    return Scenario(
        "galera-minority-partition",
        f"Writes on every Galera node; {S2} is cut off from the other two (the member network: its own "
        f"address, silent drops). {M} and {S1} keep the Primary component (2 of 3) and go on; {S2} goes "
        "non-Primary and a write there is never acknowledged; after heal it rejoins (IST) and every node holds "
        "every acknowledged write.",
        phases=[
            Phase("load", [start_feed(), hold(0.2)], "writes on every node"),
            Phase("cut", [fault("partition", S2), _view_without(S2), _others_write("others", S2),
                          _minority_write(S2), diagnose(S2)], f"{S2} cut off from {M} and {S1}"),
            Phase("heal", [heal("heal", S2), _synced_again("rejoin_s"), stop_feed(), check("final", wait=60)],
                  f"{S2} back on the network"),
        ],
        expectations=[expect_metric_below("view_change_s", 30), _go_on("others", S2), _minority_refused(S2),
                      _diagnosed(S2, "non-primary", f"{S2}: non-Primary: quorum lost here, it sees 1 of the 3 nodes",
                                 f"the majority ({M}, {S1}) is a Primary component"),
                      _diagnosed(S2, "no-bootstrap", "do NOT force it with SET GLOBAL "
                                 "wsrep_provider_options='pc.bootstrap=YES'", "split brain"),
                      expect_metric_below("rejoin_s", 120), expect_consistent("final")],
        options=OPTIONS,
    )


GALERA_SCENARIOS = [galera_node_kill(), galera_conflict(), galera_flow_control(), galera_minority_partition()]
