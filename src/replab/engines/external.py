"""The external engine: servers that already exist, described by a ``replab.toml`` inventory.

replab never starts or stops these servers on its own: ``down`` forgets the cluster and leaves them
running. Faults run the commands the inventory gives per node (``kill = "ssh db2 sudo systemctl kill
mysqld"``), split with shlex and run without a shell; a fault without a command is refused.

Modes: ``attach`` (replab creates its accounts and points each replica at the primary) and ``adopt``
(replab reads the replication that is there and checks each replica replicates from the named primary).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import ClusterSpec
from ..core.errors import ConfigError, NodeStateError, NotSupported, ReplabError, SqlError
from ..servers import db
from ..servers.flavor import Flavor, flavor_from_version_string
from .base import PAUSED, RUNNING, STOPPED, BuildPlan, Engine, NodeInfo, Say

MODES = ("attach", "adopt")
FAULTS = ("kill", "stop", "start", "pause", "resume", "partition", "heal")
NODE_KEYS = {"name", "host", "port", "role", "user", "password_file", "password_env", "replication_host",
             *FAULTS}
DEFAULT_KEYS = {"mode", "user", "password_file", "password_env", "repl_host"}
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
ERR_ACCESS_DENIED, ERR_CANNOT_CONNECT = 1045, 2003
INVENTORY_HINT = "fix the [[nodes]] entries of replab.toml (see docs/engines.md)"


@dataclass
class InventoryNode:
    """One ``[[nodes]]`` entry, validated."""

    name: str
    host: str
    port: int
    role: str
    user: str
    password: str = field(repr=False)
    replication_host: str
    faults: dict[str, str]


def _password(entry: dict[str, Any], defaults: dict[str, Any], where: str, errors: list[str]) -> str:
    """The password from an option file (``password=`` in [client]) or an environment variable; never argv."""
    pfile = entry.get("password_file", defaults.get("password_file") if "password_env" not in entry else None)
    penv = entry.get("password_env", defaults.get("password_env") if "password_file" not in entry else None)
    if pfile:
        path = Path(str(pfile)).expanduser()
        try:
            groups = db.read_option_file(path)
        except ReplabError:
            errors.append(f"{where}: cannot read password_file {path}")
            return ""
        for group in ("client", "mysql", "replab"):
            if "password" in groups.get(group, {}):
                return groups[group]["password"]
        errors.append(f"{where}: {path} has no password= line in a [client] section")
        return ""
    if penv:
        value = os.environ.get(str(penv))
        if value is None:
            errors.append(f"{where}: environment variable {penv} (password_env) is not set")
            return ""
        return value
    errors.append(f"{where}: no password source: set password_file (an option file) or password_env "
                  "(an environment variable name); passwords are never written into replab.toml")
    return ""


def parse_inventory(data: dict[str, Any]) -> tuple[str, str, list[InventoryNode]]:
    """(mode, repl_host, nodes) from the ``[external]`` table and ``[[nodes]]`` entries; every problem at once."""
    errors: list[str] = []
    defaults = data.get("external", {})
    if not isinstance(defaults, dict):
        raise ConfigError("[external] must be a table", hint=INVENTORY_HINT)
    errors += [f"unknown setting [external].{k}" for k in defaults if k not in DEFAULT_KEYS]
    mode = str(defaults.get("mode", "attach"))
    if mode not in MODES:
        errors.append(f"[external].mode must be attach or adopt (got {mode!r})")
    entries = data.get("nodes")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("the external engine needs an inventory: [[nodes]] entries in replab.toml",
                          hint="give each server a name, host, port and role (primary or replica)")
    nodes: list[InventoryNode] = []
    for i, entry in enumerate(entries):
        where = f"[[nodes]] #{i + 1}"
        if not isinstance(entry, dict):
            errors.append(f"{where} is not a table")
            continue
        name = str(entry.get("name", ""))
        where = f"node {name}" if name else where
        errors += [f"{where}: unknown key {k!r}" for k in entry if k not in NODE_KEYS]
        if not _NODE_NAME.match(name):
            errors.append(f"{where}: name must be letters, digits, '-', '_' or '.' (got {name!r})")
        host = str(entry.get("host", ""))
        if not host:
            errors.append(f"{where}: host is missing")
        port = entry.get("port", 3306)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            errors.append(f"{where}: port must be 1-65535 (got {port!r})")
            port = 0
        role = entry.get("role")
        if role not in ("primary", "replica"):
            errors.append(f"{where}: role must be primary or replica (got {role!r})")
        faults = {k: str(entry[k]) for k in FAULTS if k in entry}
        for action, command in faults.items():
            if not shlex.split(command):
                errors.append(f"{where}: the {action} command is empty")
        nodes.append(InventoryNode(name=name, host=host, port=port, role=str(role),
                                   user=str(entry.get("user", defaults.get("user", "root"))),
                                   password=_password(entry, defaults, where, errors),
                                   replication_host=str(entry.get("replication_host", host)), faults=faults))
    names = [n.name for n in nodes]
    errors += [f"node name {n!r} appears twice" for n in sorted({n for n in names if names.count(n) > 1})]
    primaries = [n.name for n in nodes if n.role == "primary"]
    if len(primaries) > 1:
        errors.append(f"the inventory has {len(primaries)} primaries ({', '.join(primaries)}): name exactly one")
    elif not primaries and nodes:
        errors.append("the inventory has no primary: give one node role = \"primary\"")
    if len(nodes) < 2:
        errors.append("the inventory needs a primary and at least one replica")
    if errors:
        raise ConfigError(errors, hint=INVENTORY_HINT)
    nodes.sort(key=lambda n: n.role != "primary")  # primary first, the rest in inventory order
    return mode, str(defaults.get("repl_host", "%")), nodes


def _group(name: str) -> str:
    return f"client_replab_{name}"


class ExternalEngine(Engine):
    """Servers that already exist; faults only through the inventory's commands."""

    name = "external"
    owns_servers = False
    secure_fresh_nodes = False

    def __init__(self, home: Path, say: Say | None = None) -> None:
        super().__init__(home, say)
        self._logins: dict[str, dict[str, str]] | None = None

    # --- planning --------------------------------------------------------------------------------
    def prepare(self, spec: ClusterSpec) -> BuildPlan:
        """Validate the inventory, connect to every server, check flavors and server ids."""
        mode, repl_host, inventory = parse_inventory(spec.extra)
        flavors: dict[str, Flavor] = {}
        nodes: list[NodeInfo] = []
        for inv in inventory:
            conn = self._connect(inv)
            with conn:
                version = str(db.scalar(conn, "SELECT VERSION()"))
                server_id = int(db.scalar(conn, "SELECT @@GLOBAL.server_id") or 0)
            flavors[inv.name] = flavor_from_version_string(version)
            nodes.append(NodeInfo(name=inv.name, role=inv.role, server_id=server_id, host=inv.host, port=inv.port,
                                  extra={"faults": inv.faults, "replication_host": inv.replication_host,
                                         "user": inv.user}))
        kinds = {f.name for f in flavors.values()}
        if len(kinds) > 1:
            raise ConfigError(f"the inventory mixes flavors: {', '.join(f'{n}={f.name}' for n, f in flavors.items())}",
                              hint="replicate MariaDB to MariaDB and MySQL to MySQL")
        ids = [n.server_id for n in nodes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            who = ", ".join(n.name for n in nodes if n.server_id in dupes)
            raise ConfigError(f"{who} share server_id {dupes[0]}: replication needs a distinct server_id per server",
                              hint="set server_id in each server's configuration and restart it")
        primary = inventory[0]
        credentials = {_group(i.name): {"user": i.user, "password": i.password, "host": i.host, "port": str(i.port),
                                        "protocol": "TCP"} for i in inventory}
        self.say(f"inventory: {len(nodes)} servers answering, mode {mode}, "
                 f"primary {primary.name} ({primary.host}:{primary.port})")
        return BuildPlan(flavor=flavors[primary.name], nodes=nodes, options={"mode": mode, "repl_host": repl_host},
                         credentials=credentials, admin=(primary.user, primary.password),
                         app=(primary.user, primary.password) if mode == "adopt" else None)

    def _connect(self, inv: InventoryNode) -> Any:
        try:
            return db.connect(host=inv.host, port=inv.port, user=inv.user, password=inv.password, timeout=3,
                              node=inv.name)
        except SqlError as exc:
            if exc.errno == ERR_ACCESS_DENIED:
                raise ConfigError(f"{inv.name}: access denied for user {inv.user!r} at {inv.host}:{inv.port}",
                                  hint="check user and password_file/password_env of that node") from None
            raise NodeStateError(f"{inv.name}: cannot reach {inv.host}:{inv.port} ({exc.message})",
                                 node=inv.name,
                                 hint="check host and port in replab.toml and that the server runs") from None

    def source_address(self, primary: NodeInfo, replica: NodeInfo, link: str | None = None) -> tuple[str, int]:
        """Where replicas reach the primary: its ``replication_host`` when the inventory names one."""
        return str(primary.extra.get("replication_host") or primary.host), primary.port

    # --- lifecycle ---------------------------------------------------------------------------------
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        """Nothing to create: the servers exist."""

    def start(self, node: NodeInfo, extra_args: list[str] | None = None) -> None:
        self._run_fault(node, "start")

    def start_all(self, nodes: list[NodeInfo]) -> None:
        """Nothing to start: the servers exist."""

    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                probe()
                return
            except ReplabError as exc:
                last = exc
            time.sleep(0.1)
        raise NodeStateError(f"{node.name}: not answering after {timeout:.0f}s ({last})", node=node.name)

    def stop(self, node: NodeInfo, timeout: float = 30.0, shutdown: Callable[[], None] | None = None) -> None:
        self._run_fault(node, "stop")

    def state(self, node: NodeInfo) -> str:
        """running when the server sends its protocol greeting, paused when it accepts the TCP connection
        but says nothing (a frozen process: the kernel still completes the handshake), else stopped."""
        try:
            with socket.create_connection((node.host, node.port), timeout=1) as sock:
                sock.settimeout(1.5)
                try:
                    return RUNNING if sock.recv(4) else STOPPED
                except TimeoutError:
                    return PAUSED
        except OSError:
            return STOPPED

    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        """Nothing to remove on the servers; replab's own state is removed by the cluster."""

    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        return {"host": node.host, "port": node.port}

    def node_login(self, node: NodeInfo) -> tuple[str, str] | None:
        if self._logins is None:
            path = self.home / "credentials.cnf"
            self._logins = db.read_option_file(path) if path.exists() else {}
        group = self._logins.get(_group(node.name))
        return (group.get("user", ""), group.get("password", "")) if group else None

    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        # [client_replab_<node>] in the credentials file holds that node's login, host and port
        return [self.program("client"), f"--defaults-extra-file={credentials}",
                f"--defaults-group-suffix=_replab_{node.name}",
                f"--prompt={node.name} [\\d]> "]

    # --- faults --------------------------------------------------------------------------------------
    def require(self, capability: str, node: str | None = None) -> None:
        """Faults are the inventory's commands, per node: ``_run_fault`` refuses a missing one before running
        anything. Clean stops are never replab's to make here."""
        if capability in ("kill", "stop", "pause", "partition"):
            return
        super().require(capability, node)

    def tool_argv(self, tool: str, node: NodeInfo, credentials: Path) -> list[str]:
        # [client_replab_<node>] in the credentials file holds that node's login, host and port
        return [self.program(tool), f"--defaults-extra-file={credentials}",
                f"--defaults-group-suffix=_replab_{node.name}"]

    def kill(self, node: NodeInfo) -> str:
        self._run_fault(node, "kill")
        return "the inventory's kill command"

    def pause(self, node: NodeInfo) -> str:
        self._run_fault(node, "pause")
        return "the inventory's pause command"

    def resume(self, node: NodeInfo) -> None:
        self._run_fault(node, "resume")

    def partition(self, node: NodeInfo, nodes: list[NodeInfo], direction: str | None = None) -> str:
        self._run_fault(node, "partition")
        return "the inventory's partition command ran"

    def heal(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[str]:
        self._run_fault(node, "heal")
        return [node.name]

    def _run_fault(self, node: NodeInfo, action: str) -> None:
        command = (node.extra.get("faults") or {}).get(action)
        if not command:
            raise NotSupported(f"the external engine cannot {action} {node.name}: replab.toml gives no "
                               f"{action} command for it", node=node.name,
                               hint=f'add {action} = "..." (e.g. "ssh db2 sudo systemctl {action} mysqld") to '
                                    "that [[nodes]] entry")
        argv = shlex.split(command)
        self.say(f"{node.name}: {action}: running {argv[0]} ({len(argv) - 1} args)")
        try:
            proc = subprocess.run(argv, shell=False, capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReplabError(f"{node.name}: the {action} command failed to run: {exc}", node=node.name,
                              hint="check the command in replab.toml") from None
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise ReplabError(f"{node.name}: the {action} command exited with {proc.returncode}", node=node.name,
                              log_tail=tail, hint="check the command in replab.toml")


def same_endpoint(a: tuple[str, int], b: tuple[str, int]) -> bool:
    if a[1] != b[1]:
        return False
    if a[0] == b[0]:
        return True
    try:
        return socket.gethostbyname(a[0]) == socket.gethostbyname(b[0])
    except OSError:
        return False
