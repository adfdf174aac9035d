"""`replab up` (ready and replicating) vs the hand-written shell script doing the same steps:
3 and 9 MariaDB nodes (the system's server), and 3 MySQL 9.7 nodes (the catalogue's tree, fetched first)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPLAB = [sys.executable, "-m", "replab", "-q"]


def _time(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return took


def _ours(env: dict[str, str], args: list[str], rounds: int) -> list[float]:
    subprocess.run([*REPLAB, "up", *args], env=env, check=True, capture_output=True)  # warm the template cache
    subprocess.run([*REPLAB, "down"], env=env, check=True, capture_output=True)
    out = []
    for _ in range(rounds):
        try:
            out.append(_time([*REPLAB, "up", *args], env))
        finally:
            subprocess.run([*REPLAB, "down"], env=env, check=True, capture_output=True)
    return out


def _script(argv: list[str], down: list[str], rounds: int, env: dict[str, str] | None = None) -> list[float]:
    out = []
    for _ in range(rounds):
        try:
            out.append(_time(argv, env))
        finally:
            subprocess.run(down, check=False, env=env, capture_output=True)
    return out


def _row(name: str, ours: list[float], theirs: list[float], yardstick: str, target: str) -> dict:
    return {"benchmark": f"{name} (median of {len(ours)})", "replab": statistics.median(ours),
            "yardstick_name": yardstick, "yardstick": statistics.median(theirs), "unit": "s",
            "higher_is_better": False, "target": target}


def run(quick: bool = False) -> list[dict]:
    rounds = 3 if quick else 7
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-up-") as tmp:
        env = dict(os.environ, REPLAB_HOME=f"{tmp}/lab")
        sh = ["bash", str(HERE / "shell_setup.sh"), f"{tmp}/sh"]
        rows.append(_row("up: 3 nodes ready and replicating", _ours(env, [], rounds),
                         _script([*sh, "up"], [*sh, "down"], rounds),
                         "hand-written shell script (bench/shell_setup.sh)", "<= 1.0 s and no slower than the script"))
        env9 = dict(os.environ, NODES_COUNT="9")
        rows.append(_row("up: 9 nodes ready and replicating", _ours(env, ["--nodes", "9"], rounds),
                         _script([*sh, "up"], [*sh, "down"], max(2, rounds // 2), env9),
                         "the same shell script, 9 nodes", "<= 2.5 s"))
        subprocess.run([*REPLAB, "servers", "add", "mysql-9.7"], check=True, capture_output=True)
        shim = Path(os.environ.get("REPLAB_CACHE") or Path.home() / ".cache" / "replab") / "servers/mysql-9.7/shim/bin"
        my = ["bash", str(HERE / "shell_setup_mysql.sh"), str(shim), f"{tmp}/shm"]
        rows.append(_row("up --server mysql-9.7: 3 nodes ready and replicating",
                         _ours(env, ["--server", "mysql-9.7"], rounds),
                         _script([*my, "up"], [*my, "down"], max(2, rounds // 3)),
                         "hand-written shell script for MySQL (bench/shell_setup_mysql.sh: mysqld "
                         "--initialize-insecure per node)", "<= 3 s"))
    return rows
