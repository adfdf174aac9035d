"""Shared test helpers. Every cluster a test starts lives under pytest's temp dir; at the end of the session
we check, by command line (config path under that dir), that no server we started is still running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from catalogue import params, require

REPLAB = [sys.executable, "-m", "replab"]


def servers_under(base: Path) -> list[int]:
    """Pids of server (and proxy) processes whose command line names a config file under ``base``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{entry}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        ours = "--defaults-file=" in cmd or "/proxy/haproxy.cfg" in cmd or "proxy_agent.py" in cmd
        if state != "Z" and ours and str(base) in cmd:
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="session", autouse=True)
def _no_servers_left(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.getbasetemp()
    yield
    left = servers_under(base)
    assert not left, f"server processes left running after the tests: {left}"
    from replab.engines.membernet import left_under
    nets = left_under(base)
    assert not nets, f"member networks (namespaces, interfaces) left after the tests: {nets}"


def run_cli(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the replab CLI in a subprocess (as a user would) and capture its output."""
    full_env = dict(os.environ)
    full_env.pop("REPLAB_HOME", None)
    if home is not None:
        full_env["REPLAB_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run([*REPLAB, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def cli():
    return run_cli


def wait_for(pred: Callable[[], object], timeout: float = 15.0) -> bool:
    """Poll ``pred`` every 0.1 s until it is true; whether it became true within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def status_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The status table as printed: {node: {column: cell}}; a cell folded over more lines is joined with
    spaces (a long GTID or error is cut anywhere, so compare those from JSON)."""
    head = next(line for line in stdout.splitlines() if line.startswith("┃"))
    cols = [c.strip() for c in head.strip("┃").split("┃")]
    rows: dict[str, dict[str, str]] = {}
    last: dict[str, str] | None = None
    for line in stdout.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0]:
                last = rows[cells[0]] = dict(zip(cols, cells, strict=True))
            elif last is not None:
                for col, cell in zip(cols, cells, strict=True):
                    if cell:
                        last[col] = f"{last[col]} {cell}".strip()
    return rows


@pytest.fixture(params=params("mariadb-10.11", "mysql-9.7"))
def server(request: pytest.FixtureRequest) -> str:
    """Each server of the two-flavor matrix in turn (MariaDB 10.11, MySQL 9.7)."""
    require(request.param)
    return str(request.param)


@pytest.fixture
def matrix_cluster(replab_cluster_factory, server):
    """A fresh cluster on ``server``; a module overrides ``replab_cluster`` with it to run on both flavors."""
    return replab_cluster_factory(server=server)
