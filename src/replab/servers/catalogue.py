"""The server catalogue: which MySQL and MariaDB builds replab can run, and where their programs are.

A server is a named build:
- ``mariadb-10.11`` (or whatever the system has): the system's own ``mariadbd``/``mysqld``, nothing to add;
- ``mysql-9.7``, ``mariadb-11.8``: fetched once from Debian's package archive (newer suites) into a private
  tree under the cache by ``mmdebstrap``; the tree's programs run through the tree's own dynamic loader,
  so the host's libc is never touched;
- an upstream binary tarball (``mysql-8.4.3-linux-glibc2.28-x86_64.tar.xz``), unpacked into the cache;
- any server binary given by path (``--server /opt/mysql/bin/mysqld``).

Engines take a ``Server`` and ask it for programs (``server.program("dump")``) and for the options a
relocated build needs (``server.server_options()``); nothing else knows where binaries live.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BinaryNotFound, ConfigError, NotSupported, ReplabError
from ..core.state import cache_root
from .process import pids_with

Say = Callable[[str], None]

_EXTRA_PATH = ["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/libexec", "/opt/mysql/bin"]
INSTALL_HINT = "install it with: apt-get install mariadb-server mariadb-client (or put mysqld on PATH)"
MIN_FREE_BYTES = 2 * 1024**3  # a tree is ~0.5 GB; mmdebstrap needs room for the packages too
FETCH_TIMEOUT = 900

# What each tool is called, best name first, per flavor.
TOOLS: dict[str, dict[str, list[str]]] = {
    "mariadb": {
        "server": ["mariadbd", "mysqld"],
        "client": ["mariadb", "mysql"],
        "dump": ["mariadb-dump", "mysqldump"],
        "binlog": ["mariadb-binlog", "mysqlbinlog"],
        "backup": ["mariadb-backup", "mariabackup"],
        "install_db": ["mariadb-install-db", "mysql_install_db"],
    },
    "mysql": {
        "server": ["mysqld"],
        "client": ["mysql"],
        "dump": ["mysqldump"],
        "binlog": ["mysqlbinlog"],
        "backup": [],
        "install_db": [],
    },
}


@dataclass(frozen=True)
class Known:
    """A build replab knows how to fetch from Debian's archive."""

    name: str
    flavor: str
    series: str  # "9.7": the fetched server's version must start with this
    suite: str
    packages: tuple[str, ...]


KNOWN: dict[str, Known] = {k.name: k for k in (
    Known("mysql-9.7", "mysql", "9.7", "sid", ("mysql-server-core", "mysql-client-core")),
    Known("mariadb-11.8", "mariadb", "11.8", "trixie",
          ("mariadb-server-core", "mariadb-client-core", "mariadb-client", "mariadb-backup")),
    Known("mariadb-10.11", "mariadb", "10.11", "bookworm",
          ("mariadb-server-core", "mariadb-client-core", "mariadb-client", "mariadb-backup")),
)}

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def find_program(names: list[str], explicit: str | None = None, extra_dirs: list[str] | None = None) -> str | None:
    """First of ``names`` found on PATH (plus the usual sbin directories), or ``explicit`` if executable."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) and os.path.isfile(explicit) else None
    dirs = [*(extra_dirs or []), *os.environ.get("PATH", "").split(os.pathsep), *_EXTRA_PATH]
    for name in names:
        found = shutil.which(name, path=os.pathsep.join(d for d in dirs if d))
        if found:
            return found
    return None


def version_of(binary: str) -> str:
    """The ``--version`` line of a server binary."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, PermissionError):
        raise BinaryNotFound(f"server binary {binary} not found or not executable", hint=INSTALL_HINT) from None
    text = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or not text:
        raise BinaryNotFound(f"{binary} --version failed: {text[:200]}")
    line = text.splitlines()[0]
    return re.sub(r"\s*\(-- Please help.*\)\s*$", "", re.sub(r"^\S*/", "", line)).strip()


_SERVER_HELP = re.compile(r"Starts the (MySQL|MariaDB) database server")


