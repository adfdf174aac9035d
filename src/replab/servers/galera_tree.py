"""Adding the Galera provider (Debian's ``galera-4``) to a catalogue server's private tree.

A catalogue MariaDB (``mariadb-11.8``, from Debian trixie) runs through its tree's own loader and libraries,
so its wsrep provider must come from the same suite and live in the same tree: the host's bookworm
``libgalera_smm.so`` is built for the host's libraries. ``add_galera(name)`` fetches ``galera-4`` with the
host's ``apt-get`` against the tree's own ``sources.list`` (private package lists in the cache: the host's
apt state is never touched) and unpacks it into the tree with ``dpkg-deb -x``. It is idempotent: a tree
that has the provider already is left as it is (``make test`` runs it every time; the second run costs a
stat). New catalogue fetches need nothing else: ``galera-4``'s dependencies (libc6, libssl3t64,
libstdc++6) are in every MariaDB tree.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..core.errors import BinaryNotFound, ConfigError, ReplabError
from .catalogue import Server, _locked, find_program, installed, servers_dir

PACKAGE = "galera-4"
PROVIDER = Path("usr/lib/galera/libgalera_smm.so")
Say = Callable[[str], None]


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
    found = tree_provider(server)
    if found:
        say(f"{name}: Galera provider already in its tree ({found})")
        return found
    fetch_into_tree(name, Path(server.root), PACKAGE, PROVIDER, say)
    return Path(server.root) / PROVIDER


def fetch_into_tree(name: str, root: Path, package: str, expect: Path, say: Say) -> None:
    """Fetch Debian package ``package`` from the suite of catalogue server ``name``'s tree (its own
    ``sources.list``, private package lists: the host's apt state is never touched) and unpack it into the
    tree with ``dpkg-deb -x``; ``expect`` (relative to the tree) must exist afterwards. Under the catalogue's
    lock; nothing is fetched when ``expect`` is there already."""
    apt = find_program(["apt-get"])
    if not apt:
        raise BinaryNotFound(f"apt-get is not installed (replab fetches {package} with it)")
    sources = root / "etc" / "apt" / "sources.list"
    if not sources.exists():
        raise ReplabError(f"{name}'s tree has no {sources}: cannot tell its Debian suite",
                          hint=f"fetch it again: replab servers remove {name} && replab servers add {name}")
    with _locked():
        if (root / expect).exists():
            return
        t0 = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{package}-{name}-", dir=servers_dir()))
        try:
            for d in ("lists/partial", "cache/archives/partial"):
                (tmp / d).mkdir(parents=True)
            opts = ["-q", "-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
                    "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache={tmp / 'cache'}",
                    "-o", f"Dir::State::status={root / 'var/lib/dpkg/status'}", "-o", "Acquire::Languages=none",
                    "-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Sandbox::User=root"]
            say(f"{name}: fetching {package} from the tree's Debian suite (package lists ~10 MB, once)")
            _run([apt, *opts, "update"], tmp, "apt-get update")
            _run([apt, *opts, "download", package], tmp, f"apt-get download {package}")
            debs = sorted(tmp.glob(f"{package}_*.deb"))
            if not debs:
                raise ReplabError(f"apt-get download {package} left no package file")
            _run(["dpkg-deb", "-x", str(debs[0]), str(root)], tmp, "dpkg-deb -x")
            if not (root / expect).exists():
                raise ReplabError(f"{debs[0].name} has no {expect}")
            say(f"{name}: {debs[0].name} unpacked into {root} in {time.monotonic() - t0:.1f}s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ReplabError(f"{what} took more than 600s; gave up") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:300]
        raise ReplabError(f"{what} failed: {tail}",
                          hint="check that this machine reaches Debian's package archive (apt-get update)")
