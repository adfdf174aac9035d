"""The engine contract: what every place that runs servers (local processes, Compose, existing servers)
must provide. The cluster and everything above it talk to servers only through this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotSupported

Say = Callable[[str], None]

RUNNING, STOPPED, PAUSED, UNREACHABLE = "running", "stopped", "paused", "unreachable"


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


class Engine(ABC):
    """Lifecycle and faults of server processes. Methods take a NodeInfo; they never decide verdicts."""

    name = "abstract"

    def __init__(self, home: Path, say: Say | None = None) -> None:
        self.home = home
        self.say: Say = say or (lambda _msg: None)

    # lifecycle
    @abstractmethod
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        """Prepare data dirs and configs for the nodes (nothing started)."""

    @abstractmethod
    def start(self, node: NodeInfo) -> None:
        """Start the server detached; return at once (see wait_ready)."""

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

    def source_address(self, primary: NodeInfo, replica: NodeInfo) -> tuple[str, int]:
        """Where ``replica`` reaches ``primary`` for replication."""
        return primary.host, primary.port

    def pid(self, node: NodeInfo) -> int | None:
        return None

    def log_tail(self, node: NodeInfo, lines: int = 15) -> list[str]:
        if not node.errlog:
            return []
        try:
            with open(node.errlog, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                data = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line for line in data.splitlines() if line.strip()][-lines:]

    # faults (engines that cannot do one raise NotSupported)
    def kill(self, node: NodeInfo) -> None:
        raise NotSupported(f"the {self.name} engine cannot kill a node", node=node.name)

    def pause(self, node: NodeInfo) -> None:
        raise NotSupported(f"the {self.name} engine cannot pause a node", node=node.name)

    def resume(self, node: NodeInfo) -> None:
        raise NotSupported(f"the {self.name} engine cannot resume a node", node=node.name)
