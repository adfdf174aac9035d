"""Link conditions without servers: the values a user types, and the relay's shaping measured on a socket
echo server (delay, jitter keeping order, rate, one-way cuts, a crash dropping what the relay held)."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replab.core import links
from replab.core.errors import ConfigError, NotSupported
from replab.engines import get_engine_class, relay


@pytest.mark.parametrize("text, ms", [("20ms", 20.0), ("1.5s", 1500.0), ("500us", 0.5), ("7", 7.0), ("0ms", 0.0)])
def test_delays(text: str, ms: float) -> None:
    assert links.parse_delay(text) == ms


@pytest.mark.parametrize("text, bps", [("2mbit", 2_000_000), ("512kbit", 512_000), ("1gbit", 1_000_000_000),
                                       ("1mbps", 8_000_000)])
def test_rates(text: str, bps: int) -> None:
    assert links.parse_rate(text) == bps


@pytest.mark.parametrize("kwargs, words", [
    ({"delay": "10h"}, "absurd"), ({"delay": "-5ms"}, "negative"), ({"delay": "fast"}, "not a duration"),
    ({"rate": "0"}, "carries nothing"), ({"rate": "0mbit"}, "carries nothing"), ({"rate": "-1mbit"}, "negative"),
    ({"rate": "10bit"}, "below"), ({"rate": "1000gbit"}, "absurd"), ({"delay": "5ms", "jitter": "6ms"}, "larger"),
])
def test_bad_values_are_refused(kwargs: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        links.conditions(**kwargs)


def test_describe() -> None:
    c = links.conditions("20ms", "5ms", "2mbit")
    assert c.text() == "20ms ±5ms 2mbit"
    assert links.describe({links.TO_REPLICA: c, links.TO_PRIMARY: links.Conditions()}) == "to-replica 20ms ±5ms 2mbit"
    assert links.describe({}) == "plain"
    with pytest.raises(ConfigError, match="to-replica"):
        links.directions("up")


# --- the relay, on an echo server ------------------------------------------------------------------
@pytest.fixture
def echo(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """(relay home, relay port, direct port) of an echo server; ``D<16 digits>`` asks it for that many bytes."""
    srv = socket.create_server(("127.0.0.1", 0))

    def one(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn, contextlib.suppress(OSError):  # a crash resets the connection
            while data := conn.recv(65536):
                if data[:1] == b"D":
                    n = int(data[1:17])
                    block = b"x" * 65536
                    while n > 0:
                        conn.sendall(block[:min(n, 65536)])
                        n -= 65536
                else:
                    conn.sendall(data)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    port = relay.ensure(tmp_path, "mysql-s1", ("127.0.0.1", srv.getsockname()[1]))
    try:
        yield tmp_path, port, srv.getsockname()[1]
    finally:
        relay.stop_all(tmp_path)
        srv.close()


def _client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _rtts(port: int, n: int) -> list[float]:
    with _client(port) as s:
        out = []
        for i in range(n):
            msg = f"{i:08d}".encode() * 12
            t0 = time.perf_counter()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                got += s.recv(4096)
            out.append((time.perf_counter() - t0) * 1000)
            assert got == msg
        return out


def test_delay_is_added_to_each_direction_shaped(echo: tuple[Path, int, int]) -> None:
    home, port, _ = echo
    relay.set_shape(home, "mysql-s1", {"to-replica": {"delay_ms": 15}, "to-primary": {"delay_ms": 5}})
    assert relay.shape(home, "mysql-s1") == {"to-replica": {"delay_ms": 15}, "to-primary": {"delay_ms": 5}}
    rtt = statistics.median(statistics.median(_rtts(port, 15)) for _ in range(3))
    assert 18 <= rtt <= 22, rtt  # 20 ms ± 10%
    relay.set_shape(home, "mysql-s1", {})
    assert statistics.median(_rtts(port, 200)) < 1.0


def test_jitter_spreads_the_delay_and_keeps_the_order(echo: tuple[Path, int, int]) -> None:
    home, port, _ = echo
    relay.set_shape(home, "mysql-s1", {"to-replica": {"delay_ms": 20, "jitter_ms": 10}})
    with _client(port) as s:  # 40 messages sent at once: each comes back whole and in order
        for i in range(40):
            s.sendall(f"<{i:04d}>".encode())
        got = b""
        while len(got) < 40 * 6:
            got += s.recv(4096)
        assert got == b"".join(f"<{i:04d}>".encode() for i in range(40))
    rtts = sorted(_rtts(port, 40))  # 20 ± 10 ms; percentiles, as other work on the machine delays some
    p10, p90 = rtts[4], rtts[35]
    assert 10 <= rtts[0] and 10 <= p10 <= 22 <= p90 <= 31 and p90 - p10 > 4, rtts


def test_rate_is_the_links_throughput(echo: tuple[Path, int, int]) -> None:
    home, port, _ = echo
    relay.set_shape(home, "mysql-s1", {"to-replica": {"rate_bps": 8_000_000}})  # 1 MB/s
    size = 1_500_000
    with _client(port) as s:
        t0 = time.perf_counter()
        s.sendall(b"D" + str(size).zfill(16).encode())
        got = 0
        while got < size:
            got += len(s.recv(1 << 20))
        seconds = time.perf_counter() - t0
    assert 0.9 <= size * 8 / seconds / 8_000_000 <= 1.1, seconds


def test_one_way_cut_holds_one_direction_only(echo: tuple[Path, int, int]) -> None:
    home, port, _ = echo
    with _client(port) as s:
        s.settimeout(0.5)
        relay.set_mode(home, "mysql-s1", f"{relay.BLOCKED}-{relay.TO_REPLICA}")
        s.sendall(b"ping")  # reaches the echo server, whose answer is held
        with pytest.raises(TimeoutError):
            s.recv(10)
        relay.set_mode(home, "mysql-s1", relay.OPEN)
        s.settimeout(5)
        assert s.recv(10) == b"ping"
        relay.set_mode(home, "mysql-s1", f"{relay.BLOCKED}-{relay.TO_PRIMARY}")
        s.settimeout(0.5)
        s.sendall(b"pong")  # held in the relay: the server never hears it
        with pytest.raises(TimeoutError):
            s.recv(10)
        relay.set_mode(home, "mysql-s1", relay.OPEN)
        s.settimeout(5)
        assert s.recv(10) == b"pong"


def test_a_crash_drops_what_the_relay_held_from_the_dead_side(echo: tuple[Path, int, int]) -> None:
    home, port, _ = echo
    relay.set_shape(home, "mysql-s1", {"to-replica": {"delay_ms": 300}})
    with _client(port) as s:
        s.sendall(b"D" + str(200_000).zfill(16).encode())  # the answer sits in the relay's 300 ms queue
        time.sleep(0.1)
        dropped = relay.sever(home, "mysql-s1", "primary")
        assert dropped >= 100_000
        s.settimeout(1.0)
        with pytest.raises(TimeoutError):  # nothing arrives, and no reset either: a dead host is silent
            s.recv(65536)
    # the relay carries new connections as before
    relay.set_shape(home, "mysql-s1", {})
    assert statistics.median(_rtts(port, 20)) < 1.0


# --- engines that cannot shape ----------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["external"])  # compose shapes rates, cuts one way and crashes (netns.py)
def test_engines_without_shaping_refuse_and_say_which_can(engine: str, tmp_path: Path) -> None:
    eng = get_engine_class(engine)(tmp_path)
    for capability, words in (("shape", "shape a link"), ("crash", "crash a host"),
                              ("partition-one-way", "one way only")):
        with pytest.raises(NotSupported, match=words) as exc:
            eng.require(capability, "mysql-s1")
        assert "--engine local" in (exc.value.hint or "")


def test_up_with_link_shaping_on_compose_is_refused_before_anything(tmp_path: Path, cli) -> None:
    home = tmp_path / "lab"
    from replab.engines import netns

    if netns.unusable() or netns.netem_missing():  # compose adds delay only with root and netem
        r = cli("up", "--engine", "compose", "--link-delay", "20ms", home=home)
        assert r.returncode == 2 and "the compose engine cannot" in r.stderr and "--engine local" in r.stderr, \
            r.stderr
        assert "Traceback" not in r.stderr and not home.exists()
    r = cli("up", "--engine", "external", "--link-delay", "20ms", home=home)
    assert r.returncode == 2 and "cannot shape a link" in r.stderr and "--engine local" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not home.exists()
    r = cli("up", "--link-delay", "10h", home=home)
    assert r.returncode == 2 and "--link-delay 10h is absurd" in r.stderr and not home.exists(), r.stderr


def test_a_measured_table_is_rendered_with_its_plot() -> None:
    from replab.runs.report import RunReport, render_html, summary

    rows = [["semi-sync", 0, 680.0, None], ["semi-sync", 40, 22.7, 25.0], ["semi-sync", 80, 11.7, 12.5],
            ["async", 0, 600.0, None], ["async", 40, 630.0, None], ["async", 80, 1000.0, None]]
    report = RunReport("semi-sync-over-distance", "d", tables={"commits-over-distance": {
        "columns": ["mode", "rtt_ms", "commits_s", "bound_commits_s"], "rows": rows,
        "plot": {"x": "rtt_ms", "y": "commits_s", "by": "mode", "bound": "bound_commits_s", "log": True}}})
    html = render_html(report)
    assert "id='table-commits-over-distance'" in html and "id='plot-commits_s'" in html
    for series in ("semi-sync", "async", "bound"):
        assert f"data-series='{series}'" in html
    again = RunReport.from_dict(report.to_dict())
    assert again.tables == report.tables
    assert "commits-over-distance:" in summary(report) and "11.7" in summary(report)
