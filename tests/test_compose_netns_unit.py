"""The compose engine's namespace plumbing as text (no Docker, no root): the nft rules of each cut, the tc
commands of each shaping, with and without netem (this machine's kernel has none, so the netem path is
checked here only), and the sockets read from /proc/PID/net/tcp."""

from __future__ import annotations

from pathlib import Path

from replab.engines import netns

SRC = ("172.22.0.2", 3306)


def test_both_ways_drops_every_packet_of_the_link_only() -> None:
    rules = netns.cut_ruleset(SRC, ["to-primary", "to-replica"])
    assert 'ip saddr 172.22.0.2 tcp sport 3306 counter drop comment "to-replica";' in rules
    assert 'ip daddr 172.22.0.2 tcp dport 3306 counter drop comment "to-primary";' in rules
    assert "doff" not in rules and rules.startswith("table inet replab {}\ndelete table inet replab\n")


def test_one_way_lets_bare_acknowledgements_cross() -> None:
    rules = netns.cut_ruleset(SRC, ["to-primary"])
    out = rules.split("chain output", 1)[1]
    assert "tcp flags & (fin | syn | rst) != 0 counter drop" in out
    assert "tcp doff 8 ip length != 52 counter drop" in out  # a bare ACK with timestamps is 52 bytes
    assert "drop" not in rules.split("chain output", 1)[0]  # nothing toward the replica is touched


def test_shaping_commands_with_and_without_netem() -> None:
    cond = {"to-replica": {"rate_bps": 2_000_000, "delay_ms": 20.0, "jitter_ms": 5.0},
            "to-primary": {"rate_bps": 512_000}}
    plain = [" ".join(c) for c in netns.shape_commands(SRC, cond, netem=False)]
    assert "tc class add dev eth0 parent 1: classid 1:1 htb rate 512kbit ceil 512kbit" in plain
    assert "tc class add dev replab-in parent 1: classid 1:1 htb rate 2000kbit ceil 2000kbit" in plain
    assert ("tc filter add dev eth0 ingress protocol ip prio 1 u32 match ip src 172.22.0.2/32 match ip sport 3306 "
            "0xffff action mirred egress redirect dev replab-in") in plain
    assert not any("netem" in c for c in plain)
    with_netem = [" ".join(c) for c in netns.shape_commands(SRC, cond, netem=True)]
    assert "tc qdisc add dev replab-in parent 1:1 handle 10: netem delay 20ms 5ms" in with_netem
    assert not any("dev eth0" in c and "netem" in c for c in with_netem)  # to-primary asked no delay


def test_sockets_from_proc(tmp_path: Path, monkeypatch) -> None:
    table = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
             "   0: 030016AC:9A10 020016AC:0CEA 01 00000F00:00000000 00:00000000 00000000     0        0 1\n"
             "   1: 00000000:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n")
    proc = tmp_path / "proc" / "42" / "net"
    proc.mkdir(parents=True)
    (proc / "tcp").write_text(table)
    real = Path

    def fake(p: str, *a: object) -> Path:
        return real(str(p).replace("/proc", str(tmp_path / "proc"), 1))
    monkeypatch.setattr(netns, "Path", fake)
    assert netns.client_ports(42, SRC) == [0x9A10]
    assert netns.held_bytes(42, 3306) == 0xF00
