"""The link relay daemon (see relay.py for what it does and how replab controls it).

Standard library only, and run as a script with ``python -S``: one starts per replica, so its start-up
cost counts in `replab up` (~30 ms of CPU instead of ~70 ms through ``-m replab.engines.relay``).
Command line: ``python -S .../replab/engines/relayd.py DIR NAME``.

Each direction of the link (``to-replica``: bytes from the primary; ``to-primary``: bytes from the replica)
can be cut on its own and shaped on its own: every chunk read is released at its receive time + delay +
jitter (never before the chunk ahead of it: order is kept, as on one TCP stream), after it has been
serialized at the link's rate (one clock per direction, shared by the link's connections, so a rate is the
link's, not a connection's). An unshaped direction keeps the fast path: a chunk read is queued for writing
at once.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import termios
import time
from pathlib import Path

OPEN, BLOCKED = "open", "blocked"
TO_REPLICA, TO_PRIMARY = "to-replica", "to-primary"
DIRECTIONS = (TO_REPLICA, TO_PRIMARY)
MODES = (OPEN, BLOCKED, f"{BLOCKED}-{TO_REPLICA}", f"{BLOCKED}-{TO_PRIMARY}")
BUF = 262144  # bytes read at once: a binary-log backlog moves in few system calls
MAX_PENDING = 4 * 1024 * 1024  # bytes queued toward one side before the other side is no longer read
IDLE = 0.2  # seconds between checks for a signal when nothing happens


def blocked_directions(mode: str) -> frozenset[str]:
    """The directions a mode cuts: both for ``blocked``, one for ``blocked-to-replica``/``-to-primary``."""
    if mode == BLOCKED:
        return frozenset(DIRECTIONS)
    for direction in DIRECTIONS:
        if mode == f"{BLOCKED}-{direction}":
            return frozenset({direction})
    return frozenset()


class _Shape:
    """One direction's conditions: delay and jitter in seconds, rate in bytes per second (0: unlimited)."""

    def __init__(self, conf: dict[str, float]) -> None:
        self.delay = max(0.0, float(conf.get("delay_ms") or 0)) / 1000
        self.jitter = max(0.0, float(conf.get("jitter_ms") or 0)) / 1000
        self.rate = max(0.0, float(conf.get("rate_bps") or 0)) / 8
        # at a rate, chunks are cut to ~5 ms of the link's time, so bytes trickle out as they would
        self.piece = max(1448, int(self.rate / 200)) if self.rate else 0
        # what may wait in the relay toward one side: the bytes in flight at full rate, plus 100 ms of queue
        self.limit = min(MAX_PENDING, max(65536, int(self.rate * (self.delay + self.jitter + 0.1)))) \
            if self.rate else MAX_PENDING


