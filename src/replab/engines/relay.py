"""A TCP relay per replica link, so replab can cut that link (``partition``) and restore it (``heal``).

Each replica's CHANGE MASTER points at a loopback port served by its own small relay process, which
forwards every connection to the primary. The relay runs detached (its own session, like the servers),
keeps its files in ``<home>/relay/``:

- ``<replica>.json``  listen port and target (written by replab; the relay rebinds the same port on restart)
- ``<replica>.mode``  ``open``, ``blocked`` (both ways), ``blocked-to-replica`` or ``blocked-to-primary``
  (written by replab, re-read by the relay on SIGHUP)
- ``<replica>.link``  the shaping of each direction: ``{"to-replica": {"delay_ms", "jitter_ms", "rate_bps"},
  "to-primary": {...}}`` (written by replab, re-read on SIGHUP)
- ``<replica>.sever`` a host crash to apply once: ``{"token", "side": "primary"|"replica"}``
- ``<replica>.ack``   what the relay actually applies: mode, port and pid, then its shaping (JSON)
- ``<replica>.pid``, ``<replica>.log``

Blocked = a network partition, both ways: the relay stops moving bytes on existing connections (they stay
open and silent, exactly like a cut cable: no RST, no FIN; TCP keeps the unsent bytes) and new connections
are accepted but get no answer. Heal = bytes flow again; held connections are connected to the primary
then. Each client connection gets its own new connection to the primary, so primary restarts are fine.
A one-way cut holds one direction only: ``blocked-to-replica`` = the replica hears nothing while the primary
still receives what the replica sends (and the reverse).

Shaping (``replab link``): each direction has its own delay, jitter and rate, applied in the relay (this
kernel has no netem). A crash (``replab crash``) severs the crashed side's sockets with a reset and drops
whatever the relay held from it, so bytes the dead host had sent but the link had not delivered never
arrive.

The daemon itself is relayd.py (standard library only), run as ``python -S .../relayd.py DIR NAME``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from ..core.errors import NodeStartError, ReplabError
from ..servers.process import Process, alive, cmdline, log_tail, wait_for
from . import relayd
from .relayd import BLOCKED as BLOCKED
from .relayd import DIRECTIONS as DIRECTIONS
from .relayd import OPEN as OPEN
from .relayd import TO_PRIMARY as TO_PRIMARY
from .relayd import TO_REPLICA as TO_REPLICA
from .relayd import blocked_directions as blocked_directions

DAEMON = Path(relayd.__file__).resolve()


# --- control, used by the engine and the nemesis ---------------------------------------------------
def relay_dir(home: Path) -> Path:
    return home / "relay"


def _process(home: Path, name: str) -> Process:
    """``name``'s relay process: its command line names its directory and link, which proves a pid is ours."""
    directory = relay_dir(home)
    pidfile = directory / f"{name}.pid"
    marker = f"{DAEMON.name} {directory} {name}"
    legacy = f"replab.relay {directory} {name}"  # a relay started by an older replab (python -m replab.relay)
    with contextlib.suppress(OSError, ValueError):
        if legacy in cmdline(int(pidfile.read_text().strip())):
            marker = legacy
    return Process(f"{name} relay", pidfile, marker, directory / f"{name}.log")


def pid(home: Path, name: str) -> int | None:
    """The live pid of ``name``'s relay, confirmed by its command line; None when it is not running."""
    return _process(home, name).pid()


def _ack(home: Path, name: str) -> tuple[str, int, int] | None:
    try:
        mode, port, rpid = (relay_dir(home) / f"{name}.ack").read_text().splitlines()[0].split()
        return mode, int(port), int(rpid)
    except (OSError, ValueError, IndexError):
        return None


def _applied(home: Path, name: str) -> dict[str, Any]:
    """The shaping and last crash token the running relay applies (its ack's second line)."""
    try:
        lines = (relay_dir(home) / f"{name}.ack").read_text().splitlines()
        return dict(json.loads(lines[1])) if len(lines) > 1 else {}
    except (OSError, ValueError):
        return {}


