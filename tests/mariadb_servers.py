"""Stand-alone MariaDB servers for the external-engine tests, started WITHOUT replab's cluster code.

Each server: its own data dir in a temp dir (made by ``mariadb-install-db`` once per session, then copied),
a free loopback port, binary logging and a distinct server_id, ``root@127.0.0.1`` with a password. It is
always stopped by its pid (TERM, then KILL), never by a process name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

MARIADBD = shutil.which("mariadbd", path=os.environ.get("PATH", "") + ":/usr/sbin")
INSTALL_DB = shutil.which("mariadb-install-db")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_template(base: Path) -> Path:
    """A pristine data dir made by mariadb-install-db (the distribution's own installer)."""
    datadir = base / "template"
    if not (datadir / "mysql").exists():
        argv = [str(INSTALL_DB), "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--innodb-log-file-size=16M", "--basedir=/usr"]
        if os.geteuid() == 0:
            argv.append("--user=root")
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return datadir


@dataclass
class Server:
    """One running mariadbd on 127.0.0.1:port."""

    name: str
    dir: Path
    port: int
    server_id: int
    password: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def cnf(self) -> Path:
        return self.dir / "my.cnf"

    def connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password=self.password,
                               autocommit=True, connect_timeout=3)

    def sql(self, statement: str, args: object = None) -> list[tuple[object, ...]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall()) if cur.description else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """TERM by pid, then KILL; wait for the process."""
        if not self.alive():
            return
        assert self.proc is not None
        with_stopped = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("T", "t")
        if with_stopped:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_server(base: Path, name: str, server_id: int, password: str) -> Server:
    template = init_template(base)
    sdir = base / name
    shutil.copytree(template, sdir / "data")
    server = Server(name=name, dir=sdir, port=free_port(), server_id=server_id, password=password)
    server.cnf.write_text(
        "[mariadbd]\n"
        f"datadir={sdir / 'data'}\nsocket={sdir / 's.sock'}\npid-file={sdir / 'm.pid'}\n"
        f"log-error={sdir / 'error.log'}\nport={server.port}\nbind-address=127.0.0.1\n"
        f"server_id={server_id}\nlog_bin=bin\nlog_slave_updates=1\nskip_name_resolve=1\n"
        "innodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\n" + ("user=root\n" if os.geteuid() == 0 else ""))
    os.chmod(server.cnf, 0o644)
    server.proc = subprocess.Popen([str(MARIADBD), f"--defaults-file={server.cnf}"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (sdir / "s.sock").exists():
        if not server.alive() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not start: {(sdir / 'error.log').read_text()[-2000:]}")
        time.sleep(0.05)
    try:
        conn = _wait_socket(sdir, deadline)
        with conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin=0")  # account set-up stays local to this server
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
    except BaseException:
        server.stop()
        raise
    return server


def _wait_socket(sdir: Path, deadline: float) -> pymysql.connections.Connection:
    while True:
        try:
            return pymysql.connect(unix_socket=str(sdir / "s.sock"), user="root", password="", autocommit=True)
        except pymysql.MySQLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
