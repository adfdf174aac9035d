"""Steps and expectations of the link scenarios (crash-vs-kill, one-way partitions, shaped links):
ledger marks, a crash that records what the links dropped, a pause while the links deliver."""

from __future__ import annotations

import time

from ..cluster import replication
from ..faults import nemesis
from ..verify import ledger
from .scenarios import Context, Expectation, Step, act


def acknowledged_ids(ctx: Context) -> list[int]:
    """Every id the ledger holds as acknowledged (read with the feed stopped: the ledger is complete)."""
    path = ledger.ledger_path(ctx.cluster.home)
    return [i for r in ledger.read_runs(path) if r.outcome == ledger.OK for i in range(r.start, r.end)]


def mark(name: str) -> Step:
    """Record the highest acknowledged id now (metric ``mark_<name>``); the feed must be stopped."""
    def fn(ctx: Context) -> str:
        ids = acknowledged_ids(ctx)
        top = max(ids, default=0)
        ctx.facts.setdefault("marks", {})[name] = top
        return f"mark {name}: {len(ids)} acknowledged write(s), the last id {top}"
    return act(f"mark {name}", fn)


def on_primary(action: str, **kwargs: object) -> Step:
    """A nemesis action on whichever node is the primary when the step runs; a crash records the bytes its
    links dropped (metric ``<action>_dropped_bytes``)."""
    def fn(ctx: Context) -> str:
        name = ctx.cluster.primary.name
        ctx.facts.setdefault("primaries", []).append(name)
        sentence = str(getattr(nemesis, action)(ctx.cluster, name, **kwargs))
        if action == "crash":
            words = sentence.split(" dropped ", 1)
            ctx.metrics.setdefault("crash_dropped_bytes", 0)
            if len(words) == 2 and words[1].split()[0].isdigit():
                ctx.metrics["crash_dropped_bytes"] += int(words[1].split()[0])
        return sentence
    return Step(f"{action} the primary", fn, "fault", None)


def wait_sent(timeout: float = 10.0) -> Step:
    """Wait until the primary's binlog dump threads say they have sent all of the binary log: what the server
    acknowledged has been written to the links (and is in them, or in the relays, while they are cut). A
    kill right after a commit could otherwise beat the dump thread to its last event."""
    def fn(ctx: Context) -> str:
        cluster, deadline = ctx.cluster, time.monotonic() + timeout
        while True:
            with cluster.connect(cluster.primary.name) as conn:
                dumps = replication.dump_threads(conn)
            done = [d for d in dumps if "has sent all binlog" in str(d["state"])]
            if dumps and len(done) == len(dumps):
                return f"{cluster.primary.name}: its {len(dumps)} dump thread(s) have sent all of the binary log"
            if time.monotonic() > deadline:
                return f"{cluster.primary.name}: dump threads still sending after {timeout:g}s: " + \
                    ", ".join(str(d["state"]) for d in dumps)
            time.sleep(0.02)
    return act("wait until the primary has sent its binary log", fn)


def settle(seconds: float = 1.0) -> Step:
    """Give the links a moment to deliver what they held (a healed link after a kill)."""
    def fn(ctx: Context) -> None:
        time.sleep(seconds)
    return act(f"let the links deliver ({seconds:g}s)", fn)


