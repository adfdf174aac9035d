"""Data commands: feed (inserts with a live display) and check (the consistency verdict)."""

from __future__ import annotations

import sys

import typer
from rich.live import Live
from rich.table import Table

from .. import checker, workload
from ..workload import Feeder, FeedOptions, NodeSample, Sampler
from . import common
from .faults import print_predictions


def register(app: typer.Typer) -> None:
    app.command("feed")(feed)
    app.command("check")(check)


def _display(feeder: Feeder, samples: list[NodeSample]) -> Table:
    r = feeder.result
    elapsed = max(feeder.elapsed, 1e-9)
    title = (f"feed: {r.ok} rows acknowledged, {r.ok / elapsed:,.0f} rows/s, errors {r.errors}"
             f"{' (unknown outcome: ' + str(r.unknown) + ')' if r.unknown else ''}, {elapsed:.1f}s")
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("node", "rows", "lag"):
        table.add_column(col, justify="right" if col != "node" else "left")
    for s in samples:
        table.add_row(s.name, "OUT" if s.rows is None else str(s.rows),
                      "-" if s.lag_ms is None else f"{s.lag_ms} ms")
    if r.last_error:
        table.caption = f"last error: {r.last_error[:120]}"
    return table


def feed(
    rate: float = typer.Option(0.0, "--rate", "-r", help="Rows per second; 0 = as fast as possible."),
    rows: int = typer.Option(None, "--rows", "-n", help="Stop after this many rows."),
    duration: float = typer.Option(None, "--duration", "-d", help="Stop after this many seconds."),
    threads: int = typer.Option(1, "--threads", "-t", help="Concurrent connections."),
    batch: int = typer.Option(1, "--batch", "-b", help="Rows per INSERT statement."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON (no live display)."),
) -> None:
    """Insert rows into mydb.events (some-event-N, N, some-descr-N) and record every acknowledged write in
    the ledger; show per node row count and lag, write rate and errors while it runs.

    Without --rows or --duration it runs until Ctrl-C, which stops it cleanly (the ledger stays complete).
    At the end it prints one line per node: `mysql-m count: 7010` (OUT when a node does not answer).

    Example: replab feed --rate 200 --duration 30 --threads 4
    """
    options = FeedOptions(rate=rate, rows=rows, duration=duration, threads=threads, batch=batch)
    options.validate()
    cluster = common.open_cluster()
    feeder = Feeder(cluster, options)
    sampler = Sampler(cluster).start()
    try:
        feeder.start()
        try:
            if json_out:
                while feeder.running:
                    feeder.wait(0.25)
            else:
                with Live(_display(feeder, sampler.latest), console=common.console, refresh_per_second=4,
                          transient=False) as live:
                    while feeder.running:
                        feeder.wait(0.25)
                        live.update(_display(feeder, sampler.latest))
        except KeyboardInterrupt:
            feeder.result.interrupted = True
            common.say("interrupted: finishing the statements in flight and closing the ledger")
        result = feeder.stop()
    finally:
        sampler.stop()
    counts = workload.final_counts(cluster)
    if not json_out:
        common.console.print()
    if json_out:
        common.print_json({**result.to_dict(), "counts": {s.name: s.rows for s in counts}})
        return
    common.console.print(f"acknowledged {result.ok} rows in {result.elapsed:.1f}s ({result.rate:,.0f} rows/s); "
                         f"failed {result.failed}, unknown outcome {result.unknown}, errors {result.errors}")
    for s in counts:
        common.console.print(f"{s.name} count: {'OUT' if s.rows is None else s.rows}")


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
