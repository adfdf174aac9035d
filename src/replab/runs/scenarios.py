"""Scenarios: named experiments = cluster set-up + workload + a schedule of faults and heals + checks +
the outcome they expect, evaluated to pass/fail with evidence.

A ``Scenario`` is a list of ``Phase`` objects, each a list of ``Step`` objects (start the feed, hold,
inject a fault, heal, wait for catch-up, check, diagnose...), plus a list of ``Expectation`` objects
evaluated at the end against what the run recorded. ``run()`` builds its own cluster in a temporary (or
given) home, samples a ``Timeline`` all along, and always tears the cluster down.

Build your own from the same pieces::

    from replab import scenarios as s
    mine = s.Scenario("s2-kill", "kill -9 a replica under load", phases=[
        s.Phase("load", [s.start_feed(), s.hold(0.4), s.check("before")]),
        s.Phase("kill", [s.fault("kill", "mysql-s2"), s.hold(0.3), s.heal("start", "mysql-s2"),
                         s.stop_feed(), s.wait_caught_up(metric="catch_up_s"), s.check("final")]),
    ], expectations=[s.expect_consistent("final"), s.expect_metric_below("catch_up_s", 20)])
    report = s.run(mine, duration=6, rate=200)
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from ..cluster.cluster import Cluster, teardown_home
from ..core.config import quote_ident, validate_identifier
from ..core.errors import ConfigError, ReplabError
from ..faults import nemesis
from ..faults.nemesis import catch_up_phrase, seconds_text
from ..verify.checker import check as run_check
from ..verify.diagnose import diagnose as run_diagnose
from ..workload.feed import Feeder, FeedGroup, FeedOptions, writer_targets
from .report import ExpectationResult, PhaseResult, RunReport, with_unit, write_all
from .timeline import CatchUp, Sampler, Timeline

Say = Callable[[str], None]


# --- the run context ------------------------------------------------------------------------------
@dataclass
class RunParams:
    """Knobs of one run: ``duration`` (seconds of feed, spread over the phases by their hold
    fractions), ``rate`` (rows/s), ``seed`` (for the random choices of a scenario)."""

    duration: float = 6.0
    rate: float = 200.0
    seed: int = 1
    threads: int = 2

    def validate(self) -> None:
        errors = []
        if not 1 <= self.duration <= 3600:
            errors.append(f"--duration must be between 1 and 3600 seconds (got {self.duration})")
        if not 0 <= self.rate <= 100_000:
            errors.append(f"--rate must be between 0 (as fast as possible) and 100000 rows/s (got {self.rate})")
        if errors:
            raise ConfigError(errors)


@dataclass
class Context:
    """What steps act on and what expectations read: the cluster, the timeline and the facts recorded."""

    cluster: Cluster
    timeline: Timeline
    params: RunParams
    say: Say
    rng: random.Random
    feeder: Any = None
    feeds: list[Any] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    diagnoses: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    phase_started: float = 0.0  # on the timeline's clock

    def note(self, text: str, echo: bool = True) -> None:
        self.notes.append(text)
        if echo:
            self.say(text)


# --- the pieces -----------------------------------------------------------------------------------
@dataclass
class Step:
    """One thing a phase does. ``fn(ctx)`` returns a sentence (noted in the phase) or None."""

    name: str
    fn: Callable[[Context], str | None]
    kind: str = "action"  # action | fault | heal
    node: str | None = None
    target: Callable[[Context], str] | None = None  # the node it acts on, known only when it runs


@dataclass
class Phase:
    name: str
    steps: list[Step]
    description: str = ""


@dataclass
class Expectation:
    """A named claim about the run; ``fn(ctx)`` returns (held, evidence lines)."""

    name: str
    description: str
    fn: Callable[[Context], tuple[bool, list[str]]]


@dataclass
class Scenario:
    name: str
    description: str
    phases: list[Phase]
    expectations: list[Expectation]
    nodes: int = 3
    binlog_format: str = "ROW"
    server: str | None = None  # the catalogue server it needs (None: whatever `run` is given, else the default)
    replica_server: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # more Cluster.up settings, e.g. semi_sync=True


def _nemesis(name: str) -> Callable[..., str]:
    return getattr(nemesis, name)


def fault(action: str, node: str, **kwargs: Any) -> Step:
    """Inject a fault with ``nemesis.<action>(cluster, node, **kwargs)`` (kill, stop, pause, partition,
    drift...); recorded as a fault event, shaded on the plots until the matching heal."""
    def fn(ctx: Context) -> str:
        return _nemesis(action)(ctx.cluster, node, **kwargs)
    what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kwargs.items() if v not in (None, False))
    return Step(f"{action} {node}" + (f": {what}" if what else ""), fn, "fault", node)


def heal(action: str, node: str | None = None, **kwargs: Any) -> Step:
    """Undo a fault with ``nemesis.<action>`` (start, resume, heal); ends the fault window on ``node``.

    A replica that ``start`` brings back is measured there (``nemesis.catch_up_stats``, exact): that
    catch-up goes on the timeline, and the summary, the report and ``wait_caught_up``'s metric print it."""
    def fn(ctx: Context) -> str:
        if action == "start" and node is not None:
            sentence, c = nemesis.start_measured(ctx.cluster, node, **kwargs)
            if c is not None and c["caught_up"]:
                phrase = catch_up_phrase(c["transactions"], c["seconds"], exact=c["exact"])
                ctx.timeline.event("note", f"{node}: {phrase}", node, catch_up={
                    "transactions": c["transactions"], "seconds": c["seconds"], "exact": c["exact"]})
            return sentence
        return _nemesis(action)(ctx.cluster, node, **kwargs)
    return Step(f"{action} {node or 'all'}", fn, "heal", node)


