"""The Docker Compose engine: one container per node from a ``mysql:*`` or ``mariadb:*`` image.

``render_project`` writes ``docker-compose.yml`` (JSON-formatted YAML, which Compose reads), an env file
with the root password (mode 0600, referenced by ``env_file:``; never on a command line) and one config
directory per node (dirs 0755, files 0644: MySQL ignores a world-writable config file). Servers publish
their port on loopback only (``127.0.0.1:PORT:3306``); replicas reach the primary by service name on the
project's network. Faults: ``docker kill``, ``stop/start``, ``pause/unpause``, ``network disconnect/connect``.
The client tools run inside the containers (``docker exec``) with the login from a 0600 option file mounted
read-only at ``/etc/replab/client.cnf``. Every container, network and volume carries the label
``replab.project``; nothing without it is ever touched. ``DOCKER_HOST`` at ``up`` names the engine for good.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.config import ClusterSpec
from ..core.errors import (
    ConfigError,
    NodeStartError,
    NodeStateError,
    NotSupported,
    ReplabError,
    ReplabTimeout,
    StateError,
)
from ..core.state import check_ports
from ..servers import db
from ..servers.catalogue import TOOLS
from ..servers.flavor import Flavor, MariaDBFlavor, MySQLFlavor
from . import dockerctl, netns
from .base import PAUSED, RUNNING, STOPPED, BuildPlan, Engine, NodeInfo, Say
from .dockerctl import LABEL

DEFAULT_IMAGE = "mysql:8.0"
COMPOSE_FILE, ENV_FILE, CONF_DIR, CLIENT_FILE = "docker-compose.yml", "replab.env", "conf", "client.cnf"
CLIENT_CNF = "/etc/replab/client.cnf"  # where the 0600 client option file is mounted in each container
CONTAINER_PORT = 3306
_IMAGE = re.compile(r"^(?:docker\.io/)?(?:library/|replab/)?(?P<repo>mysql|mariadb|mysql/mysql-server|"
                    r"percona/percona-server|percona)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")
_TAG_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")
IMAGE_HINT = ("use an official image such as mysql:8.4 or mariadb:11.4, or one built from the server catalogue "
              "(replab image build mysql-9.7 makes replab/mysql:9.7)")


def flavor_from_image(image: str) -> Flavor:
    """The flavor (and, as far as the tag tells, the version) of a server image; ConfigError if unknown."""
    match = _IMAGE.match(image.strip())
    if not match:
        raise ConfigError(f"unknown image {image!r}: replab runs MySQL or MariaDB server images", hint=IMAGE_HINT)
    repo, tag = match["repo"], match["tag"] or "latest"
    numbers = _TAG_VERSION.match(tag)
    if numbers:
        version = tuple(int(x) for x in numbers.groups() if x is not None)
    elif tag in ("latest", "lts", "innovation"):
        version = (11, 4) if repo == "mariadb" else (8, 4)
    else:
        raise ConfigError(f"unknown image tag {image!r}: cannot tell the server version", hint=IMAGE_HINT)
    if repo == "mariadb":
        if version < (10, 5):
            raise ConfigError(f"image {image!r} is too old: MariaDB 10.5 or later", hint=IMAGE_HINT)
        return MariaDBFlavor(f"{'.'.join(map(str, version))}-MariaDB (image {image})", version)
    if version < (5, 7):
        raise ConfigError(f"image {image!r} is too old: MySQL 5.7 or later", hint=IMAGE_HINT)
    return MySQLFlavor(f"{'.'.join(map(str, version))} (image {image})", version)


def project_name(home: Path) -> str:
    """A Compose project name unique to this cluster home."""
    return "replab-" + hashlib.sha1(str(home.absolute()).encode()).hexdigest()[:8]


def server_config(node: NodeInfo, flavor: Flavor, binlog_format: str, extra: dict[str, Any] | None = None) -> str:
    """The per-node config file (mounted read-only into /etc/mysql/conf.d)."""
    opts: dict[str, str] = {
        "server_id": str(node.server_id),
        "log_bin": "mysql-bin",
        "relay_log": "relay-bin",
        "binlog_format": binlog_format,
        "log_slave_updates": "1",
        "sync_binlog": "1",
        "innodb_flush_log_at_trx_commit": "1",
        "relay_log_recovery": "1",
        "skip_name_resolve": "1",
        "slave_net_timeout": "10",
        "character_set_server": "utf8mb4",
        "report_host": node.name,
        "report_port": str(CONTAINER_PORT),
    }
    opts = flavor.adapt_server_options(opts)
    if node.role == "replica":
        opts["read_only"] = "1"
    opts.update({k: str(v) for k, v in (extra or {}).items()})
    body = "\n".join(f"{k}={v}" for k, v in opts.items())
    return f"# written by replab for {node.name}\n[{flavor.server_section()}]\n{body}\n"


def network_name(project: str) -> str:
    return f"{project}-net"


def compose_document(nodes: list[NodeInfo], image: str, flavor: Flavor, project: str) -> dict[str, Any]:
    """The docker-compose.yml content: services, one network, one data volume per node, health checks."""
    admin = "mariadb-admin" if flavor.name == "mariadb" else "mysqladmin"
    services: dict[str, Any] = {}
    for node in nodes:
        services[node.name] = {
            "image": image,
            "container_name": f"{project}-{node.name}",
            "hostname": node.name,
            "env_file": [ENV_FILE],
            "ports": [f"{node.host}:{node.port}:{CONTAINER_PORT}"],
            "volumes": [f"./{CONF_DIR}/{node.name}:/etc/mysql/conf.d:ro", f"{node.name}-data:/var/lib/mysql",
                        f"./{CLIENT_FILE}:{CLIENT_CNF}:ro"],
            "networks": {"replab": {"aliases": [node.name]}},
            # TCP ping: the image's init-time server runs without networking, so this turns healthy only
            # once the real server is up. It succeeds without credentials (access denied still means alive).
            "healthcheck": {"test": ["CMD", admin, "ping", "-h", "127.0.0.1", "--silent"], "interval": "2s",
                            "timeout": "5s", "retries": 90, "start_period": "120s"},
            "labels": {"replab.node": node.name, "replab.role": node.role, LABEL: project},
            "restart": "no",
        }
    return {
        "name": project,
        "services": services,
        "networks": {"replab": {"name": network_name(project), "driver": "bridge", "labels": {LABEL: project}}},
        "volumes": {f"{n.name}-data": {"labels": {LABEL: project, "replab.node": n.name}} for n in nodes},
    }


def write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` with mode 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def render_project(directory: Path, nodes: list[NodeInfo], image: str, flavor: Flavor, project: str,
                   binlog_format: str = "ROW", admin_password: str | None = None,
                   server_options: dict[str, Any] | None = None) -> list[Path]:
    """Write the Compose project into ``directory``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    conf = directory / CONF_DIR
    conf.mkdir(exist_ok=True)
    os.chmod(conf, 0o755)
    written = []
    for node in nodes:
        ndir = conf / node.name
        ndir.mkdir(exist_ok=True)
        os.chmod(ndir, 0o755)
        cnf = ndir / "replab.cnf"
        cnf.write_text(server_config(node, flavor, binlog_format, server_options))
        os.chmod(cnf, 0o644)  # MySQL ignores world-writable config files
        written.append(cnf)
    var = "MARIADB_ROOT_PASSWORD" if flavor.name == "mariadb" else "MYSQL_ROOT_PASSWORD"
    password = admin_password or secrets.token_urlsafe(18)
    env = directory / ENV_FILE
    write_private(env, f"{var}={password}\n")
    # the tools run inside the containers (docker exec) read the login from here, never from argv
    db.write_option_file(directory / CLIENT_FILE, {"client": {"user": "root", "password": password}})
    compose = directory / COMPOSE_FILE
    doc = compose_document(nodes, image, flavor, project)
    compose.write_text("# written by replab; JSON is valid YAML, docker compose reads it as is\n"
                       + json.dumps(doc, indent=2) + "\n")
    os.chmod(compose, 0o644)
    return [compose, env, directory / CLIENT_FILE, *written]


