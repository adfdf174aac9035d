"""A TCP relay per replica link, so replab can cut that link (``partition``) and restore it (``heal``).

Each replica's CHANGE MASTER points at a loopback port served by its own small relay process, which
forwards every connection to the primary. The relay runs detached (its own session, like the servers),
keeps its files in ``<home>/relay/``:

- ``<replica>.json``  listen port and target (written by replab; the relay rebinds the same port on restart)
- ``<replica>.mode``  ``open`` or ``blocked`` (written by replab, re-read by the relay on SIGHUP)
- ``<replica>.ack``   the mode the relay actually applies (written by the relay)
- ``<replica>.pid``, ``<replica>.log``

Blocked = a network partition, both ways: the relay stops moving bytes on existing connections (they stay
open and silent, exactly like a cut cable: no RST, no FIN; TCP keeps the unsent bytes) and new connections
are accepted but get no answer. Heal = bytes flow again; held connections are connected to the primary
then. Each client connection gets its own new connection to the primary, so primary restarts are fine.

Run as ``python -m replab.relay DIR NAME``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .errors import ReplabError, ReplabTimeout

OPEN, BLOCKED = "open", "blocked"
BUF = 65536


# --- the daemon ------------------------------------------------------------------------------------
class _Pair:
    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None


class Relay:
    """The relay loop: one listening socket, pairs of (client, upstream) sockets."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir, self.name = directory, name
        conf = json.loads((directory / f"{name}.json").read_text())
        self.target = (conf["target_host"], int(conf["target_port"]))
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listen.bind((conf.get("listen_host", "127.0.0.1"), int(conf.get("listen_port") or 0)))
        self.listen.listen(64)
        self.listen.setblocking(False)
        self.port = self.listen.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listen, selectors.EVENT_READ, None)
        self.pairs: list[_Pair] = []
        self.mode = OPEN
        self.reload = True
        self.running = True

    def _read_mode(self) -> None:
        try:
            mode = (self.dir / f"{self.name}.mode").read_text().strip()
        except OSError:
            mode = OPEN
        self._read_target()
        self.mode = BLOCKED if mode == BLOCKED else OPEN
        self._reregister()
        tmp = self.dir / f"{self.name}.ack.tmp"
        tmp.write_text(f"{self.mode} {self.port} {os.getpid()}\n")
        os.replace(tmp, self.dir / f"{self.name}.ack")

    def _read_target(self) -> None:
        """A new source after a promotion (failover.py): drop the connections to the old one."""
        try:
            conf = json.loads((self.dir / f"{self.name}.json").read_text())
            target = (conf["target_host"], int(conf["target_port"]))
        except (OSError, ValueError, KeyError):
            return
        if target != self.target:
            self.target = target
            for pair in list(self.pairs):
                self._close(pair)

    def _reregister(self) -> None:
        for pair in list(self.pairs):
            if self.mode == OPEN and pair.upstream is None:
                self._connect_upstream(pair)
                continue
            for sock in (pair.client, pair.upstream):
                if sock is None:
                    continue
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(sock)
                if self.mode == OPEN:
                    self.sel.register(sock, selectors.EVENT_READ, pair)

    def _connect_upstream(self, pair: _Pair) -> None:
        try:
            up = socket.create_connection(self.target, timeout=2)
        except OSError:
            self._close(pair)  # the primary is down: the replica sees the connection drop and retries
            return
        up.setblocking(True)
        pair.upstream = up
        pair.client.setblocking(True)
        self.sel.register(pair.client, selectors.EVENT_READ, pair)
        self.sel.register(up, selectors.EVENT_READ, pair)

    def _close(self, pair: _Pair) -> None:
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def _accept(self) -> None:
        try:
            client, _ = self.listen.accept()
        except BlockingIOError:
            return
        pair = _Pair(client)
        self.pairs.append(pair)
        if self.mode == OPEN:
            self._connect_upstream(pair)
        # blocked: the connection is held, silent, with no upstream, until heal

    def _forward(self, sock: socket.socket, pair: _Pair) -> None:
        other = pair.upstream if sock is pair.client else pair.client
        try:
            data = sock.recv(BUF)
        except OSError:
            data = b""
        if not data or other is None:
            self._close(pair)
            return
        try:
            other.sendall(data)
        except OSError:
            self._close(pair)

    def serve(self) -> None:
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        while self.running:
            if self.reload:
                self.reload = False
                self._read_mode()
            for key, _ in self.sel.select(timeout=0.2):
                if key.data is None:
                    self._accept()
                elif key.data in self.pairs:
                    self._forward(key.fileobj, key.data)  # type: ignore[arg-type]
        for pair in list(self.pairs):
            self._close(pair)
        self.listen.close()


def main(argv: list[str]) -> int:
    directory, name = Path(argv[0]), argv[1]
    relay = Relay(directory, name)
    (directory / f"{name}.pid").write_text(f"{os.getpid()}\n")
    relay.serve()
    with contextlib.suppress(OSError):
        (directory / f"{name}.pid").unlink()
    return 0


# --- control, used by the engine and the nemesis ---------------------------------------------------
def relay_dir(home: Path) -> Path:
    return home / "relay"