def act(name: str, fn: Callable[[Context], str | None]) -> Step:
    """Any callable as a step (custom scenarios)."""
    return Step(name, fn)

def lost_increments(check_name: str) -> Step:
    """A step: from check ``check_name``'s counter verdict, each node's acknowledged increments it lost
    (metrics ``lost_increments_<node>``)."""
    def fn(ctx: Context) -> str:
        cv = getattr(ctx.checks.get(check_name), "counters", None)
        if cv is None:
            return "no counter verdict"
        for node in cv.nodes:
            ctx.metrics[f"lost_increments_{node}"] = cv.lost(node)[0]
        return "; ".join(f"{n} lost {cv.lost(n)[0]} acknowledged increments" for n in cv.nodes)
    return act("count lost increments", fn)



def start_feed(rate: float | None = None, threads: int | None = None, via: str = "direct") -> Step:
    """Start inserting into mydb.events at ``rate`` rows/s (default: the run's --rate) until stop_feed;
    ``via="proxy"``: through the proxy's write endpoint, as an application would."""
    def fn(ctx: Context) -> str:

        r = rate if rate is not None else ctx.params.rate
        speed = f"{r:g} rows/s" if r > 0 else "as fast as possible"
        if ctx.cluster.topology.name != "star":  # every writer of the shape, each into its own table
            targets = writer_targets(ctx.cluster, None)  # the run's rate shared among them
            ctx.feeder = FeedGroup(ctx.cluster, FeedOptions(rate=r / len(targets), threads=threads or
                                                            ctx.params.threads, via=via), targets).start()
            return f"feed started: {speed} in all, shared by {', '.join(ctx.cluster.writers())}"
        ctx.feeder = Feeder(ctx.cluster, rate=r, threads=threads or ctx.params.threads, via=via).start()
        where = "through the proxy's write endpoint" if via == "proxy" else f"on {ctx.cluster.primary.name}"
        return f"feed started: {speed} {where}"
    return Step("start feed", fn)


def stop_feed() -> Step:
    """Stop the feed, wait for statements in flight; its result is kept for the expectations."""
    def fn(ctx: Context) -> str | None:
        if ctx.feeder is None:
            return None
        res = ctx.feeder.stop()
        ctx.feeds.append(res)
        ctx.feeder = None
        return (f"feed stopped: {res.ok} acknowledged, {res.failed} failed, {res.unknown} unknown "
                f"in {res.elapsed:.1f}s")
    return Step("stop feed", fn)


