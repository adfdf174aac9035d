"""Cluster state below everything else: the home directory, cluster.json, credentials, ports, passwords,
and the cache directory. Nothing here talks to a server."""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fcntl
import json
import os
import secrets
import shutil
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .config import ClusterSpec
from .errors import ConfigError, PortInUse

STATE_FILE = "cluster.json"
CREDENTIALS_FILE = "credentials.cnf"
STATE_VERSION = 1


def cache_root() -> Path:
    """Where fetched servers and data-dir templates live: $REPLAB_CACHE, else ~/.cache/replab."""
    base = os.environ.get("REPLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "replab"
    )
    return Path(base)


def write_state(home: Path, state: dict[str, Any]) -> None:
    """Replace cluster.json atomically (a reader never sees half a file)."""
    tmp = home / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, home / STATE_FILE)


_held: dict[str, int] = {}  # homes whose lock this process holds, with their nesting depth
_held_fds: dict[str, Any] = {}


@contextlib.contextmanager
def home_lock(home: Path, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Exclusive lock on a cluster home for the commands that change it (one at a time per home).

    Re-entrant within a process: a command that holds it can call code that takes it again. ``say`` is told
    when another command holds it and this one waits."""
    key = str(Path(home).absolute())
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fh = open(Path(home) / ".lock", "w")  # noqa: SIM115 - held across the yield
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say:
                say(f"another replab command is changing the cluster in {home}; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        _held[key] = 1
        yield
    finally:
        _held.pop(key, None)
        fh.close()


def check_home(home: Path) -> None:
    """Refuse a home that cannot hold state: not a directory, read-only, or not writable."""
    target = home if home.exists() else home.parent
    while not target.exists():
        target = target.parent
    if home.exists() and not home.is_dir():
        raise ConfigError(f"REPLAB_HOME {home} exists and is not a directory",
                          hint="choose another --home or remove that file")
    mode = stat.S_IMODE(target.stat().st_mode)
    if not mode & stat.S_IWUSR or not os.access(target, os.W_OK | os.X_OK):
        raise ConfigError(f"REPLAB_HOME {home} is not writable ({target} is mode {mode:o})",
                          hint="choose a writable --home, or fix the permissions (chmod u+w)")


def _port_busy(host: str, port: int) -> str | None:
    """Why ``port`` cannot be used (it answers, or cannot be bound), or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        if s.connect_ex((host, port)) == 0:
            return "something already answers there"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return "address in use" if exc.errno == errno_mod.EADDRINUSE else str(exc)
    return None


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _free_ports(host: str, count: int) -> list[int]:
    """``count`` free ports for servers, outside the kernel's ephemeral range: a port chosen here is bound
    by the server a moment later, and meanwhile a relay's listening socket (bound to port 0) or an outgoing
    connection could be given any free ephemeral port, this one too (then the server cannot start)."""
    low, _ = _ephemeral_range()
    first = 10000 if low - 10000 >= 1000 else 1024
    room = range(first, low) if low - first >= 10 * count else range(0)
    ports: list[int] = []
    for port in secrets.SystemRandom().sample(room, min(len(room), 50 * count)):
        if len(ports) == count:
            break
        if _port_busy(host, port) is None:
            ports.append(port)
    if len(ports) == count:
        return ports
    socks = []  # no room below the ephemeral range: let the kernel choose
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_ports(host: str, count: int) -> list[int]:
    """``count`` free ports on ``host`` for replab's own listeners (servers, a proxy)."""
    return _free_ports(host, count)


OWN_FILES = (STATE_FILE, STATE_FILE + ".tmp", CREDENTIALS_FILE, ".lock", "membernet.json", "membernet.tmp")
OWN_DIRS = ("nodes", "run", "ledger", "logs", "relay", "proxy", "endpoints")


def remove_state(home: Path) -> None:
    """Remove what replab created in ``home``, and ``home`` itself only if nothing else is left."""
    for name in OWN_DIRS:
        shutil.rmtree(home / name, ignore_errors=True)
    for name in OWN_FILES:
        (home / name).unlink(missing_ok=True)
    for extra in home.glob("ledger*"):
        if extra.is_file():
            extra.unlink()
    with contextlib.suppress(OSError):
        home.rmdir()


def new_password() -> str:
    return secrets.token_urlsafe(18)


def check_ports(spec: ClusterSpec) -> list[int]:
    if spec.base_port is None:
        return _free_ports(spec.host, spec.nodes)
    ports = list(range(spec.base_port, spec.base_port + spec.nodes))
    for port in ports:
        why = _port_busy(spec.host, port)
        if why:
            raise PortInUse(f"port {port} on {spec.host} is in use ({why})",
                            hint="pick another --base-port, or leave it out to use free ports")
    return ports


