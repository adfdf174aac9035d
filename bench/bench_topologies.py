"""`replab up --topology SHAPE` (ready, every edge replicating, every node holding every writer's schema) vs
a hand-written shell script doing the same steps for the same shape (bench/shell_topology.sh), MariaDB
(the system's server), both measured in this run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench_up import REPLAB, _ours, _row, _script

HERE = Path(__file__).resolve().parent
SHAPES = {"chain": 3, "fan-in": 3, "active-active": 2, "ring": 3}


def run(quick: bool = False) -> list[dict]:
    rounds = 3 if quick else 5
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-topo-") as tmp:
        env = dict(os.environ, REPLAB_HOME=f"{tmp}/lab")
        for shape, count in SHAPES.items():
            sh = ["bash", str(HERE / "shell_topology.sh"), f"{tmp}/sh-{shape}"]
            ours = _ours(env, ["--topology", shape, "--nodes", str(count)], rounds)
            theirs = _script([*sh, "up"], [*sh, "down"], max(2, rounds // 2), dict(os.environ, SHAPE=shape))
            rows.append(_row(f"up --topology {shape}: {count} nodes ready, every edge replicating", ours, theirs,
                             f"hand-written shell script (bench/shell_topology.sh, SHAPE={shape})",
                             "no slower than the script"))
    return rows


__all__ = ["run", "REPLAB"]