def hold(fraction: float) -> Step:
    """Let time pass (the feed goes on): ``fraction`` of the run's --duration."""
    def fn(ctx: Context) -> None:
        time.sleep(max(0.0, fraction * ctx.params.duration))
    return Step(f"hold {fraction:g}x", fn)


def wait_caught_up(nodes: list[str] | None = None, timeout: float = 60.0, metric: str | None = None) -> Step:
    """Wait until replicas (default: all) applied everything the primary has.

    For a replica back from an outage the sentence and ``metric`` give its catch-up (the timeline's, the
    same figure the summary and the report print; the slowest node's); for others, the time this step
    waited."""
    def fn(ctx: Context) -> str:
        t0 = time.monotonic()
        if ctx.cluster.topology.name != "star":  # every node holds what each writer it must hold wrote
            result = {n: ok for n, ok in ctx.cluster.wait_holders(timeout=timeout).items()
                      if nodes is None or n in nodes}
        else:
            result = ctx.cluster.wait_caught_up(timeout=timeout, names=nodes)
        took = round(time.monotonic() - t0, 3)
        late = [n for n, ok in result.items() if not ok]
        ctx.facts.setdefault("caught_up", {}).update(result)
        outages = {} if late else _timeline_catch_ups(ctx, list(result))
        if metric:
            slowest = max((c.seconds for c in outages.values() if c.seconds is not None), default=None)
            ctx.metrics[metric] = None if late else (slowest if slowest is not None else took)
        if late:
            return f"{', '.join(late)} not caught up after {timeout:.0f}s"
        if not result:  # it said "no replica applied everything the primary has", as if they had failed to
            return "no replica to wait for: no other node replicates from the primary"
        said = [f"{n} {catch_up_phrase(c.missed_tx, c.seconds, exact=c.exact)} after it came back"
                for n, c in outages.items()]
        rest = [n for n in result if n not in outages]
        if said and rest:
            said.append(f"{', '.join(rest)} applied everything the primary has too")
        elif not said:
            said.append(f"{', '.join(rest)} applied everything the primary has (waited {seconds_text(took)} s)")
        return "; ".join(said)
    return Step("wait caught up", fn)


def _timeline_catch_ups(ctx: Context, nodes: list[str], wait: float = 1.0) -> dict[str, CatchUp]:
    """The latest catch-up on the timeline of each of ``nodes`` back from an outage in this phase, once the
    timeline shows it done (the sampler may be one interval behind)."""
    deadline = time.monotonic() + wait
    while True:
        last = {c.node: c for c in ctx.timeline.catch_ups() if c.node in nodes and c.back_at >= ctx.phase_started}
        if all(c.seconds is not None for c in last.values()) or time.monotonic() >= deadline:
            return last
        time.sleep(0.05)


def check(name: str, wait: float = 30.0) -> Step:
    """Run the consistency checker on every node; the report is kept under ``name``."""
    def fn(ctx: Context) -> str:

        rep = run_check(ctx.cluster, wait=wait)
        ctx.checks[name] = rep
        lost = sum(lw.count for lw in getattr(rep, "lost", []))
        # 'consistent' alone sat beside 'LOST IN FAILOVER: 447' in failover-semisync
        said = f"{lost} acknowledged write(s) lost in a failover" if lost else ""
        verdict = ("the nodes agree" if lost else "consistent") if rep.consistent else \
            f"{len(rep.problems)} problem(s)"
        return f"check {name}: {verdict}" + (f"; {said}" if said else "")
    return Step(f"check {name}", fn)


def diagnose(node: str) -> Step:
    """Explain a node's replication state (``diagnose.diagnose``); the text goes into the report."""
    def fn(ctx: Context) -> str:

        found = [_text(d) for d in run_diagnose(ctx.cluster, node)]
        ctx.diagnoses[node] = found
        # one line here; the whole diagnosis is printed once, in the summary and the report
        first = found[0].splitlines()[0].removeprefix(f"{node}: ") if found else "nothing to report"
        return f"diagnosis of {node}: {first}"
    return Step(f"diagnose {node}", fn)


