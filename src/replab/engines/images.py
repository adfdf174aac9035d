"""Server images built from the server catalogue (``replab image build mysql-9.7``), for machines that reach
no image registry.

A catalogue tree is a full Debian root file system with its own libc, so ``docker import`` of the tree plus a
small entry script makes a runnable image: ``replab/<flavor>:<series>`` (``replab/mysql:9.7``). The entry
script follows the official images' contract, so the compose engine treats both kinds alike: the root
password comes from ``MYSQL_ROOT_PASSWORD`` / ``MARIADB_ROOT_PASSWORD``, extra config from
``/etc/mysql/conf.d``, data in ``/var/lib/mysql``. Images are cached by content: the label ``replab.digest``
covers the tree's package list, the server's version and the entry script; a build with the same digest
does nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError, NotSupported, ReplabError
from ..servers import catalogue as servers
from . import dockerctl

IMAGE_REV = "1"
ENTRYPOINT = "/usr/local/bin/replab-entrypoint"
SERVER_CNF = "/etc/mysql/replab.cnf"

_ENTRY = r"""#!/bin/sh
# replab's entry point for images built from its server catalogue (replab image build). Same contract as
# the official images: root password from MYSQL_ROOT_PASSWORD or MARIADB_ROOT_PASSWORD, extra config from
# /etc/mysql/conf.d, data in /var/lib/mysql.
set -eu
FLAVOR=@FLAVOR@
DATADIR=/var/lib/mysql
CNF=@CNF@
if [ "$FLAVOR" = mariadb ]; then SERVER=mariadbd; CLIENT=mariadb; else SERVER=mysqld; CLIENT=mysql; fi
mkdir -p /run/mysqld /var/lib/mysql-files "$DATADIR"
if [ "${1:-}" = "--version" ]; then exec "$SERVER" --version; fi
if [ ! -d "$DATADIR/mysql" ]; then
  PASSWORD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
  if [ -z "$PASSWORD" ]; then
    echo "replab-entrypoint: set MYSQL_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD) to initialize $DATADIR" >&2
    exit 1
  fi
  echo "replab-entrypoint: initializing $DATADIR"
  if [ "$FLAVOR" = mariadb ]; then
    mariadb-install-db --defaults-file="$CNF" --user=root --datadir="$DATADIR" --skip-test-db \
      --auth-root-authentication-method=normal >/dev/null
  else
    mysqld --defaults-file="$CNF" --initialize-insecure --user=root --datadir="$DATADIR"
  fi
  # a server without networking sets the password, as the official images do (nothing answers on 3306 yet)
  "$SERVER" --defaults-file="$CNF" --skip-networking --socket=/run/mysqld/init.sock \
    --pid-file=/run/mysqld/init.pid &
  pid=$!
  tries=0
  until "$CLIENT" --no-defaults --socket=/run/mysqld/init.sock -uroot -e 'SELECT 1' >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 240 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "replab-entrypoint: the initialization server did not start" >&2
      exit 1
    fi
    sleep 0.25
  done
  # the password reaches the server on the client's stdin: never on a command line
  QUOTED=$(printf '%s' "$PASSWORD" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")
  "$CLIENT" --no-defaults --socket=/run/mysqld/init.sock -uroot <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER 'root'@'%' IDENTIFIED BY '$QUOTED';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED BY '$QUOTED';
SQL
  kill -TERM "$pid"
  wait "$pid" || true
  echo "replab-entrypoint: $DATADIR initialized"
fi
exec "$SERVER" --defaults-file="$CNF" "$@"
"""

_SERVER_CNF = """# written by replab image build; per-node settings come from /etc/mysql/conf.d
[mysqld]
user=root
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
pid-file=/run/mysqld/mysqld.pid
port=3306
bind-address=0.0.0.0
secure_file_priv=/var/lib/mysql-files
loose-mysqlx=OFF
[client]
socket=/run/mysqld/mysqld.sock

!includedir /etc/mysql/conf.d/
"""


@dataclass
class BuiltImage:
    """The result of ``build``: the image's name, its content digest, whether it was built now, and how long."""

    image: str
    digest: str
    built: bool
    seconds: float
    version_line: str = ""


def image_name(flavor: str, series: str) -> str:
    return f"replab/{flavor}:{series}"


def entry_script(flavor: str) -> str:
    return _ENTRY.replace("@FLAVOR@", flavor).replace("@CNF@", SERVER_CNF)


def digest(tree: Path, flavor: str, series: str) -> str:
    """What the image is made of: the tree's package list (exact versions), the entry script, the config."""
    h = hashlib.sha256()
    for part in (IMAGE_REV, flavor, series, entry_script(flavor), _SERVER_CNF):
        h.update(part.encode() + b"\0")
    status = tree / "var" / "lib" / "dpkg" / "status"
    h.update(status.read_bytes() if status.exists() else b"no dpkg status")
    return h.hexdigest()[:32]


def image_digest(image: str, host: str | None = None) -> str | None:
    """The ``replab.digest`` label of a local image; None when the image is not there."""
    proc = dockerctl.run(["image", "inspect", "--format", '{{index .Config.Labels "replab.digest"}}', image], host,
                         check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def build(name: str, host: str | None = None, say: Callable[[str], None] | None = None,
          force: bool = False) -> BuiltImage:
    """Build ``replab/<flavor>:<series>`` from the catalogue build ``name``, unless an image with the same
    content digest is already there. The Docker engine must answer (checked before anything is fetched)."""
    say = say or (lambda _m: None)
    t0 = time.monotonic()
    known = servers.KNOWN.get(name)
    if known is None:
        raise ConfigError(f"cannot build an image of {name!r}: replab builds images of "
                                  f"{', '.join(sorted(servers.KNOWN))}", hint="list the servers with: replab servers")
    why = dockerctl.unavailable(host)
    if why and "compose" not in why[0]:  # building needs the engine only, not the compose plugin
        raise NotSupported(f"replab image build needs Docker: {why[0]}", hint=why[1])
    tree = servers.image_tree(name, say)
    image = image_name(known.flavor, known.series)
    want = digest(tree, known.flavor, known.series)
    if not force and image_digest(image, host) == want:
        say(f"{image} is up to date (digest {want[:12]}); nothing to build")
        return BuiltImage(image, want, False, time.monotonic() - t0)
    say(f"building {image} from {tree} (docker import of the tree plus replab's entry script)")
    with tempfile.TemporaryDirectory(prefix="replab-image-") as extra_dir:
        extra = Path(extra_dir)
        (extra / "usr/local/bin").mkdir(parents=True)
        (extra / "usr/local/bin/replab-entrypoint").write_text(entry_script(known.flavor))
        (extra / "usr/local/bin/replab-entrypoint").chmod(0o755)
        (extra / "etc/mysql/conf.d").mkdir(parents=True)
        (extra / "etc/mysql/replab.cnf").write_text(_SERVER_CNF)
        (extra / "etc/mysql/replab.cnf").chmod(0o644)
        # docker import refuses an archive naming a path twice: add only what the tree lacks
        added = [p for p in ("./usr/local/bin/replab-entrypoint", "./etc/mysql/replab.cnf", "./etc/mysql/conf.d")
                 if not (tree / p).exists()]
        tar = subprocess.Popen(["tar", "-C", str(tree), "--numeric-owner", "--exclude=./proc/*", "--exclude=./sys/*",
                                "--exclude=./dev/*", "--exclude=./var/cache/apt/*", "--exclude=./var/lib/apt/lists/*",
                                "-cf", "-", ".", "-C", str(extra), *added],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        changes = [f'ENTRYPOINT ["{ENTRYPOINT}"]', "EXPOSE 3306", "VOLUME /var/lib/mysql",
                   "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   f"LABEL replab.digest={want} replab.server={name} replab.flavor={known.flavor} "
                   f"replab.series={known.series}"]
        argv = ["import", *(x for c in changes for x in ("--change", c)), "-", image]
        try:
            proc = dockerctl.run(argv, host, check=False, timeout=600, stdin=tar.stdout)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            tar.wait()
    if tar.returncode not in (0, 1) or proc.returncode != 0:  # GNU tar: 1 = a file changed while read
        tail = (tar_err + proc.stderr).strip().splitlines()[-5:]
        raise ReplabError(f"building {image} failed", log_tail=tail, hint="see the output above")
    check = dockerctl.run(["run", "--rm", "--network", "none", image, "--version"], host, check=False, timeout=120)
    line = (check.stdout or check.stderr).strip().splitlines()[-1:] or [""]
    if check.returncode != 0 or known.series not in line[0]:
        dockerctl.run(["image", "rm", "-f", image], host, check=False)
        raise ReplabError(f"{image} was built but its server does not run (`--version`: {line[0][:160]!r})",
                          hint=f"fetch the tree again: replab servers remove {name} && replab servers add {name}")
    seconds = time.monotonic() - t0
    say(f"{image}: {line[0].strip()} (built in {seconds:.1f}s)")
    return BuiltImage(image, want, True, seconds, line[0].strip())
