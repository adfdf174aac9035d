"""Finding and stopping replab's own processes of a home directory when its cluster.json cannot tell:
the file is corrupt, or the home was removed while servers ran.

A process is replab's when its command line names this home: a server started with
``--defaults-file=<home>/nodes/<name>/my.cnf``, a link relay started as ``.../relayd.py <home>/relay``
(``replab.relay <home>/relay`` by older replab versions), a proxy started as ``haproxy -db -f
<home>/proxy/haproxy.cfg`` and its health agent ``.../proxy_agent.py <home>/proxy``.
Never by process name: another user's or another cluster's mariadbd is left alone.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .process import alive as _alive
from .process import cmdline as _cmdline


@dataclass
class Stray:
    pid: int
    what: str  # "server mysql-s1" or "relay mysql-s1"

    def __str__(self) -> str:
        return f"{self.what} (pid {self.pid})"


def find(home: Path) -> list[Stray]:
    """replab's processes whose command line names ``home`` (servers and link relays), by pid."""
    home = Path(home).absolute()
    server_mark = f"--defaults-file={home}/nodes/"
    relay_marks = (f"relayd.py {home}/relay ", f"replab.relay {home}/relay ")
    proxy_marks = {f"-f {home}/proxy/haproxy.cfg": "proxy haproxy", f"proxy_agent.py {home}/proxy": "proxy agent",
                   f"-c {home}/proxy/router.conf": "proxy mysql-router"}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        cmd = _cmdline(int(entry))
        if server_mark in cmd:
            name = cmd.split(server_mark, 1)[1].split("/", 1)[0]
            found.append(Stray(int(entry), f"server {name}"))
        elif any(m in cmd for m in proxy_marks):
            found.append(Stray(int(entry), next(w for m, w in proxy_marks.items() if m in cmd)))
        else:
            mark = next((m for m in relay_marks if m in cmd + " "), None)
            if mark:
                name = (cmd + " ").split(mark, 1)[1].split()[0]
                found.append(Stray(int(entry), f"relay {name}"))
    return [s for s in sorted(found, key=lambda s: s.pid) if _alive(s.pid)]


def stop(strays: list[Stray], timeout: float = 30.0) -> list[Stray]:
    """TERM each (after SIGCONT, a paused server cannot shut down), then KILL what is left after
    ``timeout``; return the ones that survived."""
    for s in strays:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(s.pid, sig)
            except ProcessLookupError:
                break
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(s.pid) for s in strays):
        time.sleep(0.05)
    for s in strays:
        if _alive(s.pid):
            try:
                os.kill(s.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(s.pid) for s in strays):
        time.sleep(0.05)
    return [s for s in strays if _alive(s.pid)]
