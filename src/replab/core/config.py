"""Cluster specification: defaults < replab.toml < REPLAB_* environment < command-line flags.

``ClusterSpec.validate()`` returns every problem at once, so a user fixes them all in one go.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import links
from .errors import ConfigError

BINLOG_FORMATS = ("ROW", "MIXED", "STATEMENT")
ENGINES = ("local", "compose", "external")
PROXIES = ("haproxy", "mysql-router")  # a proxy in front: --proxy
MIN_NODES, MAX_NODES = 2, 9
DEFAULT_HOME = ".replab"
DEFAULT_DATABASE = "mydb"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def node_names(count: int) -> list[str]:
    """The node names of a cluster of ``count`` nodes: mysql-m, mysql-s1, mysql-s2, ..."""
    return ["mysql-m"] + [f"mysql-s{i}" for i in range(1, count)]


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Accept plain SQL identifiers only (letters, digits, underscore); raise ConfigError otherwise."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConfigError(
            f"invalid {what} {name!r}: use letters, digits and underscores only (at most 64, not starting "
            "with a digit)"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote a validated identifier with backticks (defence in depth: backticks are doubled)."""
    return "`" + name.replace("`", "``") + "`"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: explicit argument, else $REPLAB_HOME, else ./.replab."""
    if home is None:
        home = os.environ.get("REPLAB_HOME") or DEFAULT_HOME
    return Path(home).expanduser().absolute()


@dataclass
class ClusterSpec:
    """What to build. Every field can come from replab.toml ([cluster]), REPLAB_<FIELD> or a flag."""

    nodes: int = 3
    binlog_format: str = "ROW"
    base_port: int | None = None
    host: str = "127.0.0.1"
    engine: str = "local"
    server_binary: str | None = None  # a catalogue name (`replab servers`) or a server binary's path
    replica_server: str | None = None  # the replicas' server, when it differs (upgrade rehearsal)
    database: str = DEFAULT_DATABASE
    image: str | None = None  # the server image of --engine compose, e.g. mysql:8.0
    semi_sync: bool = False  # semi-synchronous replication, lossless wait point (AFTER_SYNC)
    semi_sync_timeout_ms: int = 10_000  # no replica acknowledgement for this long: the primary goes async
    topology: str = "star"  # the shape (topologies/): star, chain, fan-in, active-active, ring
    multi_primary: bool = False  # --topology group --multi-primary: every group member takes writes
    names: list[str] | None = None  # the node names, set from the topology (not a setting)
    proxy: str | None = None  # a real proxy in front (haproxy): a write and a read endpoint
    # every replica link shaped from the start (each direction), e.g. "20ms", "5ms", "2mbit"; see links.py
    link_delay: str | None = None
    link_jitter: str | None = None
    link_rate: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # where each value that is not a default came from: "flag", "REPLAB_NODES", "replab.toml [cluster].nodes"
    sources: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[str]:
        """Return every problem with this spec (empty list when it is valid)."""
        return [msg for _field, msg in self.problems()]

    def problems(self) -> list[tuple[str, str]]:
        """Every problem with this spec, as (field, message); messages name the command-line flag."""
        errors: list[tuple[str, str]] = []
        if not isinstance(self.nodes, int) or not MIN_NODES <= self.nodes <= MAX_NODES:
            errors.append(("nodes", f"--nodes must be between {MIN_NODES} and {MAX_NODES} (got {self.nodes})"))
        if str(self.binlog_format).upper() not in BINLOG_FORMATS:
            errors.append(("binlog_format", f"unknown binlog format {self.binlog_format!r}: choose one of "
                           f"{', '.join(BINLOG_FORMATS)}"))
        if self.base_port is not None:
            if not isinstance(self.base_port, int) or not 1024 <= self.base_port <= 65535 - MAX_NODES:
                errors.append(("base_port", f"--base-port must be between 1024 and {65535 - MAX_NODES} "
                               f"(got {self.base_port})"))
        if self.engine not in ENGINES:
            errors.append(("engine", f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}"))
        if self.replica_server is not None and self.engine != "local":
            errors.append(("replica_server", f"--replica-server needs the local engine (got --engine {self.engine})"))
        if self.image is not None and self.engine != "compose":
            errors.append(("image", f"--image {self.image} needs --engine compose (the {self.engine} engine runs "
                           "no images)"))
        if not str(self.host).startswith("127.") and self.host not in ("localhost", "::1"):
            errors.append(("host", f"host {self.host!r} is not a loopback address: local servers listen on "
                           "loopback only"))
        if self.topology != "star" and self.engine != "local":
            errors.append(("topology", f"--topology {self.topology} needs --engine local (the {self.engine} engine "
                           "builds the star only)"))
        if self.topology != "star" and any(v is not None for v in (self.link_delay, self.link_jitter, self.link_rate)):
            errors.append(("link_delay", f"--link-delay/--link-jitter/--link-rate are for the star only (got "
                           f"--topology {self.topology})"))
        if self.topology != "star" and self.proxy:
            errors.append(("proxy", f"--proxy is for the star only (got --topology {self.topology})"))
        if self.multi_primary and self.topology not in ("group", "group-multi-primary"):
            what = "a galera cluster is always multi-primary: leave it out" if self.topology == "galera" else \
                f"got --topology {self.topology}"
            errors.append(("multi_primary", f"--multi-primary is for --topology group only ({what})"))
        if self.topology != "star" and self.semi_sync:
            errors.append(("semi_sync", f"--semi-sync is for the star only (got --topology {self.topology})"))
        if self.semi_sync and self.engine != "local":
            errors.append(("semi_sync", f"--semi-sync needs --engine local (the {self.engine} engine does not set "
                           "it up yet)"))
        if not isinstance(self.semi_sync_timeout_ms, int) or not 1 <= self.semi_sync_timeout_ms <= 3_600_000:
            errors.append(("semi_sync_timeout_ms", "semi_sync_timeout_ms must be between 1 and 3600000 "
                           f"(got {self.semi_sync_timeout_ms})"))
        if self.proxy is not None:
            if self.proxy not in PROXIES:
                errors.append(("proxy", f"unknown proxy {self.proxy!r}: choose one of {', '.join(PROXIES)}"))
            elif self.engine != "local":
                errors.append(("proxy", f"--proxy {self.proxy} needs --engine local (the {self.engine} engine does "
                               "not run a proxy yet)"))
        if any(v is not None for v in (self.link_delay, self.link_jitter, self.link_rate)):
            try:
                links.conditions(self.link_delay, self.link_jitter, self.link_rate)
            except ConfigError as exc:
                errors.append(("link_delay", exc.message.replace("--delay", "--link-delay")
                               .replace("--jitter", "--link-jitter").replace("--rate", "--link-rate")))
        if not _IDENT.match(str(self.database)):
            errors.append(("database", f"invalid database name {self.database!r}: letters, digits and "
                           "underscores only"))
        return errors

    def link_conditions(self) -> dict[str, dict[str, float]]:
        """The conditions ``--link-delay/--link-jitter/--link-rate`` give each direction of every link."""
        if all(v is None for v in (self.link_delay, self.link_jitter, self.link_rate)):
            return {}
        c = links.conditions(self.link_delay, self.link_jitter, self.link_rate).to_dict()
        return {d: dict(c) for d in links.DIRECTIONS}

    def normalized(self) -> ClusterSpec:
        self.binlog_format = str(self.binlog_format).upper()
        return self

    @property
    def node_names(self) -> list[str]:
        return list(self.names) if self.names else node_names(self.nodes)


_INT_FIELDS = {"nodes", "base_port", "semi_sync_timeout_ms"}
_BOOL_FIELDS = {"semi_sync"}


def _coerce(name: str, value: Any, source: str, errors: list[str], unusable: set[str]) -> Any:
    if name in _INT_FIELDS and value is not None and not isinstance(value, int):
        try:
            return int(str(value))
        except ValueError:
            errors.append(f"{source}: {name} must be a whole number (got {value!r})")
            unusable.add(name)
            return None
    if name in _BOOL_FIELDS and isinstance(value, str):
        if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            errors.append(f"{source}: {name} must be true or false (got {value!r})")
            unusable.add(name)
            return None
        return value.lower() in ("1", "true", "yes", "on")
    return value


def load_spec(config_file: str | os.PathLike[str] | None = None, **flags: Any) -> ClusterSpec:
    """Build a ClusterSpec from the layers; raise ConfigError listing every problem."""
    errors: list[str] = []
    unusable: set[str] = set()  # settings whose value could not even be read
    values: dict[str, Any] = {}
    known = {f.name for f in fields(ClusterSpec)} - {"extra", "sources", "names"}
    sources: dict[str, str] = {}
    path = Path(config_file) if config_file else Path(os.environ.get("REPLAB_CONFIG", "replab.toml"))
    extra: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: cannot parse: {exc}", hint="fix the TOML syntax") from None
        section = data.get("cluster", {})
        for key, value in section.items():
            key = key.replace("-", "_")
            if key in known:
                sources[key] = f"{path} [cluster].{key}"
                values[key] = _coerce(key, value, sources[key], errors, unusable)
            else:
                errors.append(f"{path}: unknown setting [cluster].{key}")
        extra = {k: v for k, v in data.items() if k != "cluster"}
    elif config_file:
        raise ConfigError(f"config file {path} does not exist")
    for name in known:
        env = os.environ.get(f"REPLAB_{name.upper()}")
        if env not in (None, ""):
            sources[name] = f"REPLAB_{name.upper()}"
            values[name] = _coerce(name, env, sources[name], errors, unusable)
    for name, value in flags.items():
        if value is not None:
            if name not in known:
                raise TypeError(f"unknown spec field {name}")
            values[name] = value
            sources[name] = "flag"
    spec = ClusterSpec(**values, extra=extra, sources=sources)
    # a value already refused (not a number) is not checked again: no "(got None)" after "(got 'abc')"
    errors.extend(_name_source(name, msg, sources.get(name, "flag")) for name, msg in spec.problems()
                  if name not in unusable)
    if errors:
        raise ConfigError(errors)
    return spec.normalized()


def _name_source(name: str, message: str, source: str) -> str:
    """Say where a bad value came from when it was not a flag: ``REPLAB_NODES must be ...``."""
    if source == "flag":
        return message
    flag = "--" + name.replace("_", "-")
    if message.startswith(flag):
        return source + message[len(flag):]
    return f"{source}: {message}"