def expect_lost_between(check_name: str, after: str, upto: str) -> Expectation:
    """The writes lost at ``check_name`` (ground truth, by SQL) are exactly the ids acknowledged after mark
    ``after`` up to mark ``upto``: every one of them, and no other."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        marks = ctx.facts.get("marks", {})
        truth = ctx.facts.get("truth", {}).get(check_name)
        if truth is None or after not in marks or upto not in marks:
            return False, [f"check {check_name!r} or marks {after!r}/{upto!r} missing"]
        lo, hi = marks[after], marks[upto]
        window = [i for i in acknowledged_ids(ctx) if lo < i <= hi]
        ok = bool(window) and sorted(truth) == window
        return ok, [f"{len(window)} write(s) acknowledged after {after} (ids {lo + 1}..{hi}); "
                    f"{len(truth)} lost: {sorted(truth)[:8]}{'...' if len(truth) > 8 else ''}"]
    return Expectation(f"lost-exactly-{check_name}",
                       f"the writes lost are exactly those acknowledged between {after} and {upto}", fn)


def record_link(node: str, key: str) -> Step:
    """Record ``node``'s status row now (its link with the primary's view of it, its IO thread), as ``key``."""
    def fn(ctx: Context) -> str:
        row = next(r for r in ctx.cluster.status() if r.name == node)
        link = row.link or {}
        ctx.facts.setdefault("links", {})[key] = {"io_running": row.io_running, "last_errno": row.last_errno,
                                                  "cut": link.get("cut"), "primary_view": link.get("primary_view"),
                                                  "gtid": row.gtid}
        view = link.get("primary_view")
        dump = f"dump thread {view['id']} ({view['state']})" if view else "no dump thread"
        return (f"{node}: link cut {', '.join(link.get('cut') or []) or 'nowhere'}; IO thread "
                f"{'running' if row.io_running else 'not running'}; the primary's view: {dump}")
    return act(f"record {node}'s link", fn)


def expect_link_view(key: str, cut: list[str], io_running: bool, dump_thread: bool) -> Expectation:
    """The link recorded as ``key`` was cut ``cut``, the replica's IO thread was (not) running without an
    error, and the primary did (not) still have its dump thread for it."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        got = ctx.facts.get("links", {}).get(key)
        if got is None:
            return False, [f"link view {key!r} was not recorded"]
        ok = (got["cut"] == cut and bool(got["io_running"]) == io_running and not got["last_errno"]
              and (got["primary_view"] is not None) == dump_thread)
        return ok, [f"cut {got['cut']}, IO thread running {got['io_running']} (error {got['last_errno'] or 'none'}), "
                    f"primary's dump thread: {got['primary_view']}"]
    return Expectation(f"link-view-{key}", f"{key}: cut {', '.join(cut)}; IO thread "
                       f"{'running' if io_running else 'not running'}; the primary's dump thread "
                       f"{'still there' if dump_thread else 'gone'}", fn)


# --- commits over distance ----------------------------------------------------------------------------
PROBE_TABLE = "commit_probe"


def _shape_all(ctx: Context, rtt_ms: float) -> None:
    """Every replica link: half the round trip each way (plain at 0)."""
    for name in ctx.cluster.engine.links(ctx.cluster.nodes):
        if rtt_ms:
            nemesis.link(ctx.cluster, name, delay=f"{rtt_ms / 2:g}ms")
        else:
            nemesis.link(ctx.cluster, name, clear=True)


