"""A container's network namespace, driven from the host (the compose engine's links; as Pumba and Blockade do).

``nsenter -t PID -n`` runs this machine's ``nft``, ``tc`` and ``ip`` inside the namespace of the process
``PID`` (a container's server, ``docker inspect -f {{.State.Pid}}``): the image needs none of them. Needs
root. What replab puts there, and nothing else:

- ``table inet replab``: the cuts of a replica's link, drops of the packets between the replica and its
  source's address and port only (``input``: from the source, ``to-replica``; ``output``: to the source,
  ``to-primary``; one way, bare TCP acknowledgements still cross, see ``_rules``); or, for a crash, drops of
  every packet in and out. Heal deletes exactly this table.
- the rate of each direction of the link: ``htb`` on ``eth0`` (egress, ``to-primary``: the packets to the
  source's address and port, by a ``u32`` filter) and, for ``to-replica``, the packets from the source are
  redirected at ``eth0``'s ingress (``clsact`` + ``mirred``) to an ``ifb`` device ``replab-in`` in the same
  namespace, where an ``htb`` class holds them to the rate (a queue, not a policer: TCP sees a slower link,
  not losses). Where the kernel has ``netem``, a ``netem`` qdisc under that class adds delay and jitter.
- ``tx_queue`` of the namespace's sockets (``/proc/PID/net/tcp``): the bytes its kernel held, sent but not
  acknowledged or not yet sent, when a crash drops them.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

from ..core.errors import NotSupported, ReplabError

TABLE = "replab"
IFB = "replab-in"
TO_REPLICA, TO_PRIMARY = "to-replica", "to-primary"
HTB_MAX = "10gbit"  # the class's rate when only a delay is asked for (netem under it)


def unusable() -> str | None:
    """Why replab cannot change a container's namespace here (None when it can): root, nsenter, nft, tc, ip."""
    if os.geteuid() != 0:
        return "changing a container's network namespace needs root"
    missing = [t for t in ("nsenter", "nft", "tc", "ip") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: util-linux, nftables, iproute2)"
    return None


def require() -> None:
    why = unusable()
    if why:
        raise NotSupported(f"the compose engine cannot cut or shape a link here: {why}",
                           hint="run replab as root, or use --engine local (its relay needs neither)")


