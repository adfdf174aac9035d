"""The member network without databases: two python agents in two members' namespaces, cut both ways, one
way each way, healed; connections opened by either side; the cut is silent (a timeout, never a reset)."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from replab.core.errors import ConfigError, NotSupported
from replab.engines import membernet
from replab.engines.membernet import MemberNet

pytestmark = pytest.mark.skipif(membernet.unusable() is not None, reason=f"{membernet.unusable()}")

PORT = 47011

AGENT = r'''
import socket, sys, threading
addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def note(line):
    with lock, open(log, "a") as fh:
        fh.write(line + "\n")
def say(line):
    with lock:
        print(line, flush=True)
def serve_tcp(conn):
    with conn, conn.makefile("rb") as fh:
        for raw in fh:
            note("tcp " + raw.decode().strip()); conn.sendall(raw)
srv = socket.create_server((addr, port))
threading.Thread(target=lambda: [threading.Thread(target=serve_tcp, args=(srv.accept()[0],), daemon=True).start()
                                 for _ in iter(int, 1)], daemon=True).start()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((addr, port))
threading.Thread(target=lambda: [note("udp " + udp.recv(100).decode()) for _ in iter(int, 1)], daemon=True).start()
peer = None
def read_peer(sock):
    try:
        with sock.makefile("rb") as fh:
            for raw in fh:
                say("got " + raw.decode().strip())
        say("closed")
    except OSError as e:
        say("reset " + type(e).__name__)
say("ready")
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "try":          # a fresh connection, 1 s to open
        s = socket.socket(); s.settimeout(1.0)
        try:
            s.connect((cmd[1], int(cmd[2]))); say("ok")
        except socket.timeout:
            say("timeout")
        except OSError as e:
            say("error " + type(e).__name__)
        finally:
            s.close()
    elif cmd[0] == "connect":    # the persistent connection
        peer = socket.create_connection((cmd[1], int(cmd[2])), timeout=2); peer.settimeout(None)
        threading.Thread(target=read_peer, args=(peer,), daemon=True).start(); say("connected")
    elif cmd[0] == "send":
        peer.sendall((cmd[1] + "\n").encode()); say("sent")
    elif cmd[0] == "udp":
        udp.sendto(cmd[3].encode(), (cmd[1], int(cmd[2]))); say("sent")
'''


class Agent:
    def __init__(self, net: MemberNet, name: str, tmp: Path) -> None:
        self.name, self.addr = name, net.addresses()[name]
        self.log = tmp / f"{name}.log"
        self.log.write_text("")
        script = tmp / "agent.py"
        script.write_text(AGENT)
        self.proc = subprocess.Popen(net.command(name, [sys.executable, str(script), self.addr, str(PORT),
                                                        str(self.log)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        assert self.next() == "ready"

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next(self, timeout: float = 5.0) -> str:
        return self.lines.get(timeout=timeout)

    def ask(self, command: str) -> str:
        assert self.proc.stdin
        self.proc.stdin.write(command + "\n")
        return self.next()

    def try_(self, other: Agent, port: int = PORT) -> str:
        return self.ask(f"try {other.addr} {port}")

    def received(self) -> list[str]:
        return self.log.read_text().split()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def host_reaches(addr: str) -> bool:
    try:
        socket.create_connection((addr, PORT), timeout=1).close()
        return True
    except OSError:
        return False


def until(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


def test_cut_one_way_both_ways_and_heal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    net = MemberNet(home, ["mysql-m", "mysql-s1", "mysql-s2"])
    agents: list[Agent] = []
    try:
        addrs = net.addresses()
        assert len(set(addrs.values())) == 3 and all(net.subnet().overlaps(
            membernet.ipaddress.ip_network(f"{a}/32")) for a in addrs.values())
        net.setup()
        net.setup()  # idempotent
        assert net.complete() and MemberNet.load(home).addresses() == addrs  # type: ignore[union-attr]
        a, b = Agent(net, "mysql-m", tmp_path), Agent(net, "mysql-s1", tmp_path)
        agents += [a, b]
        # open: both sides open connections, the host reaches both members
        assert a.try_(b) == "ok" and b.try_(a) == "ok"
        assert host_reaches(a.addr) and host_reaches(b.addr)
        assert a.try_(b, PORT + 1) == "error ConnectionRefusedError"  # a closed port answers with a reset
        assert a.ask(f"connect {b.addr} {PORT}") == "connected"
        assert a.ask("send one") == "sent" and a.next() == "got one" and "one" in b.received()

        # both ways: nothing passes either way, silently (timeouts, no reset, even on a closed port)
        net.cut("mysql-m", "mysql-s1")
        assert net.cuts() == [("mysql-m", "mysql-s1"), ("mysql-s1", "mysql-m")]
        assert a.try_(b) == "timeout" and b.try_(a) == "timeout"
        assert a.try_(b, PORT + 1) == "timeout"
        assert a.ask("send two") == "sent"
        time.sleep(1.5)
        assert "two" not in b.received() and a.lines.empty()  # not delivered, no reset, no echo
        assert host_reaches(a.addr) and host_reaches(b.addr)  # replab still sees both members
        net.heal()
        assert net.cuts() == []
        # healed: the established connection delivers what was held (TCP retransmits), no reset
        assert until(lambda: "two" in b.received()) and a.next(10) == "got two"
        assert a.try_(b) == "ok" and b.try_(a) == "ok"

        # one way, each way: UDP shows the direction; TCP opens neither way (its handshake needs both)
        for direction, sender, hearer in (("a-to-b", a, b), ("b-to-a", b, a)):
            net.cut("mysql-m", "mysql-s1", direction)
            lost, heard = f"lost-{direction}", f"heard-{direction}"
            assert sender.ask(f"udp {hearer.addr} {PORT} {lost}") == "sent"
            assert hearer.ask(f"udp {sender.addr} {PORT} {heard}") == "sent"
            assert until(lambda s=sender, h=heard: h in s.received(), 3)
            assert lost not in hearer.received()
            assert a.try_(b) == "timeout" and b.try_(a) == "timeout"
            assert net.cuts() == [(sender.name, hearer.name)]
            net.heal("mysql-s1")
            assert net.cuts() == [] and a.try_(b) == "ok"
        assert net.dropped() > 0

        # heal(a, b) removes only that pair's cuts
        net.cut("mysql-m", "mysql-s1")
        net.cut("mysql-m", "mysql-s2", "a-to-b")
        net.heal("mysql-s1", "mysql-m")
        assert net.cuts() == [("mysql-m", "mysql-s2")]
        for bad in (lambda: net.cut("mysql-m", "nope"), lambda: net.cut("mysql-m", "mysql-m"),
                    lambda: net.cut("mysql-m", "mysql-s1", "sideways")):
            with pytest.raises(ConfigError):
                bad()
    finally:
        for agent in agents:
            agent.stop()
        net.remove()
    assert net.leftovers() == [] and membernet.left_under(tmp_path) == []
    net.remove()  # idempotent
    net.heal()    # nothing to heal where nothing exists
    assert net.cuts() == []
    with pytest.raises(NotSupported):
        net.cut("mysql-m", "mysql-s1")
    membernet.remove_home(home)
    assert not (home / membernet.STATE_FILE).exists()


class _FakeCluster:
    """What faults/members needs of a cluster, no servers: members 'stopped' (no timeouts to read)."""

    def __init__(self, home: Path, kind: str, names: list[str]) -> None:
        from types import SimpleNamespace
        self.home = home
        self.nodes = [SimpleNamespace(name=n) for n in names]
        self.topology = SimpleNamespace(name=kind, virtually_synchronous=True)
        self.engine = SimpleNamespace(name="local", state=lambda node: "stopped")

    def node(self, name: str):
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"no node {name}")


def test_isolate_and_heal_sentences(tmp_path: Path) -> None:
    from replab.faults import members, nemesis
    names = ["mysql-m", "mysql-s1", "mysql-s2"]
    cluster = _FakeCluster(tmp_path / "home", "galera", names)
    with pytest.raises(NotSupported, match="cannot be cut off from each other"):  # no member network
        nemesis.partition(cluster, "mysql-s2")  # type: ignore[arg-type]
    net = MemberNet(cluster.home, names)
    try:
        net.setup()
        said = nemesis.partition(cluster, "mysql-s2")  # type: ignore[arg-type]
        assert said.startswith("mysql-s2: cut off from the other members, both ways (packets silently dropped")
        assert "mysql-m and mysql-s1 keep a majority (2 of 3) and go on; mysql-s2 is in a minority" in said
        assert "non-Primary" in said and said.endswith("heal with: replab heal mysql-s2")
        assert len(net.cuts()) == 4 and nemesis.partitioned(cluster) == ["mysql-s2"]  # type: ignore[arg-type]
        with pytest.raises(members.NodeStateError):
            members.isolate(cluster, ["mysql-s2"])  # type: ignore[arg-type]
        assert nemesis.heal(cluster, "mysql-s2").startswith(  # type: ignore[arg-type]
            "healed: mysql-s2 can reach the other members again; a node rejoins the primary component")
        said = nemesis.partition(cluster, "mysql-m", also=["mysql-s1"])  # type: ignore[arg-type]
        assert "each cut off from every other member" in said and "no side has a majority" in said
        assert len(net.cuts()) == 6 and nemesis.partitioned(cluster) == names  # type: ignore[arg-type]
        said = members.heal(cluster)  # type: ignore[arg-type]
        assert said.startswith("healed: mysql-m, mysql-s1, mysql-s2 can reach") and net.cuts() == []
        said = members.isolate(cluster, ["mysql-s2"], "out")  # type: ignore[arg-type]
        assert "one way: nothing mysql-s2 sends reaches the others" in said
        assert net.cuts() == [("mysql-s2", "mysql-m"), ("mysql-s2", "mysql-s1")]
        members.heal(cluster)  # type: ignore[arg-type]
        members.isolate(cluster, ["mysql-s2"], "in")  # type: ignore[arg-type]
        assert net.cuts() == [("mysql-m", "mysql-s2"), ("mysql-s1", "mysql-s2")]
        for bad in (lambda: members.isolate(cluster, ["mysql-s2"], "to-replica"),  # type: ignore[arg-type]
                    lambda: members.isolate(cluster, ["nope"]),  # type: ignore[arg-type]
                    lambda: members.isolate(cluster, ["mysql-s2", "mysql-s2"])):  # type: ignore[arg-type]
            with pytest.raises(ConfigError):
                bad()
        assert net.cuts() == [("mysql-m", "mysql-s2"), ("mysql-s1", "mysql-s2")]  # nothing changed
        assert members.heal(cluster).startswith("healed: mysql-s2")  # type: ignore[arg-type]
        assert members.heal(cluster) == "nothing to heal: no member is cut off"  # type: ignore[arg-type]
    finally:
        net.remove(forget=True)
    assert net.leftovers() == []
