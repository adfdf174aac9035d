"""What ``replab servers add-galera`` puts into a catalogue tree, on made-up trees and packages (no network):
the SST scripts only from ``mariadb-server``, never replacing a file; shims for them and ``mbstream``, never
rewriting one; an existing tree with the provider gets just the missing SST pieces; a second run fetches
nothing. The real SST on 11.8 is ``test_galera.py::test_rejoin_by_sst_when_the_gcache_lost_the_gap``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from replab.servers import galera_tree
from replab.servers.catalogue import Server, add_shims

ELF = b"\x7fELF" + b"\0" * 60


def _deb(tmp_path: Path, files: dict[str, bytes], links: dict[str, str]) -> Path:
    """A .deb (dpkg-deb -b) holding ``files`` and relative ``links`` (path -> target)."""
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: mariadb-server\nVersion: 1:11.8.9\nArchitecture: all\n"
                                            "Maintainer: x <x@example.org>\nDescription: test\n")
    for rel, data in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(data)
        (pkg / rel).chmod(0o755)
    for rel, target in links.items():
        (pkg / rel).symlink_to(target)
    deb = tmp_path / "mariadb-server_11.8.9_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


def test_only_the_sst_scripts_are_taken_and_no_file_is_replaced(tmp_path):
    deb = _deb(tmp_path, {"usr/bin/wsrep_sst_common": b"new common\n", "usr/bin/wsrep_sst_mariabackup": b"sst\n",
                          "usr/bin/galera_recovery": b"other\n", "usr/share/mariadb/wsrep.cnf": b"cnf\n"},
               {"usr/bin/wsrep_sst_rsync_wan": "wsrep_sst_common"})
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/wsrep_sst_common").write_text("the tree's own\n")
    work = tmp_path / "work"
    work.mkdir()
    added = galera_tree._unpack_only(deb, galera_tree.SST_FILES, root, galera_tree.SST_SCRIPT, work)
    assert added == ["wsrep_sst_rsync_wan", "wsrep_sst_mariabackup"]  # the expected file last
    assert (root / "usr/bin/wsrep_sst_common").read_text() == "the tree's own\n"
    assert (root / "usr/bin/wsrep_sst_mariabackup").read_text() == "sst\n"
    assert os.access(root / "usr/bin/wsrep_sst_mariabackup", os.X_OK)
    assert os.readlink(root / "usr/bin/wsrep_sst_rsync_wan") == "wsrep_sst_common"
    assert sorted(p.name for p in (root / "usr/bin").iterdir()) == [
        "wsrep_sst_common", "wsrep_sst_mariabackup", "wsrep_sst_rsync_wan"]
    assert not (root / "usr/share").exists()


def _tree(tmp_path: Path) -> Server:
    """A made-up catalogue MariaDB 11.8: a tree with a loader, a server, mariadb-backup with its shim, mbstream
    and an SST script without shims, and a dpkg database naming its mariadb-server-core."""
    entry = tmp_path / "cache" / "servers" / "mariadb-11.8"
    root, shim = entry / "root", entry / "shim"
    for d in ("lib64", "usr/lib/x86_64-linux-gnu", "usr/bin", "usr/sbin", "var/lib/dpkg", "etc/apt"):
        (root / d).mkdir(parents=True)
    (root / "lib64/ld-linux-x86-64.so.2").write_bytes(ELF)
    (root / "etc/apt/sources.list").write_text("deb http://deb.debian.org/debian trixie main\n")
    (root / "var/lib/dpkg/status").write_text("Package: mariadb-server-core\nStatus: install ok installed\n"
                                              "Architecture: amd64\nVersion: 1:11.8.9+ds-0+deb13u1\n"
                                              "Maintainer: x <x@example.org>\nDescription: test\n")
    for prog in ("usr/bin/mbstream", "usr/bin/mariadb-backup", "usr/sbin/mariadbd"):
        (root / prog).write_bytes(ELF)
        (root / prog).chmod(0o755)
    (shim / "bin").mkdir(parents=True)
    (shim / "sbin").mkdir()
    (shim / "bin/mariadb-backup").write_text("#!/bin/sh\n# the shim made at fetch time\n")
    (shim / "sbin/mariadbd").write_text("#!/bin/sh\nexec true\n")
    (shim / "sbin/mariadbd").chmod(0o755)
    server = Server(name="mariadb-11.8", flavor="mariadb", version="11.8.9", version_line="mariadbd 11.8.9",
                    kind="debian", binary=str(shim / "sbin/mariadbd"), bindirs=[str(shim / "sbin"), str(shim / "bin")],
                    root=str(root), base=str(shim))
    (entry / "server.json").write_text(json.dumps(server.to_dict()))
    return server


def test_shims_are_added_for_the_missing_ones_only(tmp_path):
    server = _tree(tmp_path)
    root, shim = Path(server.root), Path(server.base)
    (root / "usr/bin/wsrep_sst_mariabackup").write_text("#!/bin/bash\n")
    (root / "usr/bin/wsrep_sst_mariabackup").chmod(0o755)
    assert add_shims(server, galera_tree._sst_shimmed) == ["mbstream", "wsrep_sst_mariabackup"]
    assert (shim / "bin/mbstream").read_text() == (
        f'#!/bin/sh\nexec "{root}/lib64/ld-linux-x86-64.so.2" --library-path "{root}/usr/lib/x86_64-linux-gnu" '
        f'--argv0 "{root}/usr/bin/mbstream" "{root}/usr/bin/mbstream" "$@"\n')
    assert os.access(shim / "bin/mbstream", os.X_OK)
    assert os.readlink(shim / "bin/wsrep_sst_mariabackup") == str(root / "usr/bin/wsrep_sst_mariabackup")
    assert (shim / "bin/mariadb-backup").read_text() == "#!/bin/sh\n# the shim made at fetch time\n"
    assert add_shims(server, galera_tree._sst_shimmed) == []
    assert not [p.name for p in (shim / "bin").iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_tree_with_the_provider_gets_the_sst_pieces_then_nothing(tmp_path, monkeypatch):
    """The tree a colleague's add-galera made (provider, no SST scripts): the next run fetches only
    mariadb-server's wsrep_sst_* at the tree's server version, and shims them and mbstream; the run after
    that fetches nothing."""
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    server = _tree(tmp_path)
    root, shim = Path(server.root), Path(server.base)
    (root / galera_tree.PROVIDER).parent.mkdir(parents=True)
    (root / galera_tree.PROVIDER).write_bytes(ELF)
    fetched: list[list[galera_tree.Wanted]] = []

    def fetch(name, tree, wanted, say):  # what the archive would give: the two scripts
        fetched.append(wanted)
        for script in ("wsrep_sst_common", "wsrep_sst_mariabackup"):
            (tree / "usr/bin" / script).write_text("#!/bin/bash\n")
            (tree / "usr/bin" / script).chmod(0o755)
    monkeypatch.setattr(galera_tree, "fetch_packages", fetch)
    said: list[str] = []
    assert galera_tree.add_galera("mariadb-11.8", said.append) == root / galera_tree.PROVIDER
    assert fetched == [[galera_tree.Wanted("mariadb-server", Path("usr/bin/wsrep_sst_mariabackup"),
                                           "usr/bin/wsrep_sst_", "1:11.8.9+ds-0+deb13u1")]]
    assert said == [f"mariadb-11.8: Galera provider already in its tree ({root / galera_tree.PROVIDER})",
                    f"mariadb-11.8: shims for mbstream, wsrep_sst_common, wsrep_sst_mariabackup in {shim}"]
    assert galera_tree.tree_sst_tools(server) == {
        "wsrep_sst_mariabackup": shim / "bin/wsrep_sst_mariabackup", "wsrep_sst_common": shim / "bin/wsrep_sst_common",
        "mariadb-backup": shim / "bin/mariadb-backup", "mbstream": shim / "bin/mbstream"}
    said.clear()
    assert galera_tree.add_galera("mariadb-11.8", said.append) == root / galera_tree.PROVIDER
    assert len(fetched) == 1
    assert said == [f"mariadb-11.8: Galera provider already in its tree ({root / galera_tree.PROVIDER})",
                    f"mariadb-11.8: SST scripts already in its tree ({root / galera_tree.SST_SCRIPT})"]


def test_a_relocated_build_runs_with_its_own_programs_first_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    server = _tree(tmp_path)
    env = server.environment()
    assert env is not None and env["PATH"] == f"{server.base}/sbin:{server.base}/bin:/usr/bin:/bin"
    system = Server(name="mariadb-10.11", flavor="mariadb", version="10.11.6", version_line="x", kind="system",
                    binary="/usr/sbin/mariadbd", bindirs=["/usr/sbin"])
    assert system.environment() is None


@pytest.mark.parametrize("missing", ["provider", "both"])
def test_a_fresh_tree_fetches_what_it_lacks_in_one_go(tmp_path, monkeypatch, missing):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    server = _tree(tmp_path)
    root = Path(server.root)
    if missing == "provider":
        (root / "usr/bin/wsrep_sst_mariabackup").write_text("#!/bin/bash\n")
    fetched: list[list[str]] = []
    monkeypatch.setattr(galera_tree, "fetch_packages", lambda n, t, wanted, s: fetched.append(
        [w.package for w in wanted]))
    galera_tree.add_galera("mariadb-11.8")
    assert fetched == [["galera-4"] if missing == "provider" else ["galera-4", "mariadb-server"]]


def test_a_fresh_fetch_shims_mbstream(tmp_path):
    """``replab servers add mariadb-11.8`` writes the shims of a new tree: mbstream (mariadb-backup's stream
    tool, which the SST script runs by name) is among them now, with the tools it had before."""
    from replab.servers.catalogue import _write_shims

    root = tmp_path / "root"
    for d in ("lib64", "usr/lib/x86_64-linux-gnu", "usr/bin", "usr/sbin", "usr/share"):
        (root / d).mkdir(parents=True)
    (root / "lib64/ld-linux-x86-64.so.2").write_bytes(ELF)
    for prog in ("usr/bin/mbstream", "usr/bin/mariadb-backup", "usr/bin/ls", "usr/sbin/mariadbd"):
        (root / prog).write_bytes(ELF)
        (root / prog).chmod(0o755)
    _write_shims(root, tmp_path / "shim", tmp_path / "final")
    assert sorted(p.name for p in (tmp_path / "shim/bin").iterdir()) == ["mariadb-backup", "mbstream"]
    assert (tmp_path / "shim/bin/mbstream").read_text().endswith(
        f'--argv0 "{tmp_path}/final/usr/bin/mbstream" "{tmp_path}/final/usr/bin/mbstream" "$@"\n')
    assert [p.name for p in (tmp_path / "shim/sbin").iterdir()] == ["mariadbd"]