def run(pid: int, argv: list[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` (a host program) inside the network namespace of ``pid``."""
    try:
        proc = subprocess.run(["nsenter", "-t", str(pid), "-n", "--", *argv], input=input, capture_output=True,
                              text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        raise ReplabError(f"{' '.join(argv[:3])} in the network namespace of pid {pid} did not finish in 30s") \
            from None
    if check and proc.returncode != 0:
        said = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if "rror" in line] or \
            (proc.stderr or proc.stdout).strip().splitlines()
        raise ReplabError(f"{' '.join(argv[:3])} in the network namespace of pid {pid} failed: "
                          f"{said[0].strip() if said else f'exit {proc.returncode}'}")
    return proc


@functools.cache
def netem_missing() -> str | None:
    """Why this kernel cannot add delay with ``netem`` (None when it can). Probed once per process: a netem
    qdisc on the loopback device of a throwaway namespace (``unshare -n``), gone with it."""
    if not shutil.which("unshare") or not shutil.which("tc"):
        return "unshare or tc is not installed"
    proc = subprocess.run(["unshare", "-n", "--", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                           "1ms"], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode == 0:
        return None
    said = (proc.stderr or proc.stdout).strip().splitlines()
    return f"this kernel has no netem qdisc (tc: {said[-1] if said else 'netem refused'})"


# --- cuts and crashes: nft --------------------------------------------------------------------------
def _match(source: tuple[str | None, int], way: str) -> str:
    host, port = source
    if way == TO_REPLICA:  # packets from the source, arriving
        return (f"ip saddr {host} " if host else "") + f"tcp sport {port}"
    return (f"ip daddr {host} " if host else "") + f"tcp dport {port}"


def _rules(source: tuple[str | None, int], way: str, cut: list[str]) -> str:
    """The drop rules of one direction. Cut both ways: every packet of the link (a pulled cable). Cut one
    way: every packet carrying data, or opening or closing a connection (SYN, FIN, RST), while bare
    acknowledgements still cross, so TCP keeps its connection as it would through a relay: the side that
    still sends sees its bytes acknowledged and delivered (IPv4 without options, as Linux sends: a bare
    acknowledgement is exactly 20 + 4*doff bytes)."""
    if way not in cut:
        return ""
    match, tag = _match(source, way), f'counter drop comment "{way}";'
    if len(cut) > 1:
        return f"{match} {tag}"
    rules = [f"{match} tcp flags & (fin | syn | rst) != 0 {tag}", f"{match} ip hdrlength != 5 {tag}"]
    rules += [f"{match} tcp doff {d} ip length != {20 + 4 * d} {tag}" for d in range(5, 16)]
    return " ".join(rules)


def cut_ruleset(source: tuple[str | None, int], cut: list[str]) -> str:
    """The nft script that makes ``table inet replab`` hold exactly these cuts (replacing what it held)."""
    return (f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; {_rules(source, TO_REPLICA, cut)} }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; {_rules(source, TO_PRIMARY, cut)} }}"
            "\n}\n")


CRASH_RULESET = (f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"
                 f"table inet {TABLE} {{\n"
                 f"  chain input {{ type filter hook input priority -300; policy drop; }}\n"
                 f"  chain output {{ type filter hook output priority -300; policy drop; }}\n}}\n")


def set_cut(pid: int, source: tuple[str | None, int], cut: list[str]) -> None:
    """Make the namespace drop exactly ``cut`` (directions) of the link to ``source``; none: no table."""
    if cut:
        run(pid, ["nft", "-f", "-"], input=cut_ruleset(source, cut))
    else:
        run(pid, ["nft", "delete", "table", "inet", TABLE], check=False)


def drop_everything(pid: int) -> None:
    """Every packet in and out of the namespace is dropped from now on (a host that died)."""
    run(pid, ["nft", "-f", "-"], input=CRASH_RULESET)


def cuts(pid: int) -> list[str]:
    """The directions ``table inet replab`` drops now, read from the kernel (by the rules' comments)."""
    proc = run(pid, ["nft", "list", "table", "inet", TABLE], check=False)
    if proc.returncode != 0:
        return []
    return sorted(way for way in (TO_REPLICA, TO_PRIMARY) if f'comment "{way}"' in proc.stdout)


# --- sockets --------------------------------------------------------------------------------------
def _sockets(pid: int) -> list[tuple[str, int, str, int, int]]:
    """(local address, port, remote address, port, tx_queue bytes) of the namespace's IPv4 TCP sockets."""
    out = []
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        f = line.split()
        if len(f) < 5:
            continue
        (la, lp), (ra, rp) = (x.split(":") for x in (f[1], f[2]))
        addr = lambda h: str(ipaddress.IPv4Address(bytes.fromhex(h)[::-1]))  # noqa: E731 - little-endian hex
        out.append((addr(la), int(lp, 16), addr(ra), int(rp, 16), int(f[4].split(":")[0], 16)))
    return out


def client_ports(pid: int, source: tuple[str | None, int]) -> list[int]:
    """The local ports of the namespace's connections to ``source`` (what the source sees as their port)."""
    host, port = source
    return sorted(lp for _la, lp, ra, rp, _q in _sockets(pid) if rp == port and (host is None or ra == host))


def held_bytes(pid: int, port: int) -> int:
    """Bytes the namespace's kernel holds for its peers (sent but unacknowledged, or unsent) on the
    connections of ``port`` (either end)."""
    return sum(q for _la, lp, ra, rp, q in _sockets(pid) if (lp == port or rp == port) and ra != "0.0.0.0")


# --- shaping: tc ----------------------------------------------------------------------------------
def _kbit(bps: float) -> str:
    return f"{max(8, round(bps / 1000))}kbit"


def shape_commands(source: tuple[str | None, int], conditions: dict[str, dict[str, float]],
                   netem: bool) -> list[list[str]]:
    """The tc/ip commands that give the link these conditions, from a plain namespace (see the module)."""
    host, port = source
    cmds: list[list[str]] = []

    def leaf(dev: str, c: dict[str, float]) -> None:
        rate = c.get("rate_bps") or 0
        cmds.append(["tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate",
                     _kbit(rate) if rate else HTB_MAX, "ceil", _kbit(rate) if rate else HTB_MAX])
        if netem and (c.get("delay_ms") or c.get("jitter_ms")):
            delay = [f"{c.get('delay_ms') or 0:g}ms"] + ([f"{c['jitter_ms']:g}ms"] if c.get("jitter_ms") else [])
            cmds.append(["tc", "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", "netem", "delay",
                         *delay])

    out = conditions.get(TO_PRIMARY)
    if out:
        cmds.append(["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb"])
        leaf("eth0", out)
        cmds.append(["tc", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                     *(["match", "ip", "dst", f"{host}/32"] if host else []),
                     "match", "ip", "dport", str(port), "0xffff", "flowid", "1:1"])
    into = conditions.get(TO_REPLICA)
    if into:
        cmds += [["ip", "link", "add", IFB, "type", "ifb"], ["ip", "link", "set", IFB, "up"],
                 ["tc", "qdisc", "add", "dev", IFB, "root", "handle", "1:", "htb"]]
        leaf(IFB, into)
        cmds += [["tc", "filter", "add", "dev", IFB, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match",
                  "u32", "0", "0", "flowid", "1:1"],
                 ["tc", "qdisc", "add", "dev", "eth0", "clsact"],
                 ["tc", "filter", "add", "dev", "eth0", "ingress", "protocol", "ip", "prio", "1", "u32",
                  *(["match", "ip", "src", f"{host}/32"] if host else []),
                  "match", "ip", "sport", str(port), "0xffff", "action", "mirred", "egress", "redirect", "dev", IFB]]
    return cmds


CLEAR_COMMANDS = [["tc", "qdisc", "del", "dev", "eth0", "root"], ["tc", "qdisc", "del", "dev", "eth0", "clsact"],
                  ["ip", "link", "del", IFB]]


def set_shape(pid: int, source: tuple[str | None, int], conditions: dict[str, dict[str, float]]) -> None:
    """Give the namespace's link to ``source`` exactly these conditions (a plain link when empty)."""
    for argv in CLEAR_COMMANDS:
        run(pid, argv, check=False)
    try:
        for argv in shape_commands(source, conditions, netem_missing() is None):
            run(pid, argv)
    except ReplabError:
        for argv in CLEAR_COMMANDS:
            run(pid, argv, check=False)
        raise


def shaped(pid: int) -> list[str]:
    """The directions replab's qdiscs shape now, read from the kernel."""
    out = []
    if "htb 1:" in run(pid, ["tc", "qdisc", "show", "dev", "eth0", "root"], check=False).stdout:
        out.append(TO_PRIMARY)
    if "htb 1:" in run(pid, ["tc", "qdisc", "show", "dev", IFB, "root"], check=False).stdout:
        out.append(TO_REPLICA)
    return sorted(out)
