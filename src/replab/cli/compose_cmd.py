"""``replab compose export``: the Docker Compose project of a cluster, written without Docker."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import load_spec
from ..engines.compose import DEFAULT_IMAGE, flavor_from_image, plan_nodes, project_name, render_project
from ..errors import ConfigError
from . import common

compose_app = typer.Typer(help="Docker Compose files for a replab cluster.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(compose_app, name="compose")


@compose_app.command("export")
def export(
    out_dir: str = typer.Argument(..., metavar="DIR", help="Directory to write into (created if missing)."),
    nodes: int = typer.Option(None, "--nodes", "-n", help="Number of nodes, 2-9 (default 3)."),
    image: str = typer.Option(None, "--image", help=f"Server image (default {DEFAULT_IMAGE})."),
    binlog_format: str = typer.Option(None, "--binlog-format", help="ROW (default), MIXED or STATEMENT."),
    base_port: int = typer.Option(3306, "--base-port", help="First published loopback port (default 3306)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing docker-compose.yml."),
) -> None:
    """Write docker-compose.yml, an env file (0600) with the root password and one config dir per node.

    Needs no Docker. The servers publish their ports on 127.0.0.1 only; start them with
    `docker compose up -d` in DIR (replication is set up by `replab up --engine compose`, not by these files).

    Example: replab compose export ./lab --image mysql:8.4 --nodes 3
    """
    directory = Path(out_dir)
    spec = load_spec(None, nodes=nodes, binlog_format=binlog_format, engine="compose", image=image or DEFAULT_IMAGE)
    flavor = flavor_from_image(spec.image or DEFAULT_IMAGE)
    if (directory / "docker-compose.yml").exists() and not force:
        raise ConfigError(f"{directory / 'docker-compose.yml'} already exists", hint="pass --force to overwrite it")
    if not 1024 <= base_port <= 65535 - spec.nodes:
        raise ConfigError(f"--base-port must be between 1024 and {65535 - spec.nodes} (got {base_port})")
    ports = list(range(base_port, base_port + spec.nodes))
    written = render_project(directory, plan_nodes(spec.node_names, ports, spec.host), spec.image or DEFAULT_IMAGE,
                             flavor, project_name(directory), spec.binlog_format)
    for path in written:
        common.console.print(str(path))
    common.say(f"wrote {len(written)} files; start them with: cd {directory} && docker compose up -d")
