"""The ``replab`` command (console script) and ``python -m replab``.

Ctrl-C may come while the CLI is still being imported (a quarter of a second on a busy machine): that
ends the command with one line and exit code 130, like a Ctrl-C during a command, never a traceback.
"""

from __future__ import annotations

import importlib
import sys


def run() -> None:
    try:  # imported here, not at the top, only so that a Ctrl-C during the import is caught (no cycle)
        cli = importlib.import_module("replab.cli")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted (nothing was changed)\n")
        sys.exit(130)
    cli.main()


if __name__ == "__main__":
    run()
