"""The member network: one network namespace per group member, so partitions between members are real.

Why not the link relay, and why not one loopback address per member (measured on this machine, see
docs/membernet.md): Group Replication's XCom and Galera's gmcast connect to each other at the addresses
they advertise, so no relay can sit between one pair; and XCom does not bind its outgoing sockets, so on
loopback a connection to 127.0.0.3 leaves *from* 127.0.0.3 (or 127.0.0.1): the sender cannot be told from
its packets. In a namespace of its own a member has exactly one address, every packet it sends carries it,
whoever opened the connection, and a drop rule on (source, destination) is a cut between two members.

Layout (names derive from the cluster home: ``tag`` = 8 hex digits of the hash of its path):

    host namespace         rl<tag> 198.18.X.1/24 ──veth──┐
    hub namespace  replab-<tag>:      bridge br0 ────────┼── m0 ──veth── eth0 198.18.X.11  replab-<tag>-<member0>
                   nft table bridge replab (the cuts)    └── m1 ──veth── eth0 198.18.X.12  replab-<tag>-<member1> ...

replab (host namespace) reaches every member at its address through ``rl<tag>``; members reach each other
through the hub's bridge, where the cuts are: a set of (from, to) address pairs whose packets are dropped
(silently: no reset, no ICMP), so a cut is one-way or both ways. The subnet is one /24 of 198.18.0.0/15
(RFC 2544's range for network tests), picked from the tag and skipped while another interface uses it.
The server of member N runs in its namespace (``command()``: nsenter, which execs, so the pid is the
server's own); its unix socket and files are the host's as before.

Needs root, ``ip`` (iproute2), ``nft`` (nftables) and ``nsenter`` (util-linux). State: ``membernet.json``
in the home (names, subnet); ``remove()`` deletes the namespaces and the host's interface (idempotent).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, NotSupported, ReplabError

STATE_FILE = "membernet.json"
SUPERNET = ipaddress.ip_network("198.18.0.0/15")
FIRST_MEMBER = 11  # members are .11, .12, ... of the subnet; the host is .1
DIRECTIONS = ("both", "a-to-b", "b-to-a")
TABLE = "replab"  # family bridge, in the hub namespace only (never in the host's)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
TOOLS = {"ip": "iproute2", "nft": "nftables", "nsenter": "util-linux"}


class MemberNetError(ReplabError):
    """An ip/nft command failed (the message names it and what it said)."""


def tag_of(home: Path) -> str:
    return hashlib.sha1(str(Path(home).resolve()).encode()).hexdigest()[:8]


def unusable() -> str | None:
    """Why member networks cannot be built here (None when they can): root and three tools are needed."""
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)]
    if missing:
        return f"missing {', '.join(missing)}: install them with: make system-deps DEPS=net (or apt-get install " \
               f"{' '.join(sorted({TOOLS[t.split()[0]] for t in missing}))})"
    if os.geteuid() != 0:
        return "network namespaces and nft rules need root (run replab as root, or in a VM/container as root)"
    return None


def _run(argv: list[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=30)
    if check and proc.returncode != 0:
        raise MemberNetError(f"`{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()[:300]}",
                             hint="see docs/membernet.md; `replab down` removes what was built")
    return proc


def _netns_list() -> set[str]:
    proc = _run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def _link_exists(dev: str, ns: str | None = None) -> bool:
    argv = ["ip", *(["-n", ns] if ns else []), "link", "show", "dev", dev]
    return _run(argv, check=False).returncode == 0


def _subnets_in_use() -> set[ipaddress.IPv4Network]:
    used = set()
    for argv in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show"]):
        for word in _run(argv, check=False).stdout.split():
            try:
                net = ipaddress.ip_network(word, strict=False)
            except ValueError:
                continue
            if isinstance(net, ipaddress.IPv4Network) and net.overlaps(SUPERNET):
                used.add(net)
    return used


class MemberNet:
    """The network of a group's members (see the module doc). Cheap to construct: nothing happens in the
    kernel until ``setup()``; ``addresses()`` picks (and records in the home) the subnet."""

    def __init__(self, home: Path, names: list[str]) -> None:
        if not names:
            raise ConfigError("a member network needs at least one member")
        bad = [n for n in names if not _NAME.match(n)]
        if bad or len(set(names)) != len(names):
            raise ConfigError("member names must be distinct, lower case [a-z0-9_-], at most 32 characters: "
                              f"{bad or names}")
        if len(names) > 200:
            raise ConfigError("a member network holds at most 200 members")
        self.home = Path(home)
        self.names = list(names)
        self.tag = tag_of(self.home)
        self.hub = f"replab-{self.tag}"
        self.host_if = f"rl{self.tag}"
        self.owner = str(self.home.resolve())[:250]  # the interfaces' alias: whose they are (see left_under)
        self._subnet: ipaddress.IPv4Network | None = None
        saved = self._load()
        if saved:
            self._subnet = ipaddress.IPv4Network(saved["subnet"])
            for name in saved.get("names", []):  # a member added later keeps the others' addresses
                if name not in self.names:
                    self.names.append(name)
            self.names.sort(key=lambda n: saved["names"].index(n) if n in saved["names"] else 1000)

    # --- state -------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.home / STATE_FILE

    def _load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "subnet" in data else None

    def _save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"subnet": str(self.subnet()), "names": self.names, "tag": self.tag,
                                   "hub": self.hub, "host_if": self.host_if}, indent=1) + "\n")
        tmp.replace(self.state_path)

    @classmethod
    def load(cls, home: Path) -> MemberNet | None:
        """The member network recorded in ``home`` (None when the cluster has none)."""
        try:
            data = json.loads((Path(home) / STATE_FILE).read_text())
            return cls(Path(home), list(data["names"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # --- addresses ---------------------------------------------------------------------------------
    def subnet(self) -> ipaddress.IPv4Network:
        """The /24 the members live on (chosen once, recorded in the home): e.g. for an allowlist."""
        if self._subnet is None:
            used = _subnets_in_use()
            count = 2 ** (24 - SUPERNET.prefixlen)
            start = int(self.tag, 16) % count
            subnets = list(SUPERNET.subnets(new_prefix=24))
            for i in range(count):
                cand = subnets[(start + i) % count]
                if not any(cand.overlaps(u) for u in used):
                    self._subnet = cand
                    break
            else:
                raise MemberNetError(f"every /24 of {SUPERNET} is in use on this machine")
            self._save()
        return self._subnet

    def host_address(self) -> str:
        """replab's own address on the member network (what members see a client come from)."""
        return str(self.subnet().network_address + 1)

    def client_host(self) -> str:
        """The host part of accounts that members and replab use over this network (``198.18.X.%``)."""
        return str(self.subnet().network_address).rsplit(".", 1)[0] + ".%"

    def addresses(self) -> dict[str, str]:
        base = self.subnet().network_address
        return {name: str(base + FIRST_MEMBER + i) for i, name in enumerate(self.names)}

    def namespace(self, name: str) -> str:
        self._member(name)
        return f"{self.hub}-{name}"

    def _member(self, name: str) -> str:
        if name not in self.names:
            raise ConfigError(f"{name} is not a member of this group (members: {', '.join(self.names)})")
        return name

    def command(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` run inside member ``name``'s namespace (nsenter execs it: same pid, same files)."""
        return ["nsenter", f"--net=/run/netns/{self.namespace(name)}", "--", *argv]

    def mechanism(self) -> str:
        return (f"network namespaces ({self.hub}-*), one address per member on {self.subnet()}, bridged in "
                f"namespace {self.hub}; cuts are nft drops on that bridge (silent: no reset)")

    # --- build and remove --------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.hub in _netns_list()

    def complete(self) -> bool:
        have = _netns_list()
        return self.hub in have and all(f"{self.hub}-{n}" in have for n in self.names) and \
            _link_exists(self.host_if) and self._table_exists()

    def setup(self) -> None:
        """Build what is missing (idempotent; after a reboot it builds it all again)."""
        why = unusable()
        if why:
            raise NotSupported(f"cannot build the member network: {why}")
        subnet, addrs = self.subnet(), self.addresses()
        prefix = subnet.prefixlen
        have = _netns_list()
        try:
            if self.hub not in have:
                _run(["ip", "netns", "add", self.hub])
            hub = ["ip", "-n", self.hub]
            _run([*hub, "link", "set", "dev", "lo", "up"])
            if not _link_exists("br0", self.hub):
                _run([*hub, "link", "add", "br0", "type", "bridge"])
            _run([*hub, "link", "set", "dev", "br0", "up"])
            if not _link_exists(self.host_if):
                _run([*hub, "link", "del", "dev", "host"], check=False)  # a stale peer of a lost host end
                _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "host", "netns", self.hub])
                _run(["ip", "addr", "add", f"{self.host_address()}/{prefix}", "dev", self.host_if])
            _run(["ip", "link", "set", "dev", self.host_if, "alias", self.owner, "up"])
            _run([*hub, "link", "set", "dev", "br0", "alias", self.owner])
            _run([*hub, "link", "set", "dev", "host", "master", "br0", "up"])
            if not self._table_exists():
                _run(["ip", "netns", "exec", self.hub, "nft", "-f", "-"], input=(
                    f"table bridge {TABLE} {{\n"
                    "  set cuts { type ipv4_addr . ipv4_addr; }\n"
                    "  chain forward { type filter hook forward priority 0; policy accept;\n"
                    "    ip saddr . ip daddr @cuts counter drop; }\n"
                    "}\n"))
            for i, name in enumerate(self.names):
                ns, port = f"{self.hub}-{name}", f"m{i}"
                if ns not in have:
                    _run(["ip", "netns", "add", ns])
                if not _link_exists("eth0", ns):
                    _run([*hub, "link", "del", "dev", port], check=False)
                    _run([*hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
                    _run(["ip", "-n", ns, "addr", "add", f"{addrs[name]}/{prefix}", "dev", "eth0"])
                _run([*hub, "link", "set", "dev", port, "master", "br0", "up"])
                _run(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
                _run(["ip", "-n", ns, "link", "set", "dev", "eth0", "alias", self.owner, "up"])
        except ReplabError:
            if not have & {self.hub, *(f"{self.hub}-{n}" for n in self.names)}:
                self.remove(forget=False)  # built from nothing and failed: leave nothing half made
            raise
        self._save()

    def remove(self, forget: bool = False) -> None:
        """Delete the namespaces and the host's interface (whatever exists of them: idempotent). A server
        still running in a member namespace keeps that namespace alive, unnamed, until it exits."""
        if _link_exists(self.host_if):
            _run(["ip", "link", "del", "dev", self.host_if], check=False)
        have = _netns_list()
        prefix = f"{self.hub}-"
        for ns in sorted(have):
            if ns.startswith(prefix) or ns == self.hub:
                _run(["ip", "netns", "del", ns], check=False)
        if forget:
            self.state_path.unlink(missing_ok=True)

    def leftovers(self) -> list[str]:
        """What of this network exists in the kernel now (names; empty after remove())."""
        out = [ns for ns in sorted(_netns_list()) if ns == self.hub or ns.startswith(f"{self.hub}-")]
        if _link_exists(self.host_if):
            out.append(f"interface {self.host_if}")
        return out

    # --- cuts --------------------------------------------------------------------------------------
    def _nft(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.hub, "nft", *args], check=check)

    def _table_exists(self) -> bool:
        if self.hub not in _netns_list():
            return False
        return self._nft("list", "table", "bridge", TABLE, check=False).returncode == 0

    def _require_up(self) -> None:
        if not self._table_exists():
            raise NotSupported(f"the member network of {self.home} is not set up (namespace {self.hub} or its "
                               "nft table is missing)", hint="start the cluster again: replab start")

    def _pairs(self, a: str, b: str, direction: str) -> list[tuple[str, str]]:
        self._member(a)
        self._member(b)
        if a == b:
            raise ConfigError(f"cannot cut {a} from itself")
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        return {"both": [(a, b), (b, a)], "a-to-b": [(a, b)], "b-to-a": [(b, a)]}[direction]

    def _elements(self, pairs: list[tuple[str, str]]) -> str:
        addr = self.addresses()
        return "{ " + ", ".join(f"{addr[x]} . {addr[y]}" for x, y in pairs) + " }"

    def cut(self, a: str, b: str, direction: str = "both") -> None:
        """Drop what ``a`` sends to ``b`` (a-to-b), the reverse (b-to-a), or both; silently."""
        pairs = self._pairs(a, b, direction)
        self._require_up()
        self._nft("add", "element", "bridge", TABLE, "cuts", self._elements(pairs))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Remove the cuts between ``a`` and ``b`` (both ways), every cut of ``a``, or every cut."""
        if a is None and b is not None:
            a, b = b, None
        if a is not None:
            self._member(a)
        if b is not None:
            self._pairs(a or "", b, "both")
        if not self._table_exists():
            return  # nothing is cut where nothing exists
        if a is None:
            self._nft("flush", "set", "bridge", TABLE, "cuts")
            return
        drop = [(x, y) for x, y in self.cuts() if a in (x, y) and (b is None or b in (x, y))]
        if drop:
            self._nft("delete", "element", "bridge", TABLE, "cuts", self._elements(drop))

    def cuts(self) -> list[tuple[str, str]]:
        """(from, to) member pairs whose packets are dropped now."""
        if not self._table_exists():
            return []
        data = json.loads(self._nft("-j", "list", "set", "bridge", TABLE, "cuts").stdout)
        by_addr = {v: k for k, v in self.addresses().items()}
        out = []
        for item in data.get("nftables", []):
            for elem in (item.get("set") or {}).get("elem", []):
                pair = elem.get("concat") if isinstance(elem, dict) else None
                if pair and len(pair) == 2 and pair[0] in by_addr and pair[1] in by_addr:
                    out.append((by_addr[pair[0]], by_addr[pair[1]]))
        return sorted(out)

    def dropped(self) -> int:
        """Packets the cuts have dropped since setup (the rule's counter)."""
        if not self._table_exists():
            return 0
        found = re.search(r"counter packets (\d+)", self._nft("list", "chain", "bridge", TABLE, "forward").stdout)
        return int(found.group(1)) if found else 0


def remove_home(home: Path, forget: bool = True) -> None:
    """Remove the member network of the cluster in ``home``, if it has one (what `replab down` calls)."""
    net = MemberNet.load(home)
    if net is not None and (unusable() is None):
        net.remove(forget=forget)
    elif net is not None and forget:
        net.state_path.unlink(missing_ok=True)


def _alias(dev: str, ns: str | None = None) -> str:
    proc = _run(["ip", *(["-n", ns] if ns else []), "-j", "link", "show", "dev", dev], check=False)
    try:
        return str(json.loads(proc.stdout)[0].get("ifalias") or "")
    except (ValueError, IndexError, AttributeError):
        return ""


def left_under(base: Path) -> list[str]:
    """Member networks still in the kernel whose owner (the interfaces' alias: the home's path) is under
    ``base``: the test session's sweep. Read-only: nothing is removed by this pattern."""
    if not shutil.which("ip"):
        return []
    root = str(Path(base).resolve())
    have = _netns_list()
    out = []
    for ns in sorted(have):
        if re.fullmatch(r"replab-[0-9a-f]{8}", ns) and _alias("br0", ns).startswith(root):
            out.append(ns)
        elif re.fullmatch(r"replab-[0-9a-f]{8}-.+", ns) and _alias("eth0", ns).startswith(root):
            out.append(ns)
    for line in _run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
        found = re.match(r"\d+: (rl[0-9a-f]{8})[@:]", line)
        if found and _alias(found.group(1)).startswith(root):
            out.append(f"interface {found.group(1)}")
    return out