def _commit_latencies(ctx: Context, count: int, seconds: float) -> tuple[list[float], float]:
    """``count`` autocommitted INSERTs (or as many as fit in ``seconds``) on one connection to the primary:
    each commit's latency in ms, and the commits per second of that connection."""
    cluster = ctx.cluster
    out: list[float] = []
    with cluster.connect(cluster.primary.name, user="app", database=cluster.database, read_timeout=120) as conn, \
            conn.cursor() as cur:
        t_start = time.perf_counter()
        while len(out) < count and time.perf_counter() - t_start < seconds:
            t0 = time.perf_counter()
            cur.execute(f"INSERT INTO {PROBE_TABLE} (at) VALUES (NOW(6))")
            out.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - t_start
    return out, len(out) / elapsed if elapsed > 0 else 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def commits_over_distance(rtts: tuple[float, ...] = (0, 10, 40, 80), commits: int = 40,
                          seconds: float = 4.0) -> Step:
    """At each round trip (ms, half each way on every replica link): one connection's commit latency p50/p99
    and commits/s, semi-synchronous then asynchronous, against the 1/RTT bound. Facts ``distance`` (rows) and
    table ``commits-over-distance``; metrics ``<mode>_rtt<N>_p50_ms``, ``..._tx_s`` (commits/s)."""
    def fn(ctx: Context) -> str:
        cluster, flavor = ctx.cluster, ctx.cluster.flavor
        cluster.sql(cluster.primary.name, f"CREATE TABLE IF NOT EXISTS {cluster.database}.{PROBE_TABLE} "
                    "(id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6))")
        rows = []
        for mode in ("semi-sync", "async"):
            cluster.sql(cluster.primary.name, f"SET GLOBAL {flavor.semisync_enabled_variable()} = "
                        f"{int(mode == 'semi-sync')}")
            for rtt in rtts:
                _shape_all(ctx, rtt)
                _commit_latencies(ctx, 3, 2.0)  # warm: the first commit after a change may wait longer
                lat, rate = _commit_latencies(ctx, commits, seconds)
                bound = 1000.0 / rtt if rtt and mode == "semi-sync" else None
                row = {"mode": mode, "rtt_ms": rtt, "commits": len(lat), "p50_ms": round(_pct(lat, 0.5), 2),
                       "p99_ms": round(_pct(lat, 0.99), 2), "commits_s": round(rate, 1),
                       "bound_commits_s": round(bound, 1) if bound else None}
                rows.append(row)
                key = f"{mode.replace('-', '')}_rtt{rtt:g}"
                ctx.metrics[f"{key}_p50_ms"] = row["p50_ms"]
                ctx.metrics[f"{key}_tx_s"] = row["commits_s"]
        _shape_all(ctx, 0)
        cluster.sql(cluster.primary.name, f"SET GLOBAL {flavor.semisync_enabled_variable()} = 1")
        ctx.facts["distance"] = rows
        columns = ["mode", "rtt_ms", "commits", "p50_ms", "p99_ms", "commits_s", "bound_commits_s"]
        ctx.facts.setdefault("tables", {})["commits-over-distance"] = {
            "columns": columns, "rows": [[r[c] for c in columns] for r in rows],
            "plot": {"x": "rtt_ms", "y": "commits_s", "by": "mode", "bound": "bound_commits_s", "log": True,
                     "title": "commits/s per connection vs round trip (log scale; bound: 1000/RTT)"}}
        lines = [f"{r['mode']:9} RTT {r['rtt_ms']:>3g} ms: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                 f"{r['commits_s']:.1f} commits/s" + (f" (bound {r['bound_commits_s']:.1f})" if r["bound_commits_s"]
                                                      else "") for r in rows]
        return "commits over distance:\n" + "\n".join(lines)
    return act("measure commits over distance", fn)


def expect_semisync_bound() -> Expectation:
    """Semi-sync: every commit waits at least one round trip, and commits/s per connection stay under 1/RTT
    (within 5%); from 40 ms on they reach at least 60% of 1 / (RTT + the commit's own time at 0 ms); async:
    commit latency does not grow with the distance (its p50 stays within a quarter of the round trip, + 3 ms,
    of the one at 0 ms: a commit that waited for the link would take a whole round trip more)."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rows = ctx.facts.get("distance")
        if not rows:
            return False, ["commits over distance were not measured"]
        ok, ev = True, []
        base = {r["mode"]: r["p50_ms"] for r in rows if r["rtt_ms"] == 0}
        for r in rows:
            rtt = r["rtt_ms"]
            if r["mode"] == "semi-sync" and rtt:
                # never faster than one round trip per commit; at 40 ms and more the distance dominates, so
                # the rate comes near 1 / (RTT + the local commit at 0 ms); below, a loaded machine's commit
                # time varies as much as the round trip, so only the physical bounds are held
                near = 1000.0 / (rtt + base["semi-sync"])
                good = r["p50_ms"] >= rtt * 0.95 and r["commits_s"] <= 1.05 * r["bound_commits_s"] and \
                    (rtt < 40 or r["commits_s"] >= 0.6 * near)
            elif r["mode"] == "async":  # a commit that waited for the link would take a whole round trip more
                good = r["p50_ms"] <= base["async"] + 0.25 * rtt + 3.0
            else:
                good = True
            ok = ok and good
            bound = f" (bound {r['bound_commits_s']})" if r["bound_commits_s"] else ""
            ev.append(f"{'ok' if good else 'NOT'}: {r['mode']} RTT {rtt:g} ms: p50 {r['p50_ms']} ms, "
                      f"{r['commits_s']} commits/s{bound}")
        return ok, ev
    return Expectation("semisync-bound", "semi-sync commits wait a round trip each (1/RTT commits/s per "
                       "connection); asynchronous commits do not depend on the distance", fn)


# --- a thin link --------------------------------------------------------------------------------------
def _binlog_bytes(ctx: Context) -> int:
    """Bytes the primary's current binary log holds (its write position)."""
    cluster = ctx.cluster
    row = cluster.sql(cluster.primary.name, cluster.flavor.show_source_status())
    return int(row.rows[0][row.columns.index("Position")]) if row.rows else 0