class _Pair:
    """A client connection and its upstream, each direction with its own pending bytes."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.pending: dict[socket.socket, bytearray] = {client: bytearray()}  # bytes waiting to go TO a socket
        # shaped bytes not yet due, per destination: (release time, bytes), in order
        self.delayed: dict[socket.socket, collections.deque[tuple[float, bytes]]] = {client: collections.deque()}
        self.held: dict[socket.socket, int] = {client: 0}  # bytes in delayed
        self.last: dict[socket.socket, float] = {client: 0.0}  # release time of the last chunk queued
        self.closing: socket.socket | None = None  # the side that closed: its last bytes still go to the other
        self.dead: socket.socket | None = None  # after a host crash: the survivor, read and ignored until it closes

    def other(self, sock: socket.socket) -> socket.socket | None:
        return self.upstream if sock is self.client else self.client

    def add_upstream(self, up: socket.socket) -> None:
        self.upstream = up
        self.pending[up] = bytearray()
        self.delayed[up] = collections.deque()
        self.held[up] = 0
        self.last[up] = 0.0

    def queued(self, sock: socket.socket) -> int:
        return len(self.pending[sock]) + self.held[sock]


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
        self.blocked: frozenset[str] = frozenset()
        self.shape: dict[str, _Shape | None] = {d: None for d in DIRECTIONS}
        self.shape_conf: dict[str, dict[str, float]] = {}
        self.free_at: dict[str, float] = {d: 0.0 for d in DIRECTIONS}  # when each direction's wire is free
        self.timed: set[_Pair] = set()  # pairs with shaped bytes not yet due
        self.severed = ""
        self.dropped = 0  # bytes the last crash dropped: held by the relay or unread in its socket buffers
        self.generation = 0  # reloads so far: a caller that signals waits for the next one
        self.reload = True
        self.running = True

    # --- configuration -------------------------------------------------------------------------
    def _read_mode(self) -> None:
        try:
            mode = (self.dir / f"{self.name}.mode").read_text().strip()
        except OSError:
            mode = OPEN
        self._read_target()
        self._read_shape()
        self._read_sever()
        self.mode = mode if mode in MODES else OPEN
        self.blocked = blocked_directions(self.mode)
        for pair in list(self.pairs):
            if self.mode != BLOCKED and pair.upstream is None and pair.dead is None:
                self._connect_upstream(pair)
            else:
                self._update(pair)
        tmp = self.dir / f"{self.name}.ack.tmp"
        self.generation += 1
        applied = {"shape": self.shape_conf, "severed": self.severed, "dropped": self.dropped,
                   "generation": self.generation, "connections": [self._describe(p) for p in self.pairs]}
        tmp.write_text(f"{self.mode} {self.port} {os.getpid()}\n{json.dumps(applied, sort_keys=True)}\n")
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

    def _read_shape(self) -> None:
        try:
            conf = json.loads((self.dir / f"{self.name}.link").read_text())
        except (OSError, ValueError):
            conf = {}
        self.shape_conf = {d: dict(conf[d]) for d in DIRECTIONS if isinstance(conf.get(d), dict) and conf[d]}
        for direction in DIRECTIONS:
            c = self.shape_conf.get(direction)
            shape = _Shape(c) if c else None
            if shape is not None and not (shape.delay or shape.jitter or shape.rate):
                shape = None
            self.shape[direction] = shape

    def _read_sever(self) -> None:
        """A host crash (``replab crash``): its side's sockets are reset and what the relay held from it is
        dropped; the surviving side keeps a silent connection, as a peer of a dead host does."""
        try:
            req = json.loads((self.dir / f"{self.name}.sever").read_text())
        except (OSError, ValueError):
            return
        token, side = str(req.get("token", "")), req.get("side")
        if not token or token == self.severed:
            return
        self.severed, self.dropped = token, 0
        for pair in list(self.pairs):
            self._sever(pair, side)

    def _sever(self, pair: _Pair, side: object) -> None:
        dead = pair.upstream if side == "primary" else pair.client
        survivor = pair.other(dead) if dead is not None else pair.client
        if dead is None or survivor is None:  # no upstream yet: the client's connection just goes silent
            pair.dead = pair.client
            self._update(pair)
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(dead)
        with contextlib.suppress(OSError):
            unread = bytearray(4)
            fcntl.ioctl(dead.fileno(), termios.FIONREAD, unread)
            self.dropped += struct.unpack("i", unread)[0]
        self.dropped += pair.queued(survivor)
        with contextlib.suppress(OSError):
            dead.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, unread bytes lost
            dead.close()
        pair.pending[survivor].clear()
        pair.delayed[survivor].clear()
        pair.held[survivor] = 0
        if pair.upstream is dead:
            pair.upstream = None
        pair.dead = survivor
        self.timed.discard(pair)
        self._update(pair)

    def _describe(self, pair: _Pair) -> dict[str, object]:
        """A connection as the other end sees it: the primary sees the relay's upstream port as its client."""
        out: dict[str, object] = {"held_to_replica": pair.queued(pair.client), "dead": pair.dead is not None}
        if pair.upstream is not None:
            with contextlib.suppress(OSError):
                out["upstream_port"] = pair.upstream.getsockname()[1]
            out["held_to_primary"] = pair.queued(pair.upstream)
        return out

    # --- sockets ---------------------------------------------------------------------------------
    def _direction(self, dest: socket.socket, pair: _Pair) -> str:
        return TO_REPLICA if dest is pair.client else TO_PRIMARY

    def _update(self, pair: _Pair) -> None:
        """(Re)register both sockets for what they can do now; nothing at all while blocked."""
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            events = 0
            if pair.dead is not None:
                events = selectors.EVENT_READ if sock is pair.dead else 0
            elif self.mode != BLOCKED and pair.upstream is not None:
                other = pair.other(sock)
                if other is not None and pair.closing is None:
                    toward = self._direction(other, pair)
                    shape = self.shape[toward]
                    limit = shape.limit if shape is not None else MAX_PENDING
                    if toward not in self.blocked and pair.queued(other) < limit:
                        events |= selectors.EVENT_READ
                if pair.pending[sock] and self._direction(sock, pair) not in self.blocked:
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
        for sock in (up, pair.client):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair.add_upstream(up)
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
        self.timed.discard(pair)

    def _accept(self) -> None:
        try:
            client, _ = self.listen.accept()
        except BlockingIOError:
            return
        pair = _Pair(client)
        self.pairs.append(pair)
        if self.mode != BLOCKED:
            self._connect_upstream(pair)
        # blocked: the connection is held, silent, with no upstream, until heal

    def _shaped(self, pair: _Pair, dest: socket.socket, shape: _Shape, data: bytes, now: float) -> None:
        """Queue ``data`` toward ``dest``: serialized at the rate, then delayed (with jitter), in order."""
        direction = self._direction(dest, pair)
        pieces = [data] if not shape.piece else [data[i:i + shape.piece] for i in range(0, len(data), shape.piece)]
        queue = pair.delayed[dest]
        for piece in pieces:
            sent = now
            if shape.rate:
                sent = self.free_at[direction] = max(now, self.free_at[direction]) + len(piece) / shape.rate
            due = sent + shape.delay
            if shape.jitter:
                due += random.uniform(-shape.jitter, shape.jitter)
            due = max(due, pair.last[dest], now)
            pair.last[dest] = due
            queue.append((due, piece))
            pair.held[dest] += len(piece)
        self.timed.add(pair)

    def _release(self, now: float) -> float:
        """Move shaped bytes that are due into the write queues; the time of the next one still waiting."""
        wake = now + IDLE
        for pair in list(self.timed):
            waiting = False
            moved = False
            for dest, queue in pair.delayed.items():
                if not queue:
                    continue
                if self._direction(dest, pair) in self.blocked or self.mode == BLOCKED:
                    waiting = True
                    continue
                while queue and queue[0][0] <= now:
                    _, piece = queue.popleft()
                    pair.pending[dest] += piece
                    pair.held[dest] -= len(piece)
                    moved = True
                if queue:
                    waiting = True
                    wake = min(wake, queue[0][0])
            if not waiting:
                self.timed.discard(pair)
            if moved:
                self._update(pair)
        return wake

    def _io(self, sock: socket.socket, events: int, pair: _Pair) -> None:
        if pair.dead is not None:  # the survivor of a crash: what it says goes nowhere
            try:
                ignored = sock.recv(BUF)
            except BlockingIOError:
                return
            except OSError:
                ignored = b""
            if not ignored:
                self._close(pair)
            return
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
            if pair.closing is not None and not pair.pending[sock] and not pair.held[sock]:
                self._close(pair)  # the closed side's last bytes (e.g. a server's error packet) went out
                return
        if events & selectors.EVENT_READ and pair.closing is None:
            data: bytes | None
            try:
                data = sock.recv(BUF)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":  # closed: first deliver what it sent, like TCP delivers data before the FIN
                pair.closing = sock
                pair.pending[sock].clear()
                pair.delayed[sock].clear()
                pair.held[sock] = 0
                if not pair.pending[other] and not pair.held[other]:
                    self._close(pair)
                    return
            elif data:
                shape = self.shape[self._direction(other, pair)]
                if shape is None:
                    queue = pair.pending[other]
                    if not queue and self._direction(other, pair) not in self.blocked:
                        # the fast path: straight on to the other side, queueing only what it cannot take now
                        # (no wait for the next select, no change of what the selector watches)
                        try:
                            sent = other.send(data)
                        except BlockingIOError:
                            sent = 0
                        except OSError:
                            self._close(pair)
                            return
                        if sent < len(data):
                            queue += data[sent:]
                    else:
                        queue += data
                else:
                    self._shaped(pair, other, shape, data, time.monotonic())
        self._update(pair)

    def serve(self) -> None:
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        timeout = IDLE
        while self.running:
            if self.reload:
                self.reload = False
                self._read_mode()
            for key, events in self.sel.select(timeout=timeout):
                if key.data is None:
                    self._accept()
                elif key.data in self.pairs:
                    self._io(key.fileobj, events, key.data)  # type: ignore[arg-type]
            timeout = IDLE
            while self.timed:
                # epoll waits whole milliseconds, rounded up: wake up to 1 ms early and sleep the rest
                # precisely, so a shaped chunk leaves within ~0.1 ms of its time rather than up to 1 ms late
                wait = self._release(time.monotonic()) - time.monotonic()
                if wait > 0.001 or not self.timed:
                    timeout = max(0.0, wait - 0.001)
                    break
                if wait > 0:
                    time.sleep(wait)
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
