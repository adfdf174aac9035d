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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, NodeStartError, NodeStateError, NotSupported
from ..core.state import cache_root, check_ports
from ..servers import catalogue as servers
from ..servers.catalogue import Server
from ..servers.flavor import flavor_from_version_string
from ..servers.process import Process, proc_state
from . import haproxy, membernet, mysql_router, relay
from .base import PAUSED, RUNNING, STOPPED, BuildPlan, Engine, NodeInfo

# 2: MySQL templates carry no auto.cnf (each node makes its own server UUID)
# 3: MariaDB templates leave out the `sys` schema (104 of a node's 200 files: creating files is most of what
#    copying a data dir costs; 0.02-0.9 ms per file on this machine's ext4, depending on the directory)
TEMPLATE_REV = "3"
REDO_LOG_SIZE = "64M"


def _check_pair(primary: Server, replica: Server) -> None:
    """Replicas may run a newer build of the same flavor than the primary, never an older or another one."""
    if primary.flavor != replica.flavor:
        raise ConfigError(f"cannot mix {primary.flavor} ({primary.name}) and {replica.flavor} ({replica.name}) in "
                          "one cluster: their GTIDs are incompatible",
                          hint="replicate MariaDB to MariaDB and MySQL to MySQL")
    if _vtuple(replica.version) < _vtuple(primary.version):
        raise ConfigError(f"the replicas' server {replica.name} ({replica.version}) is older than the primary's "
                          f"{primary.name} ({primary.version}): a replica must be the same version or newer",
                          hint=f"swap them: --server {replica.name} --replica-server {primary.name}")


