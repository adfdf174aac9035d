"""The local engine: MariaDB (or MySQL) server processes on this machine, on loopback.

Data dirs are copies of a template made once per server version by the server's own
``mariadb-install-db`` (cached under ~/.cache/replab), which is what makes ``up`` take about a second.
Servers start detached (their own session) so they outlive the command that started them. They are found
again by pid file, and a pid is trusted only if its command line names this node's config file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import relay
from ..errors import BinaryNotFound, NodeStartError, NodeStateError, ReplabError, ReplabTimeout
from .base import PAUSED, RUNNING, STOPPED, BuildPlan, Engine, NodeInfo

TEMPLATE_REV = "1"
REDO_LOG_SIZE = "64M"
_EXTRA_PATH = ["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/libexec", "/opt/mysql/bin"]
INSTALL_HINT = "install it with: apt-get install mariadb-server mariadb-client (or put mysqld on PATH)"


def find_program(names: list[str], explicit: str | None = None) -> str | None:
    """First of ``names`` found on PATH or in the usual sbin directories."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) and os.path.isfile(explicit) else None
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_EXTRA_PATH)
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def find_server(explicit: str | None = None) -> str:
    found = find_program(["mariadbd", "mysqld"], explicit)
    if not found:
        what = explicit or "mariadbd (or mysqld)"
        raise BinaryNotFound(f"server binary {what} not found", hint=INSTALL_HINT)
    return found


def cache_root() -> Path:
    base = os.environ.get("REPLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "replab"
    )
    return Path(base)


