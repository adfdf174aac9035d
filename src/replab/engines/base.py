"""The engine contract: what every place that runs servers (local processes, Compose, existing servers)
must provide. The cluster and everything above it talk to servers only through this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import NotSupported
from ..servers.catalogue import find_program
from ..servers.process import log_tail

if TYPE_CHECKING:
    from ..core.config import ClusterSpec
    from ..servers.flavor import Flavor

Say = Callable[[str], None]

RUNNING, STOPPED, PAUSED, UNREACHABLE = "running", "stopped", "paused", "unreachable"


def bring_back(name: str, state: str) -> str:
    """The command that brings a node in ``state`` back: a paused one is resumed, not started."""
    return f"replab resume {name}" if state == PAUSED else f"replab start {name}"


@dataclass
class NodeInfo:
    """One server of the cluster, as persisted in cluster.json."""

    name: str
    role: str  # "primary" | "replica"
    server_id: int
    host: str
    port: int
    dir: str = ""
    datadir: str = ""
    socket: str = ""
    pidfile: str = ""
    cnf: str = ""
    errlog: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class BuildPlan:
    """What an engine decided before anything is created: the dialect, the nodes and its own settings.

    ``options`` is persisted in cluster.json (``engine_options``) and handed back to ``from_state``;
    ``credentials`` are extra option-file groups for credentials.cnf (mode 0600), e.g. per-node logins;
    ``admin``/``app`` replace the random root and application logins when the servers already exist.
    """

    flavor: Flavor
    nodes: list[NodeInfo]
    server_binary: str | None = None
    version_exact: bool = True  # False: refine the flavor from SELECT VERSION() once the servers answer
    options: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    admin: tuple[str, str] | None = None
    app: tuple[str, str] | None = None
    server: dict[str, Any] = field(default_factory=dict)  # the catalogue entry (servers.Server) it runs


_WHAT = {"shape": "shape a link (delay, jitter, rate)", "crash": "crash a host (kill it and drop what its links "
         "had not delivered)", "partition-one-way": "cut a link one way only"}


def _engines_that(capability: str) -> str:
    """The registered engines (subclasses of Engine) declaring ``capability``, for a refusal's hint."""
    names = sorted({cls.name for cls in _subclasses(Engine)  # type: ignore[type-abstract]
                    if capability in cls.capabilities})
    return ", ".join(f"--engine {n}" for n in names) or "none does yet"


def _subclasses(cls: type[Engine]) -> list[type[Engine]]:
    out: list[type[Engine]] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


