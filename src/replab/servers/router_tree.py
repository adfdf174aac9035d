"""MySQL Router (Debian's ``mysql-router``) in a catalogue MySQL's private tree, for ``--proxy mysql-router``.

Debian packages MySQL Router 9.7 in the same suite (sid) as the catalogue's ``mysql-9.7``, built against
that suite's libraries, so it runs through the tree's own loader like the server does (the host, bookworm,
has no ``mysql-router`` package). ``add_router(name)`` fetches it into the tree like ``add-galera`` does
for Galera (``galera_tree.fetch_into_tree``); its dependencies (libprotobuf, libicu, tcmalloc, ...) are in
the MySQL tree already. ``program()`` finds a Router to run: one on the PATH, else one in a catalogue tree.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError
from .catalogue import Server, installed
from .galera_tree import fetch_into_tree

PACKAGE = "mysql-router"
BINARY = Path("usr/bin/mysqlrouter")
PLUGINS = Path("usr/lib/mysqlrouter/plugin")
LIBS = Path("usr/lib/mysql-router")
Say = Callable[[str], None]


@dataclass
class Router:
    """How to run one MySQL Router: the command before its own arguments, and its plugin folder."""

    argv: list[str]
    plugin_folder: str | None  # None: the build's own default (a system install)
    where: str  # the tree's name, or the program's path


def in_tree(server: Server) -> Router | None:
    """The Router in ``server``'s tree, run through the tree's loader and libraries (as its shim runs mysqld)."""
    if not server.root:
        return None
    root = Path(server.root)
    binary = root / BINARY
    loader = root / "lib64" / "ld-linux-x86-64.so.2"
    if not binary.exists() or not loader.exists():
        return None
    libs = ":".join(str(root / d) for d in (LIBS, Path("usr/lib/x86_64-linux-gnu"), Path("lib/x86_64-linux-gnu")))
    return Router([str(loader), "--library-path", libs, "--argv0", str(binary), str(binary)], str(root / PLUGINS),
                  server.name)


def program() -> Router | None:
    """A MySQL Router to run: ``mysqlrouter`` on the PATH, else the first catalogue MySQL tree that has one."""
    found = shutil.which("mysqlrouter")
    if found:
        return Router([found], None, found)
    for server in installed():
        if server.flavor == "mysql":
            router = in_tree(server)
            if router:
                return router
    return None


def add_router(name: str, say: Say | None = None) -> Path:
    """Put ``mysql-router`` from the tree's own Debian suite into catalogue MySQL ``name``'s tree; return the
    program's path. Nothing is fetched when it is there already."""
    say = say or (lambda _m: None)
    server = next((s for s in installed() if s.name == name), None)
    if server is None or not server.root or server.flavor != "mysql":
        have = ", ".join(s.name for s in installed() if s.root and s.flavor == "mysql") or "none"
        raise ConfigError(f"{name} is not a catalogue MySQL with a private tree (those here: {have})",
                          hint="fetch one first: replab servers add mysql-9.7")
    root = Path(server.root)
    if (root / BINARY).exists():
        say(f"{name}: MySQL Router already in its tree ({root / BINARY})")
        return root / BINARY
    fetch_into_tree(name, root, PACKAGE, BINARY, say)
    return root / BINARY
