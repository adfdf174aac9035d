"""The link relay daemon (see relay.py for what it does and how replab controls it).

Standard library only, and run as a script with ``python -S``: one starts per replica, so its start-up
cost counts in `replab up` (~30 ms of CPU instead of ~70 ms through ``-m replab.engines.relay``).
Command line: ``python -S .../replab/engines/relayd.py DIR NAME``.
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

OPEN, BLOCKED = "open", "blocked"
BUF = 65536
MAX_PENDING = 4 * 1024 * 1024  # bytes queued toward one side before the other side is no longer read


class _Pair:
    """A client connection and its upstream, each direction with its own pending bytes."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.pending: dict[socket.socket, bytearray] = {client: bytearray()}  # bytes waiting to go TO a socket
        self.closing: socket.socket | None = None  # the side that closed: its last bytes still go to the other

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
                if other is not None and len(pair.pending[other]) < MAX_PENDING and pair.closing is None:
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
            if pair.closing is not None and not pair.pending[sock]:
                self._close(pair)  # the closed side's last bytes (e.g. a server's error packet) went out
                return
        if events & selectors.EVENT_READ and pair.closing is None:
            try:
                data = sock.recv(BUF)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":  # closed: first deliver what it sent, like TCP delivers data before the FIN
                pair.closing = sock
                pair.pending[sock].clear()
                if not pair.pending[other]:
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
