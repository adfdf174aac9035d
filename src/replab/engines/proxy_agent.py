"""The proxy's role-aware health agent: HAProxy asks it, per backend server, whether that server may serve
that backend now, and it answers from what each server says of itself.

HAProxy's own MySQL check only proves a server is alive. A proxy in front of replication must know roles:
a read-only replica never serves writes, and a replica that stopped replicating leaves the read pool. So
every backend server is checked through HAProxy's ``agent-check``: HAProxy connects to this agent, sends
``agent-send`` (``write mysql-m`` or ``read mysql-s1``) and reads one word back: ``up`` or ``down``, with
the reason after a ``#`` (HAProxy shows it in its logs and in ``show servers state``).

One thread per node keeps a connection to its server and reads, every ``interval`` seconds,
``@@read_only`` and the replica status (the statement comes from the flavor, in the config). Answers
come from those readings, never from a query made while HAProxy waits, so a frozen server cannot stall a
check: a reading older than ``stale`` seconds counts as "not answering".

- ``write NODE`` is up when NODE is the writer replab designates (``DIR/writer``, rewritten by every role
  change before the proxy is told), answers, is writable (``read_only=0``) and replicates from nobody
  whose changes it applies as a replica (no running SQL thread). The designation matters right after a
  failover: the dead old primary's last reading (up to ``interval`` old) still says "writable", and
  without it the agent would answer ``up`` for it once more;
- a reading taken before the last designation is not trusted at all: the answer waits (up to ``fresh``
  seconds) for one taken after it. Otherwise the new primary's last reading from before its promotion
  ("read_only=1") marks it down the moment replab moved the write endpoint to it, and the write pool is
  empty until the next check;
- ``read NODE`` is up when NODE answers, is read-only, and both replication threads run.

Run as ``python .../proxy_agent.py DIR`` (standard library and PyMySQL only; it imports nothing of replab,
so it starts fast); ``DIR/agent.json`` holds its port, the nodes and the path of the credentials option
file (mode 0600): no password is ever on its command line.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pymysql


class Reading:
    """What one node last said of itself."""

    def __init__(self) -> None:
        self.at = 0.0  # monotonic: when the reading was complete
        self.since = 0.0  # wall clock: when its queries began (compared with the designation's mtime)
        self.read_only: bool | None = None
        self.io = self.sql = False
        self.replica = False
        self.error = "no reading yet"


def _credentials(path: str, group: str) -> tuple[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True)
    parser.read_string(Path(path).read_text())
    section = parser[group]
    return section.get("user", "root"), section.get("password", "")


class Agent:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.interval = float(conf.get("interval", 0.2))
        self.stale = float(conf.get("stale", 1.5))
        self.fresh = float(conf.get("fresh", 0.7))  # below HAProxy's `timeout check` (1 s)
        self.readings = {name: Reading() for name in conf["nodes"]}
        self.stop = threading.Event()
        self.writer_file = Path(conf["dir"]) / "writer" if conf.get("dir") else None
        self._writer: tuple[float, str | None] = (-1.0, None)

    # --- readings --------------------------------------------------------------------------------
    def _connect(self, node: dict[str, Any]) -> Any:
        user, password = _credentials(self.conf["credentials"], self.conf.get("group", "client"))
        params: dict[str, Any] = {"user": user, "password": password, "connect_timeout": 1, "read_timeout": 1,
                                  "write_timeout": 1, "autocommit": True,
                                  "cursorclass": pymysql.cursors.DictCursor}
        if node.get("socket"):
            params["unix_socket"] = node["socket"]
        else:
            params.update(host=node["host"], port=int(node["port"]))
        return pymysql.connect(**params)

    def _watch(self, name: str) -> None:
        node, reading = self.conf["nodes"][name], self.readings[name]
        status_sql = self.conf["replica_status_sql"]
        conn = None
        while not self.stop.is_set():
            since = time.time()
            try:
                if conn is None:
                    conn = self._connect(node)
                with conn.cursor() as cur:
                    cur.execute("SELECT @@GLOBAL.read_only AS ro")
                    ro = bool(int(cur.fetchone()["ro"]))
                    cur.execute(status_sql)
                    row = cur.fetchone()
                io = sql = False
                if row:
                    io = str(next((v for k, v in row.items() if k.endswith("_IO_Running")), "No")) == "Yes"
                    sql = str(next((v for k, v in row.items() if k.endswith("_SQL_Running")), "No")) == "Yes"
                reading.read_only, reading.io, reading.sql, reading.replica = ro, io, sql, bool(row)
                reading.error, reading.at, reading.since = "", time.monotonic(), since
            except (pymysql.MySQLError, OSError, KeyError, TypeError, ValueError) as exc:
                reading.error = f"not answering ({type(exc).__name__})"
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
            self.stop.wait(self.interval)

    def designated_writer(self) -> str | None:
        """The node replab's last role change named the writer (None: no designation, any may be)."""
        if self.writer_file is None:
            return None
        try:
            mtime = self.writer_file.stat().st_mtime_ns
        except OSError:
            return None
        if mtime != self._writer[0]:
            with contextlib.suppress(OSError):
                self._writer = (mtime, self.writer_file.read_text().strip() or None)
        return self._writer[1]

    def _fresh_reading(self, name: str) -> Reading | None:
        """The node's reading, once it began after the last designation (waits up to ``fresh`` s for one);
        None when none came in time."""
        self.designated_writer()
        changed = self._writer[0] / 1e9
        r = self.readings[name]
        deadline = time.monotonic() + self.fresh
        while r.since < changed and not r.error:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return r

    # --- answers ---------------------------------------------------------------------------------
    def answer(self, request: str) -> str:
        """``up`` or ``down#why`` for a request ``write NODE`` or ``read NODE``."""
        parts = request.split()
        if len(parts) != 2 or parts[0] not in ("write", "read") or parts[1] not in self.readings:
            return "down #unknown request\n"
        pool, name = parts
        writer = self.designated_writer()
        if pool == "write" and writer is not None and writer != name:
            return f"down #not the primary ({writer} is)\n"
        r = self._fresh_reading(name)
        if r is None:
            return "down #no reading since the role change\n"
        if r.error or time.monotonic() - r.at > self.stale:
            return f"down #{r.error or 'not answering'}\n"
        if pool == "write":
            if r.read_only:
                return "down #read_only=1\n"
            if r.sql:
                return "down #it applies replication (a replica)\n"
            return "up\n"
        if not r.read_only:
            return "down #writable: not a replica\n"
        if not (r.io and r.sql):
            return f"down #replication stopped (IO {'Yes' if r.io else 'No'}, SQL {'Yes' if r.sql else 'No'})\n"
        return "up\n"

    def serve(self) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", int(self.conf["port"])))
        srv.listen(64)
        for name in self.readings:
            threading.Thread(target=self._watch, args=(name,), daemon=True, name=f"watch-{name}").start()
        while not self.stop.is_set():
            client, _ = srv.accept()
            threading.Thread(target=self._reply, args=(client,), daemon=True).start()

    def _reply(self, client: socket.socket) -> None:
        with client:
            client.settimeout(1.0)
            data = b""
            with contextlib.suppress(OSError):
                while b"\n" not in data and len(data) < 256:
                    chunk = client.recv(256)
                    if not chunk:
                        break
                    data += chunk
            if not data:
                return  # a plain connect check: the agent is alive
            with contextlib.suppress(OSError):
                client.sendall(self.answer(data.decode(errors="replace").strip()).encode())


def main(argv: list[str]) -> int:
    directory = Path(argv[1])
    conf = json.loads((directory / "agent.json").read_text())
    (directory / "agent.pid").write_text(f"{os.getpid()}\n")
    Agent(conf).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