def record_columns(node: str, table: str = "events") -> Step:
    """Record the columns ``table`` has on ``node`` (for expectations about schema drift)."""
    def fn(ctx: Context) -> str:

        t = f"{quote_ident(ctx.cluster.database)}.{quote_ident(validate_identifier(table, 'table'))}"
        cols = [str(r[0]) for r in ctx.cluster.sql(node, f"SHOW COLUMNS FROM {t}").rows]
        ctx.facts.setdefault("columns", {})[node] = cols
        return f"{node}: {table} has columns {', '.join(cols)}"
    return Step(f"columns of {node}", fn)


def stall_apply(node: str, fraction: float = 0.4, seconds: float | None = None, table: str = "events") -> Step:
    """Make a replica apply slower than the primary writes: a local session on ``node`` holds
    ``LOCK TABLES <table> READ`` (as a backup tool would) for ``seconds`` (default ``fraction`` of
    --duration), so the SQL thread waits while the IO thread keeps receiving; then the lock goes and the
    backlog drains. A fault window on the plots."""
    def fn(ctx: Context) -> str:

        span = seconds if seconds is not None else fraction * ctx.params.duration
        t = f"{quote_ident(ctx.cluster.database)}.{quote_ident(validate_identifier(table, 'table'))}"
        with ctx.cluster.connect(node) as conn, conn.cursor() as cur:
            cur.execute(f"LOCK TABLES {t} READ")
            try:
                time.sleep(span)
            finally:
                cur.execute("UNLOCK TABLES")
        return f"{node}: apply stalled for {span:.1f}s by a local read lock on {table}, then released"
    return Step(f"stall apply on {node}", fn, "fault", node)


def end_fault(node: str, text: str = "stall over") -> Step:
    """Close a fault window on the plots without any action (after a fault step that heals itself)."""
    return Step(text, lambda ctx: f"{node}: {text}", "heal", node)


def _text(d: Any) -> str:
    if hasattr(d, "detail") and hasattr(d, "kind"):
        return f"{getattr(d, 'node', '-')}: {d.kind}: {d.detail}"
    for attr in ("render", "sentence", "text", "message"):
        value = getattr(d, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, str) and value:
            return value
    return str(d)


# --- expectations -----------------------------------------------------------------------------------
def expect_consistent(check_name: str, nodes: list[str] | None = None, lost_in_failover: bool = False) -> Expectation:
    """Every acknowledged write is on every node (or on ``nodes``), and nothing else is.

    An acknowledged write lost in a failover is lost: it fails this expectation, unless the scenario loses
    writes on purpose (``lost_in_failover``); then this one claims only that the nodes agree on what the
    primary kept, and says how many writes it leaves to the expectation that judges the loss
    (``builtin.expect_lost``)."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        if rep is None:
            return False, [f"check {check_name!r} did not run"]
        problems = [p for p in rep.problems if nodes is None or _problem_node(p) in (*nodes, None)]
        acked = int(rep.to_dict().get("ledger", {}).get("acknowledged") or 0)
        lost = sum(lw.count for lw in getattr(rep, "lost", []))
        if problems:
            return False, [f"{len(problems)} problem(s) in check {check_name!r}"] + [_text(p) for p in problems[:6]]
        if lost and not lost_in_failover:
            return False, [f"check {check_name!r}: {lost} of {acked} acknowledged writes lost"] + \
                [lw.sentence() for lw in rep.lost]
        facts = getattr(rep, "facts", None)
        demoted = list(getattr(facts, "demoted", None) or [])
        # a demoted former primary is not checked: 'every node' was said when only the new primary was left
        where = "every node" if not demoted else f"every node but the demoted {', '.join(demoted)} (not checked)"
        if lost:
            return True, [f"check {check_name!r}: the nodes agree; {acked - lost} acknowledged writes on {where}, "
                          f"{lost} lost in a failover (judged by lost-{check_name})"]
        return True, [f"check {check_name!r}: consistent ({acked} acknowledged writes checked on {where})"]
    who = ", ".join(nodes) if nodes else "every node"
    if lost_in_failover:
        what = (f"{who}: every acknowledged write the primary kept, nothing extra; writes lost in a failover "
                f"are judged by lost-{check_name}")
    else:
        what = f"{who}: no acknowledged write lost, nothing extra"
    return Expectation(f"consistent-{check_name}", f"{what} (check {check_name})", fn)


def expect_inconsistent(check_name: str, node: str) -> Expectation:
    """The checker reports a problem on ``node`` (a deliberate divergence was detected)."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        rep = ctx.checks.get(check_name)
        if rep is None:
            return False, [f"check {check_name!r} did not run"]
        mine = [p for p in rep.problems if _problem_node(p) == node]
        if mine:
            return True, [_text(p) for p in mine[:4]]
        return False, [f"check {check_name!r} found no problem on {node}"]
    return Expectation(f"divergence-detected-{node}", f"the checker reports {node} as diverged", fn)


