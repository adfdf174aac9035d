"""The replab command line: a thin layer that parses, calls the library and renders. No SQL here."""

from __future__ import annotations

import sys

import typer

from ..errors import ReplabError
from . import common

app = typer.Typer(
    name="replab",
    help="A replication lab for MySQL and MariaDB: stand up a primary with replicas, drive writes, "
    "break things on purpose and check, row by row, what every node kept.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    home: str = typer.Option(None, "--home", envvar="REPLAB_HOME", metavar="DIR",
                             help="State directory of the cluster (default ./.replab)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results, not the steps taken."),
) -> None:
    common.OPTIONS["home"] = home
    common.OPTIONS["quiet"] = quiet


def _register() -> None:
    import importlib

    for module in ("lifecycle", "data", "faults", "scenario_cmd", "compose_cmd", "servers_cmd"):
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module}":
                continue
            raise
        mod.register(app)


_register()


def main() -> None:
    """Console entry point: user mistakes become one or two lines and exit code 2, never a traceback."""
    try:
        app()
    except ReplabError as exc:
        common.err_console.print(exc.render(), markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.err_console.print("interrupted", markup=False)
        sys.exit(130)
