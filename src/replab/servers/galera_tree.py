"""Adding the Galera provider (Debian's ``galera-4``) to a catalogue server's private tree.

A catalogue MariaDB (``mariadb-11.8``, from Debian trixie) runs through its tree's own loader and libraries,
so its wsrep provider must come from the same suite and live in the same tree: the host's bookworm
``libgalera_smm.so`` is built for the host's libraries. ``add_galera(name)`` fetches ``galera-4`` with the
host's ``apt-get`` against the tree's own ``sources.list`` (private package lists in the cache: the host's
apt state is never touched) and unpacks it into the tree with ``dpkg-deb -x``.

A full state transfer (SST) runs ``wsrep_sst_mariabackup`` by name, which runs ``mariadb-backup``,
``mbstream`` and ``my_print_defaults`` by name: they must be the tree's own too (the system's 10.11 script and
``mbstream`` do not read 11.8's backup format: the joiner failed with "xtrabackup_checkpoints missing").
The scripts are in Debian's ``mariadb-server`` package (not ``mariadb-server-core``): ``add_galera`` takes
only the ``usr/bin/wsrep_sst_*`` files from the same suite's ``mariadb-server`` (the version of the tree's
``mariadb-server-core`` when the suite still has it) and gives them and ``mbstream`` shims in the tree's
shim directory, which the server finds first on its PATH (``Server.environment``).

It is idempotent and only adds: a tree that has every piece is left as it is (``make test`` runs it every
time; the second run costs a few stats), a tree that lacks some (one that got the provider before the SST
scripts were added here) gets just those, and no existing file is rewritten. ``galera-4``'s dependencies
(libc6, libssl3t64, libstdc++6) are in every MariaDB tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BinaryNotFound, ConfigError, ReplabError
from .catalogue import Server, _locked, add_shims, find_program, installed, servers_dir

PACKAGE = "galera-4"
PROVIDER = Path("usr/lib/galera/libgalera_smm.so")
SST_PACKAGE = "mariadb-server"  # the SST scripts are there, not in mariadb-server-core
SST_FILES = "usr/bin/wsrep_sst_"  # only these files of it
SST_SCRIPT = Path("usr/bin/wsrep_sst_mariabackup")
SERVER_PACKAGE = "mariadb-server-core"  # the tree's server: the scripts are taken at its version
Say = Callable[[str], None]


@dataclass(frozen=True)
class Wanted:
    """A Debian package to put into a tree: all of it, or only its files under ``only`` (a path prefix)."""

    package: str
    expect: Path  # relative to the tree: there afterwards; nothing is fetched when it is there already
    only: str | None = None
    version: str | None = None  # this version if the suite still carries it, else the suite's


def _sst_shimmed(name: str) -> bool:
    return name == "mbstream" or name.startswith("wsrep_sst_")


def tree_provider(server: Server) -> Path | None:
    """The provider inside ``server``'s tree, if it has one."""
    if not server.root:
        return None
    path = Path(server.root) / PROVIDER
    return path if path.exists() else None


def add_galera(name: str, say: Say | None = None) -> Path:
    """Put ``galera-4`` from the tree's own Debian suite into catalogue server ``name``'s tree; return the
    provider's path. Nothing is fetched when it is there already."""
    say = say or (lambda _m: None)
    server = next((s for s in installed() if s.name == name), None)
    if server is None or not server.root:
        have = ", ".join(s.name for s in installed() if s.root and s.flavor == "mariadb") or "none"
        raise ConfigError(f"{name} is not a catalogue MariaDB with a private tree (those here: {have})",
                          hint="the system's MariaDB takes Galera from: apt-get install galera-4")
    if server.flavor != "mariadb":
        raise ConfigError(f"{name} is {server.flavor}: Galera is for MariaDB", hint="use --topology group on MySQL")
    root = Path(server.root)
    wanted: list[Wanted] = []
    found = tree_provider(server)
    if found:
        say(f"{name}: Galera provider already in its tree ({found})")
    else:
        wanted.append(Wanted(PACKAGE, PROVIDER))
    if (root / SST_SCRIPT).exists():
        say(f"{name}: SST scripts already in its tree ({root / SST_SCRIPT})")
    else:
        wanted.append(Wanted(SST_PACKAGE, SST_SCRIPT, SST_FILES, installed_version(root, SERVER_PACKAGE)))
    if wanted:
        fetch_packages(name, root, wanted, say)
    with _locked():
        shims = add_shims(server, _sst_shimmed)
    if shims:
        say(f"{name}: shims for {', '.join(shims)} in {server.base}")
    return root / PROVIDER


def tree_sst_tools(server: Server) -> dict[str, Path | None]:
    """Where ``server``'s own SST script, mariadb-backup and mbstream are for its server (its shims), None for a
    missing one; empty for a build without a tree."""
    if not server.root or not server.base:
        return {}
    out: dict[str, Path | None] = {}
    for prog in (SST_SCRIPT.name, "wsrep_sst_common", "mariadb-backup", "mbstream"):
        path = Path(server.base) / "bin" / prog
        out[prog] = path if path.exists() else None
    return out