def _problem_node(p: Any) -> str | None:
    node = getattr(p, "node", None)
    if node is None and isinstance(p, dict):
        node = p.get("node")
    return node


def expect_caught_up(nodes: list[str]) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        seen = ctx.facts.get("caught_up", {})
        late = [n for n in nodes if not seen.get(n)]
        if late:
            return False, [f"{', '.join(late)} never caught up with the primary"]
        return True, [f"{', '.join(nodes)} applied every transaction of the primary"]
    return Expectation("caught-up", f"{', '.join(nodes)} {_agree(nodes, 'catches', 'catch')} up with the primary", fn)


def _agree(nodes: list[str], one: str, many: str) -> str:
    """The verb in number with a list of nodes ('mysql-s1 catches up', 'mysql-s1, mysql-s2 catch up')."""
    return one if len(nodes) == 1 else many


def expect_metric_below(metric: str, limit: float, unit: str = "s") -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        value = ctx.metrics.get(metric)
        if value is None:
            return False, [f"{metric} was not measured (the wait timed out or never ran)"]
        return value <= limit, [f"{metric} = {with_unit(metric, value)} (limit {_amount(limit, unit)})"]
    return Expectation(f"{metric}-below-{limit:g}", f"{metric} at most {_amount(limit, unit)}", fn)


def _amount(value: float, unit: str) -> str:
    """A limit as the measured line prints a value: ``30 s``, ``1000 ms`` (it said ``30s``)."""
    return f"{value:g} {unit.strip()}".rstrip()


def expect_metric_above(metric: str, limit: float, unit: str = "") -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        value = ctx.metrics.get(metric)
        if value is None:
            return False, [f"{metric} was not measured"]
        return value >= limit, [f"{metric} = {with_unit(metric, value)} (at least {_amount(limit, unit)} expected)"]
    return Expectation(f"{metric}-above-{limit:g}", f"{metric} at least {_amount(limit, unit)}", fn)


ByFlavor = dict[str, tuple[int, ...]]  # {"mariadb": (1677,), "mysql": (13146,)}: where the servers differ


def _errnos_for(errnos: tuple[int, ...] | ByFlavor, flavor: str) -> tuple[int, ...]:
    return errnos.get(flavor, ()) if isinstance(errnos, dict) else errnos


def errnos_text(errnos: tuple[int, ...] | ByFlavor) -> str:
    if isinstance(errnos, dict):
        names = {"mariadb": "MariaDB", "mysql": "MySQL"}
        return " / ".join(f"{' or '.join(map(str, v))} ({names.get(k, k)})" for k, v in errnos.items())
    return " or ".join(map(str, errnos))


