"""Steps and expectations of the link scenarios (crash-vs-kill, one-way partitions, shaped links):
ledger marks, a crash that records what the links dropped, a pause while the links deliver."""

from __future__ import annotations

import time

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
