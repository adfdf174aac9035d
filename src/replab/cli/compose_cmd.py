"""``replab compose export|clean`` and ``replab image build``: Docker Compose files, leftovers of crashed runs,
and server images built from the server catalogue."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..core.config import load_spec, resolve_home
from ..core.errors import ConfigError, NotSupported, StateError
from ..core.state import STATE_FILE
from ..engines import dockerctl, images
from ..engines.compose import DEFAULT_IMAGE, flavor_from_image, plan_nodes, project_name, render_project
from . import common

compose_app = typer.Typer(help="Docker Compose files for a replab cluster; leftovers of crashed runs.",
                          no_args_is_help=True)
image_app = typer.Typer(help="Server images built from the server catalogue (no registry needed).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(compose_app, name="compose")
    app.add_typer(image_app, name="image")


@image_app.command("build")
def image_build(
    name: str = typer.Argument(..., metavar="SERVER",
                               help="A catalogue server: mysql-9.7, mariadb-10.11, mariadb-11.8."),
    force: bool = typer.Option(False, "--force", help="Build again even when an image with the same content exists."),
) -> None:
    """Build the image replab/<flavor>:<series> from a catalogue server (fetched first if needed).

    The tree is imported as is (it has its own libc) with a small entry script that follows the official
    images' contract (root password from MYSQL_ROOT_PASSWORD, config from /etc/mysql/conf.d, data in
    /var/lib/mysql). Cached by content: building the same tree again does nothing.

    Example: replab image build mysql-9.7
    Example: replab up --engine compose --image replab/mysql:9.7
    """
    built = images.build(name, os.environ.get("DOCKER_HOST") or None, common.say, force=force)
    common.console.print(built.image)


@compose_app.command("clean")
def clean(
    project: str = typer.Option(None, "--project", help="A compose project name (default: the one of --home)."),
) -> None:
    """Remove a compose project a crashed run left behind: its containers, network and volumes.

    Only objects labelled replab.project=PROJECT are touched. Refused while a cluster in --home uses the
    project (use `replab down` for that).
    """
    home = resolve_home(common.OPTIONS.get("home"))
    target = project or project_name(home)
    if not project and (home / STATE_FILE).exists():
        raise StateError(f"the cluster in {home} uses {target}", hint="remove it with: replab down")
    why = dockerctl.unavailable(os.environ.get("DOCKER_HOST") or None)
    if why and "compose" not in why[0]:
        raise NotSupported(f"replab compose clean needs Docker: {why[0]}", hint=why[1])
    removed = dockerctl.remove_leftovers(target, os.environ.get("DOCKER_HOST") or None)
    if not any(removed.values()):
        common.say(f"nothing labelled replab.project={target} on this Docker engine")
        return
    for kind, names in removed.items():
        if names:
            common.console.print(f"removed {kind}: {', '.join(names)}")


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