class Engine(ABC):
    """Lifecycle and faults of server processes. Methods take a NodeInfo; they never decide verdicts.

    ``capabilities`` declares the faults and operations the engine supports (kill, stop, pause, partition,
    snapshot, binlog); callers check ``require()`` before changing anything.
    """

    name = "abstract"
    capabilities: frozenset[str] = frozenset()
    owns_servers = True  # False: replab did not start these servers, so `down` never stops them
    # True: destroy(keep_data=False) ends the servers itself, at once (their data is deleted right after, so
    # a clean shutdown would only write what is about to be removed); `down` then skips the clean stops
    discards_running = False
    secure_fresh_nodes = True  # fresh servers have a passwordless root@localhost that replab locks down
    client_host = "127.%"  # host part of the accounts replab creates (replication and application users)
    reset_fresh_replicas = False  # empty a new replica's binlog/GTID state before attaching it
    can_hold_replication = False  # start() honours extra_args (e.g. skip the replica threads once)

    def member_network(self, nodes: list[NodeInfo]) -> Any:
        """Give group/Galera members a network of their own on which they can be cut off from each other
        (engines/membernet.py): sets each node's ``host`` to its address there and returns the MemberNet,
        or None when this engine has none (members then share one address; no partitions between them).
        Call it after the ports are chosen, before the members' options are rendered."""
        return None

    def __init__(self, home: Path, say: Say | None = None) -> None:
        self.home = home
        self.say: Say = say or (lambda _msg: None)
        self.options: dict[str, Any] = {}

    @classmethod
    def from_spec(cls, home: Path, say: Say | None, spec: ClusterSpec) -> Engine:
        """The engine for building a new cluster from ``spec``."""
        return cls(home, say)

    @classmethod
    def from_state(cls, home: Path, say: Say | None, state: dict[str, Any]) -> Engine:
        """The engine of an existing cluster, from its cluster.json."""
        engine = cls(home, say)
        engine.options = dict(state.get("engine_options") or {})
        return engine

    def prepare(self, spec: ClusterSpec) -> BuildPlan:
        """Check that this engine can build ``spec`` here (fail fast) and decide flavor, nodes and ports."""
        raise NotSupported(f"the {self.name} engine cannot build clusters")

    def initial_login(self, node: NodeInfo, admin_password: str) -> tuple[str, str]:
        """The login that works on a freshly started node (before replab secured it)."""
        return "root", ""

    def node_login(self, node: NodeInfo) -> tuple[str, str] | None:
        """A per-node admin login overriding the cluster's, or None."""
        return None

    def start_all(self, nodes: list[NodeInfo]) -> None:
        """Start every node of a new cluster (engines that start them together override this)."""
        for node in nodes:
            self.start(node)

    # lifecycle
    @abstractmethod
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        """Prepare data dirs and configs for the nodes (nothing started)."""

    @abstractmethod
    def start(self, node: NodeInfo, extra_args: list[str] | None = None) -> None:
        """Start the server detached; return at once (see wait_ready). ``extra_args``: server options for
        this start only (engines that cannot pass them set ``can_hold_replication = False``)."""

    @abstractmethod
    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float) -> None:
        """Wait until the process is alive and ``probe`` (a SELECT 1) succeeds; fail fast if it dies."""

    @abstractmethod
    def stop(self, node: NodeInfo, timeout: float = 30.0) -> None:
        """Clean shutdown, then TERM, then KILL, each with a timeout."""

    @abstractmethod
    def state(self, node: NodeInfo) -> str:
        """running | stopped | paused (as far as the engine can tell, without SQL)."""

    @abstractmethod
    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        """Stop everything and remove what create() made (unless keep_data)."""

    @abstractmethod
    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        """Keyword arguments for db.connect (socket or host/port)."""

    @abstractmethod
    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        """The interactive client command for ``replab connect`` (credentials from an option file)."""

    def program(self, tool: str) -> str:
        """A program of the cluster's server build on this machine: client, dump, binlog, backup.

        Engines whose servers run elsewhere use this machine's client programs."""
        names = {"client": ["mariadb", "mysql"], "dump": ["mariadb-dump", "mysqldump"],
                 "binlog": ["mariadb-binlog", "mysqlbinlog"], "backup": ["mariadb-backup"]}.get(tool, [tool])
        found = find_program(names)
        if not found:
            raise NotSupported(f"{' or '.join(names)} is not installed on this machine",
                               hint="apt-get install mariadb-client")
        return found

    def source_address(self, primary: NodeInfo, replica: NodeInfo, link: str | None = None) -> tuple[str, int]:
        """Where ``replica`` reaches ``primary`` (its source) for replication; ``link`` names the edge when
        the replica has several sources (see topologies.Edge.link)."""
        return primary.host, primary.port

    def pid(self, node: NodeInfo) -> int | None:
        return None

    def source_node(self, host: str | None, port: int | None, nodes: list[NodeInfo]) -> str | None:
        """The node a replica's configured source address reaches (see ``source_address``), or None."""
        return next((n.name for n in nodes if n.port == port and n.host == host), None)

    def set_options(self, node: NodeInfo, options: dict[str, str | None]) -> None:
        """Persist server options of a node across restarts (None removes one). Engines that do not own
        the servers' configuration keep only what was set at run time."""
        return None

    def log_tail(self, node: NodeInfo, lines: int = 15) -> list[str]:
        return log_tail(node.errlog, lines)

    def require(self, capability: str, node: str | None = None) -> None:
        """Refuse, before anything changes, an operation this engine does not support."""
        if capability not in self.capabilities:
            can = ", ".join(sorted(self.capabilities)) or "none"
            what = _WHAT.get(capability, f"{capability} a node")
            raise NotSupported(f"the {self.name} engine cannot {what} (it can: {can})", node=node,
                               hint=f"use an engine that can: {_engines_that(capability)}")

    def tool_argv(self, tool: str, node: NodeInfo, credentials: Path) -> list[str]:
        """The command that runs a client tool (client, dump, binlog) against ``node``, with the login from
        the 0600 option file ``credentials``: never a password on the command line. Further options follow."""
        argv = [self.program(tool), f"--defaults-file={credentials}"]
        params = self.connect_params(node)
        if params.get("unix_socket"):
            return [*argv, f"--socket={params['unix_socket']}"]
        return [*argv, f"--host={params['host']}", f"--port={params['port']}", "--protocol=TCP"]

    # faults: callers check require() first; an engine that cannot do one raises NotSupported
    def kill(self, node: NodeInfo) -> str:
        """Kill the node's server without a clean shutdown; return how, in a few words."""
        raise NotSupported(f"the {self.name} engine cannot kill a node", node=node.name)

    def pause(self, node: NodeInfo) -> str:
        """Freeze the node's server (it keeps its connections); return how, in a few words."""
        raise NotSupported(f"the {self.name} engine cannot pause a node", node=node.name)

    def resume(self, node: NodeInfo) -> None:
        raise NotSupported(f"the {self.name} engine cannot resume a node", node=node.name)

    def partitioned(self, nodes: list[NodeInfo]) -> list[str]:
        """The nodes cut off by ``partition`` now (none for an engine that cannot partition)."""
        return []

    def partition(self, node: NodeInfo, nodes: list[NodeInfo], direction: str | None = None) -> str:
        """Cut ``node`` off from the other ``nodes`` (it keeps running); return what was cut, in words.
        ``direction`` (``to-replica``/``to-primary``) cuts one way only, where the engine declares
        ``partition-one-way``. Raises NodeStateError, before changing anything, when it is already cut off."""
        raise NotSupported(f"the {self.name} engine cannot cut a node off the network", node=node.name)

    # links: each replica's link to its source, with its state (cut one way or both, shaped)
    def links(self, nodes: list[NodeInfo]) -> list[str]:
        """The replicas whose link to their source this engine can cut or shape (by replica name)."""
        return []

    def link_state(self, node: NodeInfo) -> dict[str, Any] | None:
        """``node``'s link as the engine applies it now: ``{"cut": [directions], "conditions": {direction:
        {delay_ms, jitter_ms, rate_bps}}, "mechanism": words}``; None when it has no link of its own."""
        return None

    def link_ports(self, node: NodeInfo) -> list[int]:
        """The client ports ``node``'s link uses at its source's end now (what the source's processlist shows
        for the replica's connections); empty when the engine cannot tell."""
        return []

    def shape(self, node: NodeInfo, conditions: dict[str, dict[str, float]]) -> str:
        """Give ``node``'s link these conditions per direction (a direction left out is plain); return the
        mechanism, in a few words. Engines that can declare ``shape``."""
        raise NotSupported(f"the {self.name} engine cannot shape a link", node=node.name)

    def check_shape(self, conditions: dict[str, dict[str, float]]) -> None:
        """Refuse, before anything changes, conditions this engine cannot apply here (NotSupported)."""
        return None

    def crash(self, node: NodeInfo, nodes: list[NodeInfo]) -> str:
        """The node's host dies: its server is killed and nothing it had sent but the links had not delivered
        arrives. Engines that can declare ``crash``; return what was done, in words."""
        raise NotSupported(f"the {self.name} engine cannot crash a host", node=node.name)

    # edges of shapes other than the star: each named link (topologies.Edge.link), cut or shaped on its own
    def edge_link_state(self, link: str) -> dict[str, Any] | None:
        """The named link as the engine applies it now (as ``link_state``); None when it has no such link."""
        return None

    def cut_link(self, link: str, direction: str | None = None) -> None:
        """Cut the named link both ways, or one (``to-replica``/``to-primary``), on top of what is cut."""
        raise NotSupported(f"the {self.name} engine cannot cut a link")

    def open_link(self, link: str) -> None:
        """Undo ``cut_link``: the named link carries traffic both ways again."""
        raise NotSupported(f"the {self.name} engine cannot reconnect a link")

    def shape_link(self, link: str, conditions: dict[str, dict[str, float]]) -> str:
        """Give the named link these conditions per direction (as ``shape``); return the mechanism."""
        raise NotSupported(f"the {self.name} engine cannot shape a link")

    def sever_link(self, link: str, side: str) -> int:
        """A host at one end of the named link died (``side``: ``primary``, the source's end, or ``replica``):
        its connections are reset and what the link held from it is dropped; return how many bytes."""
        raise NotSupported(f"the {self.name} engine cannot crash a host")

    def heal(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[str]:
        """Undo ``partition``; return the names of the nodes whose links came back. NodeStateError when
        ``node`` is not cut off."""
        raise NotSupported(f"the {self.name} engine cannot reconnect a node", node=node.name)