def thin_start(node: str, rate: str) -> Step:
    """Throttle ``node``'s link toward the replica to ``rate`` and note the binary log's position and time."""
    def fn(ctx: Context) -> str:
        ctx.facts["thin"] = {"node": node, "t0": ctx.timeline.now(), "pos0": _binlog_bytes(ctx),
                             "m0": time.monotonic()}
        return nemesis.link(ctx.cluster, node, rate=rate, direction="to-replica")
    return Step(f"thin {node}'s link to {rate}", fn, "fault", node)


def thin_measure() -> Step:
    """While the link is thin: the binary log's byte rate, the link's, and the slope of the replica's lag
    (least squares over the samples since the link was throttled). Metrics ``binlog_kbit_s``,
    ``link_kbit_s``, ``lag_slope_ms_per_s``, ``expected_slope_ms_per_s`` (1000 x (1 - link / binlog))."""
    def fn(ctx: Context) -> str:
        thin = ctx.facts["thin"]
        node, t0 = thin["node"], thin["t0"]
        seconds = time.monotonic() - thin["m0"]
        binlog_bps = (_binlog_bytes(ctx) - thin["pos0"]) * 8 / seconds if seconds > 0 else 0.0
        conds = nemesis.link_conditions(ctx.cluster, node)
        link_bps = float(conds["to-replica"].rate_bps) if "to-replica" in conds else 0.0
        pts = [(s.t, float(s.lag_ms)) for s in ctx.timeline.samples
               if s.node == node and s.t >= t0 + 0.5 and s.lag_ms is not None]
        slope = _slope(pts)
        ctx.metrics["binlog_kbit_s"] = round(binlog_bps / 1000, 1)
        ctx.metrics["link_kbit_s"] = round(link_bps / 1000, 1)
        ctx.metrics["lag_slope_ms_per_s"] = round(slope, 1) if slope is not None else None
        expected = 1000 * (1 - link_bps / binlog_bps) if binlog_bps > link_bps > 0 else 0.0
        ctx.metrics["expected_slope_ms_per_s"] = round(expected, 1)
        return (f"{node}: the binary log grows at {binlog_bps / 1000:.0f} kbit/s, its link carries "
                f"{link_bps / 1000:.0f} kbit/s; lag grows by {slope or 0:.0f} ms per second "
                f"(expected {expected:.0f}) over {len(pts)} samples")
    return act("measure the thin link", fn)


def _slope(pts: list[tuple[float, float]]) -> float | None:
    if len(pts) < 3:
        return None
    n = len(pts)
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def expect_thin_link() -> Expectation:
    """The binary log outgrew the link; lag grew steadily, at a slope near 1000 x (1 - link / binlog)."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        m = ctx.metrics
        slope, expected = m.get("lag_slope_ms_per_s"), m.get("expected_slope_ms_per_s") or 0.0
        ok = (m.get("binlog_kbit_s", 0) > m.get("link_kbit_s", 0) > 0 and slope is not None
              and expected > 0 and 0.5 * expected <= slope <= 1.5 * expected)
        return ok, [f"binary log {m.get('binlog_kbit_s')} kbit/s over a {m.get('link_kbit_s')} kbit/s link: lag "
                    f"slope {slope} ms/s (expected {expected} ms/s)"]
    return Expectation("thin-link-lag", "the binary log outgrows the link: lag grows steadily, at the slope "
                       "the two rates predict", fn)
