"""Helpers shared by replab's benchmarks: a throw-away cluster and a passwordless socket-only bench user."""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from replab import Cluster


@contextlib.contextmanager
def bench_cluster(nodes: int = 3, server_options: dict[str, str] | None = None, **up_args: object) -> Iterator[Cluster]:
    """A fresh cluster in a temp dir (``server_options`` go to every node's my.cnf; ``up_args`` to
    ``Cluster.up``, e.g. ``proxy="haproxy"``), always torn down."""
    with tempfile.TemporaryDirectory(prefix="replab-bench-") as tmp:
        config = Path(tmp) / "replab.toml"
        lines = ["[server_options]", *(f'{k} = "{v}"' for k, v in (server_options or {}).items())]
        config.write_text("\n".join(lines) + "\n")
        previous = None
        if threading.current_thread() is threading.main_thread():  # a TERM still runs the clean-up below
            previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            cluster = Cluster.up(nodes=nodes, home=Path(tmp) / "home", config_file=str(config), **up_args)
            try:
                yield cluster
            finally:
                cluster.down()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def result(benchmark: str, replab: float, yardstick_name: str, yardstick: float, unit: str, higher: bool,
           target: str) -> dict:
    return {"benchmark": benchmark, "replab": round(replab, 3), "yardstick_name": yardstick_name,
            "yardstick": round(yardstick, 3), "unit": unit, "higher_is_better": higher, "target": target}
