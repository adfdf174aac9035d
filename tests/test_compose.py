"""The Docker Compose engine: exported files (parsed as YAML) and the docker command sequence, exercised
against a fake ``docker`` on PATH that records its calls (there is no Docker engine on the test machine)."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from replab.core.errors import ConfigError
from replab.engines.compose import ComposeEngine, flavor_from_image, plan_nodes
from replab.servers.flavor import MariaDBFlavor, MySQLFlavor

FAKE_DOCKER = textwrap.dedent('''\
    #!{python}
    """A fake docker CLI: records argv, keeps container states in a JSON file."""
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_DOCKER_LOG"], "a") as fh:
        fh.write(json.dumps(args) + "\\n")
    state_file = os.environ["FAKE_DOCKER_STATE"]
    state = json.load(open(state_file)) if os.path.exists(state_file) else {{}}
    def save():
        json.dump(state, open(state_file, "w"))
    if args[:1] == ["version"]:
        if os.environ.get("FAKE_DOCKER_NO_DAEMON"):
            print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                  "Is the docker daemon running?", file=sys.stderr)
            sys.exit(1)
        print("27.3.1")
    elif args[:2] == ["compose", "version"]:
        print("Docker Compose version v2.29.7")
    elif args[:1] == ["compose"]:
        compose_file = args[args.index("-f") + 1]
        text = open(compose_file).read()
        doc = json.loads(text[text.index("{{"):])
        names = [s["container_name"] for s in doc["services"].values()]
        if "up" in args:
            state.update({{n: "running healthy" for n in names}})
        elif "stop" in args:
            state.update({{n: "exited" for n in names}})
        elif "down" in args:
            for n in names:
                state.pop(n, None)
        save()
    elif args[:1] == ["inspect"]:
        name = args[-1]
        if name not in state:
            print("Error: No such object: " + name, file=sys.stderr)
            sys.exit(1)
        print(state[name])
    elif args[:1] in (["stop"], ["kill"], ["start"], ["pause"], ["unpause"]):
        name = args[-1]
        if name not in state:
            print("Error response from daemon: No such container: " + name, file=sys.stderr)
            sys.exit(1)
        state[name] = {{"stop": "exited", "kill": "exited", "start": "running healthy", "pause": "paused healthy",
                       "unpause": "running healthy"}}[args[0]]
        save()
    elif args[:1] == ["logs"]:
        print("[Server] /usr/sbin/mysqld: ready for connections. Version: '8.0.36'  port: 3306")
    elif args[:1] == ["network"]:
        pass
    else:
        print("fake docker: unexpected " + " ".join(args), file=sys.stderr)
        sys.exit(3)
''')


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """Put the fake docker first on PATH; return a function that reads the recorded calls."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(0o755)
    log, state = tmp_path / "docker-calls.jsonl", tmp_path / "docker-state.json"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_DOCKER_LOG": str(log), "FAKE_DOCKER_STATE": str(state)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    calls.env = env  # type: ignore[attr-defined]
    return calls


