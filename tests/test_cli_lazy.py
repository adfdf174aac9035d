"""The command line loads only the module of the command it runs; its table must match the modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import typer

from replab import cli


def _names(module: str) -> set[str]:
    app = typer.Typer()
    importlib.import_module(f"replab.cli.{module}").register(app)
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name or "" for g in app.registered_groups}


def test_table_matches_what_each_module_registers() -> None:
    registered = {name: module for module in cli.MODULES for name in _names(module)}
    assert registered == cli.COMMAND_MODULES


@pytest.mark.parametrize("argv, command", [
    (["up", "--nodes", "3"], "up"),
    (["--home", "lab", "-q", "status"], "status"),
    (["--home=lab", "scenario", "run", "x"], "scenario"),
    (["--help"], None),
    (["-q", "-h", "up"], None),
    ([], None),
])
def test_command_word(argv: list[str], command: str | None) -> None:
    assert cli.command_of(argv) == command


def _loaded_after(*argv: str) -> tuple[set[str], str]:
    code = ("import sys; from replab import cli; sys.argv = ['replab', *sys.argv[1:]]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('MODULES', ' '.join(sorted(m for m in sys.modules if m.startswith('replab'))))")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES"))
    return set(line.split()[1:]), proc.stdout


def test_up_does_not_load_the_other_commands() -> None:
    loaded, out = _loaded_after("up", "--help")
    assert "--nodes" in out
    assert "replab.cli.lifecycle" in loaded and "replab.cluster.builder" in loaded
    for heavy in ("replab.runs.scenarios", "replab.runs.report", "replab.faults.failover", "replab.faults.nemesis",
                  "replab.workload.feed", "replab.cli.faults", "replab.cli.scenario_cmd"):
        assert heavy not in loaded, heavy


def test_root_help_and_unknown_commands_see_every_command() -> None:
    _, out = _loaded_after("--help")
    for command in ("up", "feed", "kill", "switchover", "scenario", "compose", "servers"):
        assert command in out
    proc = subprocess.run([sys.executable, "-m", "replab", "stauts"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "status" in proc.stderr  # click's "did you mean" needs every command registered


def _commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    out = []
    for c in app.registered_commands:
        if c.callback is not None and c.callback.__doc__:
            out.append(((*prefix, c.name or c.callback.__name__.replace("_", "-")), c.callback.__doc__))
    for g in app.registered_groups:
        if g.typer_instance is not None:
            out += _commands(g.typer_instance, (*prefix, g.name or ""))
    return out


def test_every_help_example_is_a_line_of_its_own() -> None:
    """Issue 23.18: `up --help` and `failover --help` ran their examples together on one line (and `drift`
    ran its example into the prose). Every command's examples each stand on a line of their own, in an
    80-column terminal too (partition's, endpoints' and image build's were folded in two)."""
    app = cli.register()
    commands = _commands(app)
    assert len(commands) > 25
    wanted = [(words, [line.strip() for line in doc.splitlines() if line.strip().startswith("Example:")])
              for words, doc in commands]

    def help_of(words: list[str]) -> str:
        return subprocess.run([sys.executable, "-m", "replab", *words, "--help"], capture_output=True, text=True,
                              timeout=60, env={"COLUMNS": "80", "PATH": "/usr/bin:/bin",
                                                   "PYTHONPATH": os.environ.get("PYTHONPATH", "")}).stdout

    with ThreadPoolExecutor(max_workers=4) as pool:  # one CLI start each: side by side, not one after another
        helps = dict(zip((tuple(w) for w, ex in wanted if ex), pool.map(help_of, [w for w, ex in wanted if ex]),
                         strict=True))
    for words, examples in wanted:
        if not examples:
            continue
        out = helps[tuple(words)]
        shown = [line.strip(" │") for line in out.splitlines()]
        for example in examples:
            assert example in shown, (words, example, out)