def ensure(home: Path, name: str, target: tuple[str, int] | None = None, timeout: float = 10.0) -> int:
    """Start ``name``'s relay if it is not running (with ``target`` on first use); return its port."""
    directory = relay_dir(home)
    conf_file = directory / f"{name}.json"
    running = pid(home, name)
    conf = json.loads(conf_file.read_text()) if conf_file.exists() else {}
    if running:
        ack = _ack(home, name)
        if ack and ack[2] == running:
            if target is not None and (conf.get("target_host"), conf.get("target_port")) != target:
                _retarget(home, name, conf, target, running, timeout)
            return ack[1]
    directory.mkdir(mode=0o700, exist_ok=True)
    if target is not None:
        if conf.get("target_host") and (conf.get("target_host"), conf.get("target_port")) != target:
            (directory / f"{name}.mode").write_text(OPEN + "\n")  # a cut link was to the old source
        conf.update(target_host=target[0], target_port=target[1])
    if "target_host" not in conf:
        raise ReplabError(f"{name}: no relay configuration in {directory}", node=name)
    conf_file.write_text(json.dumps(conf) + "\n")
    (directory / f"{name}.ack").unlink(missing_ok=True)
    if not (directory / f"{name}.mode").exists():
        (directory / f"{name}.mode").write_text(OPEN + "\n")
    proc = _process(home, name)
    spawned = proc.spawn([sys.executable, "-S", str(DAEMON), str(directory), name])

    def started() -> int | None:
        ack = _ack(home, name)
        if ack and ack[2] == spawned:
            return ack[1]
        if not alive(spawned):
            raise NodeStartError(f"{name}: the link relay exited while starting", node=name,
                                 log_tail=log_tail(proc.log), hint=f"see {proc.log}")
        return None

    port = wait_for(f"{name}: the link relay to start", started, timeout, log=proc.log, node=name,
                    hint=f"see {proc.log}")
    if not conf.get("listen_port"):
        conf["listen_port"] = port
        conf_file.write_text(json.dumps(conf) + "\n")
    return port


def _retarget(home: Path, name: str, conf: dict[str, object], target: tuple[str, int], running: int,
              timeout: float) -> None:
    """Point a running relay at another source (a promoted replica); its listen port stays. Connections to
    the old source are dropped with whatever bytes they held, and a cut link opens: the cut was to the old
    source, the new source is reached over a new link."""
    directory = relay_dir(home)
    conf.update(target_host=target[0], target_port=target[1])
    (directory / f"{name}.mode").write_text(OPEN + "\n")
    tmp = directory / f"{name}.json.tmp"
    tmp.write_text(json.dumps(conf) + "\n")
    os.replace(tmp, directory / f"{name}.json")
    (directory / f"{name}.ack").unlink(missing_ok=True)
    os.kill(running, signal.SIGHUP)

    def taken() -> bool | None:
        ack = _ack(home, name)
        return True if ack and ack[2] == running else None

    wait_for(f"{name}: the link relay taking its new source", taken, timeout, node=name)


def target_of(home: Path, name: str) -> tuple[str, int] | None:
    """Where ``name``'s relay forwards to (from its configuration), or None without a relay."""
    try:
        conf = json.loads((relay_dir(home) / f"{name}.json").read_text())
        return str(conf["target_host"]), int(conf["target_port"])
    except (OSError, ValueError, KeyError):
        return None


def listen_port(home: Path, name: str) -> int | None:
    """The loopback port ``name``'s relay listens on (from its configuration), or None without a relay."""
    try:
        return int(json.loads((relay_dir(home) / f"{name}.json").read_text())["listen_port"])
    except (OSError, ValueError, KeyError):
        return None


def named_by_port(home: Path, port: int) -> str | None:
    """The relay of this home that listens on ``port`` (from the relays' own configurations), or None. A
    cluster object loaded before a role change gave a node its relay does not know that relay's port."""
    try:
        confs = sorted(relay_dir(home).glob("*.json"))
    except OSError:
        return None
    return next((conf.stem for conf in confs if listen_port(home, conf.stem) == port), None)


