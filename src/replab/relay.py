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
import sys
from pathlib import Path

from .errors import NodeStartError, ReplabError
from .process import Process, alive, log_tail, wait_for

OPEN, BLOCKED = "open", "blocked"
BUF = 65536
MAX_PENDING = 4 * 1024 * 1024  # bytes queued toward one side before the other side is no longer read


# --- the daemon ------------------------------------------------------------------------------------
class _Pair:
    """A client connection and its upstream, each direction with its own pending bytes."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.pending: dict[socket.socket, bytearray] = {client: bytearray()}  # bytes waiting to go TO a socket

    def other(self, sock: socket.socket) -> socket.socket | None:
        return self.upstream if sock is self.client else self.client


class Relay:
    """The relay loop: one listening socket, pairs of (client, upstream) sockets, all non-blocking.

    Nothing ever blocks the loop: bytes read from one side are queued for the other and written when it
    can take them; a side whose queue is full is not read until it drains (a paused replica that stops
    reading slows only its own link, never the relay)."""

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
        for pair in list(self.pairs):
            if self.mode == OPEN and pair.upstream is None:
                self._connect_upstream(pair)
            else:
                self._update(pair)
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

    def _update(self, pair: _Pair) -> None:
        """(Re)register both sockets for what they can do now; nothing at all while blocked."""
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            events = 0
            if self.mode == OPEN and pair.upstream is not None:
                other = pair.other(sock)
                if other is not None and len(pair.pending[other]) < MAX_PENDING:
                    events |= selectors.EVENT_READ
                if pair.pending[sock]:
                    events |= selectors.EVENT_WRITE
            try:
                key = self.sel.get_key(sock)
            except (KeyError, ValueError):
                key = None
            if key is not None and events == 0:
                self.sel.unregister(sock)
            elif key is not None and key.events != events:
                self.sel.modify(sock, events, pair)
            elif key is None and events:
                self.sel.register(sock, events, pair)

    def _connect_upstream(self, pair: _Pair) -> None:
        try:
            up = socket.create_connection(self.target, timeout=2)
        except OSError:
            self._close(pair)  # the primary is down: the replica sees the connection drop and retries
            return
        up.setblocking(False)
        pair.client.setblocking(False)
        pair.upstream = up
        pair.pending[up] = bytearray()
        self._update(pair)

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

    def _io(self, sock: socket.socket, events: int, pair: _Pair) -> None:
        other = pair.other(sock)
        if other is None:
            return
        if events & selectors.EVENT_WRITE and pair.pending[sock]:
            try:
                sent = sock.send(pair.pending[sock])
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close(pair)
                return
            del pair.pending[sock][:sent]
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(BUF)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(pair)
                return
            if data:
                pair.pending[other] += data
        self._update(pair)

    def serve(self) -> None:
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        while self.running:
            if self.reload:
                self.reload = False
                self._read_mode()
            for key, events in self.sel.select(timeout=0.2):
                if key.data is None:
                    self._accept()
                elif key.data in self.pairs:
                    self._io(key.fileobj, events, key.data)  # type: ignore[arg-type]
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


def _process(home: Path, name: str) -> Process:
    """``name``'s relay process: its command line names its directory and link, which proves a pid is ours."""
    directory = relay_dir(home)
    return Process(f"{name} relay", directory / f"{name}.pid", f"replab.relay {directory} {name}",
                   directory / f"{name}.log")


def pid(home: Path, name: str) -> int | None:
    """The live pid of ``name``'s relay, confirmed by its command line; None when it is not running."""
    return _process(home, name).pid()


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
    proc = _process(home, name)
    spawned = proc.spawn([sys.executable, "-m", "replab.relay", str(directory), name])

    def started() -> int | None:
        ack = _ack(home, name)
        if ack and ack[2] == spawned:
            return ack[1]
        if not alive(spawned):
            raise NodeStartError(f"{name}: the link relay exited while starting", node=name,
                                 log_tail=log_tail(proc.log), hint=f"see {proc.log}")
        return None

    port = wait_for(f"{name}: the link relay to start", started, timeout, log=proc.log, node=name,
                    hint=f"see {proc.log}")
    if not conf.get("listen_port"):
        conf["listen_port"] = port
        conf_file.write_text(json.dumps(conf) + "\n")
    return port


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

    def taken() -> bool | None:
        ack = _ack(home, name)
        return True if ack and ack[2] == running else None

    wait_for(f"{name}: the link relay taking its new source", taken, timeout, node=name)


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
    wait_for(f"{name}: the link relay switching to {new_mode}", lambda: True if mode(home, name) == new_mode
             else None, timeout, node=name, describe=lambda: f"mode {mode(home, name)}")


def stop_all(home: Path, timeout: float = 5.0) -> None:
    """Stop every relay of this cluster (by pid file), leaving their configuration in place."""
    directory = relay_dir(home)
    if not directory.is_dir():
        return
    for pid_file in directory.glob("*.pid"):
        _process(home, pid_file.stem).stop(timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
