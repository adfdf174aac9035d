"""The replab command line: a thin layer that parses, calls the library and renders. No SQL here."""

from __future__ import annotations

import importlib
import inspect
import sys

import click
import typer

from ..core.errors import ReplabError
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


def _version(value: bool) -> None:
    if value:
        common.console.print(f"replab {common.version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    home: str = typer.Option(None, "--home", envvar="REPLAB_HOME", metavar="DIR",
                             help="State directory of the cluster (default ./.replab). Also accepted after "
                             "the command."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results, not the steps taken. Also "
                               "accepted after the command."),
    _show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print replab's version and exit."),
) -> None:
    common.OPTIONS["home"] = home
    common.OPTIONS["quiet"] = quiet


# Each command's module, so that a command imports only what it needs (`replab up` does not load the
# scenario runner, the report or the failover code: ~0.1 s of a one-second `up`). Root help, an unknown
# command or no command load them all. tests/test_cli_lazy.py keeps this table equal to what the modules
# register.
MODULES = ("lifecycle", "data", "faults", "failover_cmd", "scenario_cmd", "compose_cmd", "servers_cmd",
           "topology_cmd")
COMMAND_MODULES = {
    **dict.fromkeys(("up", "status", "sql", "connect", "down", "endpoints"), "lifecycle"),
    **dict.fromkeys(("feed", "check"), "data"),
    **dict.fromkeys(("kill", "crash", "stop", "start", "restart", "pause", "resume", "partition", "heal", "link",
                     "drift", "diagnose", "repair", "sync"), "faults"),
    **dict.fromkeys(("switchover", "failover", "rejoin"), "failover_cmd"),
    "scenario": "scenario_cmd",
    **dict.fromkeys(("compose", "image"), "compose_cmd"),
    "servers": "servers_cmd",
    **dict.fromkeys(("topology", "repoint"), "topology_cmd"),
}
_registered: set[str] = set()


def register(command: str | None = None) -> typer.Typer:
    """Register ``command``'s module on the app, or every module when ``command`` is None or unknown."""
    module = COMMAND_MODULES.get(command or "")
    for name in (module,) if module else MODULES:
        if name not in _registered:
            importlib.import_module(f"{__name__}.{name}").register(app)
            _registered.add(name)
    _keep_example_lines(app)
    return app


def keep_lines(doc: str) -> str:
    """A help text whose ``Example:`` lines each stay a line of their own: click joins the lines of a
    paragraph (an example ran into the prose and into the next example) unless it starts with ``\\b``."""
    out = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines = paragraph.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith("Example:")), None)
        if first is None:
            out.append(paragraph)
            continue
        if first:
            out.append("\n".join(lines[:first]))
        out.append("\b\n" + "\n".join(lines[first:]))
    return "\n\n".join(out)


def _keep_example_lines(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None and info.callback.__doc__ and "\b" not in info.callback.__doc__:
            info.callback.__doc__ = keep_lines(info.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _keep_example_lines(group.typer_instance)


def command_of(argv: list[str]) -> str | None:
    """The command word of an argument list whose global options come first (see hoist_global_options);
    None when there is none, or when root help is asked for."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None
        if arg == "--home":
            i += 2
            continue
        if not arg.startswith("-"):
            return arg
        i += 1
    return None


def main() -> None:
    """Console entry point: user mistakes become one or two lines and exit code 2, never a traceback."""
    args = common.hoist_global_options(sys.argv[1:])
    try:
        register(command_of(args))
        app(args=args, prog_name="replab")
    except ReplabError as exc:
        common.err_console.print(exc.render(), markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.err_console.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit as exc:  # typer turns a Ctrl-C inside a command into a silent exit 130: say so
        inner = exc.__context__
        if exc.code == 130 and isinstance(inner, click.exceptions.Exit) and \
                isinstance(inner.__cause__, KeyboardInterrupt):
            common.err_console.print("interrupted", markup=False)
        raise
