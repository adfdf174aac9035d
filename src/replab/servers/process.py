"""One detached process found again by its pid file, and one wait helper.

``Process`` is how replab runs anything that must outlive the command that started it (database servers,
link relays): started in its own session, found again by pid file, and trusted only when its command line
names ``marker`` (a path that only this process has on its command line, e.g. its config file), so a reused
pid is never mistaken for ours. Stopping escalates: a clean shutdown callback, then TERM, then KILL, each
with a timeout.

``wait_for`` is the single polling loop: it knows what it waits for, stops at once on a fatal error
(access denied is not retried for a minute), and its timeout error says what was waited for, the last
state seen, the log tail and what to try.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..core.errors import NodeStartError, ReplabError, ReplabTimeout

T = TypeVar("T")

# errors no retry can fix: wrong password, unknown database, not allowed
FATAL_ERRNOS = frozenset({1044, 1045, 1049, 1130, 1251})


def proc_state(pid: int) -> str | None:
    """The one-letter state from /proc (R, S, T, Z...), or None when there is no such process."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited (else it lingers as a zombie)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a child of this process (a server started through the Python
    API by this very process); else it would stay a zombie, which MySQL takes for a server still holding
    its socket lock file ("Another process with pid N is using unix socket file"): a start right after a
    kill failed."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def pids_with(marker: str) -> list[int]:
    """Live pids whose command line contains ``marker`` (a path of ours, never a program name)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and marker in cmdline(int(entry)) and alive(int(entry)):
            out.append(int(entry))
    return out


def log_tail(path: str | Path | None, lines: int = 15) -> list[str]:
    """The last non-empty lines of a log file (empty when there is none)."""
    if not path:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in data.splitlines() if line.strip()][-lines:]


def wait_for(what: str, check: Callable[[], T | None], timeout: float, *, interval: float = 0.01,
              max_interval: float = 0.1, describe: Callable[[], str] | None = None,
              log: str | Path | None = None, hint: str | None = None, node: str | None = None) -> T:
    """Call ``check`` until it returns something other than None; return that.

    ``check`` may raise ``ReplabError``: one with a fatal errno (see ``FATAL_ERRNOS``) or a
    ``NodeStartError`` ends the wait at once; others are remembered as the last state seen.
    """
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    delay = interval
    while True:
        try:
            result = check()
            if result is not None:
                return result
        except NodeStartError:
            raise
        except ReplabError as exc:
            if getattr(exc, "errno", None) in FATAL_ERRNOS:
                raise
            last = str(exc)
        if time.monotonic() >= deadline:
            seen = describe() if describe else last
            raise ReplabTimeout(f"{what}: not done after {timeout:.0f}s (last seen: {seen})", node=node,
                                log_tail=log_tail(log), hint=hint)
        time.sleep(delay)
        delay = min(max_interval, delay * 1.5)


@dataclass
class Process:
    """A detached process: ``pidfile`` says which pid, ``marker`` proves the pid is still ours."""

    name: str
    pidfile: Path
    marker: str
    log: Path | None = None
    pid_hint: int | None = None  # the pid we spawned, until the process writes its pid file

    def pid(self) -> int | None:
        """The live pid, confirmed by its command line; None when not running."""
        candidates = []
        with contextlib.suppress(OSError, ValueError):
            candidates.append(int(self.pidfile.read_text().strip()))
        if self.pid_hint:
            candidates.append(self.pid_hint)
        for pid in candidates:
            if alive(pid) and self.marker in cmdline(pid):
                return pid
        return None

    def paused(self) -> bool:
        pid = self.pid()
        return pid is not None and proc_state(pid) in ("T", "t")

    def spawn(self, argv: list[str], cwd: str | Path | None = None, env: dict[str, str] | None = None) -> int:
        """Start ``argv`` in its own session (it outlives us), output appended to the log."""
        self.pidfile.unlink(missing_ok=True)
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, cwd=cwd, env=env)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        self.pid_hint = proc.pid
        return proc.pid

    def wait_ready(self, probe: Callable[[], None], timeout: float, *, ready_file: str | Path | None = None,
                   hint: str | None = None) -> None:
        """Wait until the process is alive AND ``probe`` succeeds; fail at once if it exits."""
        pid = self.pid_hint

        def check() -> bool | None:
            if not pid or not alive(pid):
                raise NodeStartError(f"{self.name}: exited while starting", node=self.name,
                                     log_tail=log_tail(self.log), hint=hint)
            if ready_file is not None and not os.path.exists(ready_file):
                return None
            probe()
            return True

        wait_for(f"{self.name}: waiting for the server to answer", check, timeout, log=self.log, hint=hint,
                 node=self.name, max_interval=0.05)

    def _gone(self, pid: int, timeout: float) -> bool:
        """Wait until ``pid`` has left the process table (a zombie counts as gone at the deadline only: a
        multi-threaded server's main thread is a zombie while its other threads still exit, and MySQL takes
        the pid for a server still holding its socket lock file)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = proc_state(pid)
            if state is None:
                return True
            if state in ("Z", "X"):
                _reap(pid)
            time.sleep(0.02)
        return not alive(pid)

    def signal(self, sig: int) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self, timeout: float = 30.0, shutdown: Callable[[], None] | None = None,
             say: Callable[[str], None] | None = None) -> None:
        """Clean shutdown (``shutdown``), then TERM, then KILL, each given ``timeout``; no-op when stopped."""
        say = say or (lambda _m: None)
        pid = self.pid()
        if pid is None:
            return
        if proc_state(pid) in ("T", "t"):
            os.kill(pid, signal.SIGCONT)
        if shutdown is not None:
            with contextlib.suppress(ReplabError):
                shutdown()
            if self._gone(pid, timeout):
                return
            say(f"{self.name}: clean shutdown did not finish in {timeout:.0f}s; sending TERM")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._gone(pid, timeout):
            return
        say(f"{self.name}: still running {timeout:.0f}s after TERM; sending KILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self._gone(pid, 10):
            raise ReplabTimeout(f"{self.name}: pid {pid} survived SIGKILL", node=self.name)

    def kill(self) -> int | None:
        """SIGKILL and wait until it is gone; the pid it had (None when it was not running)."""
        pid = self.pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT if proc_state(pid) in ("T", "t") else 0)
            os.kill(pid, signal.SIGKILL)
        self._gone(pid, 10)
        return pid
