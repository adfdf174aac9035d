"""The Docker Compose engine: one container per node from a ``mysql:*`` or ``mariadb:*`` image.

``render_project`` writes ``docker-compose.yml`` (JSON-formatted YAML, which Compose reads), an env file
with the root password (mode 0600, referenced by ``env_file:``; never on a command line) and one config
directory per node (dirs 0755, files 0644: MySQL ignores a world-writable config file). Servers publish
their port on loopback only (``127.0.0.1:PORT:3306``); replicas reach the primary by service name on the
project's network. Faults: ``docker kill``, ``stop/start``, ``pause/unpause``, ``network disconnect/connect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ClusterSpec
from ..errors import BinaryNotFound, ConfigError, NodeStartError, NotSupported, ReplabError, ReplabTimeout
from ..flavor import Flavor, MariaDBFlavor, MySQLFlavor
from ..state import check_ports
from .base import PAUSED, RUNNING, STOPPED, BuildPlan, Engine, NodeInfo, Say

DEFAULT_IMAGE = "mysql:8.0"
COMPOSE_FILE, ENV_FILE, CONF_DIR = "docker-compose.yml", "replab.env", "conf"
CONTAINER_PORT = 3306
_IMAGE = re.compile(r"^(?:docker\.io/)?(?:library/)?(?P<repo>mysql|mariadb|mysql/mysql-server|"
                    r"percona/percona-server|percona)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")
_TAG_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")
IMAGE_HINT = "use an official image such as mysql:8.0, mysql:8.4, mysql:5.7 or mariadb:11.4"


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
            "volumes": [f"./{CONF_DIR}/{node.name}:/etc/mysql/conf.d:ro", f"{node.name}-data:/var/lib/mysql"],
            "networks": {"replab": {"aliases": [node.name]}},
            # TCP ping: the image's init-time server runs without networking, so this turns healthy only
            # once the real server is up. It succeeds without credentials (access denied still means alive).
            "healthcheck": {"test": ["CMD", admin, "ping", "-h", "127.0.0.1", "--silent"], "interval": "2s",
                            "timeout": "5s", "retries": 90, "start_period": "120s"},
            "labels": {"replab.node": node.name, "replab.role": node.role, "replab.project": project},
            "restart": "no",
        }
    return {
        "name": project,
        "services": services,
        "networks": {"replab": {"name": f"{project}-net", "driver": "bridge"}},
        "volumes": {f"{n.name}-data": {} for n in nodes},
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
    env = directory / ENV_FILE
    write_private(env, f"{var}={admin_password or secrets.token_urlsafe(18)}\n")
    compose = directory / COMPOSE_FILE
    doc = compose_document(nodes, image, flavor, project)
    compose.write_text("# written by replab; JSON is valid YAML, docker compose reads it as is\n"
                       + json.dumps(doc, indent=2) + "\n")
    os.chmod(compose, 0o644)
    return [compose, env, *written]


def plan_nodes(names: list[str], ports: list[int], host: str = "127.0.0.1") -> list[NodeInfo]:
    return [NodeInfo(name=name, role="primary" if i == 0 else "replica", server_id=i + 1, host=host, port=ports[i])
            for i, name in enumerate(names)]


def docker_available() -> str | None:
    """None when a Docker engine and the compose plugin answer, else why not (one line)."""
    if not shutil.which("docker"):
        return "the docker command is not installed"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=20, stdin=subprocess.DEVNULL)
        if info.returncode != 0:
            lines = (info.stderr or info.stdout).strip().splitlines()
            return f"no Docker engine answers ({lines[-1] if lines else 'docker info failed'})"
        comp = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
        if comp.returncode != 0:
            return "the docker compose plugin is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker does not answer ({exc})"
    return None


class ComposeEngine(Engine):
    """Servers in containers managed by ``docker compose``; connections over published loopback ports."""

    name = "compose"
    secure_fresh_nodes = False  # the image sets the root password from the env file
    client_host = "%"  # connections arrive from the Docker network, not from loopback
    reset_fresh_replicas = True  # the image's init may leave GTIDs of its own on each node

    def __init__(self, home: Path, say: Say | None = None) -> None:
        super().__init__(home, say)

    @property
    def directory(self) -> Path:
        return Path(self.options.get("dir") or self.home / "compose")

    @property
    def project(self) -> str:
        return str(self.options.get("project") or project_name(self.home))

    def container(self, node: NodeInfo) -> str:
        return f"{self.project}-{node.name}"

    # --- planning ----------------------------------------------------------------------------------
    def prepare(self, spec: ClusterSpec) -> BuildPlan:
        """Check image and Docker (fail fast, exit 2), pick free loopback ports."""

        image = spec.image or DEFAULT_IMAGE
        flavor = flavor_from_image(image)
        why = docker_available()
        if why:
            raise NotSupported(f"--engine compose needs Docker: {why}",
                               hint="start the Docker engine, use --engine local, or write the files with: "
                                    "replab compose export DIR")
        nodes = plan_nodes(spec.node_names, check_ports(spec), spec.host)
        self.options = {"image": image, "project": project_name(self.home), "dir": str(self.home / "compose")}
        return BuildPlan(flavor=flavor, nodes=nodes, version_exact=False, options=self.options)

    def initial_login(self, node: NodeInfo, admin_password: str) -> tuple[str, str]:
        return "root", admin_password

    # --- docker --------------------------------------------------------------------------------------
    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise BinaryNotFound("the docker command is not installed", hint="use --engine local") from None
        except subprocess.TimeoutExpired:
            raise ReplabTimeout(f"docker {args[0]} did not finish in {timeout:.0f}s") from None
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise ReplabError(f"docker {' '.join(args[:2])} failed (exit {proc.returncode})", log_tail=tail,
                              hint="see the output above; `docker ps -a` shows the containers")
        return proc

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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
        self.say(f"docker compose up -d ({len(nodes)} containers from {self.options.get('image')})")
        self.compose("up", "-d")

    def start(self, node: NodeInfo, extra_args: list[str] | None = None) -> None:
        self.docker("start", self.container(node))

    def _inspect(self, node: NodeInfo) -> tuple[str, str]:
        proc = self.docker("inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                           self.container(node), check=False, timeout=30)
        if proc.returncode != 0:
            return "missing", ""
        parts = proc.stdout.split()
        return (parts[0] if parts else "missing"), (parts[1] if len(parts) > 1 else "")

    def state(self, node: NodeInfo) -> str:
        status, _health = self._inspect(node)
        return {"running": RUNNING, "paused": PAUSED}.get(status, STOPPED)

    def wait_ready(self, node: NodeInfo, probe: Callable[[], None], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        status = health = ""
        while time.monotonic() < deadline:
            status, health = self._inspect(node)
            if status in ("exited", "dead", "missing"):
                raise NodeStartError(f"{node.name}: the container is {status}", node=node.name,
                                     log_tail=self.log_tail(node), hint=f"docker logs {self.container(node)}")
            if status == "running" and health in ("healthy", ""):
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
        self.docker("stop", "-t", str(int(timeout)), self.container(node))

    def kill(self, node: NodeInfo) -> None:
        self.docker("kill", self.container(node))

    def pause(self, node: NodeInfo) -> None:
        self.docker("pause", self.container(node))

    def resume(self, node: NodeInfo) -> None:
        self.docker("unpause", self.container(node))

    def partition(self, node: NodeInfo) -> None:
        self.docker("network", "disconnect", f"{self.project}-net", self.container(node))

    def heal(self, node: NodeInfo) -> None:
        self.docker("network", "connect", "--alias", node.name, f"{self.project}-net", self.container(node))

    def destroy(self, nodes: list[NodeInfo], keep_data: bool = False) -> None:
        if not (self.directory / COMPOSE_FILE).exists():
            return
        if keep_data:
            self.compose("stop", check=False)
            return
        self.compose("down", "--volumes", "--remove-orphans", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect_params(self, node: NodeInfo) -> dict[str, Any]:
        return {"host": node.host, "port": node.port}

    def source_address(self, primary: NodeInfo, replica: NodeInfo) -> tuple[str, int]:
        return primary.name, CONTAINER_PORT  # the service name on the project's network

    def log_tail(self, node: NodeInfo, lines: int = 15) -> list[str]:
        proc = self.docker("logs", "--tail", str(lines), self.container(node), check=False, timeout=30)
        return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()][-lines:]

    def client_argv(self, node: NodeInfo, credentials: Path) -> list[str]:
        return [self.program("client"), f"--defaults-extra-file={credentials}", f"--host={node.host}",
                f"--port={node.port}", "--protocol=TCP", f"--prompt={node.name} [\\d]> "]
