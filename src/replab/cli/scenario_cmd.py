"""Scenario commands: ``replab scenario list`` and ``replab scenario run NAME``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from ..runs import builtin as builtin_scenarios
from ..runs import scenarios
from ..runs.report import ERROR, FAIL, summary
from . import common

scenario_app = typer.Typer(help="Named experiments: a cluster, a workload, faults, checks and the outcome "
                           "they expect.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the built-in scenarios and what each expects.

    Example: replab scenario list
    """
    known = builtin_scenarios.builtin()
    if json_out:
        common.print_json([{"name": s.name, "description": s.description, "nodes": s.nodes,
                            "binlog_format": s.binlog_format,
                            "expectations": [e.description for e in s.expectations]} for s in known.values()])
        return
    table = Table(header_style="bold", show_lines=True)
    table.add_column("scenario", no_wrap=True)
    table.add_column("what it does and expects")
    for s in known.values():
        table.add_row(s.name, s.description)
    common.console.print(table)


def _run_help() -> str:
    names = "\n\n".join(f"  {s.name}: {s.description}" for s in builtin_scenarios.builtin().values())
    return ("Run a scenario on a fresh cluster of its own (torn down at the end) and judge the outcome.\n\n"
            "Exit code 0: everything happened as expected; 1: an expectation failed (named, with its evidence); "
            "2: the scenario could not run.\n\nScenarios:\n\n" + names +
            "\n\nExample: replab scenario run seed --report reports/seed"
            "\n\nExample: replab scenario run seed --server mysql-9.7"
            "\n\nExample: replab scenario run seed --engine compose --image replab/mariadb:10.11")


@scenario_app.command("run", help=_run_help())
def run(
    name: str = typer.Argument(..., help=f"Scenario name: {', '.join(builtin_scenarios.builtin())}."),
    report_dir: str = typer.Option(None, "--report", metavar="DIR",
                                   help="Write report.json, report.html and junit.xml into DIR."),
    duration: float = typer.Option(6.0, "--duration", help="Seconds of feed, spread over the phases."),
    rate: float = typer.Option(200.0, "--rate", help="Rows per second on the primary; 0 = as fast as possible "
                               "(as in replab feed)."),
    seed: int = typer.Option(1, "--seed", help="Seed for the scenario's random choices."),
    keep: bool = typer.Option(False, "--keep", help="Leave the cluster running afterwards, in --home when given "
                              "(its home is printed)."),
    json_out: bool = typer.Option(False, "--json", help="Print report.json to stdout instead of the summary."),
    engine: str = typer.Option(None, "--engine", help="Where its servers run: local (default) or compose."),
    image: str = typer.Option(None, "--image", help="Server image for --engine compose (e.g. replab/mariadb:10.11)."),
    server: str = typer.Option(None, "--server", help="Server from the catalogue (replab servers), e.g. "
                               "mysql-9.7; default: the system's."),
) -> None:
    scenario = builtin_scenarios.get(name)
    report = Path(report_dir) if report_dir else None
    # a throw-away cluster lives in a temp dir; with --keep it goes to --home when one is given
    home = common.OPTIONS.get("home") if keep else None
    result = scenarios.run(scenario, home=home, duration=duration, rate=rate, seed=seed,
                           keep=keep, say=common.say, report_dir=report, server=server,
                           up_args={k: v for k, v in (("engine", engine), ("image", image)) if v})
    if json_out:
        common.print_json(result.to_dict())
    else:
        common.console.print(summary(result, notes=bool(common.OPTIONS.get('quiet'))), markup=False,
                             highlight=False)
    if report is not None:
        common.console.print(f"report: {(report / 'report.html').absolute()} (also report.json, junit.xml)",
                             markup=False, highlight=False)
    if keep and result.cluster.get("home"):
        kept = result.cluster["home"]
        common.console.print(f"cluster kept in {kept}; use it with: replab --home {kept} status; stop it with: "
                             f"replab --home {kept} down", markup=False, highlight=False)
    if result.verdict == ERROR:
        sys.exit(2)
    if result.verdict == FAIL:
        sys.exit(1)
