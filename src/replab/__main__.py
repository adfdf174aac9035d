"""The ``replab`` command (console script) and ``python -m replab``.

Ctrl-C may come while the CLI is still being imported (a quarter of a second on a busy machine): that
ends the command with one line and exit code 130, like a Ctrl-C during a command, never a traceback.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C stops the command; later ones are ignored, so its clean-up is never cut short
    (``timeout -s INT`` delivers the signal twice: to the command and to its process group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with SIGINT ignored
        signal.signal(signal.SIGINT, _interrupt)
    try:  # imported here, not at the top, only so that a Ctrl-C during the import is caught (no cycle)
        cli = importlib.import_module("replab.cli")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted (nothing was changed)\n")
        sys.exit(130)
    cli.main()


if __name__ == "__main__":
    run()