def pid(home: Path, name: str) -> int | None:
    """The live pid of ``name``'s relay, confirmed by its command line; None when it is not running."""
    directory = relay_dir(home)
    try:
        value = int((directory / f"{name}.pid").read_text().strip())
        with open(f"/proc/{value}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        with open(f"/proc/{value}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError):
        return None
    if state in ("Z", "X") or "replab.relay" not in cmd or str(directory) not in cmd:
        return None
    return value


def _ack(home: Path, name: str) -> tuple[str, int, int] | None:
    try:
        mode, port, rpid = (relay_dir(home) / f"{name}.ack").read_text().split()
        return mode, int(port), int(rpid)
    except (OSError, ValueError):
        return None


def ensure(home: Path, name: str, target: tuple[str, int] | None = None, timeout: float = 10.0) -> int:
    """Start ``name``'s relay if it is not running (with ``target`` on first use); return its port."""
    directory = relay_dir(home)
    conf_file = directory / f"{name}.json"
    running = pid(home, name)
    conf = json.loads(conf_file.read_text()) if conf_file.exists() else {}
    if running:
        ack = _ack(home, name)
        if ack and ack[2] == running:
            if target is not None and (conf.get("target_host"), conf.get("target_port")) != target:
                _retarget(home, name, conf, target, running, timeout)
            return ack[1]
    directory.mkdir(mode=0o700, exist_ok=True)
    if target is not None:
        if conf.get("target_host") and (conf.get("target_host"), conf.get("target_port")) != target:
            (directory / f"{name}.mode").write_text(OPEN + "\n")  # a cut link was to the old source
        conf.update(target_host=target[0], target_port=target[1])
    if "target_host" not in conf:
        raise ReplabError(f"{name}: no relay configuration in {directory}", node=name)
    conf_file.write_text(json.dumps(conf) + "\n")
    (directory / f"{name}.ack").unlink(missing_ok=True)
    if not (directory / f"{name}.mode").exists():
        (directory / f"{name}.mode").write_text(OPEN + "\n")
    with open(directory / f"{name}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "replab.relay", str(directory), name],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ack = _ack(home, name)
        if ack and ack[2] == proc.pid:
            if not conf.get("listen_port"):
                conf["listen_port"] = ack[1]
                conf_file.write_text(json.dumps(conf) + "\n")
            return ack[1]
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = (directory / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
    raise ReplabTimeout(f"{name}: the link relay did not start", node=name, log_tail=tail,
                        hint=f"see {directory / (name + '.log')}")


def _retarget(home: Path, name: str, conf: dict[str, object], target: tuple[str, int], running: int,
              timeout: float) -> None:
    """Point a running relay at another source (a promoted replica); its listen port stays. Connections to
    the old source are dropped with whatever bytes they held, and a cut link opens: the cut was to the old
    source, the new source is reached over a new link."""
    directory = relay_dir(home)
    conf.update(target_host=target[0], target_port=target[1])
    (directory / f"{name}.mode").write_text(OPEN + "\n")
    tmp = directory / f"{name}.json.tmp"
    tmp.write_text(json.dumps(conf) + "\n")
    os.replace(tmp, directory / f"{name}.json")
    (directory / f"{name}.ack").unlink(missing_ok=True)
    os.kill(running, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ack = _ack(home, name)
        if ack and ack[2] == running:
            return
        time.sleep(0.01)
    raise ReplabTimeout(f"{name}: the link relay did not take its new source in {timeout:.0f}s", node=name)


def target_of(home: Path, name: str) -> tuple[str, int] | None:
    """Where ``name``'s relay forwards to (from its configuration), or None without a relay."""
    try:
        conf = json.loads((relay_dir(home) / f"{name}.json").read_text())
        return str(conf["target_host"]), int(conf["target_port"])
    except (OSError, ValueError, KeyError):
        return None


def mode(home: Path, name: str) -> str | None:
    """``open`` or ``blocked`` as the running relay applies it; None when there is no relay."""
    ack = _ack(home, name)
    return ack[0] if ack and pid(home, name) == ack[2] else None


def set_mode(home: Path, name: str, new_mode: str, timeout: float = 5.0) -> None:
    """Tell ``name``'s relay to block or open the link, and wait until it says it did."""
    running = pid(home, name)
    if running is None:
        ensure(home, name)
        running = pid(home, name)
    directory = relay_dir(home)
    tmp = directory / f"{name}.mode.tmp"
    tmp.write_text(new_mode + "\n")
    os.replace(tmp, directory / f"{name}.mode")
    if running:
        os.kill(running, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mode(home, name) == new_mode:
            return
        time.sleep(0.01)
    raise ReplabTimeout(f"{name}: the link relay did not switch to {new_mode} in {timeout:.0f}s", node=name)


def stop_all(home: Path, timeout: float = 5.0) -> None:
    """Stop every relay of this cluster (by pid file), leaving their configuration in place."""
    directory = relay_dir(home)
    if not directory.is_dir():
        return
    for pid_file in directory.glob("*.pid"):
        name = pid_file.stem
        running = pid(home, name)
        if running is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(running, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid(home, name) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(running, os.WNOHANG)
            time.sleep(0.02)
        if pid(home, name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(running, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
