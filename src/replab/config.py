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

from .errors import ConfigError

BINLOG_FORMATS = ("ROW", "MIXED", "STATEMENT")
ENGINES = ("local", "compose", "external")
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
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> list[str]:
        """Return every problem with this spec (empty list when it is valid)."""
        errors: list[str] = []
        if not isinstance(self.nodes, int) or not MIN_NODES <= self.nodes <= MAX_NODES:
            errors.append(f"--nodes must be between {MIN_NODES} and {MAX_NODES} (got {self.nodes})")
        if str(self.binlog_format).upper() not in BINLOG_FORMATS:
            errors.append(
                f"unknown binlog format {self.binlog_format!r}: choose one of {', '.join(BINLOG_FORMATS)}"
            )
        if self.base_port is not None:
            if not isinstance(self.base_port, int) or not 1024 <= self.base_port <= 65535 - MAX_NODES:
                errors.append(f"--base-port must be between 1024 and {65535 - MAX_NODES} (got {self.base_port})")
        if self.engine not in ENGINES:
            errors.append(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.replica_server is not None and self.engine != "local":
            errors.append(f"--replica-server needs the local engine (got --engine {self.engine})")
        if self.image is not None and self.engine != "compose":
            errors.append(f"--image {self.image} needs --engine compose (the {self.engine} engine runs no images)")
        if not str(self.host).startswith("127.") and self.host not in ("localhost", "::1"):
            errors.append(f"host {self.host!r} is not a loopback address: local servers listen on loopback only")
        if not _IDENT.match(str(self.database)):
            errors.append(f"invalid database name {self.database!r}: letters, digits and underscores only")
        return errors

    def normalized(self) -> ClusterSpec:
        self.binlog_format = str(self.binlog_format).upper()
        return self

    @property
    def node_names(self) -> list[str]:
        return node_names(self.nodes)


_INT_FIELDS = {"nodes", "base_port"}


def _coerce(name: str, value: Any, source: str, errors: list[str]) -> Any:
    if name in _INT_FIELDS and value is not None and not isinstance(value, int):
        try:
            return int(str(value))
        except ValueError:
            errors.append(f"{source}: {name} must be a whole number (got {value!r})")
            return None
    return value


def load_spec(config_file: str | os.PathLike[str] | None = None, **flags: Any) -> ClusterSpec:
    """Build a ClusterSpec from the layers; raise ConfigError listing every problem."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    known = {f.name for f in fields(ClusterSpec)} - {"extra"}
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
                values[key] = _coerce(key, value, str(path), errors)
            else:
                errors.append(f"{path}: unknown setting [cluster].{key}")
        extra = {k: v for k, v in data.items() if k != "cluster"}
    elif config_file:
        raise ConfigError(f"config file {path} does not exist")
    for name in known:
        env = os.environ.get(f"REPLAB_{name.upper()}")
        if env not in (None, ""):
            values[name] = _coerce(name, env, f"REPLAB_{name.upper()}", errors)
    for name, value in flags.items():
        if value is not None:
            if name not in known:
                raise TypeError(f"unknown spec field {name}")
            values[name] = value
    spec = ClusterSpec(**values, extra=extra)
    errors.extend(spec.validate())
    if errors:
        raise ConfigError(errors)
    return spec.normalized()
