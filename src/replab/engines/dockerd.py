"""A private ``dockerd`` from the shell (used by ``make demo ENGINE=compose`` where no Docker engine runs):

    python -m replab.engines.dockerd start DIR   # prints DOCKER_HOST=unix://DIR/docker.sock
    python -m replab.engines.dockerd stop DIR    # stops it by its pid file, with its containers; removes DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import ReplabError
from .dockerctl import PrivateDaemon


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m replab.engines.dockerd start|stop DIR", file=sys.stderr)
        return 2
    daemon = PrivateDaemon(Path(argv[1]).absolute())
    try:
        if argv[0] == "start":
            print(f"DOCKER_HOST={daemon.start()}")
        else:
            daemon.stop()
    except ReplabError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
