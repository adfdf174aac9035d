"""The Docker plumbing of the compose engine: the ``docker`` command (on the engine named by DOCKER_HOST),
whether an engine and the Compose v2 plugin answer, what replab left on an engine (found by label only),
and a private ``dockerd`` for machines where none runs.

``python -m replab.engines.dockerd start|stop DIR`` drives a ``PrivateDaemon`` from the shell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..core.errors import BinaryNotFound, NotSupported, ReplabError, ReplabTimeout

LABEL = "replab.project"  # on every container, network and volume replab creates
INSTALL_HINT = "install docker.io and Compose v2 with: make system-deps DEPS=docker"
DAEMON_HINT = ("start the Docker engine (systemctl start docker), or a private one: "
               "python -m replab.engines.dockerd start /tmp/replab-docker, then export the DOCKER_HOST it prints")


def docker_env(host: str | None) -> dict[str, str]:
    """The environment for docker commands: the caller's, with DOCKER_HOST set to ``host`` when given."""
    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    return env


def run(args: list[str], host: str | None = None, *, check: bool = True, timeout: float = 300,
        what: str | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS`` and return its output; a failure is a ReplabError with the last lines it printed."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("capture_output", True)
    try:
        proc: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            ["docker", *args], text=True, timeout=timeout, env=docker_env(host), **kwargs)
    except FileNotFoundError:
        raise BinaryNotFound("the docker command is not installed", hint=INSTALL_HINT) from None
    except subprocess.TimeoutExpired:
        raise ReplabTimeout(f"docker {' '.join(args[:2])} did not finish in {timeout:.0f}s",
                            hint="is the Docker engine overloaded? see: docker ps") from None
    if check and proc.returncode != 0:
        tail = ((proc.stderr or "") + (proc.stdout or "")).strip().splitlines()[-5:]
        raise ReplabError(f"{what or 'docker ' + ' '.join(args[:2])} failed (exit {proc.returncode})", log_tail=tail,
                          hint="see the output above; `docker ps -a --filter label=replab.project` shows "
                               "replab's containers")
    return proc


def unavailable(host: str | None = None) -> tuple[str, str] | None:
    """None when a Docker engine and the compose plugin answer; else (why, what to do), one line each."""
    if not shutil.which("docker"):
        return "the docker command is not installed", INSTALL_HINT
    try:
        info = run(["version", "--format", "{{.Server.Version}}"], host, check=False, timeout=20)
        if info.returncode != 0:
            lines = (info.stderr or info.stdout).strip().splitlines()
            return f"no Docker engine answers ({lines[-1] if lines else 'docker version failed'})", DAEMON_HINT
        comp = run(["compose", "version"], host, check=False, timeout=20)
        if comp.returncode != 0:
            return "the docker compose plugin (Compose v2) is not installed", INSTALL_HINT
    except ReplabError as exc:
        return str(exc), DAEMON_HINT
    return None


def require_docker(host: str | None = None) -> None:
    """Refuse (exit 2, nothing created) when no Docker engine or no compose plugin answers."""
    why = unavailable(host)
    if why:
        raise NotSupported(f"--engine compose needs Docker: {why[0]}", hint=why[1])


def leftovers(project: str | None, host: str | None = None) -> dict[str, list[str]]:
    """Containers, networks and volumes labelled as replab's (of ``project``, or of any project)."""
    label = f"label={LABEL}={project}" if project else f"label={LABEL}"
    out: dict[str, list[str]] = {}
    for kind, argv in (("containers", ["ps", "-a", "--filter", label, "--format", "{{.Names}}"]),
                       ("networks", ["network", "ls", "--filter", label, "--format", "{{.Name}}"]),
                       ("volumes", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"])):
        proc = run(argv, host, check=False, timeout=60)
        out[kind] = sorted(line for line in proc.stdout.split() if line) if proc.returncode == 0 else []
    return out


def remove_leftovers(project: str, host: str | None = None) -> dict[str, list[str]]:
    """Remove what ``leftovers(project)`` finds (only objects carrying replab's label for that project)."""
    found = leftovers(project, host)
    if found["containers"]:
        run(["rm", "-f", "-v", *found["containers"]], host, check=False)
    for net in found["networks"]:
        run(["network", "rm", net], host, check=False)
    if found["volumes"]:
        run(["volume", "rm", "-f", *found["volumes"]], host, check=False)
    return found


# --- a private daemon ------------------------------------------------------------------------------------
class PrivateDaemon:
    """A ``dockerd`` of replab's own: data root, exec root, socket and pid file in one directory.

    No iptables rules and no default bridge, so the host's network setup is not touched; Compose's
    user-defined networks and ports published on 127.0.0.1 (through docker-proxy) work without them.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.pidfile = directory / "dockerd.pid"
        self.log = directory / "dockerd.log"

    @property
    def host(self) -> str:
        return f"unix://{self.dir / 'docker.sock'}"

    def pid(self) -> int | None:
        """The daemon's pid, when it runs and its command line names this directory."""
        try:
            value = int(self.pidfile.read_text().strip())
            with open(f"/proc/{value}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError):
            return None
        return value if "dockerd" in cmd and str(self.dir) in cmd else None

    def start(self, timeout: float = 60.0) -> str:
        """Start the daemon (or find it running); return its DOCKER_HOST. Raise with the log's tail if it fails."""
        if self.pid():
            return self.host
        binary = shutil.which("dockerd") or next((p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd")
                                                  if os.access(p, os.X_OK)), None)
        if not binary:
            raise BinaryNotFound("dockerd is not installed", hint=INSTALL_HINT)
        if os.geteuid() != 0:
            raise NotSupported("a private dockerd needs root here", hint=DAEMON_HINT)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [binary, "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "--host", self.host, "--pidfile", str(self.pidfile), "--iptables=false", "--bridge=none"]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if run(["version", "--format", "{{.Server.Version}}"], self.host, check=False, timeout=10).returncode == 0:
                return self.host
            time.sleep(0.3)
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        raise ReplabError(f"dockerd did not start in {self.dir}", log_tail=tail, hint=f"see {self.log}")

    def stop(self, timeout: float = 60.0, remove: bool = True) -> None:
        """Stop the daemon by its pid file (its containers stop with it), then remove its directory."""
        pid = self.pid()
        if pid:
            ids = run(["ps", "-aq"], self.host, check=False, timeout=20).stdout.split()
            if ids:  # every container of this daemon is ours: remove them before it goes
                run(["rm", "-f", "-v", *ids], self.host, check=False, timeout=120)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.2)
            if self.pid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)  # reap it when this process started it
        if remove:
            self._unmount()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _unmount(self) -> None:
        """Mounts the daemon left under its directory (overlay layers, netns files), deepest first."""
        with contextlib.suppress(OSError), open("/proc/self/mounts") as fh:
            points = [line.split()[1] for line in fh if line.split()[1].startswith(str(self.dir) + "/")]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
