"""`replab servers`: listing, adding, removing, and every bad input (exit 2, one or two lines, nothing
half-fetched left in the cache)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from catalogue import require

from replab.core.errors import ReplabError
from replab.servers import catalogue as servers


def _leftovers() -> list[str]:
    root = servers.servers_dir()
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".tmp")) if root.is_dir() else []


def test_list_shows_the_system_default_and_fetched_servers(cli):
    require("mysql-9.7")
    out = cli("servers")
    assert out.returncode == 0, out.stderr
    assert "(default)" in out.stdout and "mysql-9.7" in out.stdout
    data = json.loads(cli("servers", "--json").stdout)
    names = {s["name"]: s for s in data["installed"]}
    assert names["mysql-9.7"]["flavor"] == "mysql" and names["mysql-9.7"]["version"].startswith("9.7.")
    assert names["mysql-9.7"]["kind"] == "debian" and names["mysql-9.7"]["size"] > 100 * 1024**2
    system = data["installed"][0]
    assert system["kind"] == "system" and system["name"] == "mariadb-10.11"


def test_adding_an_installed_server_fetches_nothing(cli):
    require("mysql-9.7")
    out = cli("servers", "add", "mysql-9.7")
    assert out.returncode == 0 and "already installed" in out.stderr and "fetching" not in out.stderr


@pytest.mark.parametrize("args, words", [
    (["servers", "add", "mysql-1.0"], ["unknown server 'mysql-1.0'", "mysql-9.7"]),
    (["servers", "add", "mariadb-10.11"], ["this machine's own server", "nothing to add"]),
    (["servers", "remove", "mysql-1.0"], ["not in the catalogue's cache"]),
    (["servers", "remove", "mariadb-10.11"], ["this machine's own server"]),
    (["up", "--server", "nosuch"], ["unknown server 'nosuch'", "replab servers"]),
    (["up", "--server", "/no/such/mysqld"], ["not found"]),
    (["up", "--server", "mysql-9.7", "--replica-server", "mariadb-11.8"], ["cannot mix mysql", "GTIDs"]),
    (["up", "--server", "mariadb-11.8", "--replica-server", "mariadb-10.11"], ["older than the primary"]),
])
def test_bad_input_is_refused_with_exit_2(tmp_path, cli, args, words):
    if "mysql-9.7" in args or "mariadb-11.8" in args:
        require("mysql-9.7")
        require("mariadb-11.8")
    home = tmp_path / "lab"
    r = cli(*args, home=home)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert not home.exists()  # nothing half-created


def test_a_tarball_that_is_no_server_distribution_is_refused(tmp_path, cli):
    junk = tmp_path / "junk"
    (junk / "bin").mkdir(parents=True)
    (junk / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    tar = tmp_path / "junk.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(junk, arcname="junk")
    r = cli("servers", "add", str(tar))
    assert r.returncode == 2 and "not a MySQL/MariaDB binary distribution" in r.stderr, r.stderr
    (tmp_path / "notatar.tar.gz").write_text("hello")
    r = cli("servers", "add", str(tmp_path / "notatar.tar.gz"))
    assert r.returncode == 2 and "not a readable tar archive" in r.stderr, r.stderr
    assert _leftovers() == []


def _fake_mariadb_tarball(tmp_path: Path) -> Path:
    """A binary tarball in the upstream layout, made of this machine's MariaDB programs."""
    top = tmp_path / "mariadb-10.11.99-linux-x86_64"
    for sub in ("bin", "sbin", "scripts", "lib/mysql"):
        (top / sub).mkdir(parents=True)
    shutil.copy2("/usr/sbin/mariadbd", top / "sbin")
    for prog in ("mariadb", "mariadb-dump", "my_print_defaults", "mariadb-binlog"):
        shutil.copy2(f"/usr/bin/{prog}", top / "bin")
    shutil.copy2("/usr/bin/mariadb-install-db", top / "scripts")
    shutil.copytree("/usr/share/mysql", top / "share" / "mysql")
    shutil.copytree("/usr/lib/mysql/plugin", top / "lib" / "mysql" / "plugin")
    tar = tmp_path / "mariadb-fake.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(top, arcname=top.name)
    shutil.rmtree(top)
    return tar


def test_tarball_server_runs_a_cluster_and_cannot_be_removed_while_in_use(tmp_path, cli, monkeypatch):
    if not os.path.exists("/usr/sbin/mariadbd"):
        pytest.skip("needs the system's MariaDB to make the tarball")
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPLAB_CACHE", str(cache))  # a private catalogue: the real one is not touched
    tar = _fake_mariadb_tarball(tmp_path)
    env = {"REPLAB_CACHE": str(cache)}
    r = cli("servers", "add", str(tar), env=env)
    assert r.returncode == 0, r.stderr
    name = r.stdout.split(":")[0]
    assert name.startswith("mariadb-10.11.")
    again = cli("servers", "add", str(tar), env=env)
    assert again.returncode == 2 and "already installed" in again.stderr
    home = tmp_path / "lab"
    up = cli("up", "--server", name, home=home, env=env)
    assert up.returncode == 0, up.stderr
    try:
        status = json.loads(cli("status", "--json", home=home, env=env).stdout)
        assert all(n["state"] == "running" for n in status["nodes"])
        busy = cli("servers", "remove", name, env=env)
        assert busy.returncode == 2 and "in use by running servers" in busy.stderr
    finally:
        assert cli("down", home=home, env=env).returncode == 0
    gone = cli("servers", "remove", name, env=env)
    assert gone.returncode == 0 and not (cache / "servers" / name).exists()


def test_a_package_the_archive_lacks_is_named_and_nothing_is_left(monkeypatch, tmp_path):
    if not shutil.which("mmdebstrap"):
        pytest.skip("mmdebstrap is not installed")
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    bogus = servers.Known("mysql-0.1", "mysql", "0.1", "trixie", ("replab-no-such-package",))
    monkeypatch.setitem(servers.KNOWN, "mysql-0.1", bogus)
    with pytest.raises(ReplabError) as info:
        servers.add("mysql-0.1")
    assert "replab-no-such-package" in str(info.value)
    assert _leftovers() == [] and not (tmp_path / "cache" / "servers" / "mysql-0.1").exists()


def test_not_enough_disk_space_is_said_before_fetching(monkeypatch, tmp_path):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(servers, "MIN_FREE_BYTES", 10**18)
    with pytest.raises(ReplabError) as info:
        servers.add("mariadb-11.8")
    assert "not enough disk space" in str(info.value)
    assert _leftovers() == []