def mode(home: Path, name: str) -> str | None:
    """``open``, ``blocked`` or ``blocked-<direction>`` as the running relay applies it; None without a relay."""
    ack = _ack(home, name)
    return ack[0] if ack and pid(home, name) == ack[2] else None


def set_mode(home: Path, name: str, new_mode: str, timeout: float = 5.0) -> None:
    """Tell ``name``'s relay to block or open the link, and wait until it says it did."""
    running = pid(home, name)
    if running is None:
        ensure(home, name)
        running = pid(home, name)
    directory = relay_dir(home)
    tmp = directory / f"{name}.mode.tmp"
    tmp.write_text(new_mode + "\n")
    os.replace(tmp, directory / f"{name}.mode")
    if running:
        os.kill(running, signal.SIGHUP)
    wait_for(f"{name}: the link relay switching to {new_mode}", lambda: True if mode(home, name) == new_mode
             else None, timeout, node=name, describe=lambda: f"mode {mode(home, name)}")


def _signal(home: Path, name: str) -> int:
    running = pid(home, name)
    if running is None:
        ensure(home, name)
        running = pid(home, name)
    if running is None:
        raise ReplabError(f"{name}: the link relay is not running", node=name)
    os.kill(running, signal.SIGHUP)
    return running


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def shape(home: Path, name: str) -> dict[str, dict[str, float]]:
    """Each shaped direction's conditions as the running relay applies them (empty: a plain link)."""
    if pid(home, name) is None:
        return {}
    return dict(_applied(home, name).get("shape") or {})


def set_shape(home: Path, name: str, conditions: dict[str, dict[str, float]], timeout: float = 5.0) -> None:
    """Give ``name``'s link these conditions (per direction: delay_ms, jitter_ms, rate_bps; a direction left
    out is plain) and wait until the relay applies them. Bytes already queued keep their release times."""
    want = {d: {k: v for k, v in conditions[d].items() if v} for d in DIRECTIONS if conditions.get(d)}
    want = {d: c for d, c in want.items() if c}
    _write(relay_dir(home) / f"{name}.link", json.dumps(want, sort_keys=True) + "\n")
    running = _signal(home, name)
    expected = json.loads(json.dumps(want, sort_keys=True))
    wait_for(f"{name}: the link relay applying its conditions",
             lambda: True if _ack(home, name) and _ack(home, name)[2] == running  # type: ignore[index]
             and _applied(home, name).get("shape") == expected else None, timeout, node=name)


def connections(home: Path, name: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The relay's connections now (asked for with a SIGHUP): per connection, the port the primary sees as
    its client (``upstream_port``) and the bytes held toward each side; empty without a running relay."""
    running = pid(home, name)
    if running is None:
        return []
    before = int(_applied(home, name).get("generation") or 0)
    os.kill(running, signal.SIGHUP)
    try:
        wait_for(f"{name}: the link relay reporting its connections",
                 lambda: True if int(_applied(home, name).get("generation") or 0) > before else None, timeout,
                 node=name)
    except ReplabError:
        return []
    return list(_applied(home, name).get("connections") or [])


def sever(home: Path, name: str, side: str, timeout: float = 5.0) -> int:
    """A host died (``side``: the primary or the replica end of this link): its connections are reset and
    whatever the relay holds from it is dropped, at once. Returns, once the relay has done it, how many
    bytes it dropped (queued in the relay, or unread in its socket from the dead side)."""
    token = uuid.uuid4().hex
    _write(relay_dir(home) / f"{name}.sever", json.dumps({"token": token, "side": side}) + "\n")
    _signal(home, name)
    wait_for(f"{name}: the link relay dropping the crashed host's bytes",
             lambda: True if _applied(home, name).get("severed") == token else None, timeout, node=name)
    return int(_applied(home, name).get("dropped") or 0)


def stop_all(home: Path, timeout: float = 5.0) -> None:
    """Stop every relay of this cluster (by pid file), leaving their configuration in place."""
    directory = relay_dir(home)
    if not directory.is_dir():
        return
    for pid_file in directory.glob("*.pid"):
        _process(home, pid_file.stem).stop(timeout)