def _vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".") if x.isdigit())


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
    capabilities = frozenset({"kill", "stop", "pause", "partition", "partition-one-way", "shape", "crash",
                              "snapshot", "backup", "clone", "binlog"})
    discards_running = True

    def __init__(self, home: Path, say: Callable[[str], None] | None = None, server: Server | None = None,
                 replica_server: Server | None = None) -> None:
        super().__init__(home, say)
        self._server = server
        self.replica_server = replica_server
        net = membernet.MemberNet.load(home)
        if net is not None:  # members on their own network: accounts come from its subnet
            self.client_host = net.client_host()

    def member_network(self, nodes: list[NodeInfo]) -> membernet.MemberNet | None:
        """A namespace per member (engines/membernet.py), when this machine allows it (root, ip, nft);
        otherwise None, said once: the members stay on 127.0.0.1 and cannot be cut off from each other."""
        why = membernet.unusable()
        if why:
            self.say(f"members share 127.0.0.1, so they cannot be partitioned from each other: {why}")
            return None
        net = membernet.MemberNet(self.home, [n.name for n in nodes])
        addresses = net.addresses()  # picks the subnet and records it in the home
        net.setup()  # now: the host's end holds the subnet, so no other cluster picks it meanwhile
        for node in nodes:
            node.host = addresses[node.name]
        self.client_host = net.client_host()
        return net

    @property
    def server(self) -> Server:
        """The cluster's server build (the primary's; the replicas' too unless ``replica_server``)."""
        if self._server is None:
            self._server = servers.resolve(None)
        return self._server

    def server_for(self, node: NodeInfo) -> Server:
        """The build a node runs: fixed when the node was made (a promoted replica keeps its build)."""
        if self.replica_server and node.extra.get("server") == self.replica_server.name:
            return self.replica_server
        return self.server

    @classmethod
    def from_spec(cls, home: Path, say: Callable[[str], None] | None, spec: Any) -> LocalEngine:
        server = servers.resolve(spec.server_binary)
        replica = servers.resolve(spec.replica_server) if spec.replica_server else None
        if replica is not None:
            _check_pair(server, replica)
        return cls(home, say, server=server, replica_server=replica)

    @classmethod
    def from_state(cls, home: Path, say: Callable[[str], None] | None, state: dict[str, Any]) -> LocalEngine:
        def load(data: Any) -> Server | None:
            if isinstance(data, dict) and data:
                return Server(**{k: v for k, v in data.items() if k in Server.__dataclass_fields__})
            return None

        server = load(state.get("server"))
        if server is None and state.get("server_binary"):  # state written before the catalogue
            server = servers.from_binary(state["server_binary"])
        replica = load((state.get("engine_options") or {}).get("replica_server"))
        return cls(home, say, server=server, replica_server=replica)

    def prepare(self, spec: Any) -> BuildPlan:
        """Detect the server's flavor, pick loopback ports."""
        flavor = flavor_from_version_string(self.server.version_line)
        ports = check_ports(spec)
        nodes = []
        for i, name in enumerate(spec.node_names):
            role = "primary" if i == 0 else "replica"
            build = self.replica_server if role == "replica" and self.replica_server else self.server
            nodes.append(NodeInfo(name=name, role=role, server_id=i + 1, host=spec.host, port=ports[i],
                                  extra={"server": build.name}))
        options = {"replica_server": self.replica_server.to_dict()} if self.replica_server else {}
        return BuildPlan(flavor=flavor, nodes=nodes, server_binary=self.server.binary, options=options,
                         server=self.server.to_dict())

    def program(self, tool: str) -> str:
        found = self.server.program(tool)
        assert found is not None
        return found

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
    def template(self, server: Server) -> Path:
        """A pristine data dir for this server build, made once by the server's own installer."""
        st = os.stat(os.path.realpath(server.binary))
        key = hashlib.sha1(f"{TEMPLATE_REV}|{os.path.realpath(server.binary)}|{server.version_line}|"
                           f"{st.st_mtime_ns}|{REDO_LOG_SIZE}".encode()).hexdigest()[:16]
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = root / f"datadir-{key}"
        if (target / ".replab-complete").exists():
            return target
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / ".replab-complete").exists():
                return target
            self.say(f"initializing a template data dir for {server.name} (once per build) in {target}")
            tmp = Path(tempfile.mkdtemp(prefix="tmpl-", dir=root))
            try:
                self._init_datadir(server, tmp / "data")
                self._drop_sys_schema(server, tmp / "data")
                (tmp / "data" / "auto.cnf").unlink(missing_ok=True)  # MySQL: the server UUID must be per node
                (tmp / "data" / ".replab-complete").write_text(server.version_line + "\n")
                if target.exists():
                    shutil.rmtree(target)
                os.rename(tmp / "data", target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _init_datadir(self, server: Server, datadir: Path) -> None:
        flavor = flavor_from_version_string(server.version_line)
        env = dict(os.environ)
        installer = server.program("install_db", required=flavor.name == "mariadb")
        datadir.parent.mkdir(parents=True, exist_ok=True)
        argv = flavor.init_datadir_argv(server.binary, str(datadir), installer)
        if installer:
            base = Path(server.base) if server.base else Path(server.binary).resolve().parent.parent
            if not (base / "share").exists():
                base = Path("/usr")
            argv.append(f"--basedir={base}")
            if server.base:  # a relocated tree: its install script must run the tree's server and tools
                env["MYSQLD_BOOTSTRAP"] = server.binary
                env["PATH"] = os.pathsep.join([*server.bindirs, env.get("PATH", "")])
        else:
            argv[2:2] = [f"--{k.replace('_', '-')}={v}" for k, v in server.server_options().items()]
        if os.geteuid() == 0:
            argv.append("--user=root")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0 or not (datadir / "mysql").is_dir():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
            what = "failed" if proc.returncode != 0 else "made no system tables (no mysql/ in the data dir)"
            raise NodeStartError(f"initializing the data dir {what}", action=" ".join(argv[:1]), log_tail=tail,
                                 hint="check the server installation and free disk space")

    def _drop_sys_schema(self, server: Server, datadir: Path) -> None:
        """MariaDB: drop the ``sys`` schema from the template. Its views read performance_schema, which is off
        in replab's servers, and its 104 files made every node's copy twice as slow. (MySQL keeps ``sys`` in
        its data dictionary: nothing to gain there.)"""
        if flavor_from_version_string(server.version_line).name != "mariadb" or not (datadir / "sys").is_dir():
            return
        argv = [server.binary, "--no-defaults", f"--datadir={datadir}", "--bootstrap",
                f"--innodb-log-file-size={REDO_LOG_SIZE}", f"--log-error={datadir.parent / 'bootstrap.err'}",
                *[f"--{k.replace('_', '-')}={v}" for k, v in server.server_options().items()]]
        if os.geteuid() == 0:
            argv.append("--user=root")
        proc = subprocess.run(argv, input="DROP DATABASE IF EXISTS sys;\n", capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or (datadir / "sys").exists():
            log = datadir.parent / "bootstrap.err"
            tail = (log.read_text(errors="replace") if log.exists() else proc.stderr).strip().splitlines()[-12:]
            raise NodeStartError("preparing the template data dir failed (DROP DATABASE sys)",
                                 action=" ".join(argv[:1]), log_tail=tail,
                                 hint="check the server installation and free disk space")

    # --- create --------------------------------------------------------------------------------
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        templates = {b.name: self.template(b) for b in {self.server_for(n).name: self.server_for(n)
                                                          for n in nodes}.values()}
        sockdir = self.socket_dir()
        sockdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(sockdir, 0o700)
        for node in nodes:
            self.layout(node)
            ndir = Path(node.dir)
            ndir.mkdir(parents=True, exist_ok=False, mode=0o700)
            (ndir / "files").mkdir(mode=0o700)
            (ndir / "tmp").mkdir(mode=0o700)
            Path(node.cnf).write_text(self.render_cnf(node, settings))
            os.chmod(node.cnf, 0o600)  # it may hold a password (Galera SST); servers ignore world-writable config
        # the copies are mostly file creations (kernel time): two at a time keep both cores of a laptop busy
        with ThreadPoolExecutor(max_workers=min(4, max(2, os.cpu_count() or 2))) as pool:
            list(pool.map(lambda n: _copy_datadir(templates[self.server_for(n).name], Path(n.datadir)), nodes))

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
            "secure_file_priv": str(Path(node.dir) / "files"),
            # the server's own temporary files (internal temporary tables, filesort) in its home, not the shared
            # /tmp: a query failed with 'Error on delete of /tmp/#sql-temptable-...' when something else on the
            # machine removed files there
            "tmpdir": str(Path(node.dir) / "tmp"),
            **self.server_for(node).server_options(),
        }
        opts.update(settings.get("node_options", {}).get(node.name, {}))  # what the topology needs of this node
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
    def process(self, node: NodeInfo) -> Process:
        """The node's server process; its config file path on the command line proves the pid is ours."""
        hint = int(node.extra.get("pid") or 0) or None
        return Process(node.name, Path(node.pidfile), f"--defaults-file={node.cnf}",
                       Path(node.errlog) if node.errlog else None, pid_hint=hint)

    def pid(self, node: NodeInfo) -> int | None:
        return self.process(node).pid()

    def state(self, node: NodeInfo) -> str:
        proc = self.process(node)
        pid = proc.pid()
        if pid is None:
            return STOPPED
        return PAUSED if proc_state(pid) in ("T", "t") else RUNNING

    can_hold_replication = True

    def start(self, node: NodeInfo, extra_args: list[str] | None = None) -> None:
        if node.extra.get("relay_port") and (node.role == "replica" or node.extra.get("links") is not None):
            relay.ensure(self.home, node.name)  # the replica's link to its source (see relay.py)
        for link in node.extra.get("links") or {}:
            relay.ensure(self.home, link)
        proc = self.process(node)
        if proc.pid():
            raise NodeStateError(f"{node.name} is already running", node=node.name)
        argv = [self.server_for(node).binary, f"--defaults-file={node.cnf}", *(extra_args or [])]
        net = membernet.MemberNet.load(self.home)  # group/galera members: each in its own namespace
        if net is not None and node.name in net.names:
            net.setup()  # idempotent (rebuilds it after a reboot)
            argv = net.command(node.name, argv)
        node.extra["pid"] = proc.spawn(argv, cwd=node.dir, env=self.server_for(node).environment())
        node.extra["log_offset"] = os.path.getsize(node.errlog)

    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float = 60.0) -> None:
        self.process(node).wait_ready(probe, timeout, ready_file=node.socket, hint=f"see {node.errlog}")

    def stop(self, node: NodeInfo, timeout: float = 30.0, shutdown: Callable[[], None] | None = None) -> None:
        self.process(node).stop(timeout, shutdown, self.say)

    def kill(self, node: NodeInfo) -> str:
        pid = self.process(node).kill()
        if pid is None:
            raise NodeStateError(f"{node.name} is not running", node=node.name,
                                 hint=f"start it with: replab start {node.name}")
        return f"SIGKILL to pid {pid}"

    def pause(self, node: NodeInfo) -> str:
        proc = self.process(node)
        if proc.pid() is None:
            raise NodeStateError(f"{node.name} is not running", node=node.name)
        if proc.paused():
            raise NodeStateError(f"{node.name} is already paused", node=node.name,
                                 hint=f"resume it with: replab resume {node.name}")
        proc.signal(signal.SIGSTOP)
        return f"SIGSTOP to pid {proc.pid()}"

    def resume(self, node: NodeInfo) -> None:
        proc = self.process(node)
        if not proc.paused():
            raise NodeStateError(f"{node.name} is not paused", node=node.name)
        proc.signal(signal.SIGCONT)

    # --- partitions: each replica's link relay (see relay.py) ------------------------------------------
    def _links(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[str]:
        """The replica links a partition of ``node`` cuts: its own, or every replica's for the primary."""
        links = [n for n in nodes if n.role == "replica"] if node.role == "primary" else [node]
        for link in links:
            if not link.extra.get("relay_port"):
                raise NotSupported(f"{link.name} replicates without a replab link relay (cluster built by an older "
                                   "replab), so its link cannot be cut", node=link.name,
                                   hint="recreate the cluster: replab down && replab up")
        return [n.name for n in links]

    def partitioned(self, nodes: list[NodeInfo]) -> list[str]:
        return [n.name for n in nodes if n.role == "replica" and self._cut(n.name)]

    def _cut(self, name: str) -> frozenset[str]:
        return relay.blocked_directions(relay.mode(self.home, name) or relay.OPEN)

    @staticmethod
    def _mode(cut: frozenset[str]) -> str:
        if not cut:
            return relay.OPEN
        if len(cut) == len(relay.DIRECTIONS):
            return relay.BLOCKED
        return f"{relay.BLOCKED}-{next(iter(cut))}"

    def partition(self, node: NodeInfo, nodes: list[NodeInfo], direction: str | None = None) -> str:
        links = self._links(node, nodes)
        ways = frozenset(relay.DIRECTIONS if direction is None else (direction,))
        if all(ways <= self._cut(name) for name in links):
            how = "" if direction is None else f" {direction}"
            raise NodeStateError(f"{node.name} is already partitioned{how}", node=node.name,
                                 hint=f"replab heal {node.name}")
        for name in links:
            relay.set_mode(self.home, name, self._mode(self._cut(name) | ways))
        primary = next((n.name for n in nodes if n.role == "primary"), "the primary")
        what = "every replica link" if node.role == "primary" else f"the link {node.name} <-> {primary}"
        if direction is None:
            return f"{what} is cut both ways (packets silently dropped, no reset)"
        if direction == relay.TO_REPLICA:
            return (f"{what} is cut toward the replica only: it hears nothing from {primary}, while {primary} "
                    "still receives what it sends (requests, acknowledgements)")
        return (f"{what} is cut toward the primary only: {primary} hears nothing from the replica, while the "
                "replica still receives what the primary sends")

    def heal(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[str]:
        cut = self.partitioned(nodes)
        links = [name for name in self._links(node, nodes) if name in cut]
        if not links:
            raise NodeStateError(f"{node.name} is not partitioned", node=node.name)
        for name in links:
            relay.set_mode(self.home, name, relay.OPEN)
        return links

    # --- link conditions and host crashes (the same relays) ------------------------------------------
    def links(self, nodes: list[NodeInfo]) -> list[str]:
        return [n.name for n in nodes if n.role == "replica" and n.extra.get("relay_port")]

    def link_state(self, node: NodeInfo) -> dict[str, Any] | None:
        if node.role != "replica" or not node.extra.get("relay_port"):
            return None
        running = relay.pid(self.home, node.name) is not None
        return {"cut": sorted(self._cut(node.name)), "conditions": relay.shape(self.home, node.name),
                "mechanism": "user-space relay" if running else "relay not running",
                "port": int(node.extra["relay_port"])}

    def link_ports(self, node: NodeInfo) -> list[int]:
        if node.role != "replica" or not node.extra.get("relay_port"):
            return []
        return [int(c["upstream_port"]) for c in relay.connections(self.home, node.name) if c.get("upstream_port")]

    def shape(self, node: NodeInfo, conditions: dict[str, dict[str, float]]) -> str:
        self._links(node, [node])
        relay.set_shape(self.home, node.name, conditions)
        return f"user-space relay on 127.0.0.1:{node.extra['relay_port']} (this engine does not use netem)"

    # --- the edges of the other shapes: each edge's own relay, by its link name (topologies.Edge.link) ---
    def edge_link_state(self, link: str) -> dict[str, Any] | None:
        conf = relay.target_of(self.home, link)
        if conf is None:
            return None
        running = relay.pid(self.home, link) is not None
        return {"cut": sorted(self._cut(link)), "conditions": relay.shape(self.home, link),
                "mechanism": "user-space relay" if running else "relay not running",
                "port": relay.listen_port(self.home, link)}

    def _require_link(self, link: str) -> None:
        if relay.target_of(self.home, link) is None:
            raise NotSupported(f"the link {link} has no replab link relay (cluster built by an older replab), so "
                               "it cannot be cut or shaped", hint="recreate the cluster: replab down && replab up")

    def cut_link(self, link: str, direction: str | None = None) -> None:
        self._require_link(link)
        ways = frozenset(relay.DIRECTIONS if direction is None else (direction,))
        relay.set_mode(self.home, link, self._mode(self._cut(link) | ways))

    def open_link(self, link: str) -> None:
        self._require_link(link)
        relay.set_mode(self.home, link, relay.OPEN)

    def shape_link(self, link: str, conditions: dict[str, dict[str, float]]) -> str:
        self._require_link(link)
        relay.set_shape(self.home, link, conditions)
        return f"user-space relay on 127.0.0.1:{relay.listen_port(self.home, link)} (this engine does not use netem)"

    def sever_link(self, link: str, side: str) -> int:
        if relay.pid(self.home, link) is None:
            return 0
        return relay.sever(self.home, link, side)

    def crash(self, node: NodeInfo, nodes: list[NodeInfo]) -> str:
        """Sever first (the relays reset the dead side's connections and drop what they hold from it), then
        SIGKILL: nothing the server wrote before it died can still reach a replica through a link."""
        proc = self.process(node)
        if proc.pid() is None:
            raise NodeStateError(f"{node.name} is not running", node=node.name,
                                 hint=f"start it with: replab start {node.name}")
        dropped, severed = 0, []
        for link in nodes:
            if link.role != "replica" or not link.extra.get("relay_port") or relay.pid(self.home, link.name) is None:
                continue
            if relay.target_of(self.home, link.name) == (node.host, node.port):
                dropped += relay.sever(self.home, link.name, "primary")
                severed.append(link.name)
            elif link.name == node.name:
                dropped += relay.sever(self.home, link.name, "replica")
                severed.append(link.name)
        pid = proc.kill()
        links = f"the link(s) of {', '.join(severed)} dropped {dropped} byte(s) it had sent but they had not " \
                "delivered" if severed else "it had no link relay to drop bytes from"
        return f"SIGKILL to pid {pid}; {links}"

    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        haproxy.stop(self.home)
        mysql_router.stop(self.home)
        relay.stop_all(self.home)
        procs = [self.process(n) for n in nodes]
        # Data kept: TERM (a clean shutdown) all first, then wait, so the servers shut down in parallel.
        # Data removed: KILL. A clean shutdown would only flush what is deleted next, and MySQL 9.7 takes
        # ~3 s over it; process() only ever names a server of this home (pid file + identity check).
        end = signal.SIGTERM if keep_data else signal.SIGKILL
        for proc in procs:
            if proc.paused():
                proc.signal(signal.SIGCONT)
            proc.signal(end)
        for proc in procs:
            proc.stop(30.0)
        membernet.remove_home(self.home, forget=not keep_data)  # the members' namespaces, if any
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

    def source_address(self, primary: NodeInfo, replica: NodeInfo, link: str | None = None) -> tuple[str, int]:
        """The replica's own link relay (started here), which forwards to its source; see relay.py. The
        default link is named after the replica; a replica of several sources has one relay per source."""
        port = relay.ensure(self.home, link or replica.name, target=(primary.host, primary.port))
        if not link or link == replica.name:
            replica.extra["relay_port"] = port
        else:
            replica.extra.setdefault("links", {})[link] = port
        return "127.0.0.1", port

    def source_node(self, host: str | None, port: int | None, nodes: list[NodeInfo]) -> str | None:
        """A replica's source is its link relay: the node is where that relay forwards to."""
        relayed = next((n.name for n in nodes if port and n.extra.get("relay_port") == port), None) or \
            next((link for n in nodes for link, p in (n.extra.get("links") or {}).items() if port and p == port),
                 None) or (relay.named_by_port(self.home, port) if port else None)
        if relayed is not None:
            target = relay.target_of(self.home, relayed)
            if target is not None:
                host, port = target
        return super().source_node(host, port, nodes)

    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        return {"unix_socket": node.socket}

    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        return [self.program("client"), f"--defaults-file={credentials}", f"--socket={node.socket}",
                f"--prompt={node.name} [\\d]> "]