def require_server(binary: str, version_line: str) -> None:
    """Refuse a binary that is not a MySQL or MariaDB server (mysqld/mariadbd): a client (``mariadb``,
    ``mysql``) or any other program. A server's ``--help`` says "Starts the MySQL database server." (MariaDB:
    "... MariaDB database server."); a client's and other programs' do not."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        text = ""
    if not _SERVER_HELP.search(text):
        # the whole line (cut at 80 it ended '... for debian-linux-gnu (x86_64) using )')
        shown = version_line if len(version_line) <= 160 else version_line[:157] + "..."
        raise ConfigError(f"{binary} is not a MySQL or MariaDB server ({shown}): --server takes a "
                          "mysqld or mariadbd binary",
                          hint="for example --server /usr/sbin/mariadbd, or a catalogue name (replab servers)")


def flavor_of(version_line: str) -> str:
    return "mariadb" if "mariadb" in version_line.lower() else "mysql"


def short_version(version_line: str) -> str:
    m = _VERSION.search(version_line)
    return ".".join(m.groups()) if m else "?"


@dataclass
class Server:
    """One runnable build. ``kind``: system | debian | tarball | path."""

    name: str
    flavor: str
    version: str  # x.y.z
    version_line: str
    kind: str
    binary: str
    bindirs: list[str] = field(default_factory=list)  # where its other programs are, searched first
    root: str = ""  # the tree or unpacked tarball ("" for system/path builds)
    base: str = ""  # --basedir for relocated builds
    size: int = 0
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def series(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def program(self, tool: str, required: bool = True) -> str | None:
        """The path of ``tool`` (server, client, dump, binlog, backup, install_db) for this build.

        A build from the catalogue uses its own programs only: a MySQL 9.7 dump must not be taken by the
        system's MariaDB client. System and path builds fall back to PATH.
        """
        names = TOOLS[self.flavor][tool]
        if tool == "server":
            return self.binary
        found = None
        if self.kind in ("debian", "tarball"):
            for d in self.bindirs:
                found = find_program(names, extra_dirs=[d]) if names else None
                if found and os.path.dirname(found) == d:
                    break
                found = None
        else:
            found = find_program(names, extra_dirs=self.bindirs)
        if not found and required:
            what = " or ".join(names) or tool
            where = f" in {self.root}" if self.root else ""
            raise BinaryNotFound(f"{self.name} has no {what}{where}",
                                 hint="apt-get install mariadb-client" if self.kind == "system" else
                                 f"fetch it again: replab servers remove {self.name} && replab servers add {self.name}")
        return found

    def environment(self) -> dict[str, str] | None:
        """The environment a relocated build's server runs in: its own program directories first on PATH, so
        what the server runs by name is the build's own, not the system's (Galera's SST script
        ``wsrep_sst_mariabackup``, which runs ``mariadb-backup``, ``mbstream`` and ``my_print_defaults`` by
        name). None (inherit replab's) for the system's and path builds."""
        if not self.base or not self.bindirs:
            return None
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*self.bindirs, env.get("PATH", "")])
        return env

    def server_options(self) -> dict[str, str]:
        """Options a relocated build needs to find its own files (none for the system's server)."""
        if not self.base:
            return {}
        base = Path(self.base)
        opts = {"basedir": str(base)}
        # error messages live in share/{mariadb,mysql}/english (Debian) or share/english (upstream tarballs)
        for share in (base / "share" / "mariadb", base / "share" / "mysql", base / "share"):
            if (share / "english").is_dir():
                opts["lc_messages_dir"] = str(share)
                if (share / "charsets").is_dir():
                    opts["character_sets_dir"] = str(share / "charsets")
                break
        for plugin in (base / "lib" / "mysql" / "plugin", base / "lib" / "plugin"):
            if plugin.is_dir():
                opts["plugin_dir"] = str(plugin)
                break
        return opts


# --- the catalogue on disk ------------------------------------------------------------------------
def servers_dir() -> Path:
    return cache_root() / "servers"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    root = servers_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _load_entry(directory: Path) -> Server | None:
    meta = directory / "server.json"
    try:
        data = json.loads(meta.read_text())
        server = Server(**{k: v for k, v in data.items() if k in Server.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None
    return server if os.access(server.binary, os.X_OK) else None


def system_server() -> Server | None:
    """The system's own server (Debian 12: MariaDB 10.11), or None when none is installed."""
    binary = find_program(["mariadbd", "mysqld"])
    if not binary:
        return None
    line = version_of(binary)
    flavor, version = flavor_of(line), short_version(line)
    series = ".".join(version.split(".")[:2])
    return Server(name=f"{flavor}-{series}", flavor=flavor, version=version, version_line=line, kind="system",
                  binary=binary, bindirs=[os.path.dirname(binary)], source="system packages")


def installed() -> list[Server]:
    """Every build replab can run now: the system's first, then the cache's by name."""
    out: list[Server] = []
    system = system_server()
    if system:
        out.append(system)
    root = servers_dir()
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.name.startswith("."):
                server = _load_entry(entry)
                if server and not (system and server.name == system.name):
                    out.append(server)
    return out


def available() -> list[Known]:
    """Builds that `replab servers add NAME` can fetch and are not there yet."""
    have = {s.name for s in installed()}
    return [k for k in KNOWN.values() if k.name not in have]


def from_binary(path: str) -> Server:
    """A build given by the path of its server binary (``--server /opt/mysql/bin/mysqld``)."""
    binary = find_program([], explicit=path)
    if not binary:
        raise BinaryNotFound(f"server binary {path} not found or not executable", hint=INSTALL_HINT)
    binary = os.path.abspath(binary)
    for entry in installed():  # a catalogue tree's binary: use the entry, it knows the loader and basedir
        if os.path.realpath(entry.binary) == os.path.realpath(binary):
            return entry
    line = version_of(binary)
    require_server(binary, line)
    flavor, version = flavor_of(line), short_version(line)
    bindir = os.path.dirname(binary)
    dirs = [bindir, os.path.join(os.path.dirname(bindir), "bin"), os.path.join(os.path.dirname(bindir), "scripts")]
    return Server(name=f"{flavor}-{version}", flavor=flavor, version=version, version_line=line, kind="path",
                  binary=binary, bindirs=list(dict.fromkeys(dirs)), source=binary)


def resolve(spec: str | None) -> Server:
    """The build a cluster runs: a catalogue name, a path to a server binary, or None for the default."""
    if spec is None or spec == "":
        system = system_server()
        if system is None:
            raise BinaryNotFound("no MySQL or MariaDB server is installed on this machine", hint=INSTALL_HINT)
        return system
    if os.sep in spec or os.path.isfile(spec):
        return from_binary(spec)
    have = installed()
    for server in have:
        if server.name == spec:
            return server
    names = ", ".join(s.name for s in have) or "none"
    if spec in KNOWN:
        raise ConfigError(f"server {spec} is not installed yet (installed: {names})",
                          hint=f"fetch it once with: replab servers add {spec}")
    known = ", ".join(sorted(set(KNOWN) | {s.name for s in have}))
    raise ConfigError(f"unknown server {spec!r}: known servers are {known}",
                      hint="list them with: replab servers; add one with: replab servers add NAME|TARBALL, "
                           "or pass the path of a mysqld/mariadbd binary")


# --- fetching from Debian's archive -----------------------------------------------------------------
def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _check_disk(where: Path, need: int | None = None) -> None:
    need = need or MIN_FREE_BYTES
    free = shutil.disk_usage(where).free
    if free < need:
        raise ReplabError(f"not enough disk space in {where}: {free / 1024**3:.1f} GB free, "
                          f"{need / 1024**3:.1f} GB needed",
                          hint="free some space, or point REPLAB_CACHE at a larger disk")


def _loader(root: Path) -> Path | None:
    for cand in ("lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                 "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"):
        if (root / cand).exists():
            return root / cand
    return None


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def _write_shims(root: Path, shim: Path, final_root: Path) -> None:
    """A directory of small launchers: each runs one of the tree's programs through the tree's own loader,
    with the tree's libraries, so they work on a host whose libc is older. Shell scripts keep their path
    (they call the shims by name through PATH), and the layout mirrors a basedir (bin, sbin, share, lib).
    ``root`` is scanned now; the shims name ``final_root``, where the tree will live."""
    for sub in ("bin", "sbin"):
        (shim / sub).mkdir(parents=True, exist_ok=True)
    _shim_programs(root, shim, final_root, lambda name: any(k in name for k in SHIMMED))
    for sub in ("share", "lib"):
        (shim / sub).symlink_to(final_root / "usr" / sub)


# the tree's programs that get a shim: the servers' and clients' tools, mariadb-backup's stream tool, and the
# Galera SST scripts (``wsrep_sst_*``, added by ``replab servers add-galera``) that call them by name
SHIMMED = ("mysql", "maria", "my_print_defaults", "resolveip", "mbstream", "wsrep_sst_")


def _shim_programs(root: Path, shim: Path, final_root: Path, wanted: Callable[[str], bool]) -> list[str]:
    """Write a shim in ``shim/bin`` or ``shim/sbin`` for each executable of the tree's ``usr/bin`` and
    ``usr/sbin`` whose name ``wanted`` accepts and that has none yet (an existing shim is never rewritten);
    return the names of those written. ELF programs get a launcher through the tree's loader, scripts a
    symlink (so ``$0`` stays in the shim directory, next to the other shims)."""
    loader = _loader(root)
    if loader is None:
        raise ReplabError(f"{root} has no dynamic loader: not a usable tree")
    loader = final_root / loader.relative_to(root)
    libs = ":".join(str(final_root / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu",
                                              "usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu")
                    if (root / d).is_dir())
    written: list[str] = []
    for sub in ("bin", "sbin"):
        src = root / "usr" / sub
        for prog in sorted(src.iterdir()) if src.is_dir() else []:
            if not (prog.is_file() and os.access(prog, os.X_OK)) or not wanted(prog.name):
                continue
            target = shim / sub / prog.name
            if target.exists() or target.is_symlink():
                continue
            real = final_root / prog.relative_to(root)
            tmp = target.with_name(f".{prog.name}.tmp")  # renamed into place: a tree in use never shows half a shim
            tmp.unlink(missing_ok=True)
            if _is_elf(prog):
                tmp.write_text(f'#!/bin/sh\nexec "{loader}" --library-path "{libs}" --argv0 "{real}" '
                               f'"{real}" "$@"\n')
                tmp.chmod(0o755)
            else:
                tmp.symlink_to(real)
            os.rename(tmp, target)
            written.append(prog.name)
    return written


def add_shims(server: Server, wanted: Callable[[str], bool]) -> list[str]:
    """Shims for programs added to catalogue tree ``server`` after it was fetched (e.g. by ``add-galera``):
    only the missing ones are written, nothing existing is changed; returns the names written."""
    if server.kind != "debian" or not server.root or not server.base:
        return []
    root, shim = Path(server.root), Path(server.base)
    for sub in ("bin", "sbin"):
        (shim / sub).mkdir(parents=True, exist_ok=True)
    return _shim_programs(root, shim, root, wanted)


def _mmdebstrap_failure(output: str, known: Known) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        m = re.search(r"Unable to locate package (\S+)|Package '?(\S+?)'? has no installation candidate", ln)
        if m:
            return f"Debian {known.suite} has no package {m.group(1) or m.group(2)}"
    for ln in lines:
        if "Failed to fetch" in ln or "Could not resolve" in ln or "Temporary failure" in ln:
            return f"could not fetch {', '.join(known.packages)} from Debian {known.suite}: {ln.strip()[:160]}"
    return "mmdebstrap failed: " + " | ".join(lines[-3:])[:300]


def _run_mmdebstrap(known: Known, target: Path, say: Say) -> None:
    tool = find_program(["mmdebstrap"])
    if not tool:
        raise BinaryNotFound("mmdebstrap is not installed (replab uses it to fetch servers from Debian's archive)",
                             hint="apt-get install mmdebstrap")
    argv = [tool, "--variant=essential", f"--include={','.join(known.packages)}",
            "--aptopt=Acquire::Check-Valid-Until \"false\"",
            "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*", known.suite, str(target)]
    say(f"fetching {', '.join(known.packages)} from Debian {known.suite} (about 20-60 s, once)")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line.rstrip())
        if line.startswith("I: ") and any(w in line for w in ("downloading", "extracting", "installing", "success")):
            say(f"  [{time.monotonic() - t0:5.1f}s] {line[3:].strip()}")
    try:
        proc.wait(timeout=FETCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise ReplabError(f"fetching {known.name} took more than {FETCH_TIMEOUT}s; gave up") from None
    if proc.returncode != 0:
        raise ReplabError(_mmdebstrap_failure("\n".join(seen), known),
                          hint="check that this machine reaches Debian's package archive (apt-get update)")


def _install(name: str, kind: str, source: str, entry: Path, root: Path, base: Path, bindirs: list[Path],
             binary: Path, expect_series: str | None = None, expect_flavor: str | None = None) -> Server:
    """Check the build in its final place ``entry`` runs, and record it; remove it on any failure."""
    try:
        line = version_of(str(binary))
        flavor, version = flavor_of(line), short_version(line)
        if expect_flavor and flavor != expect_flavor:
            raise ReplabError(f"{binary} is {flavor} {version}, not {expect_flavor}")
        if expect_series and not version.startswith(expect_series + "."):
            raise ReplabError(f"Debian's archive now carries {flavor} {version}, not {expect_series}",
                              hint=f"the catalogue entry {name} expects {expect_series}.x")
        server = Server(name=name, flavor=flavor, version=version, version_line=line, kind=kind,
                        binary=str(binary), bindirs=[str(d) for d in bindirs], root=str(root), base=str(base),
                        size=_dir_size(entry), source=source)
        (entry / "server.json").write_text(json.dumps(server.to_dict(), indent=2) + "\n")
        return server
    except BaseException:
        shutil.rmtree(entry, ignore_errors=True)
        raise


def _move_into_place(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)


def add(what: str, say: Say | None = None) -> Server:
    """Fetch a known build from Debian's archive, or unpack an upstream tarball, into the cache."""
    say = say or (lambda _m: None)
    if os.path.isfile(what) or what.endswith((".tar.gz", ".tar.xz", ".tgz", ".tar")):
        return add_tarball(what, say)
    known = KNOWN.get(what)
    if known is None:
        raise ConfigError(f"unknown server {what!r}: replab can fetch {', '.join(sorted(KNOWN))}",
                          hint="or give the path of an upstream MySQL/MariaDB binary tarball")
    system = system_server()
    if system and system.name == what:
        raise ConfigError(f"{what} is this machine's own server ({system.binary}): nothing to add",
                          hint=f"use it with: replab up --server {what}")
    with _locked():
        for server in installed():
            if server.name == what:
                say(f"{what} is already installed ({server.root}); nothing to fetch")
                return server
        root_dir = servers_dir()
        _check_disk(root_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{what}-", dir=root_dir))
        final = root_dir / what
        try:
            _run_mmdebstrap(known, tmp / "root", say)
            _write_shims(tmp / "root", tmp / "shim", final / "root")
            names = [n for n in TOOLS[known.flavor]["server"] if (tmp / "shim" / "sbin" / n).exists()]
            if not names:
                raise ReplabError(f"the fetched tree has no {' or '.join(TOOLS[known.flavor]['server'])}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _move_into_place(tmp, final)
        shim = final / "shim"
        server = _install(what, "debian", f"Debian {known.suite}: {', '.join(known.packages)}", final,
                          final / "root", shim, [shim / "sbin", shim / "bin"], shim / "sbin" / names[0],
                          known.series, known.flavor)
    say(f"{what}: {server.version_line} ready in {final} ({server.size / 1024**2:.0f} MB)")
    return server


# --- upstream tarballs ------------------------------------------------------------------------------
def _tar_server_member(tar: tarfile.TarFile) -> str | None:
    for member in tar.getmembers():
        parts = member.name.split("/")
        if len(parts) >= 2 and parts[-2] in ("bin", "sbin") and parts[-1] in ("mysqld", "mariadbd") \
                and member.isfile():
            return member.name
    return None


def add_tarball(path: str, say: Say) -> Server:
    """Unpack an upstream binary tarball (MySQL or MariaDB, built for glibc) into the cache."""
    if not os.path.isfile(path):
        raise ConfigError(f"no such file: {path}", hint="give the path of a downloaded binary tarball")
    try:
        with tarfile.open(path) as tar:
            member = _tar_server_member(tar)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ConfigError(f"{path} is not a readable tar archive ({exc})",
                          hint="give a MySQL or MariaDB binary tarball (.tar.gz or .tar.xz)") from None
    if member is None:
        raise ConfigError(f"{path} is not a MySQL/MariaDB binary distribution: it has no bin/mysqld or "
                          "bin/mariadbd", hint="download the 'Linux - Generic' binary tarball")
    with _locked():
        root_dir = servers_dir()
        _check_disk(root_dir, need=4 * os.path.getsize(path))
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-tarball-", dir=root_dir))
        try:
            say(f"unpacking {path}")
            with tarfile.open(path) as tar:
                tar.extractall(tmp / "root", filter="data")
            line = version_of(str(tmp / "root" / member))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        name = f"{flavor_of(line)}-{short_version(line)}"
        final = root_dir / name
        if final.exists() and _load_entry(final):
            shutil.rmtree(tmp, ignore_errors=True)
            raise ConfigError(f"{name} is already installed ({final})",
                              hint=f"remove it first: replab servers remove {name}")
        _move_into_place(tmp, final)
        top = (final / "root" / member).parent.parent
        server = _install(name, "tarball", os.path.abspath(path), final, top, top, [top / "bin", top / "scripts"],
                          final / "root" / member)
    say(f"{name}: {server.version_line} ready in {final}")
    return server


# --- removing ---------------------------------------------------------------------------------------
def users_of(server: Server) -> list[int]:
    """Pids of running processes started from this build (their command line names its directory)."""
    marker = server.root or os.path.dirname(server.binary)
    return pids_with(marker) if marker else []


def remove(name: str, say: Say | None = None) -> None:
    """Delete a fetched or unpacked build from the cache (never the system's)."""
    say = say or (lambda _m: None)
    with _locked():
        entry = servers_dir() / name
        server = _load_entry(entry) if entry.is_dir() else None
        if server is None:
            system = system_server()
            if system and system.name == name:
                raise NotSupported(f"{name} is this machine's own server; replab does not remove it")
            have = ", ".join(s.name for s in installed() if s.kind != "system") or "none"
            raise ConfigError(f"{name} is not in the catalogue's cache (fetched or unpacked: {have})")
        busy = users_of(server)
        if busy:
            raise ReplabError(f"{name} is in use by running servers (pids {', '.join(map(str, busy[:5]))})",
                              hint="stop the clusters that use it first (replab down --home DIR)")
        shutil.rmtree(entry)
    say(f"removed {name} ({server.size / 1024**2:.0f} MB freed)")


# --- trees for container images (`replab image build`) -----------------------------------------------
def image_tree(name: str, say: Say | None = None) -> Path:
    """The root of a full Debian tree with build ``name``, for a container image: the catalogue's own tree
    (fetched now if needed), or for the system's server, which has no tree, one fetched once into the cache
    from the same Debian suite."""
    say = say or (lambda _m: None)
    known = KNOWN.get(name)
    if known is None:
        raise ConfigError(f"cannot build an image of {name!r}: replab builds images of {', '.join(sorted(KNOWN))}",
                          hint="list the servers with: replab servers")
    system = system_server()
    if not (system and system.name == name):
        server = next((s for s in installed() if s.name == name), None) or add(name, say)
        return Path(server.root)
    with _locked():
        final = servers_dir() / f".image-{name}"
        if (final / ".complete").exists():
            return final / "root"
        _check_disk(servers_dir())
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-image-{name}-", dir=servers_dir()))
        try:
            _run_mmdebstrap(known, tmp / "root", say)
            (tmp / ".complete").write_text(f"{known.suite}: {', '.join(known.packages)}\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _move_into_place(tmp, final)
    return final / "root"