def expect_replication_error(node: str, errnos: tuple[int, ...] | ByFlavor) -> Expectation:
    """``node``'s SQL thread stopped with one of ``errnos`` (seen by the sampler); per flavor where MariaDB
    and MySQL report the same failure under different numbers."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        wanted = _errnos_for(errnos, ctx.cluster.flavor.name)
        errs = [e for e in ctx.timeline.events if e.kind == "error" and e.node == node]
        hit = [e for e in errs if e.data.get("errno") in wanted]
        if hit:
            return True, [f"at {hit[0].t:.2f}s: {hit[0].text}"]
        seen = "; ".join(e.text for e in errs) or "no replication error at all"
        return False, [f"expected error {' or '.join(map(str, wanted))} on {node} ({ctx.cluster.flavor.name}); "
                       f"seen: {seen}"]
    first = sorted({n for v in (errnos.values() if isinstance(errnos, dict) else [errnos]) for n in v})
    return Expectation(f"error-{'-'.join(map(str, first))}-{node}",
                       f"{node} stops replicating with error {errnos_text(errnos)}", fn)


def expect_no_replication_error(nodes: list[str]) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        errs = [e for e in ctx.timeline.events if e.kind == "error" and e.node in nodes
                and e.data.get("thread") == "sql"]
        if errs:
            return False, [f"{e.node} at {e.t:.2f}s: {e.text}" for e in errs[:4]]
        return True, [f"no replication error on {', '.join(nodes)} during the run"]
    verb = _agree(nodes, "applies", "apply")
    return Expectation("no-apply-error", f"{', '.join(nodes)} {verb} every event without an SQL-thread error", fn)


def expect_column_missing(node: str, column: str) -> Expectation:
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        cols = ctx.facts.get("columns", {}).get(node)
        if cols is None:
            return False, [f"columns of {node} were not recorded"]
        return column not in cols, [f"{node}: events has {', '.join(cols)}"]
    return Expectation(f"column-missing-{node}", f"{node} keeps running without column {column}", fn)


def expect_diagnosis(node: str, *words: str | ByFlavor) -> Expectation:
    """The diagnosis of ``node`` mentions every one of ``words`` (case-insensitive); a ``ByFlavor`` word is
    any of that flavor's error numbers."""
    def fn(ctx: Context) -> tuple[bool, list[str]]:
        found = ctx.diagnoses.get(node)
        if found is None:
            return False, [f"{node} was not diagnosed"]
        text = " ".join(found).lower()
        flavor = ctx.cluster.flavor.name
        missing = [w if isinstance(w, str) else errnos_text(_errnos_for(w, flavor)) for w in words
                   if (w.lower() not in text if isinstance(w, str)
                       else not any(str(n) in text for n in _errnos_for(w, flavor)))]
        return not missing, found[:4] + ([f"missing words: {', '.join(missing)}"] if missing else [])
    shown = ", ".join(w if isinstance(w, str) else errnos_text(w) for w in words)
    return Expectation(f"diagnosis-{node}", f"the diagnosis of {node} explains it ({shown})", fn)


def expect(name: str, description: str, fn: Callable[[Context], tuple[bool, list[str]]]) -> Expectation:
    """Any callable as an expectation (custom scenarios)."""
    return Expectation(name, description, fn)


