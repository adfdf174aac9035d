"""Link conditions on real servers (MariaDB 10.11 and MySQL 9.7): what a client measures through a
replica's link is what was asked for, an unshaped link costs next to nothing, replication runs over a
shaped link, and status shows each link's conditions.

The link carries the replica's replication connection; a client measures it through the same relay
(its listening port), against the primary's own port. Samples are interleaved (direct, link, direct...)
and medians compared, so load from other work on the machine falls on both alike.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from replab import Cluster
from replab.core.errors import ConfigError, NodeStateError
from replab.engines import relay
from replab.faults import nemesis
from replab.servers import db


@pytest.fixture
def replab_cluster(matrix_cluster) -> Cluster:
    return matrix_cluster


def _conns(cluster: Cluster, link: str) -> tuple[object, object]:
    user, password = cluster.credentials(db.APP)
    primary = cluster.primary
    direct = db.connect(host=primary.host, port=primary.port, user=user, password=password, timeout=5,
                        read_timeout=30)
    via = db.connect(host="127.0.0.1", port=int(cluster.node(link).extra["relay_port"]), user=user,
                     password=password, timeout=10, read_timeout=30)
    return direct, via


def _once(conn: object, statement: str = "SELECT 1") -> float:
    t0 = time.perf_counter()
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(statement)
        cur.fetchall()
    return (time.perf_counter() - t0) * 1000


def _added_ms(cluster: Cluster, link: str, samples: int, statement: str = "SELECT 1") -> float:
    """Median round trip through ``link`` minus the median direct one, in ms (interleaved samples)."""
    direct, via = _conns(cluster, link)
    try:
        _once(direct, statement), _once(via, statement)  # warm
        d, v = [], []
        for _ in range(samples):
            d.append(_once(direct, statement))
            v.append(_once(via, statement))
        return statistics.median(v) - statistics.median(d)
    finally:
        direct.close()  # type: ignore[attr-defined]
        via.close()  # type: ignore[attr-defined]


def _within(got: float, want: float) -> bool:
    return abs(got - want) <= max(2.0, 0.1 * want)


def test_delay_and_rate_are_what_a_client_measures(replab_cluster):
    cluster = replab_cluster
    plain = min(_added_ms(cluster, "mysql-s1", 300) for _ in range(3))
    assert plain < 0.2, f"an unshaped link added {plain:.3f} ms to a round trip"

    nemesis.link(cluster, "mysql-s1", delay="20ms")  # both directions: +40 ms per round trip
    added = statistics.median(_added_ms(cluster, "mysql-s1", 15) for _ in range(3))
    assert _within(added, 40.0), added
    nemesis.link(cluster, "mysql-s1", delay="40ms", direction="to-replica")  # now 40 + 20
    added = statistics.median(_added_ms(cluster, "mysql-s1", 9) for _ in range(3))
    assert _within(added, 60.0), added

    # a bulk transfer (a 2 MB result toward the replica) at 16 mbit/s: 1.0 s
    nemesis.link(cluster, "mysql-s1", clear=True)
    nemesis.link(cluster, "mysql-s1", rate="16mbit", direction="to-replica")
    size = 2_000_000
    seconds = _added_ms(cluster, "mysql-s1", 3, f"SELECT REPEAT('x', {size})") / 1000
    rate = size * 8 / seconds
    assert 0.9 <= rate / 16e6 <= 1.1, f"{rate / 1e6:.2f} mbit/s through a 16mbit link"

    # replication runs over the shaped link; status names its conditions
    nemesis.link(cluster, "mysql-s1", delay="20ms", jitter="5ms", rate="2mbit")
    cluster.sql("mysql-m", "INSERT INTO mydb.events (name) VALUES ('over-the-link')")
    assert all(cluster.wait_caught_up(30).values())
    rows = {st.name: st for st in cluster.status()}
    assert rows["mysql-m"].link is None
    assert rows["mysql-s1"].link["conditions"] == {
        d: {"delay_ms": 20.0, "jitter_ms": 5.0, "rate_bps": 2_000_000} for d in ("to-replica", "to-primary")}
    assert rows["mysql-s2"].link["conditions"] == {} and rows["mysql-s2"].link["cut"] == []
    assert "plain" in nemesis.link(cluster, "mysql-s1", clear=True)
    assert relay.shape(cluster.home, "mysql-s1") == {}


def test_bad_link_input_changes_nothing(replab_cluster, cli):
    cluster = replab_cluster
    home = cluster.home
    nemesis.link(cluster, "mysql-s1", delay="5ms")
    before = relay.shape(home, "mysql-s1")
    for args, words in [
        (("link", "mysql-s1", "--delay", "10h"), "absurd"),
        (("link", "mysql-s1", "--delay=-3ms"), "negative"),
        (("link", "mysql-s1", "--rate", "0"), "carries nothing"),
        (("link", "mysql-m", "--delay", "5ms"), "the links are: mysql-s1 (mysql-s1 <-> mysql-m), mysql-s2"),
        (("link", "mysql-s9", "--delay", "5ms"), "unknown node"),
        (("partition", "mysql-s1", "--direction", "up"), "to-replica"),
    ]:
        r = cli(*args, home=home)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
        assert relay.shape(home, "mysql-s1") == before
    nemesis.kill(cluster, "mysql-s2")
    r = cli("crash", "mysql-s2", home=home)
    assert r.returncode == 2 and "already down" in r.stderr, r.stderr
    with pytest.raises(NodeStateError):
        nemesis.crash(cluster, "mysql-s2")
    with pytest.raises(ConfigError, match="larger"):
        nemesis.link(cluster, "mysql-s1", jitter="9ms", delay="3ms")
    assert relay.shape(home, "mysql-s1") == before


def test_up_shapes_every_link_from_the_start(tmp_path, cli):
    home = tmp_path / "lab"
    r = cli("up", "--link-delay", "15ms", "--link-rate", "20mbit", home=home)
    try:
        assert r.returncode == 0, r.stderr
        assert "every replica link shaped" in r.stderr and "15ms 20mbit each" in r.stdout, r.stdout + r.stderr
        nodes = {n["name"]: n for n in json.loads(cli("status", "--json", home=home).stdout)["nodes"]}
        want = {d: {"delay_ms": 15.0, "rate_bps": 20_000_000} for d in ("to-replica", "to-primary")}
        assert nodes["mysql-m"]["link"] is None
        assert nodes["mysql-s1"]["link"]["conditions"] == want and nodes["mysql-s2"]["link"]["conditions"] == want
        cluster = Cluster.open(home)
        added = statistics.median(_added_ms(cluster, "mysql-s2", 9) for _ in range(3))
        assert _within(added, 30.0), added  # the replication connection's own link, measured
    finally:
        assert cli("down", home=home).returncode == 0