def test_export_writes_files_compose_can_read(tmp_path, cli):
    out = tmp_path / "lab"
    res = cli("compose", "export", str(out), "--image", "mysql:8.0", "--nodes", "3", "--base-port", "4306")
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert list(doc["services"]) == ["mysql-m", "mysql-s1", "mysql-s2"]
    assert set(doc["volumes"]) == {"mysql-m-data", "mysql-s1-data", "mysql-s2-data"}
    assert list(doc["networks"]) == ["replab"]
    for i, (name, svc) in enumerate(doc["services"].items()):
        assert svc["image"] == "mysql:8.0"
        assert svc["ports"] == [f"127.0.0.1:{4306 + i}:3306"]  # loopback only
        assert svc["env_file"] == ["replab.env"] and "environment" not in svc
        assert f"./conf/{name}:/etc/mysql/conf.d:ro" in svc["volumes"]
        assert svc["healthcheck"]["test"][:3] == ["CMD", "mysqladmin", "ping"]
        assert "replab" in svc["networks"]
        assert "./client.cnf:/etc/replab/client.cnf:ro" in svc["volumes"]  # the login of docker exec'd tools
    assert stat.S_IMODE((out / "client.cnf").stat().st_mode) == 0o600
    env_text = (out / "replab.env").read_text()
    assert env_text.startswith("MYSQL_ROOT_PASSWORD=") and len(env_text.strip()) > 30
    password = env_text.strip().split("=", 1)[1]
    assert password not in (out / "docker-compose.yml").read_text()
    assert stat.S_IMODE((out / "replab.env").stat().st_mode) == 0o600
    for node, server_id in (("mysql-m", 1), ("mysql-s1", 2), ("mysql-s2", 3)):
        cnf = out / "conf" / node / "replab.cnf"
        assert stat.S_IMODE(cnf.stat().st_mode) == 0o644  # not world-writable: MySQL would ignore it
        assert stat.S_IMODE(cnf.parent.stat().st_mode) == 0o755
        text = cnf.read_text()
        assert "[mysqld]" in text and f"server_id={server_id}" in text and "gtid_mode=ON" in text
        assert "enforce_gtid_consistency=ON" in text and ("read_only=1" in text) == (node != "mysql-m")
    again = cli("compose", "export", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr


def test_export_mariadb_image(tmp_path, cli):
    out = tmp_path / "m"
    assert cli("compose", "export", str(out), "--image", "mariadb:11.4", "--nodes", "2").returncode == 0
    doc = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert doc["services"]["mysql-s1"]["healthcheck"]["test"][1] == "mariadb-admin"
    assert (out / "replab.env").read_text().startswith("MARIADB_ROOT_PASSWORD=")
    text = (out / "conf" / "mysql-s1" / "replab.cnf").read_text()
    assert "[mariadbd]" in text and "gtid_strict_mode=1" in text and "gtid_mode" not in text


def test_images_and_their_flavors():
    assert isinstance(flavor_from_image("mysql:8.0"), MySQLFlavor)
    assert flavor_from_image("mysql:8.4.3").version == (8, 4, 3)
    assert flavor_from_image("mysql:5.7").show_replica_status() == "SHOW SLAVE STATUS"
    assert flavor_from_image("docker.io/library/mysql:lts").show_source_status() == "SHOW BINARY LOG STATUS"
    assert isinstance(flavor_from_image("mariadb:10.11"), MariaDBFlavor)
    for bad in ("postgres:16", "mysql:5.6", "mysql:nightly-foo", "evil;rm -rf /"):
        with pytest.raises(ConfigError):
            flavor_from_image(bad)


def test_up_without_docker_engine_fails_fast(tmp_path, cli, fake_docker):
    env = {**fake_docker.env, "FAKE_DOCKER_NO_DAEMON": "1"}
    home = tmp_path / "h"
    res = cli("up", "--engine", "compose", home=home, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--engine compose needs Docker: no Docker engine answers (Cannot connect to the Docker daemon" in res.stderr
    assert "hint:" in res.stderr and not home.exists()
    assert fake_docker() == [["version", "--format", "{{.Server.Version}}"]]
    res = cli("up", "--engine", "compose", "--image", "postgres:16", home=home, env=env)
    assert res.returncode == 2 and "unknown image 'postgres:16'" in res.stderr
    res = cli("up", "--image", "mysql:8.0", home=home)
    assert res.returncode == 2 and "needs --engine compose" in res.stderr


def test_dead_container_fails_fast_with_its_log(tmp_path, fake_docker):
    from replab.core.errors import NodeStartError

    engine = ComposeEngine(tmp_path)
    (node,) = plan_nodes(["mysql-m"], [4000])
    Path(fake_docker.env["FAKE_DOCKER_STATE"]).write_text(json.dumps({engine.container(node): "exited"}))
    with pytest.raises(NodeStartError, match="container is exited") as info:
        engine.wait_ready(node, lambda: None, timeout=5)
    assert any("ready for connections" in line for line in info.value.log_tail)