# --- running ------------------------------------------------------------------------------------------
def run(scenario: Scenario, *, home: str | Path | None = None, duration: float | None = None,
        rate: float | None = None, seed: int | None = None, keep: bool = False, say: Say | None = None,
        report_dir: str | Path | None = None, interval: float = 0.2, server: str | None = None,
        replica_server: str | None = None, up_args: dict[str, Any] | None = None) -> RunReport:
    """Run ``scenario`` on a cluster of its own and return the report (also written to ``report_dir``).
    ``up_args`` go to ``Cluster.up`` (e.g. ``{"engine": "compose", "image": "replab/mariadb:10.11"}``).

    The cluster lives in ``home`` (default: a new temporary directory) and is torn down at the end, pass
    or fail, unless ``keep``. ``server``/``replica_server`` pick builds from the server catalogue (a
    scenario that names its own servers keeps them). Set-up failures and unexpected errors end up in
    ``report.error`` (verdict ``error``); they are not raised. Bad parameters raise ConfigError before anything starts.
    """
    params = RunParams(duration=6.0 if duration is None else duration, rate=200.0 if rate is None else rate,
                       seed=1 if seed is None else seed)
    params.validate()
    say = say or (lambda _m: None)
    tmp = None
    if home is not None and Cluster.exists(home):
        raise ConfigError(f"a cluster already lives in {home}; a scenario builds its own",
                          hint="pass another home, or leave it out to use a temporary directory")
    if home is None:
        tmp = Path(tempfile.mkdtemp(prefix=f"replab-{scenario.name}-"))
        home = tmp / "home"
    home = Path(home).expanduser().absolute()
    timeline = Timeline()
    report = RunReport(scenario.name, scenario.description,
                       params={"duration": params.duration, "rate": params.rate, "seed": params.seed,
                               "threads": params.threads, "home": str(home)},
                       timeline=timeline, started_at=timeline.started_at)
    cluster: Cluster | None = None
    sampler: Sampler | None = None
    ctx: Context | None = None
    try:
        say(f"{scenario.name}: building a {scenario.nodes}-node cluster ({scenario.binlog_format}) in {home}")
        cluster = Cluster.up(nodes=scenario.nodes, binlog_format=scenario.binlog_format, home=home, say=say,
                             server=scenario.server or server,
                             replica_server=scenario.replica_server or replica_server, **scenario.options,
                             **(up_args or {}))
        built = cluster.state.get("server") or {}
        report.cluster = {"flavor": cluster.flavor.name, "version": cluster.state.get("version_string"),
                          "server": built.get("name"), "engine": cluster.engine.name,
                          "replica_server": (cluster.state.get("engine_options") or {}).get("replica_server",
                                                                                           {}).get("name"),
                          "binlog_format": cluster.binlog_format, "home": str(home),
                          "nodes": [{"name": n.name, "role": n.role, "port": n.port} for n in cluster.nodes]}
        ctx = Context(cluster, timeline, params, say, random.Random(params.seed))
        sampler = Sampler(cluster, timeline, interval=interval).start()
        for phase in scenario.phases:
            report.phases.append(_run_phase(ctx, phase))
        _stop_feed(ctx)
        _evaluate(scenario, ctx, report)
    except ReplabError as exc:
        report.error = exc.render().removeprefix("error: ")
        timeline.event("error", f"could not run: {exc}")
    except Exception as exc:  # an unexpected failure is still a report, never a left-over cluster
        report.error = f"{type(exc).__name__}: {exc}"
        timeline.event("error", f"could not run: {report.error}")
    finally:
        if ctx is not None:
            _stop_feed(ctx)
        if sampler is not None:
            sampler.stop()
        if ctx is not None:
            _finish_report(ctx, report)
        if cluster is not None:
            report.final = final_snapshot(cluster)
        if cluster is not None and not keep:
            with contextlib.suppress(Exception):
                cluster.down()
        elif cluster is None and not keep:
            _teardown_home(home)
        if tmp is not None and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        report.finished_at = time.time()
    if report_dir is not None:

        write_all(report, report_dir)
    return report


def _run_phase(ctx: Context, phase: Phase) -> PhaseResult:
    tl = ctx.timeline
    tl.event("phase_start", phase.name)
    ctx.notes = []
    result = PhaseResult(phase.name, phase.description, start=tl.now())
    ctx.phase_started = result.start
    ctx.say(f"phase {phase.name}: {phase.description}" if phase.description else f"phase {phase.name}")
    try:
        for step in phase.steps:
            node = step.target(ctx) if step.target is not None else step.node
            ev = tl.event(step.kind, step.name, node) if step.kind in ("fault", "heal") else None
            sentence = step.fn(ctx)
            if ev is not None and sentence:
                ev.data["result"] = sentence
            if sentence:
                ctx.note(sentence)
                if step.kind == "action":
                    tl.event("action", sentence, step.node)
    finally:
        result.notes = list(ctx.notes)
        result.end = tl.now()
        tl.event("phase_end", phase.name)
        time.sleep(0.25)  # one more sample of every node for the phase table
        frame = tl.frame()
        for name in tl.nodes():
            last = frame.get(name)
            result.rows[name] = last.rows if last else None
            result.lag_ms[name] = last.lag_ms if last else None
    return result


def _stop_feed(ctx: Context) -> None:
    if ctx.feeder is not None:
        with contextlib.suppress(Exception):
            ctx.feeds.append(ctx.feeder.stop())
        ctx.feeder = None


def _evaluate(scenario: Scenario, ctx: Context, report: RunReport) -> None:
    for exp in scenario.expectations:
        t0 = time.monotonic()
        try:
            held, evidence = exp.fn(ctx)
        except Exception as exc:  # an expectation that cannot be evaluated has failed, with the reason
            held, evidence = False, [f"could not evaluate: {type(exc).__name__}: {exc}"]
        report.expectations.append(ExpectationResult(exp.name, exp.description, bool(held), list(evidence),
                                                     round(time.monotonic() - t0, 3)))