def _proc_state(pid: int) -> str | None:
    """The one-letter process state from /proc, or None when there is no such process."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited (else it lingers as a zombie)
    except (ChildProcessError, OSError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()[0]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _copy_datadir(template: Path, target: Path) -> None:
    """Copy the template keeping its zero-filled files (redo log, system tablespace) sparse: ~6 MB written
    per node instead of ~80 MB, which also spares the disk writeback that would slow the first fsyncs."""
    cp = shutil.which("cp")
    if cp:
        proc = subprocess.run([cp, "-r", "--preserve=mode,timestamps", "--sparse=always", str(template),
                               str(target)], capture_output=True, text=True)
        if proc.returncode == 0:
            (target / ".replab-complete").unlink(missing_ok=True)
            return
        shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True, ignore=shutil.ignore_patterns(".replab-complete"))


class LocalEngine(Engine):
    name = "local"

    def __init__(self, home: Path, say: Callable[[str], None] | None = None,
                 server_binary: str | None = None) -> None:
        super().__init__(home, say)
        self.server_binary = server_binary

    @classmethod
    def from_spec(cls, home: Path, say: Callable[[str], None] | None, spec: Any) -> LocalEngine:
        return cls(home, say, server_binary=spec.server_binary)

    @classmethod
    def from_state(cls, home: Path, say: Callable[[str], None] | None, state: dict[str, Any]) -> LocalEngine:
        return cls(home, say, server_binary=state.get("server_binary"))

    def prepare(self, spec: Any) -> BuildPlan:
        """Find the server binary, detect its flavor, pick loopback ports."""
        from ..cluster import check_ports
        from ..flavor import detect_flavor

        server = find_server(spec.server_binary)
        flavor = detect_flavor(server)
        ports = check_ports(spec)
        nodes = [NodeInfo(name=name, role="primary" if i == 0 else "replica", server_id=i + 1, host=spec.host,
                          port=ports[i]) for i, name in enumerate(spec.node_names)]
        return BuildPlan(flavor=flavor, nodes=nodes, server_binary=server)

    # --- paths -------------------------------------------------------------------------------
    def socket_dir(self) -> Path:
        """Unix socket paths are limited to ~107 bytes: fall back to a short private dir in /tmp."""
        run = self.home / "run"
        if len(str(run / "mysql-s9.sock")) < 100:
            return run
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"replab-{digest}"

    def layout(self, node: NodeInfo) -> None:
        ndir = self.home / "nodes" / node.name
        node.dir = str(ndir)
        node.datadir = str(ndir / "data")
        node.cnf = str(ndir / "my.cnf")
        node.errlog = str(ndir / "error.log")
        node.pidfile = str(ndir / "mysqld.pid")
        node.socket = str(self.socket_dir() / f"{node.name}.sock")

    # --- template ------------------------------------------------------------------------------
    def template(self, server: str, version_string: str) -> Path:
        """A pristine data dir for this server version, made once by the server's own installer."""
        st = os.stat(server)
        key = hashlib.sha1(f"{TEMPLATE_REV}|{server}|{version_string}|{st.st_mtime_ns}|{REDO_LOG_SIZE}"
                           .encode()).hexdigest()[:16]
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = root / f"datadir-{key}"
        if (target / ".replab-complete").exists():
            return target
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / ".replab-complete").exists():
                return target
            self.say(f"initializing a template data dir with the server's installer (once per version) in {target}")
            tmp = Path(tempfile.mkdtemp(prefix="tmpl-", dir=root))
            try:
                self._init_datadir(server, tmp / "data", version_string)
                (tmp / "data" / ".replab-complete").write_text(version_string + "\n")
                if target.exists():
                    shutil.rmtree(target)
                os.rename(tmp / "data", target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _init_datadir(self, server: str, datadir: Path, version_string: str) -> None:
        from ..flavor import flavor_from_version_string

        flavor = flavor_from_version_string(version_string)
        installer = None
        if flavor.name == "mariadb":
            installer = find_program(["mariadb-install-db", "mysql_install_db"])
            if not installer:
                raise BinaryNotFound("mariadb-install-db not found", hint=INSTALL_HINT)
        else:
            datadir.parent.mkdir(parents=True, exist_ok=True)
        argv = flavor.init_datadir_argv(server, str(datadir), installer)
        if installer:
            basedir = Path(server).resolve().parent.parent
            if not (basedir / "share").exists():
                basedir = Path("/usr")
            argv.append(f"--basedir={basedir}")
        if os.geteuid() == 0:
            argv.append("--user=root")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
            raise NodeStartError("initializing the data dir failed", action=" ".join(argv[:1]), log_tail=tail,
                                 hint="check the server installation and free disk space")

    # --- create --------------------------------------------------------------------------------
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        server = settings["server_binary"]
        template = self.template(server, settings["version_string"])
        sockdir = self.socket_dir()
        sockdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(sockdir, 0o700)
        for node in nodes:
            self.layout(node)
            ndir = Path(node.dir)
            ndir.mkdir(parents=True, exist_ok=False, mode=0o700)
            _copy_datadir(template, Path(node.datadir))
            Path(node.cnf).write_text(self.render_cnf(node, settings))
            os.chmod(node.cnf, 0o644)  # servers ignore world-writable config; 0644 is what they accept

    def render_cnf(self, node: NodeInfo, settings: dict[str, Any]) -> str:
        flavor = settings["flavor"]
        opts: dict[str, str] = {
            "datadir": node.datadir,
            "socket": node.socket,
            "pid-file": node.pidfile,
            "log-error": node.errlog,
            "port": str(node.port),
            "bind-address": node.host,
            "server_id": str(node.server_id),
            "log_bin": "mysql-bin",
            "relay_log": "relay-bin",
            "binlog_format": settings["binlog_format"],
            "log_slave_updates": "1",
            "sync_binlog": "1",
            "innodb_flush_log_at_trx_commit": "1",
            "relay_log_recovery": "1",
            "skip_name_resolve": "1",
            "innodb_buffer_pool_size": "128M",
            "innodb_log_file_size": REDO_LOG_SIZE,
            "slave_net_timeout": "10",
            "max_connections": "300",
            "character_set_server": "utf8mb4",
            "report_host": node.host,
            "report_port": str(node.port),
        }
        opts = flavor.adapt_server_options(opts)  # MySQL's renamed options and each flavor's GTID settings
        if node.role == "replica":
            opts["read_only"] = "1"
        if settings.get("semi_sync_timeout_ms") is not None:
            opts.update(flavor.semisync_server_options(int(settings["semi_sync_timeout_ms"])))
            opts.update(flavor.semisync_role_options(node.role == "primary"))
        if os.geteuid() == 0:
            opts["user"] = "root"
        opts.update({k: str(v) for k, v in settings.get("server_options", {}).items()})
        body = "\n".join(f"{k}={v}" for k, v in opts.items())
        return f"# written by replab for {node.name}; edit at your own risk\n[{flavor.server_section()}]\n{body}\n"

    def set_options(self, node: NodeInfo, options: dict[str, str | None]) -> None:
        """Change options in a node's my.cnf (None removes one), e.g. read_only after a role change, so a
        restart keeps the node's current role."""
        lines = Path(node.cnf).read_text().splitlines()
        keys = {line.split("=", 1)[0].strip(): i for i, line in enumerate(lines) if "=" in line}
        for key, value in options.items():
            if key in keys:
                lines[keys[key]] = f"{key}={value}" if value is not None else ""
            elif value is not None:
                lines.append(f"{key}={value}")
        Path(node.cnf).write_text("\n".join(line for line in lines if line) + "\n")

    # --- processes -----------------------------------------------------------------------------
    def pid(self, node: NodeInfo) -> int | None:
        """The live pid of this node's server, confirmed by its command line; None when not running."""
        try:
            pid = int(Path(node.pidfile).read_text().strip())
        except (OSError, ValueError):
            pid = int(node.extra.get("pid") or 0) or None  # type: ignore[assignment]
        if not pid:
            return None
        state = _proc_state(pid)
        if state is None or state in ("Z", "X"):
            return None
        if node.cnf not in _cmdline(pid):
            return None  # pid reused by another process: not ours
        return pid

    def state(self, node: NodeInfo) -> str:
        pid = self.pid(node)
        if pid is None:
            return STOPPED
        return PAUSED if _proc_state(pid) in ("T", "t") else RUNNING

    def start(self, node: NodeInfo) -> None:
        if node.role == "replica" and node.extra.get("relay_port"):
            relay.ensure(self.home, node.name)  # the replica's link to the primary (see relay.py)
        if self.pid(node):
            raise NodeStateError(f"{node.name} is already running", node=node.name)
        server = self.server_binary or find_server()
        try:
            Path(node.pidfile).unlink()
        except FileNotFoundError:
            pass
        with open(node.errlog, "ab") as log:
            proc = subprocess.Popen(
                [server, f"--defaults-file={node.cnf}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd=node.dir,
            )
        node.extra["pid"] = proc.pid
        node.extra["log_offset"] = os.path.getsize(node.errlog)

    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pid = int(node.extra.get("pid") or 0)
        last_exc: Exception | None = None
        delay = 0.01
        while time.monotonic() < deadline:
            alive = pid and _proc_state(pid) not in (None, "Z", "X")
            if not alive:
                raise NodeStartError(f"{node.name}: the server exited while starting", node=node.name,
                                     log_tail=self.log_tail(node),
                                     hint=f"see {node.errlog}")
            if os.path.exists(node.socket):
                try:
                    probe()
                    return
                except ReplabError as exc:
                    last_exc = exc
            time.sleep(delay)
            delay = min(0.05, delay * 1.5)
        raise ReplabTimeout(
            f"{node.name}: not answering SELECT 1 after {timeout:.0f}s (last error: {last_exc})",
            node=node.name, log_tail=self.log_tail(node), hint=f"see {node.errlog}")

    def _wait_gone(self, node: NodeInfo, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _proc_state(pid) in (None, "Z", "X"):
                _proc_state(pid)
                return True
            time.sleep(0.02)
        return False

    def stop(self, node: NodeInfo, timeout: float = 30.0, shutdown: Callable[[], None] | None = None) -> None:
        pid = self.pid(node)
        if pid is None:
            return
        if _proc_state(pid) in ("T", "t"):
            os.kill(pid, signal.SIGCONT)
        if shutdown is not None:
            try:
                shutdown()
            except ReplabError:
                pass
            if self._wait_gone(node, pid, timeout):
                return
            self.say(f"{node.name}: clean shutdown did not finish in {timeout:.0f}s; sending TERM")
        self._signal(pid, signal.SIGTERM)
        if self._wait_gone(node, pid, timeout):
            return
        self.say(f"{node.name}: still running {timeout:.0f}s after TERM; sending KILL")
        self._signal(pid, signal.SIGKILL)
        if not self._wait_gone(node, pid, 10):
            raise ReplabTimeout(f"{node.name}: pid {pid} survived SIGKILL", node=node.name)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, node: NodeInfo) -> None:
        pid = self.pid(node)
        if pid is None:
            raise NodeStateError(f"{node.name} is not running", node=node.name,
                                 hint=f"start it with: replab start {node.name}")
        self._signal(pid, signal.SIGKILL)
        self._wait_gone(node, pid, 10)

    def pause(self, node: NodeInfo) -> None:
        pid = self.pid(node)
        if pid is None:
            raise NodeStateError(f"{node.name} is not running", node=node.name)
        if _proc_state(pid) in ("T", "t"):
            raise NodeStateError(f"{node.name} is already paused", node=node.name,
                                 hint=f"resume it with: replab resume {node.name}")
        self._signal(pid, signal.SIGSTOP)

    def resume(self, node: NodeInfo) -> None:
        pid = self.pid(node)
        if pid is None or _proc_state(pid) not in ("T", "t"):
            raise NodeStateError(f"{node.name} is not paused", node=node.name)
        self._signal(pid, signal.SIGCONT)

    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        relay.stop_all(self.home)
        for node in nodes:
            pid = self.pid(node)
            if pid is not None:
                if _proc_state(pid) in ("T", "t"):
                    self._signal(pid, signal.SIGCONT)
                self._signal(pid, signal.SIGTERM)
        for node in nodes:
            pid = self.pid(node)
            if pid is not None and not self._wait_gone(node, pid, 30):
                self._signal(pid, signal.SIGKILL)
                self._wait_gone(node, pid, 10)
        if keep_data:
            return
        for node in nodes:
            if node.dir:
                shutil.rmtree(node.dir, ignore_errors=True)
            if node.socket:
                Path(node.socket).unlink(missing_ok=True)
        nodes_dir = self.home / "nodes"
        if nodes_dir.exists() and not any(nodes_dir.iterdir()):
            nodes_dir.rmdir()
        sockdir = self.socket_dir()
        if sockdir.exists() and not any(sockdir.iterdir()):
            sockdir.rmdir()

    def source_address(self, primary: NodeInfo, replica: NodeInfo) -> tuple[str, int]:
        """The replica's own link relay (started here), which forwards to the primary; see relay.py."""
        port = relay.ensure(self.home, replica.name, target=(primary.host, primary.port))
        replica.extra["relay_port"] = port
        return "127.0.0.1", port

    def source_node(self, host: str | None, port: int | None, nodes: list[NodeInfo]) -> str | None:
        """A replica's source is its link relay: the node is where that relay forwards to."""
        relayed = next((n for n in nodes if port and n.extra.get("relay_port") == port), None)
        if relayed is not None:
            target = relay.target_of(self.home, relayed.name)
            if target is not None:
                host, port = target
        return super().source_node(host, port, nodes)

    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        return {"unix_socket": node.socket}

    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        return [self.client_program(), f"--defaults-extra-file={credentials}", f"--socket={node.socket}",
                f"--prompt={node.name} [\\d]> "]
