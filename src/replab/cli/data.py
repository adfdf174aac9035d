"""Data commands: feed (inserts with a live display) and check (the consistency verdict)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..core.errors import ConfigError, ReplabError
from ..runs.shape_counts import ShapeCounts
from ..runs.timeline import LANE_CUT, LANE_RUNNING, Sample, Sampler, lane_of, rows_behind_of
from ..verify import checker
from ..workload import counter
from ..workload import feed as workload
from ..workload.feed import Feeder, FeedOptions, NodeSample
from ..workload.reads import ReadOptions, Reads
from . import common
from .diagnosis_lines import print_predictions


def register(app: typer.Typer) -> None:
    app.command("feed")(feed)
    app.command("check")(check)


STALE_S = 2.5  # a node whose latest sample is older than this has stopped answering
_LANE_STYLE = {LANE_RUNNING: "green", "OUT": "bold red", "paused": "yellow", "not answering": "red",
               LANE_CUT: "bold red", "demoted": "yellow"}


def _state_cell(sample: Sample | None, now: float) -> Text:
    if sample is None:
        return Text("no sample yet", style="dim")
    if now - sample.t > STALE_S:
        return Text("not answering", style="red")
    lane, errno = lane_of(sample, cut=bool(sample.cut))
    label = f"{lane} {errno}" if errno else lane
    return Text(label, style=_LANE_STYLE.get(lane, "bold red"))


def _display(feeder: Feeder, sampler: Sampler, exact: list[NodeSample] | None = None) -> Group:
    """The live view: one title line, one row per node (state, rows, rows behind the primary, rows/s, lag),
    the last error on its own line. With ``exact``, the rows are the final exact counts."""
    r = feeder.result
    elapsed = max(feeder.elapsed, 1e-9)
    title = Text.assemble(("feed ", "bold"), f"{r.ok:,} rows acknowledged, {r.ok / elapsed:,.0f} rows/s, "
                          f"{r.errors} error(s)", f", unknown outcome {r.unknown}" if r.unknown else "",
                          f", {elapsed:.1f} s", (" (final counts)" if exact is not None else "", "bold"))
    table = Table(header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("node", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for col in ("rows", "behind primary", "rows/s", "lag"):
        table.add_column(col, justify="right", no_wrap=True)
    frame = sampler.frame()
    counts = {s.name: s for s in exact} if exact is not None else {}
    primary = sampler.cluster.primary.name
    now = sampler.timeline.now()

    def rows_of(name: str) -> int | None:
        if exact is not None:
            return counts[name].rows if name in counts else None
        s = frame.get(name)
        return s.rows if s is not None and now - s.t <= STALE_S else None

    top = rows_of(primary)
    for node in sampler.cluster.nodes:
        s = frame.get(node.name)
        rows = rows_of(node.name)
        if exact is None:  # two samples of one moment: 0 when at the primary's GTID position
            gap = None if rows is None or top is None else rows_behind_of(s, frame.get(primary))
        else:
            gap = None if rows is None or top is None else max(0, top - rows)
        # a demoted former primary or a replica a forced failover left out does not replicate from the
        # primary: a count difference is no 'behind' (one holding 20 rows the primary lacks showed 0)
        apart = node.role == "demoted" or bool(node.extra.get("left_out"))
        behind = "-" if node.name == primary or gap is None or apart else f"{gap:,}"
        rate = sampler.rate(node.name) if exact is None else None
        lag = counts[node.name].lag_ms if exact is not None and node.name in counts else (s.lag_ms if s else None)
        state = _state_cell(s, now)
        if exact is not None and rows is None and (s is None or s.state == "running"):
            state = Text("not answering", style="red")  # it did not give its exact count
        shown = "-" if s is None and exact is None else "OUT" if rows is None else f"{rows:,}"
        if rows is None and exact is None and s is not None and s.counting and now - s.t <= STALE_S:
            shown = "counting…"  # a big table's one exact count is still running; the node answers
        table.add_row(node.name, state, shown, behind,
                      "-" if rate is None else f"{rate:,.0f}", "-" if lag is None else f"{lag:,} ms")
    parts: list[Any] = [title, table]
    if r.last_error:
        parts.append(Text(f"last error: {r.last_error}", style="red", overflow="ellipsis", no_wrap=True))
    return Group(*parts)


def feed(
    rate: float = typer.Option(0.0, "--rate", "-r", help="Rows per second; 0 = as fast as possible."),
    rows: int = typer.Option(None, "--rows", "-n", help="Stop after this many rows."),
    duration: float = typer.Option(None, "--duration", "-d", help="Stop after this many seconds."),
    threads: int = typer.Option(1, "--threads", "-t", help="Concurrent connections."),
    batch: int = typer.Option(1, "--batch", "-b", help="Rows per INSERT statement."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON (no live display)."),
    on: str = typer.Option(None, "--on", metavar="NODES", help="Write on these nodes at once (comma-separated "
                           "writers of the cluster's shape, e.g. mysql-m1,mysql-m2, or all; --rate and --rows are per "
                           "writer). Default: the primary; every writer of a multi-writer shape."),
    updates: bool = typer.Option(False, "--updates", help="The counter workload instead of inserts: concurrent "
                                 "increments of a few hot rows (mydb.counters); check counts the lost ones."),
    hot_rows: int = typer.Option(10, "--hot-rows", help="With --updates: how many rows the increments share."),
    via: str = typer.Option("direct", "--via", help="direct (default: the primary's own address) or proxy "
                            "(the proxy's write endpoint, as an application would; needs up --proxy)."),
    reads: float = typer.Option(None, "--reads", help="Also run read sessions, this many reads a second: each "
                                "writes a row, then reads it back; read-your-writes and monotonic-read violations "
                                "are counted, with their staleness."),
    read_from: str = typer.Option("replicas", "--read-from", help="With --reads: replicas (in turn), proxy (its "
                                  "read endpoint) or a node's name."),
    causal: bool = typer.Option(False, "--causal", help="With --reads: each read first waits until its server "
                                "applied the session's last write (GTID wait): no violation, at a latency cost."),
) -> None:
    """Insert rows into mydb.events (some-event-N, N, some-descr-N) and record every acknowledged write in
    the ledger; show each node's state, rows, rows behind the primary, rows/s and lag while it runs.

    Without --rows or --duration it runs until Ctrl-C, which stops it cleanly (the ledger stays complete).
    At the end it prints one line per node: `mysql-m count: 7010` (OUT when a node does not answer); the
    live view's last frame shows the same exact counts.

    Example: replab feed --rate 200 --duration 30 --threads 4

    Example: replab feed --on mysql-m1,mysql-m2 --rows 1000

    Example: replab feed --on all --duration 10

    Example: replab feed --updates --hot-rows 10 --duration 5

    Example: replab feed --via proxy --rate 100 --duration 60

    Example: replab feed --duration 10 --reads 200 --read-from proxy

    Example: replab feed --duration 10 --reads 200 --read-from mysql-s2 --causal
    """
    options = FeedOptions(rate=rate, rows=rows, duration=duration, threads=threads, batch=batch, via=via)
    options.validate()
    if reads is None and (causal or read_from != "replicas"):
        raise ConfigError("--read-from and --causal go with --reads", hint="example: replab feed --duration 10 "
                          "--reads 200 --read-from replicas")
    cluster = common.open_cluster()
    if updates:
        _feed_counters(cluster, on, hot_rows, threads, duration, rows, json_out)
        return
    targets = workload.writer_targets(cluster, [n.strip() for n in on.split(",") if n.strip()] if on else None)
    if cluster.topology.name != "star":
        if reads is not None or via != "direct":
            raise ConfigError(f"--reads and --via proxy are for the star (this cluster is a {cluster.topology.name})",
                              hint="replab feed --on WRITERS")
        _feed_shaped(cluster, options, targets, json_out)
        return
    feeder = Feeder(cluster, options)
    reader = None if reads is None else Reads(cluster, ReadOptions(rate=reads, read_from=read_from, causal=causal))
    read_result = None
    sampler = Sampler(cluster, interval=0.25).start()
    taken_down = False
    live: Live | None = None
    with common.feed_marker(cluster.home):
        try:
            feeder.start()
            if reader is not None:
                reader.start()
            sampler.wait_first(timeout=1.0)  # the first frame shows every node as sampled, not a guess
            if not json_out:
                live = Live(_display(feeder, sampler), console=common.console, refresh_per_second=4,
                            transient=False).__enter__()
            try:
                while feeder.running:
                    feeder.wait(0.25)
                    if common.down_requested(cluster.home):
                        taken_down = True
                        break
                    if live is not None:
                        live.update(_display(feeder, sampler))
            except KeyboardInterrupt:
                feeder.result.interrupted = True
                common.say("interrupted: finishing the statements in flight and closing the ledger")
            result = feeder.stop(timeout=5 if taken_down else 30)
            if reader is not None:
                read_result = reader.stop()
            sampler.stop_counting()  # the final counts scan the table themselves
            counts = [] if taken_down else workload.final_counts(cluster, progress=common.say)
            time.sleep(sampler.interval * 1.5)  # a state sample after the counts, for the last frame
            sampler.stop()
            if live is not None:
                if not taken_down:
                    live.update(_display(feeder, sampler, exact=counts))
                live.__exit__(None, None, None)
                live = None
                common.console.print()
        finally:
            sampler.stop()
            if reader is not None:
                reader.stop()
            if live is not None:
                live.__exit__(None, None, None)
    if json_out:
        common.print_json({**result.to_dict(), "taken_down": taken_down,
                           "counts": {s.name: s.rows for s in counts},
                           "reads": read_result.summary() if read_result else None})
        if taken_down:
            raise typer.Exit(1)
        return
    common.console.print(f"acknowledged {result.ok} rows in {result.elapsed:.1f}s ({result.rate:,.0f} rows/s); "
                         f"failed {result.failed}, unknown outcome {result.unknown}, errors {result.errors}")
    if taken_down:
        common.err_console.print(f"feed stopped: the cluster in {cluster.home} was taken down (replab down) "
                                 "while it ran; the ledger is closed", markup=False)
        raise typer.Exit(1)
    for s in counts:
        common.console.print(f"{s.name} count: {'OUT' if s.rows is None else s.rows}")
    if read_result is not None:
        common.console.print(read_result.line(), markup=False)


def _feed_counters(cluster: Any, on: str | None, hot_rows: int, threads: int, duration: float | None,
                   rows: int | None, json_out: bool) -> None:
    """``feed --updates``: increments of hot rows on each writer; the totals go to the record check reads."""
    writers = counter.shared_writers(cluster, [n.strip() for n in on.split(",") if n.strip()] if on else None)
    if duration is None and rows is None:
        duration = 10.0
    with common.feed_marker(cluster.home):
        result = counter.run(cluster, writers, hot_rows=hot_rows, threads=threads, duration=duration,
                             increments=rows)
    if json_out:
        common.print_json(result.to_dict())
        return
    per = ", ".join(f"{w} {n}" for w, n in result.by_writer.items())
    common.console.print(f"acknowledged {result.ok} increments of {hot_rows} hot rows in {result.elapsed:.1f}s "
                         f"({per}); failed {result.failed}, unknown outcome {result.unknown}", markup=False)


def _shape_display(cluster: Any, group: workload.FeedGroup, tables: list[str],
                   frame: dict[str, dict[str, int | None]], final: bool = False) -> Group:
    """The live view of a feed on a shape: one row per node, one column per writer's table with the node's
    rows of it ('-' where the node need not hold that writer's writes, OUT where it does not answer)."""
    r = group.result
    elapsed = max(group.elapsed, 1e-9)
    title = Text.assemble(("feed ", "bold"), f"{r.ok:,} rows acknowledged, {r.ok / elapsed:,.0f} rows/s, "
                          f"{r.errors} error(s)", f", unknown outcome {r.unknown}" if r.unknown else "",
                          f", {elapsed:.1f} s", (" (final counts)" if final else "", "bold"))
    table = Table(header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("node", no_wrap=True)
    table.add_column("source", no_wrap=True)
    for t in tables:
        table.add_column(t, justify="right", no_wrap=True)
    for name in cluster.names:
        held = frame.get(name, {})
        cells = ["-" if t not in held else "OUT" if held[t] is None else f"{held[t]:,}" for t in tables]
        table.add_row(name, ", ".join(e.source for e in cluster.edges_into(name)) or "-", *cells)
    return Group(title, table)


def _feed_shaped(cluster: Any, options: FeedOptions, targets: list[tuple[str | None, str]], json_out: bool) -> None:
    """Feed a shape other than the star: one feed per writer (its own table and ledger); a live view of each
    node's rows of every writer's table it must hold (``runs/shape_counts.py``); at the end the exact count of
    each writer's table on every node that must hold it."""
    group = workload.FeedGroup(cluster, options, targets)
    holding = {t: cluster.holders(w or cluster.primary.name) for w, t in targets}
    tables = list(holding)
    per_node = {n: [t for t in tables if n in holding[t]] for n in cluster.names}
    counts_view = None if json_out else ShapeCounts(cluster, per_node)
    live: Live | None = None
    interrupted = False
    with common.feed_marker(cluster.home):
        group.start()
        if counts_view is not None:
            counts_view.start()
            live = Live(_shape_display(cluster, group, tables, counts_view.frame()), console=common.console,
                        refresh_per_second=4, transient=False).__enter__()
        try:
            while group.running:
                group.wait(0.25)
                if common.down_requested(cluster.home):
                    break
                if live is not None and counts_view is not None:
                    live.update(_shape_display(cluster, group, tables, counts_view.frame()))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            result = group.stop()
            if counts_view is not None:
                counts_view.stop()
    result.interrupted = interrupted
    with contextlib.suppress(ReplabError):
        cluster.wait_holders(timeout=10.0)
    counts: dict[str, dict[str, int | None]] = {}
    for writer in group.results:
        table = cluster.writer_table(writer)
        holders = cluster.holders(writer)
        counts[table] = {s.name: s.rows for s in workload.sample_nodes(cluster, table) if s.name in holders}
    if live is not None:
        exact = {n: {t: counts.get(t, {}).get(n) for t in per_node[n]} for n in cluster.names}
        live.update(_shape_display(cluster, group, tables, exact, final=True))
        live.__exit__(None, None, None)
        common.console.print()
    if json_out:
        common.print_json({**result.to_dict(), "writers": {w: r.to_dict() for w, r in group.results.items()},
                           "counts": counts})
        return
    for writer, r in group.results.items():
        common.console.print(f"{writer}: acknowledged {r.ok} rows in {r.elapsed:.1f}s ({r.rate:,.0f} rows/s) into "
                             f"{cluster.writer_table(writer)}; failed {r.failed}, unknown outcome {r.unknown}, "
                             f"errors {r.errors}")
    for table, by_node in counts.items():
        for name, n in by_node.items():
            common.console.print(f"{name} {table} count: {'OUT' if n is None else n}")


def check(
    wait: float = typer.Option(30.0, "--wait", "-w", help="Seconds to wait for replicas to apply the "
                               "primary's position before comparing."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    table: list[str] = typer.Option(None, "--table", help="Only this table (repeatable; default: all in mydb)."),  # noqa: B008
) -> None:
    """Check that every node holds the same data: ledger of acknowledged writes, row counts, chunked
    checksums narrowed to row ids, schema, replication health. Read-only on every node; safe during a feed.

    Exit code 0: consistent; 1: inconsistent (problems listed); 2: could not check (reason given).

    Example: replab check --wait 10 --json
    """
    cluster = common.open_cluster()
    report = checker.check(cluster, wait=wait, tables=list(table) if table else None)
    if json_out:
        common.print_json(report.to_dict())
    else:
        common.console.print(report.render(), markup=False)
        if not report.consistent:
                print_predictions(cluster)
    sys.exit(0 if report.consistent else 1)
