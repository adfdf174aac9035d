"""The link relay never blocks: a paused replica that stops reading does not freeze its relay, so cutting
and healing that link still work at once (the relay used to block in sendall inside its loop). And it
delivers what a side sent before closing: a primary's last packet (error 1236, then close) must reach the
replica, or the replica sees a lost connection (2013) and retries for ever."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from replab.engines import relay
from replab.faults import nemesis
from replab.servers.process import cmdline
from replab.verify import checker
from replab.workload.feed import feed


def test_partition_and_heal_a_paused_replicas_link(replab_cluster):
    cluster = replab_cluster
    nemesis.pause(cluster, "mysql-s1")
    try:
        # enough binlog toward the frozen replica to fill the kernel's socket buffers and the relay's queue
        result = feed(cluster, rate=0, rows=150000, threads=2, batch=500)
        assert result.ok == 150000
        t0 = time.monotonic()
        nemesis.partition(cluster, "mysql-s1")
        assert relay.mode(cluster.home, "mysql-s1") == relay.BLOCKED
        nemesis.heal(cluster, "mysql-s1")
        assert relay.mode(cluster.home, "mysql-s1") == relay.OPEN
        assert time.monotonic() - t0 < 3.0  # the relay answered at once, it was not stuck writing
    finally:
        nemesis.resume(cluster, "mysql-s1")
    assert cluster.wait_caught_up(60) == {"mysql-s1": True, "mysql-s2": True}
    report = checker.check(cluster, wait=30)
    assert report.consistent, report.render()


def test_relay_process_is_found_by_its_directory_not_its_name(replab_cluster):
    cluster = replab_cluster
    pid = relay.pid(cluster.home, "mysql-s1")
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        cmd = fh.read().replace(b"\0", b" ").decode()
    assert f"replab/engines/relayd.py {cluster.home / 'relay'} mysql-s1" in cmd
    assert relay.pid(cluster.home, "mysql-s9") is None


def test_bytes_sent_just_before_a_close_reach_the_other_side(tmp_path):
    payload = bytes(range(256)) * 8192  # 2 MiB: the relay holds most of it, the client's buffer is small
    server = socket.create_server(("127.0.0.1", 0))

    def upstream() -> None:  # like a primary refusing a replica: its answer, then close at once
        conn, _ = server.accept()
        conn.sendall(payload)
        conn.close()

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    try:
        port = relay.ensure(tmp_path, "mysql-s1", ("127.0.0.1", server.getsockname()[1]))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.settimeout(10)
            client.connect(("127.0.0.1", port))
            thread.join(10)  # the upstream has sent everything and closed before the client reads a byte
            time.sleep(0.5)
            got = bytearray()
            while chunk := client.recv(65536):
                got += chunk
        assert len(got) == len(payload) and bytes(got) == payload
    finally:
        relay.stop_all(tmp_path)
        server.close()


def test_a_relay_started_by_an_older_replab_is_still_found_and_stopped(tmp_path):
    """Relays of a cluster made before relayd.py ran as ``python -m replab.relay DIR NAME``: after an upgrade,
    `down` must still recognize them by that command line and stop them (a process stands in for one)."""
    directory = relay.relay_dir(tmp_path)
    directory.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "replab.relay",
                             str(directory), "mysql-s1"])
    try:
        (directory / "mysql-s1.pid").write_text(f"{proc.pid}\n")
        # Popen may return while the child is still inside exec, its command line empty for a moment
        deadline = time.monotonic() + 10
        while "replab.relay" not in cmdline(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.pid(tmp_path, "mysql-s1") == proc.pid
        assert relay.pid(tmp_path, "mysql-s2") is None
        relay.stop_all(tmp_path)
        assert proc.wait(timeout=10) is not None
    finally:
        proc.kill()
        proc.wait()