def _finish_report(ctx: Context, report: RunReport) -> None:
    report.metrics.update(ctx.metrics)
    report.tables.update(ctx.facts.get("tables") or {})
    if ctx.feeds:
        report.metrics["writes_acknowledged"] = sum(f.ok for f in ctx.feeds)
        report.metrics["writes_failed"] = sum(f.failed for f in ctx.feeds)
        report.metrics["writes_unknown"] = sum(f.unknown for f in ctx.feeds)
    for node, lines in ctx.diagnoses.items():
        report.diagnosis.extend(line if line.startswith(node) else f"{node}: {line}" for line in lines)
    for name, rep in ctx.checks.items():
        data = rep.to_dict() if hasattr(rep, "to_dict") else {"value": str(rep)}
        if hasattr(rep, "render"):
            data["text"] = rep.render()
        data.setdefault("consistent", getattr(rep, "consistent", None))
        report.checks[name] = data


def final_snapshot(cluster: Cluster, table: str = "events") -> dict[str, dict[str, Any]]:
    """Each node at the end of a run: its role then, exact row count, columns of ``table``, server version
    and state (for the report's final grid); a node that does not answer gets its state and role only."""
    t = f"{quote_ident(cluster.database)}.{quote_ident(validate_identifier(table, 'table'))}"
    cols_sql = ("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                "ORDER BY ORDINAL_POSITION")

    def one(name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"state": cluster.engine.state(cluster.node(name)), "role": cluster.node(name).role}
        if out["state"] != "running":
            return out
        with contextlib.suppress(ReplabError, pymysql.MySQLError):
            with cluster.connect(name, timeout=2, read_timeout=10) as conn, conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                out["version"] = str((cur.fetchone() or ("?",))[0])
                cur.execute(cols_sql, (cluster.database, table))
                out["columns"] = [str(r[0]) for r in cur.fetchall()]
                cur.execute(f"SELECT COUNT(*) FROM {t}")
                out["rows"] = int((cur.fetchone() or (0,))[0])
        return out

    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        return dict(zip([n.name for n in cluster.nodes], pool.map(one, [n.name for n in cluster.nodes]),
                        strict=True))


def _teardown_home(home: Path) -> None:
    with contextlib.suppress(Exception):
        teardown_home(home)


# --- measuring a lag peak and its drain -------------------------------------------------------------
def measure_lag(node: str, since_phase: str) -> Step:
    """From the samples: peak lag of ``node`` since ``since_phase`` began, and the time from that peak
    until lag was back under 100 ms (metrics ``peak_lag_ms`` and ``drain_s``)."""
    def fn(ctx: Context) -> str:
        start = next((t for name, t, _ in ctx.timeline.phases() if name == since_phase), 0.0)
        peak, at = ctx.timeline.peak_lag(node, start)
        ctx.metrics["peak_lag_ms"] = peak
        drained = None
        if at is not None:
            drained = next((s.t for s in sorted(ctx.timeline.samples, key=lambda s: s.t)
                            if s.node == node and s.t > at and s.lag_ms is not None and s.lag_ms < 100), None)
        ctx.metrics["drain_s"] = None if drained is None or at is None else round(drained - at, 3)
        return f"{node}: peak lag {peak} ms at {at}s; drained in {ctx.metrics['drain_s']}s"
    return Step(f"measure lag {node}", fn)


def wait_lag_below(node: str, limit_ms: int = 100, timeout: float = 60.0) -> Step:
    """Wait until the sampler sees ``node``'s lag under ``limit_ms`` (it drained)."""
    def fn(ctx: Context) -> str:
        deadline = time.monotonic() + timeout
        t0 = ctx.timeline.now()
        while time.monotonic() < deadline:
            last = ctx.timeline.last_sample(node)
            if last and last.t > t0 and last.lag_ms is not None and last.lag_ms < limit_ms:
                return f"{node}: lag {last.lag_ms} ms"
            threading.Event().wait(0.1)
        return f"{node}: lag still above {limit_ms} ms after {timeout:.0f}s"
    return Step(f"wait lag {node}", fn)
