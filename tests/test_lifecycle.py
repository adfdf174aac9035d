"""Cluster lifecycle on real MariaDB servers, driven through the CLI (as a user would) and the API."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from catalogue import require
from conftest import REPLAB, servers_under, wait_for

from replab import Cluster
from replab.cluster.cluster import teardown_home
from replab.core.errors import ClusterNotFound
from replab.servers import strays


def test_up_status_sql_down(tmp_path, cli):
    home = tmp_path / "lab"
    up = cli("up", home=home)
    assert up.returncode == 0, up.stderr
    assert "cluster ready" in up.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "credentials.cnf").stat().st_mode) == 0o600
    try:
        st = json.loads(cli("status", "--json", home=home).stdout)
        nodes = {n["name"]: n for n in st["nodes"]}
        assert list(nodes) == ["mysql-m", "mysql-s1", "mysql-s2"]
        assert nodes["mysql-m"]["role"] == "primary" and nodes["mysql-m"]["io_running"] is None
        for name in ("mysql-s1", "mysql-s2"):
            n = nodes[name]
            assert (n["role"], n["state"], n["io_running"], n["sql_running"]) == ("replica", "running", True, True)
            assert n["last_errno"] == 0 and n["host"] == "127.0.0.1"
            assert set(n) >= {"name", "role", "state", "host", "port", "io_running", "sql_running", "lag_ms",
                              "last_errno", "last_error", "gtid"}
        ins = cli("sql", "mysql-m", "INSERT INTO mydb.events (name, counter, description) "
                  "VALUES ('some-event-1', 1, 'some-descr-1')", home=home)
        assert ins.returncode == 0, ins.stderr
        cluster = Cluster.open(home)
        assert all(cluster.wait_caught_up(timeout=10).values())
        for name in ("mysql-s1", "mysql-s2"):
            out = json.loads(cli("sql", name, "SELECT name, counter FROM mydb.events", "--json", home=home).stdout)
            assert out["rows"] == [["some-event-1", 1]]
        table = cli("status", home=home).stdout
        assert "mysql-s2" in table and "Yes" in table
        # no password in any server's command line
        for node in cluster.nodes:
            with open(f"/proc/{cluster.engine.pid(node)}/cmdline", "rb") as fh:
                assert cluster.credentials("client")[1].encode() not in fh.read()
        # idempotent up: same pids, same ports
        before = [(n["name"], n["pid"], n["port"]) for n in st["nodes"]]
        again = cli("up", home=home)
        assert again.returncode == 0 and "already running" in again.stderr
        after_nodes = json.loads(cli("status", "--json", home=home).stdout)["nodes"]
        after = [(n["name"], n["pid"], n["port"]) for n in after_nodes]
        assert before == after
    finally:
        down = cli("down", home=home)
    assert down.returncode == 0, down.stderr
    assert not home.exists()
    assert servers_under(tmp_path) == []


def test_api_context_manager_and_replication(tmp_path):
    home = tmp_path / "api"
    with Cluster.up(nodes=2, binlog_format="MIXED", home=home) as cluster:
        assert [n.name for n in cluster.nodes] == ["mysql-m", "mysql-s1"]
        cluster.sql("mysql-m", "INSERT INTO mydb.events (name) VALUES ('x'), ('y')")
        assert cluster.wait_caught_up(timeout=10) == {"mysql-s1": True}
        assert cluster.sql("mysql-s1", "SELECT COUNT(*) FROM mydb.events").rows == [(2,)]
        assert cluster.sql("mysql-s1", "SELECT @@binlog_format").rows == [("MIXED",)]
        assert cluster.sql("mysql-s1", "SELECT @@read_only").rows == [(1,)]
    assert not home.exists()
    with pytest.raises(ClusterNotFound):
        Cluster.open(home)


def test_fixture_gives_a_replicating_cluster(replab_cluster):
    statuses = {s.name: s for s in replab_cluster.status()}
    assert statuses["mysql-s1"].sql_running and statuses["mysql-s2"].io_running
    replab_cluster.sql("mysql-m", "INSERT INTO mydb.events (name) VALUES ('fixture')")
    assert all(replab_cluster.wait_caught_up(timeout=10).values())
    # each server keeps its temporary files in its own home, not in the machine's shared /tmp
    for name in ("mysql-m", "mysql-s1"):
        tmpdir = replab_cluster.sql(name, "SELECT @@GLOBAL.tmpdir").rows[0][0]
        assert tmpdir == str(replab_cluster.home / "nodes" / name / "tmp"), tmpdir
        # a node's config may hold a password (Galera's SST account): readable by its owner only
        assert (replab_cluster.home / "nodes" / name / "my.cnf").stat().st_mode & 0o777 == 0o600


def test_down_keep_data_then_up_again(tmp_path, cli):
    home = tmp_path / "keep"
    assert cli("up", "--nodes", "2", home=home).returncode == 0
    try:
        cli("sql", "mysql-m", "INSERT INTO mydb.events (name) VALUES ('kept')", home=home)
        assert cli("down", "--keep-data", home=home).returncode == 0
        assert servers_under(home) == []
        st = json.loads(cli("status", "--json", home=home).stdout)
        assert {n["state"] for n in st["nodes"]} == {"stopped"}
        assert cli("up", home=home).returncode == 0
        Cluster.open(home).wait_caught_up(timeout=10)
        out = json.loads(cli("sql", "mysql-s1", "SELECT name FROM mydb.events", "--json", home=home).stdout)
        assert out["rows"] == [["kept"]]
    finally:
        cli("down", home=home)
    assert servers_under(tmp_path) == []


# ---- bad input: exit 2, one or two lines, nothing left behind ------------------------------------

def _assert_clean_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("args,needle", [
    (["up", "--nodes", "1"], "--nodes must be between 2 and 9"),
    (["up", "--nodes", "10"], "--nodes must be between 2 and 9"),
    (["up", "--binlog-format", "JSON"], "unknown binlog format"),
])
def test_bad_up_arguments(tmp_path, cli, args, needle):
    home = tmp_path / "h"
    _assert_clean_error(cli(*args, home=home), needle)
    assert not home.exists()


def test_port_in_use(tmp_path, cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        home = tmp_path / "p"
        _assert_clean_error(cli("up", "--base-port", str(port), home=home), f"port {port}", "in use")
    assert not home.exists()


def test_server_binary_missing(tmp_path, cli):
    home = tmp_path / "b"
    proc = cli("up", "--server", "/nonexistent/mariadbd", home=home)
    _assert_clean_error(proc, "not found", "apt-get install mariadb-server")
    assert not home.exists()


@pytest.mark.parametrize("program", ["/usr/bin/true", "/usr/bin/mariadb", "mysql-9.7 client"])
def test_a_binary_that_is_not_a_server_is_refused(tmp_path, cli, program):
    """Issue 23.7 and 23.15: ``--server /usr/bin/true`` ended in a FileNotFoundError traceback, and the
    ``mariadb`` client was taken for a server (failing later with a disk-space hint). Both are refused at
    once, saying why."""
    if program == "mysql-9.7 client":
        program = os.path.join(require("mysql-9.7").bindirs[-1], "mysql")
    if not os.path.exists(program):
        pytest.skip(f"{program} is not installed")
    home = tmp_path / "notserver"
    proc = cli("up", "--server", program, home=home)
    _assert_clean_error(proc, f"error: {program} is not a MySQL or MariaDB server (")
    assert proc.stderr.splitlines()[0].endswith("): --server takes a mysqld or mariadbd binary"), proc.stderr
    assert len(proc.stderr.splitlines()) == 2
    assert not home.exists()
    # the program's own --version line, whole (it was cut at 80 characters: '... (x86_64) using )')
    line = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    shown = re.sub(r"^\S*/", "", line).strip()
    assert proc.stderr.splitlines()[0] == (f"error: {program} is not a MySQL or MariaDB server ({shown}): "
                                           "--server takes a mysqld or mariadbd binary"), proc.stderr


def test_read_only_home(tmp_path, cli):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        _assert_clean_error(cli("up", home=ro / "lab"), "not writable")
        _assert_clean_error(cli("up", home=ro), "not writable")
    finally:
        os.chmod(ro, 0o755)
    assert list(ro.iterdir()) == []


def test_no_cluster(tmp_path, cli):
    for cmd in (["status"], ["sql", "mysql-m", "SELECT 1"]):
        _assert_clean_error(cli(*cmd, home=tmp_path / "none"), "no cluster")
    down = cli("down", home=tmp_path / "none")  # idempotent: nothing to stop is not an error
    assert down.returncode == 0 and "no cluster in" in down.stdout and "nothing to stop" in down.stdout


def test_corrupt_state(tmp_path, cli):
    home = tmp_path / "corrupt"
    home.mkdir()
    (home / "cluster.json").write_text("{not json")
    _assert_clean_error(cli("status", home=home), "corrupt", "replab down stops its servers")
    down = cli("down", home=home)
    assert down.returncode == 0 and "stopped 0 process(es)" in down.stdout
    assert not home.exists()


def test_unknown_node_and_bad_sql(replab_cluster, cli):
    home = replab_cluster.home
    _assert_clean_error(cli("sql", "mysql-s7", "SELECT 1", home=home), "unknown node 'mysql-s7'")
    _assert_clean_error(cli("connect", "nope", home=home), "unknown node")
    _assert_clean_error(cli("sql", "mysql-m", "SELEC 1", home=home), "error 1064")


def test_node_dies_at_start(tmp_path, cli, server):
    home = tmp_path / "dies"
    toml = tmp_path / "replab.toml"
    toml.write_text("[server_options]\nno_such_server_option = 1\n")
    proc = cli("up", "--config", str(toml), "--server", server, home=home)
    _assert_clean_error(proc, "exited while starting", "last lines of the server log", "no_such_server_option")
    assert not home.exists()
    # issue 23.8: the hint named the error log inside the home the failed up had just removed; it names a
    # copy that is kept, and says so
    hint = next(line for line in proc.stderr.splitlines() if line.startswith("hint: "))
    assert str(home) not in hint.split(" (a copy: ")[0], hint
    assert hint.endswith(f" (a copy: {home} was removed with what this up had started)"), hint
    kept = Path(hint.removeprefix("hint: see ").split(" (a copy: ")[0])
    assert kept.name == "nodes-mysql-m-error.log" and "unknown variable 'no_such_server_option=1'" in \
        kept.read_text(), kept.read_text()
    assert servers_under(tmp_path) == []


def _replab_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REPLAB_HOME", None)
    return env


@pytest.mark.parametrize("after,twice", [(0.05, False), (0.3, False), (0.6, True), (0.9, True)])
def test_ctrl_c_during_up_stops_cleanly_and_leaves_nothing(tmp_path, after, twice):
    """Issue 23.7: Ctrl-C during up (`timeout -s INT 0.28 replab up`) printed a raw KeyboardInterrupt
    traceback, and later in the build left processes running. Wherever it lands: no traceback, exit 130,
    one line saying so, and either nothing is left or (it came too late) the whole cluster is. ``twice``:
    as `timeout -s INT` does (to the command, then to its process group), or a user pressing it again."""
    home = tmp_path / "h"
    proc = subprocess.Popen([*REPLAB, "--home", str(home), "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_replab_env())
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    try:
        assert "Traceback" not in err and "Exception ignored" not in err, err
        if proc.returncode == 0:  # finished before the signal: a complete cluster
            assert {s.state for s in Cluster.open(home).status()} == {"running"}
            return
        if proc.returncode == -signal.SIGINT:  # so early that Python had not set its handler: the default ends it
            assert err == "", err
        else:
            assert proc.returncode == 130, (proc.returncode, err)
            assert err.splitlines()[-1].startswith("interrupted"), err
        assert not home.exists(), list(home.iterdir())
        assert strays.find(home) == [], strays.find(home)
    finally:
        teardown_home(home)
        strays.stop(strays.find(home))


def test_up_while_another_up_builds_waits_and_is_not_undone(tmp_path):
    """Issue 23.9: a second `up` on a home whose cluster another `up` was still building said "already
    running; nothing changed"; the first was then interrupted, and its clean-up removed the cluster the
    second had called running. Now the second waits for the first (the home's lock) and, the first having
    left nothing, builds its own."""
    home = tmp_path / "race"
    first = subprocess.Popen([*REPLAB, "--home", str(home), "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_replab_env())
    second = None
    try:
        assert wait_for(lambda: (home / "cluster.json").exists(), 60)  # the first is building now
        second = subprocess.Popen([*REPLAB, "--home", str(home), "up"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_replab_env())
        time.sleep(0.3)
        first.send_signal(signal.SIGINT)
        _, err1 = first.communicate(timeout=120)
        _, err2 = second.communicate(timeout=120)
        assert first.returncode == 130 or "cluster ready" in err1, err1
        assert second.returncode == 0, err2
        assert "already running; nothing changed" not in err2 or first.returncode == 0, err2
        status = Cluster.open(home).status()  # the cluster the second up printed is there and replicates
        assert [(s.name, s.state, s.io_running, s.sql_running) for s in status] == [
            ("mysql-m", "running", None, None), ("mysql-s1", "running", True, True),
            ("mysql-s2", "running", True, True)]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        teardown_home(home)
        strays.stop(strays.find(home))


def test_a_cluster_whose_up_never_finished_is_not_called_running(tmp_path, cli):
    """A state left by an up that stopped part-way (killed before its clean-up) is not a running cluster."""
    home = tmp_path / "half"
    assert cli("up", "--nodes", "2", home=home).returncode == 0
    try:
        state = json.loads((home / "cluster.json").read_text())
        (home / "cluster.json").write_text(json.dumps({**state, "status": "creating"}))
        proc = cli("up", home=home)
        _assert_clean_error(proc, f"the cluster in {home} was never finished: an earlier replab up stopped "
                                  "part-way", f"replab --home {home} down")
    finally:
        assert cli("down", home=home).returncode == 0