def installed_version(root: Path, package: str) -> str | None:
    """The version of ``package`` in the tree's dpkg database, or None."""
    try:
        proc = subprocess.run(["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W", "-f=${Version}", package],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    version = proc.stdout.strip() if proc.returncode == 0 else ""
    return version or None


def fetch_into_tree(name: str, root: Path, package: str, expect: Path, say: Say) -> None:
    """Fetch Debian package ``package`` from the suite of catalogue server ``name``'s tree and unpack it into
    the tree (see ``fetch_packages``)."""
    fetch_packages(name, root, [Wanted(package, expect)], say)


def fetch_packages(name: str, root: Path, wanted: list[Wanted], say: Say) -> None:
    """Fetch Debian packages from the suite of catalogue server ``name``'s tree (its own ``sources.list``,
    private package lists: the host's apt state is never touched; one ``apt-get update`` for all) and unpack
    each into the tree: all of it with ``dpkg-deb -x``, or only its files under ``only``, which never replace
    a file the tree has. Each one's ``expect`` (relative to the tree) must exist afterwards. Under the
    catalogue's lock; nothing is fetched for a package whose ``expect`` is there already."""
    names = ", ".join(w.package for w in wanted)
    apt = find_program(["apt-get"])
    if not apt:
        raise BinaryNotFound(f"apt-get is not installed (replab fetches {names} with it)")
    sources = root / "etc" / "apt" / "sources.list"
    if not sources.exists():
        raise ReplabError(f"{name}'s tree has no {sources}: cannot tell its Debian suite",
                          hint=f"fetch it again: replab servers remove {name} && replab servers add {name}")
    with _locked():
        wanted = [w for w in wanted if not (root / w.expect).exists()]
        if not wanted:
            return
        names = ", ".join(w.package for w in wanted)
        t0 = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{wanted[0].package}-{name}-", dir=servers_dir()))
        try:
            for d in ("lists/partial", "cache/archives/partial"):
                (tmp / d).mkdir(parents=True)
            opts = ["-q", "-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
                    "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache={tmp / 'cache'}",
                    "-o", f"Dir::State::status={root / 'var/lib/dpkg/status'}", "-o", "Acquire::Languages=none",
                    "-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Sandbox::User=root"]
            say(f"{name}: fetching {names} from the tree's Debian suite (package lists ~10 MB, once)")
            _run([apt, *opts, "update"], tmp, "apt-get update")
            for want in wanted:
                deb = _download(apt, opts, want, tmp, name, say)
                if want.only is None:
                    _run(["dpkg-deb", "-x", str(deb), str(root)], tmp, "dpkg-deb -x")
                    what = "unpacked"
                else:
                    added = _unpack_only(deb, want.only, root, want.expect, tmp)
                    what = f"{len(added)} files of it ({want.only}*: {', '.join(added) or 'none new'}) added"
                if not (root / want.expect).exists():
                    raise ReplabError(f"{deb.name} has no {want.expect}")
                say(f"{name}: {deb.name}: {what} into {root} in {time.monotonic() - t0:.1f}s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _download(apt: str, opts: list[str], want: Wanted, tmp: Path, name: str, say: Say) -> Path:
    """``apt-get download`` of ``want.package`` into ``tmp``: at ``want.version`` when the suite still
    carries it, else the suite's version (said)."""
    package = want.package
    if want.version:
        pinned = subprocess.run([apt, *opts, "download", f"{package}={want.version}"], cwd=tmp,
                                capture_output=True, text=True, timeout=600)
        if pinned.returncode != 0:
            say(f"{name}: {package} {want.version} (the tree's version) is no longer in its suite: taking the "
                "suite's")
    if not sorted(tmp.glob(f"{package}_*.deb")):
        _run([apt, *opts, "download", package], tmp, f"apt-get download {package}")
    debs = sorted(tmp.glob(f"{package}_*.deb"))
    if not debs:
        raise ReplabError(f"apt-get download {package} left no package file")
    return debs[0]


def _unpack_only(deb: Path, only: str, root: Path, expect: Path, tmp: Path) -> list[str]:
    """Put the files of ``deb`` whose path starts with ``only`` into the tree, each renamed into place (a
    tree in use never shows half a file), ``expect`` last (its presence means the others are there); a file
    the tree has already is left alone. Returns the names added."""
    stage = tmp / "stage"
    stage.mkdir()
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    picked: list[str] = []
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                rel = member.name.removeprefix("./")
                if rel.startswith(only) and (member.isfile() or member.issym()):
                    tar.extract(member, stage, filter="data")
                    picked.append(rel)
    except tarfile.TarError as exc:
        raise ReplabError(f"{deb.name} could not be read ({exc})") from None
    finally:
        proc.stdout.close()
        proc.wait(60)
    added: list[str] = []
    for rel in sorted(picked, key=lambda r: Path(r) == expect):
        target = root / rel
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage / rel, target)
        added.append(Path(rel).name)
    return added


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ReplabError(f"{what} took more than 600s; gave up") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:300]
        raise ReplabError(f"{what} failed: {tail}",
                          hint="check that this machine reaches Debian's package archive (apt-get update)")
