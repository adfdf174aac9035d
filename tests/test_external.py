"""The external engine against MariaDB servers this test starts itself, independently of replab."""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mariadb_servers import INSTALL_DB, MARIADBD, Server, start_server

from replab import Cluster
from replab.core.errors import ConfigError, NotSupported
from replab.engines.external import parse_inventory

pytestmark = pytest.mark.skipif(not (MARIADBD and INSTALL_DB), reason="mariadbd / mariadb-install-db not installed")
PASSWORD_ENV = "REPLAB_TEST_DB_PASSWORD"


@pytest.fixture(scope="module")
def password() -> str:
    return secrets.token_urlsafe(12)


@pytest.fixture
def servers(tmp_path_factory: pytest.TempPathFactory, password: str) -> Iterator[Callable[[int], list[Server]]]:
    started: list[Server] = []
    base = tmp_path_factory.getbasetemp() / "external-servers"
    base.mkdir(exist_ok=True)

    def make(count: int) -> list[Server]:
        out = []
        for _ in range(count):
            sid = 100 + len(list(base.glob("srv*")))
            server = start_server(base, f"srv{sid}", sid, password)
            started.append(server)
            out.append(server)
        return out

    yield make
    for server in started:
        server.stop()


def inventory(path: Path, servers: list[Server], mode: str = "attach", roles: list[str] | None = None,
              extra: dict[str, str] | None = None) -> Path:
    roles = roles or ["primary"] + ["replica"] * (len(servers) - 1)
    lines = [f'[external]\nmode = "{mode}"\nuser = "root"\npassword_env = "{PASSWORD_ENV}"\n']
    for i, (server, role) in enumerate(zip(servers, roles, strict=True)):
        lines.append(f'[[nodes]]\nname = "db{i + 1}"\nhost = "127.0.0.1"\nport = {server.port}\nrole = "{role}"\n')
        for key, value in (extra or {}).items() if i == 1 else ():
            lines.append(f'{key} = "{value}"\n')
    path.write_text("\n".join(lines))
    return path


def test_attach_replication_between_servers_replab_did_not_start(tmp_path, servers, cli, password):
    primary, replica = servers(2)
    toml = inventory(tmp_path / "replab.toml", [primary, replica])
    home = tmp_path / "lab"
    env = {PASSWORD_ENV: password}
    up = cli("up", "--engine", "external", "--config", str(toml), home=home, env=env)
    assert up.returncode == 0, up.stderr
    assert "mode attach" in up.stderr and "db2: replicating from db1" in up.stderr
    st = json.loads(cli("status", "--json", home=home, env=env).stdout)
    nodes = {n["name"]: n for n in st["nodes"]}
    assert nodes["db1"]["role"] == "primary" and nodes["db1"]["state"] == "running"
    assert (nodes["db2"]["io_running"], nodes["db2"]["sql_running"], nodes["db2"]["last_errno"]) == (True, True, 0)
    assert nodes["db2"]["source"] == "db1"  # the source node by name (status topology)
    # the replication was set up by replab on servers it did not start: check it on the servers directly
    primary.sql("INSERT INTO mydb.events (name, counter) VALUES ('ext-1', 1)")
    cluster = Cluster.open(home)
    assert cluster.wait_caught_up(timeout=10) == {"db2": True}
    assert replica.sql("SELECT name FROM mydb.events") == [("ext-1",)]
    assert cli("sql", "db2", "SELECT COUNT(*) FROM mydb.events", "--json", home=home).returncode == 0
    # no password in credentials passed on a command line: it lives in the 0600 option file only
    assert (home / "credentials.cnf").stat().st_mode & 0o777 == 0o600
    # a fault without a command in the inventory is refused with a clear error
    kill = cluster.engine
    with pytest.raises(NotSupported, match="no kill command"):
        kill.kill(cluster.node("db2"))
    down = cli("down", home=home)
    assert down.returncode == 0, down.stderr
    assert "left 2 servers running" in down.stderr
    assert primary.alive() and replica.alive() and not home.exists()
    # attaching an already-attached replica again is refused (adopt is for that)
    again = cli("up", "--engine", "external", "--config", str(toml), home=home, env=env)
    assert again.returncode == 2 and "already replicates from" in again.stderr and "Traceback" not in again.stderr


