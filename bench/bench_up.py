"""`replab up` (3 nodes, ready and replicating) vs the hand-written shell script doing the same steps."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _time(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict]:
    rounds = 3 if quick else 7
    replab = [sys.executable, "-m", "replab", "-q"]
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-up-") as tmp:
        env = dict(os.environ, REPLAB_HOME=f"{tmp}/lab")
        subprocess.run([*replab, "up"], env=env, check=True, capture_output=True)  # warm the template cache
        subprocess.run([*replab, "down"], env=env, check=True, capture_output=True)
        for _ in range(rounds):
            ours.append(_time([*replab, "up"], env))
            subprocess.run([*replab, "down"], env=env, check=True, capture_output=True)
            d = f"{tmp}/sh"
            try:
                theirs.append(_time(["bash", str(HERE / "shell_setup.sh"), d, "up"]))
            finally:
                subprocess.run(["bash", str(HERE / "shell_setup.sh"), d, "down"], check=False)
    return [{
        "benchmark": f"up: 3 nodes ready and replicating (median of {rounds})",
        "replab": statistics.median(ours), "yardstick_name": "hand-written shell script (bench/shell_setup.sh)",
        "yardstick": statistics.median(theirs), "unit": "s", "higher_is_better": False,
        "target": "<= 2 s and no slower than the script",
    }]