def plan_nodes(names: list[str], ports: list[int], host: str = "127.0.0.1") -> list[NodeInfo]:
    return [NodeInfo(name=name, role="primary" if i == 0 else "replica", server_id=i + 1, host=host, port=ports[i])
            for i, name in enumerate(names)]


def image_flavor(image: str, host: str | None = None) -> Flavor:
    """The flavor of ``image``: from its name, or from the labels of a replab-built image."""
    try:
        return flavor_from_image(image)
    except ConfigError:
        proc = dockerctl.run(["image", "inspect", "--format",
                              '{{index .Config.Labels "replab.flavor"}} {{index .Config.Labels "replab.series"}}',
                              image], host, check=False, timeout=30)
        parts = proc.stdout.split() if proc.returncode == 0 else []
        if len(parts) == 2 and parts[0] in ("mysql", "mariadb"):
            return flavor_from_image(f"{parts[0]}:{parts[1]}")
        raise


class ComposeEngine(Engine):
    """Servers in containers managed by ``docker compose``; connections over published loopback ports."""

    name = "compose"
    capabilities = frozenset({"kill", "stop", "pause", "partition", "partition-one-way", "shape", "crash",
                              "snapshot", "binlog"})
    secure_fresh_nodes = False  # the image sets the root password from the env file
    client_host = "%"  # connections arrive from the Docker network, not from loopback
    reset_fresh_replicas = True  # the image's init may leave GTIDs of its own on each node

    def __init__(self, home: Path, say: Say | None = None) -> None:
        super().__init__(home, say)

    @classmethod
    def from_state(cls, home: Path, say: Say | None, state: dict[str, Any]) -> ComposeEngine:
        engine = cls(home, say)
        engine.options = dict(state.get("engine_options") or {})
        engine.options.setdefault("flavor", state.get("flavor", "mysql"))
        return engine

    @property
    def directory(self) -> Path:
        return Path(self.options.get("dir") or self.home / "compose")

    @property
    def project(self) -> str:
        return str(self.options.get("project") or project_name(self.home))

    @property
    def host(self) -> str | None:
        """The Docker engine of this cluster (DOCKER_HOST when it was created; None: docker's default)."""
        return self.options.get("docker_host") or None

    def container(self, node: NodeInfo) -> str:
        return f"{self.project}-{node.name}"

    # --- planning ----------------------------------------------------------------------------------
    def prepare(self, spec: ClusterSpec) -> BuildPlan:
        """Check image, Docker, leftovers and ports (fail fast, exit 2, nothing created)."""
        image = spec.image or DEFAULT_IMAGE
        host = os.environ.get("DOCKER_HOST") or None
        named: Flavor | None = None
        try:
            named = flavor_from_image(image)
        except ConfigError:
            if dockerctl.unavailable(host):
                raise  # its name says nothing and there is no engine to ask about its labels
        dockerctl.require_docker(host)
        project = project_name(self.home)
        left = dockerctl.leftovers(project, host)
        if any(left.values()):
            what = "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items() if v)
            raise StateError(f"a compose project left by a crashed run is still on the Docker engine: {project} "
                             f"({what})", hint=f"remove it with: replab --home {self.home} compose clean "
                                               "(only objects labelled replab.project are touched)")
        flavor = named or image_flavor(image, host)  # refuses an image that is not a MySQL/MariaDB server
        self._ensure_image(image, host)
        nodes = plan_nodes(spec.node_names, check_ports(spec), spec.host)
        self.options = {"image": image, "project": project, "dir": str(self.home / "compose"),
                        "docker_host": host or "", "flavor": flavor.name}
        return BuildPlan(flavor=flavor, nodes=nodes, version_exact=False, options=self.options)

    def _ensure_image(self, image: str, host: str | None) -> None:
        """The image must be on the engine, or pullable; else say how to build one from the catalogue."""
        if dockerctl.run(["image", "inspect", image], host, check=False, timeout=30).returncode == 0:
            return
        self.say(f"{image} is not on this Docker engine; pulling it")
        pull = dockerctl.run(["pull", "--quiet", image], host, check=False, timeout=600)
        if pull.returncode != 0:
            lines = (pull.stderr or pull.stdout).strip().splitlines()
            raise ConfigError(f"image {image} is not on this Docker engine and cannot be pulled "
                              f"({lines[-1][:160] if lines else 'docker pull failed'})",
                              hint="build one from the server catalogue: replab image build mysql-9.7 (then "
                                   "--image replab/mysql:9.7), or pull it where a registry is reachable")
        inspect = dockerctl.run(["image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Entrypoint}}",
                                 image], host, check=False, timeout=30)
        if not re.search(r"mysqld|mariadbd|docker-entrypoint|replab-entrypoint", inspect.stdout):
            raise ConfigError(f"image {image} does not start a MySQL or MariaDB server", hint=IMAGE_HINT)

    def initial_login(self, node: NodeInfo, admin_password: str) -> tuple[str, str]:
        return "root", admin_password

    # --- docker --------------------------------------------------------------------------------------
    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> Any:
        return dockerctl.run(list(args), self.host, check=check, timeout=timeout)

    def compose(self, *args: str, check: bool = True) -> Any:
        return self.docker("compose", "-p", self.project, "-f", str(self.directory / COMPOSE_FILE), *args,
                           check=check)

    # --- lifecycle -----------------------------------------------------------------------------------
    def create(self, nodes: list[NodeInfo], settings: dict[str, Any]) -> None:
        for node in nodes:
            node.extra["container"] = self.container(node)
        render_project(self.directory, nodes, self.options.get("image", DEFAULT_IMAGE), settings["flavor"],
                       self.project, settings.get("binlog_format", "ROW"), settings.get("admin_password"),
                       settings.get("server_options"))

    def start_all(self, nodes: list[NodeInfo]) -> None:
        self.say(f"docker compose up -d ({len(nodes)} containers from {self.options.get('image')}, "
                 f"project {self.project})")
        self.compose("up", "-d", "--no-build", "--pull", "never")

    def start(self, node: NodeInfo, extra_args: list[str] | None = None) -> None:
        self.docker("start", self.container(node))
        self._reapply_around(node)  # a new namespace: its link (and those it is the source of) as configured

    def _inspect(self, node: NodeInfo) -> tuple[str, str, int]:
        proc = self.docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}} "
                           "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                           self.container(node), check=False, timeout=30)
        parts = proc.stdout.split() if proc.returncode == 0 else []
        if not parts:
            return "missing", "", 0
        pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return parts[0], (parts[2] if len(parts) > 2 else ""), pid

    def state(self, node: NodeInfo) -> str:
        status, _health, _pid = self._inspect(node)
        return {"running": RUNNING, "paused": PAUSED}.get(status, STOPPED)

    def pid(self, node: NodeInfo) -> int | None:
        status, _health, pid = self._inspect(node)
        return pid if status in ("running", "paused") and pid else None

    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float = 300.0) -> None:
        # the image's initialization server runs without networking, so a probe over the published port
        # succeeds only once the real server is up
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        status = health = ""
        while time.monotonic() < deadline:
            status, health, _pid = self._inspect(node)
            if status in ("exited", "dead", "missing"):
                raise NodeStartError(f"{node.name}: the container is {status}", node=node.name,
                                     log_tail=self.log_tail(node), hint=f"docker logs {self.container(node)}")
            if status == "running":
                try:
                    probe()
                    return
                except ReplabError as exc:
                    last = exc
            time.sleep(0.5)
        raise ReplabTimeout(f"{node.name}: not ready after {timeout:.0f}s (container {status}, health {health or '-'}"
                            f", last error: {last})", node=node.name, log_tail=self.log_tail(node),
                            hint=f"docker logs {self.container(node)}")

    def stop(self, node: NodeInfo, timeout: float = 30.0, shutdown: Callable[[], None] | None = None) -> None:
        self.docker("stop", "-t", str(int(timeout)), self.container(node), timeout=timeout + 60)

    def kill(self, node: NodeInfo) -> str:
        pid = self.pid(node)
        self.docker("kill", self.container(node))
        return f"docker kill of container {self.container(node)}: SIGKILL to its server, host pid {pid}"

    def pause(self, node: NodeInfo) -> str:
        self.docker("pause", self.container(node))
        return f"docker pause of container {self.container(node)}: every process frozen"

    def resume(self, node: NodeInfo) -> None:
        self.docker("unpause", self.container(node))

    # --- the network: each replica's link, in its container's network namespace (see netns.py) ---------
    def _links_dir(self) -> Path:
        return self.directory / "links"

    def _link_conf(self, name: str) -> dict[str, Any]:
        """What replab set on ``name``'s link: its source (a node name), its cuts and its conditions."""
        try:
            return dict(json.loads((self._links_dir() / f"{name}.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _save_link(self, name: str, conf: dict[str, Any]) -> None:
        self._links_dir().mkdir(parents=True, exist_ok=True)
        tmp = self._links_dir() / f"{name}.json.tmp"
        tmp.write_text(json.dumps(conf, sort_keys=True) + "\n")
        os.replace(tmp, self._links_dir() / f"{name}.json")

    def _address(self, name: str) -> str | None:
        """A node's address on the project network now (None when its container is not on it)."""
        proc = self.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", f"{self.project}-{name}",
                           check=False, timeout=30)
        try:
            nets = json.loads(proc.stdout or "{}") if proc.returncode == 0 else {}
        except ValueError:
            return None
        return (nets.get(network_name(self.project)) or {}).get("IPAddress") or None

    def _source_of(self, node: NodeInfo, nodes: list[NodeInfo] | None = None) -> str:
        conf = self._link_conf(node.name)
        if conf.get("source"):
            return str(conf["source"])
        return next((n.name for n in nodes or [] if n.role == "primary"), "mysql-m")

    def _running_pid(self, node: NodeInfo) -> int:
        pid = self.pid(node)
        if not pid or self.state(node) != RUNNING:
            raise NodeStateError(f"{node.name} is {self.state(node)}; its link lives in its running container",
                                 node=node.name, hint=f"replab start {node.name}")
        return pid

    def _apply(self, node: NodeInfo, pid: int | None = None, conf: dict[str, Any] | None = None) -> None:
        """Put ``node``'s link as its configuration says (or ``conf``) into its container's namespace (cuts,
        then rates)."""
        conf = self._link_conf(node.name) if conf is None else conf
        if not conf.get("cut") and not conf.get("conditions") and pid is None:
            return
        pid = pid or self.pid(node)
        if not pid:
            return
        source = (self._address(str(conf.get("source") or "")), CONTAINER_PORT)
        netns.set_cut(pid, source, list(conf.get("cut") or []))
        netns.set_shape(pid, source, dict(conf.get("conditions") or {}))

    def _reapply_around(self, node: NodeInfo) -> None:
        """After a container (re)started: its own link, and the links whose source it is (its address may
        have changed), as configured. Without root there is nothing replab could have set."""
        if netns.unusable() or not self._links_dir().is_dir():
            return
        for conf_file in sorted(self._links_dir().glob("*.json")):
            conf = self._link_conf(conf_file.stem)
            if conf_file.stem == node.name or conf.get("source") == node.name:
                replica = NodeInfo(name=conf_file.stem, role="replica", server_id=0, host="", port=0)
                if self.state(replica) == RUNNING:
                    self._apply(replica)

    def _links(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
        """The replica links a partition of ``node`` cuts: its own, or every replica's for the primary."""
        return [n for n in nodes if n.role == "replica"] if node.role == "primary" else [node]

    def links(self, nodes: list[NodeInfo]) -> list[str]:
        return [n.name for n in nodes if n.role == "replica"]

    def _cut(self, node: NodeInfo) -> list[str]:
        pid = self.pid(node) if self.state(node) == RUNNING else None
        if pid and not netns.unusable():
            return netns.cuts(pid)
        return list(self._link_conf(node.name).get("cut") or [])

    def _connected(self, node: NodeInfo) -> bool:
        proc = self.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", self.container(node), timeout=30)
        return network_name(self.project) in json.loads(proc.stdout or "{}")

    def partitioned(self, nodes: list[NodeInfo]) -> list[str]:
        out = []
        for n in nodes:
            if self.state(n) == STOPPED:
                continue
            if not self._connected(n) or (n.role == "replica" and self._cut(n)):
                out.append(n.name)
        return out

    def partition(self, node: NodeInfo, nodes: list[NodeInfo], direction: str | None = None) -> str:
        netns.require()
        if self.state(node) == STOPPED:
            raise NodeStateError(f"{node.name} is down; a partition needs a running container", node=node.name,
                                 hint=f"replab start {node.name}")
        links = self._links(node, nodes)
        ways = {netns.TO_REPLICA, netns.TO_PRIMARY} if direction is None else {direction}
        if all(ways <= set(self._cut(n)) for n in links):
            how = "" if direction is None else f" {direction}"
            raise NodeStateError(f"{node.name} is already partitioned{how}", node=node.name,
                                 hint=f"replab heal {node.name}")
        if node.role != "primary":
            self._running_pid(node)
        for link in links:  # a replica that is down gets its cut when it starts (see start)
            conf = self._link_conf(link.name)
            conf["source"] = self._source_of(link, nodes)
            conf["cut"] = sorted(set(self._cut(link)) | ways)
            pid = self.pid(link) if self.state(link) == RUNNING else None
            if pid:
                self._apply(link, pid, conf)
            self._save_link(link.name, conf)
        primary = next((n.name for n in nodes if n.role == "primary"), "the primary")
        what = "every replica link" if node.role == "primary" else f"the link {node.name} <-> {primary}"
        where = (f"nft drops in {'each replica' if node.role == 'primary' else node.name}'s network namespace, "
                 f"only packets to and from {primary}:{CONTAINER_PORT}; silent, no reset")
        if direction is None:
            return f"{what} is cut both ways ({where})"
        if direction == netns.TO_REPLICA:
            return (f"{what} is cut toward the replica only ({where}): it hears nothing from {primary}, while "
                    f"{primary} still receives what it sends (requests, acknowledgements)")
        return (f"{what} is cut toward the primary only ({where}): {primary} hears nothing from the replica, "
                "while the replica still receives what the primary sends")

    def heal(self, node: NodeInfo, nodes: list[NodeInfo]) -> list[str]:
        healed = []
        if self.state(node) != STOPPED and not self._connected(node):  # cut off by an older replab
            self.docker("network", "connect", "--alias", node.name, network_name(self.project), self.container(node))
            healed.append(node.name)
        for link in self._links(node, nodes):
            if not self._cut(link):
                continue
            conf = self._link_conf(link.name)
            conf["cut"] = []
            self._save_link(link.name, conf)
            pid = self.pid(link) if self.state(link) == RUNNING else None
            if pid:
                netns.set_cut(pid, (None, CONTAINER_PORT), [])  # deletes table inet replab, nothing else
            healed.append(link.name)
        if not healed:
            raise NodeStateError(f"{node.name} is not partitioned", node=node.name)
        return healed

    def link_state(self, node: NodeInfo) -> dict[str, Any] | None:
        if node.role != "replica":
            return None
        conf = self._link_conf(node.name)
        running = self.state(node) == RUNNING
        conditions = dict(conf.get("conditions") or {})
        mechanism = "nft drops (cuts) in the container's network namespace"
        if conditions:
            mechanism = ("tc htb in the container's network namespace (to-primary: eth0 egress; to-replica: "
                         f"eth0 ingress redirected to ifb {netns.IFB})"
                         + ("; netem for delay" if any(c.get("delay_ms") or c.get("jitter_ms")
                                                       for c in conditions.values()) else "")
                         + "; nft drops (cuts)")
        return {"cut": self._cut(node), "conditions": conditions,
                "mechanism": mechanism if running else "container not running"}

    def link_ports(self, node: NodeInfo) -> list[int]:
        if node.role != "replica" or self.state(node) != RUNNING:
            return []
        pid = self.pid(node)
        source = self._address(self._source_of(node))
        return netns.client_ports(pid, (source, CONTAINER_PORT)) if pid and source else []

    def shape(self, node: NodeInfo, conditions: dict[str, dict[str, float]]) -> str:
        """Rates with tc htb in the replica's namespace, both directions; delay and jitter only with netem."""
        self.check_shape(conditions)
        pid = self._running_pid(node)
        conf = self._link_conf(node.name)
        conf["source"] = self._source_of(node, [])
        conf["conditions"] = {d: {k: v for k, v in c.items() if v} for d, c in conditions.items() if c}
        self._apply(node, pid, conf)
        self._save_link(node.name, conf)
        if not conf["conditions"]:
            return f"removal of replab's qdiscs in {node.name}'s network namespace"
        return (f"tc htb in {node.name}'s network namespace ({netns.TO_PRIMARY}: eth0 egress; {netns.TO_REPLICA}: "
                f"eth0 ingress through ifb {netns.IFB})")

    def check_shape(self, conditions: dict[str, dict[str, float]]) -> None:
        netns.require()
        if any(c.get("delay_ms") or c.get("jitter_ms") for c in conditions.values()):
            why = netns.netem_missing()
            if why:
                raise NotSupported(f"the compose engine cannot add delay or jitter: {why}",
                                   hint="--engine local adds delay in its user-space relay; compose shapes "
                                        "--rate here")

    def crash(self, node: NodeInfo, nodes: list[NodeInfo]) -> str:
        """Drop every packet in and out of the container's namespace first, then SIGKILL its server: what
        its kernel held (sent, not acknowledged, or not sent yet) never arrives; the namespace goes with it."""
        netns.require()
        pid = self.pid(node)
        if not pid or self.state(node) == STOPPED:
            raise NodeStateError(f"{node.name} is already down", node=node.name,
                                 hint=f"start it with: replab start {node.name}")
        netns.drop_everything(pid)
        held = netns.held_bytes(pid, CONTAINER_PORT)
        self.docker("kill", "-s", "KILL", self.container(node))
        return (f"nft drops every packet in and out of container {self.container(node)}'s network namespace, then "
                f"docker kill -s KILL, host pid {pid}; its links dropped {held} byte(s) its kernel held (sent "
                "but not acknowledged, or not yet sent)")

    # --- tools inside the containers ---------------------------------------------------------------
    def tool_argv(self, tool: str, node: NodeInfo, credentials: Path) -> list[str]:
        """``docker exec`` of the node's own tool (its version matches the server) with the mounted 0600
        login; the host's ``credentials`` file is not needed."""
        flavor = str(self.options.get("flavor") or "mysql")
        names = TOOLS.get(flavor, TOOLS["mysql"]).get(tool) or [tool]
        host = ["--host", self.host] if self.host else []
        return ["docker", *host, "exec", "-i", self.container(node), names[0], f"--defaults-extra-file={CLIENT_CNF}"]

    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        if keep_data:
            if (self.directory / COMPOSE_FILE).exists():
                self.compose("stop", check=False)
            return
        if (self.directory / COMPOSE_FILE).exists():
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        left = dockerctl.remove_leftovers(self.project, self.host)  # what compose could not remove, by label
        if any(left.values()):
            self.say(f"removed what compose left of {self.project}: "
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items() if v))
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        return {"host": node.host, "port": node.port}

    def source_address(self, primary: NodeInfo, replica: NodeInfo, link: str | None = None) -> tuple[str, int]:
        """The service name on the project's network. A replica given a new source keeps its link's rates
        toward it, and a cut opens: the cut was to the old source."""
        conf = self._link_conf(replica.name)
        if conf.get("source") != primary.name and (conf or replica.role == "replica"):
            had = conf.get("cut") or conf.get("conditions")
            conf.update(source=primary.name, cut=[])
            self._save_link(replica.name, conf)
            if had and not netns.unusable() and self.state(replica) == RUNNING:
                self._apply(replica, self.pid(replica))
        return primary.name, CONTAINER_PORT  # the service name on the project's network

    def source_node(self, host: str | None, port: int | None, nodes: list[NodeInfo]) -> str | None:
        """A replica's source is a service name and the servers' port on the project's network."""
        if port == CONTAINER_PORT and host in {n.name for n in nodes}:
            return host
        return super().source_node(host, port, nodes)

    def log_tail(self, node: NodeInfo, lines: int = 15) -> list[str]:
        proc = self.docker("logs", "--tail", str(lines), self.container(node), check=False, timeout=30)
        return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()][-lines:]

    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        return [self.program("client"), f"--defaults-extra-file={credentials}", f"--host={node.host}",
                f"--port={node.port}", "--protocol=TCP", f"--prompt={node.name} [\\d]> "]