def test_adopt_hand_made_replication_and_reject_a_non_replica(tmp_path, servers, password):
    primary, replica, loner = servers(3)
    primary.sql("SET SESSION sql_log_bin=0")
    primary.sql("CREATE USER 'hand'@'%%' IDENTIFIED BY %s", (password,))
    primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'hand'@'%'")
    replica.sql(f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, MASTER_USER='hand', "
                "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", (password,))
    replica.sql("START SLAVE")
    import os

    os.environ[PASSWORD_ENV] = password
    try:
        toml = inventory(tmp_path / "adopt.toml", [primary, replica], mode="adopt")
        cluster = Cluster.up(home=tmp_path / "lab", config_file=str(toml), engine="external")
        try:
            assert [n.name for n in cluster.replicas] == ["db2"]
            cluster.sql("db1", "INSERT INTO mydb.events (name, counter) VALUES ('adopted', 7)")
            assert cluster.wait_caught_up(timeout=10) == {"db2": True}
            assert replica.sql("SELECT counter FROM mydb.events WHERE name='adopted'") == [(7,)]
        finally:
            cluster.down()
        assert replica.sql("SELECT COUNT(*) FROM mydb.events") == [(1,)]  # replication left as it was
        bad = inventory(tmp_path / "bad.toml", [primary, loner], mode="adopt")
        from replab.core.errors import ReplicationError

        with pytest.raises(ReplicationError, match="db2 is not a replica"):
            Cluster.up(home=tmp_path / "lab2", config_file=str(bad), engine="external")
        assert not (tmp_path / "lab2" / "cluster.json").exists()
        wrong = inventory(tmp_path / "wrong.toml", [loner, replica], mode="adopt")
        with pytest.raises(ReplicationError, match="not from the named primary db1"):
            Cluster.up(home=tmp_path / "lab3", config_file=str(wrong), engine="external")
    finally:
        os.environ.pop(PASSWORD_ENV, None)


def test_fault_commands_run_without_a_shell(tmp_path, servers, password):
    primary, replica = servers(2)
    assert replica.proc is not None
    pid = replica.proc.pid
    toml = inventory(tmp_path / "faults.toml", [primary, replica],
                     extra={"pause": f"kill -STOP {pid}", "resume": f"kill -CONT {pid}", "kill": "false"})
    import os

    os.environ[PASSWORD_ENV] = password
    try:
        cluster = Cluster.up(home=tmp_path / "lab", config_file=str(toml), engine="external")
        try:
            db2 = cluster.node("db2")
            cluster.engine.pause(db2)
            time.sleep(0.1)
            assert open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("T", "t")
            # a frozen server accepts TCP (the kernel answers) but sends no greeting: paused, not running
            assert cluster.engine.state(db2) == "paused"
            assert {s.name: s.state for s in cluster.status()}["db2"] == "paused"
            from replab.core.errors import NodeStateError

            t0 = time.monotonic()
            with pytest.raises(NodeStateError, match="db2 is paused"):
                cluster.sql("db2", "SELECT 1")
            assert time.monotonic() - t0 < 5  # it never hangs on the frozen server
            cluster.engine.resume(db2)
            assert {s.name: s for s in cluster.status()}["db2"].sql_running
            from replab.core.errors import ReplabError

            with pytest.raises(ReplabError, match="kill command exited with 1"):
                cluster.engine.kill(db2)
        finally:
            cluster.down()
    finally:
        os.environ.pop(PASSWORD_ENV, None)


def test_unreachable_and_wrong_password_exit_2(tmp_path, servers, cli, password):
    (primary,) = servers(1)
    from mariadb_servers import free_port

    toml = tmp_path / "r.toml"
    toml.write_text(textwrap.dedent(f"""
        [external]
        password_env = "{PASSWORD_ENV}"
        [[nodes]]
        name = "db1"
        host = "127.0.0.1"
        port = {primary.port}
        role = "primary"
        [[nodes]]
        name = "db2"
        host = "127.0.0.1"
        port = {free_port()}
        role = "replica"
    """))
    out = cli("up", "--engine", "external", "--config", str(toml), home=tmp_path / "h", env={PASSWORD_ENV: password})
    assert out.returncode == 2 and "db2: cannot reach 127.0.0.1" in out.stderr and "Traceback" not in out.stderr
    out = cli("up", "--engine", "external", "--config", str(toml), home=tmp_path / "h", env={PASSWORD_ENV: "nope"})
    assert out.returncode == 2 and "db1: access denied for user 'root'" in out.stderr
    out = cli("up", "--engine", "external", "--config", str(toml), home=tmp_path / "h")
    assert out.returncode == 2 and f"{PASSWORD_ENV} (password_env) is not set" in out.stderr
    assert not (tmp_path / "h" / "cluster.json").exists()


def test_inventory_errors_are_listed_at_once(tmp_path):
    data = {"external": {"mode": "steal", "password_env": "X"},
            "nodes": [{"name": "a", "host": "h", "role": "primary"}, {"name": "b", "host": "h", "role": "primary",
                                                                     "reboot": "x"}]}
    with pytest.raises(ConfigError) as info:
        parse_inventory(data)
    text = str(info.value)
    assert "mode must be attach or adopt" in text and "2 primaries (a, b)" in text and "unknown key 'reboot'" in text
    with pytest.raises(ConfigError, match="needs an inventory"):
        parse_inventory({})
    opt = tmp_path / "pw.cnf"
    opt.write_text("[client]\npassword=s3cret\n")
    mode, _host, nodes = parse_inventory({"external": {"mode": "adopt", "password_file": str(opt)},
                                          "nodes": [{"name": "r", "host": "h", "role": "replica"},
                                                    {"name": "p", "host": "h", "port": 3307, "role": "primary",
                                                     "kill": "ssh db2 sudo systemctl kill mysqld"}]})
    assert mode == "adopt" and [n.name for n in nodes] == ["p", "r"] and nodes[0].password == "s3cret"
    assert nodes[0].faults == {"kill": "ssh db2 sudo systemctl kill mysqld"}
