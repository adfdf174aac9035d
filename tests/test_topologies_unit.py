"""The Topology contract without servers: the registry, node counts, edges, who must hold whose writes,
per-node settings, loops, and an old cluster.json meaning the star."""

from __future__ import annotations

import pytest

from replab.core.errors import ConfigError, NotSupported
from replab.servers.flavor import MariaDBFlavor, MySQLFlavor
from replab.topologies import TOPOLOGIES, Edge, from_state, get_topology


def test_registry_and_unknown_name():
    assert list(TOPOLOGIES)[:5] == ["star", "chain", "fan-in", "active-active", "ring"]
    assert "galera" in TOPOLOGIES
    assert {"group", "group-multi-primary"} <= set(TOPOLOGIES)
    assert get_topology(None).name == "star"
    with pytest.raises(ConfigError, match="unknown topology 'mesh': choose one of star, chain, fan-in"):
        get_topology("mesh")


@pytest.mark.parametrize("shape,count", [("ring", 1), ("ring", 2), ("fan-in", 2), ("chain", 2), ("star", 1),
                                         ("star", 10), ("active-active", 1)])
def test_counts_a_shape_cannot_have(shape, count):
    with pytest.raises(ConfigError, match=f"--nodes {count}: a {shape} has"):
        get_topology(shape).check_count(count)


def test_node_names_and_edges():
    star, chain, fan, aa, ring = (get_topology(n) for n in ("star", "chain", "fan-in", "active-active", "ring"))
    assert star.node_names(3) == ["mysql-m", "mysql-s1", "mysql-s2"]
    assert star.edges(star.node_names(3)) == [Edge("mysql-m", "mysql-s1"), Edge("mysql-m", "mysql-s2")]
    assert chain.edges(chain.node_names(4)) == [Edge("mysql-m", "mysql-s1"), Edge("mysql-s1", "mysql-s2"),
                                                 Edge("mysql-s2", "mysql-s3")]
    assert fan.node_names(4) == ["mysql-m1", "mysql-m2", "mysql-m3", "mysql-s1"]
    assert fan.edges(fan.node_names(3)) == [Edge("mysql-m1", "mysql-s1", "m1"), Edge("mysql-m2", "mysql-s1", "m2")]
    assert aa.node_names(3) == ["mysql-m1", "mysql-m2", "mysql-s1"]
    assert aa.edges(aa.node_names(3)) == [Edge("mysql-m2", "mysql-m1"), Edge("mysql-m1", "mysql-m2"),
                                          Edge("mysql-m1", "mysql-s1")]
    assert ring.edges(ring.node_names(3)) == [Edge("mysql-m1", "mysql-m2"), Edge("mysql-m2", "mysql-m3"),
                                              Edge("mysql-m3", "mysql-m1")]
    # one relay per edge: the star's keep the replica's name, a named channel gets its own
    assert Edge("mysql-m", "mysql-s1").link == "mysql-s1"
    assert Edge("mysql-m1", "mysql-s1", "m1").link == "mysql-s1.m1"
    with pytest.raises(ConfigError):
        Edge("a", "b", "x'; DROP")


def test_expected_holdings_per_shape():
    def holdings(shape, count):
        t = get_topology(shape)
        return t.expected_holdings(t.node_names(count))

    assert holdings("star", 3) == {"mysql-m": ["mysql-m"], "mysql-s1": ["mysql-m"], "mysql-s2": ["mysql-m"]}
    assert holdings("chain", 3) == {"mysql-m": ["mysql-m"], "mysql-s1": ["mysql-m"], "mysql-s2": ["mysql-m"]}
    # fan-in: a primary holds only its own writes, the aggregating replica holds all of them
    assert holdings("fan-in", 4) == {"mysql-m1": ["mysql-m1"], "mysql-m2": ["mysql-m2"], "mysql-m3": ["mysql-m3"],
                                     "mysql-s1": ["mysql-m1", "mysql-m2", "mysql-m3"]}
    # active-active: both primaries hold both; a replica of m1 holds m2's writes too (m1 logs what it applies)
    assert holdings("active-active", 3) == {n: ["mysql-m1", "mysql-m2"] for n in ("mysql-m1", "mysql-m2", "mysql-s1")}
    assert holdings("ring", 4) == {f"mysql-m{i}": [f"mysql-m{j}" for j in range(1, 5)] for i in range(1, 5)}


def test_holders_follow_the_edges_not_the_shape():
    """After a repoint the checker asks for the holders along the edges the cluster has now."""
    chain = get_topology("chain")
    names = chain.node_names(3)
    cut = [Edge("mysql-m", "mysql-s1")]  # mysql-s2 replicates from nobody
    assert chain.holders("mysql-m", names, cut) == ["mysql-m", "mysql-s1"]
    ring = get_topology("ring")
    names = ring.node_names(3)
    broken = [e for e in ring.edges(names) if e.replica != "mysql-m3"]
    assert ring.holders("mysql-m1", names, broken) == ["mysql-m1", "mysql-m2"]
    assert ring.holders("mysql-m3", names, broken) == ["mysql-m1", "mysql-m2", "mysql-m3"]


def test_server_options_per_node():
    aa, fan, chain = get_topology("active-active"), get_topology("fan-in"), get_topology("chain")
    names = aa.node_names(3)
    m2 = aa.server_options("mysql-m2", names, "mariadb")
    assert m2["gtid_domain_id"] == "2" and m2["auto_increment_increment"] == "2"
    assert m2["auto_increment_offset"] == "2" and m2["replicate_same_server_id"] == "0"
    assert "gtid_domain_id" not in aa.server_options("mysql-m2", names, "mysql")  # MySQL has no domains
    assert "auto_increment_offset" not in aa.server_options("mysql-s1", names, "mariadb")
    f = fan.server_options("mysql-m1", fan.node_names(3), "mariadb")
    assert f["gtid_domain_id"] == "1" and "auto_increment_offset" not in f  # its primaries never meet
    c = chain.server_options("mysql-s1", chain.node_names(3), "mariadb")
    assert c == {"log_slave_updates": "1"}  # an intermediate source logs what it applies; domain 0 as a star


def test_writers_tables_and_bootstrap_nodes():
    chain, fan, ring = get_topology("chain"), get_topology("fan-in"), get_topology("ring")
    assert chain.writer_table("mysql-m", chain.node_names(3)) == "events"
    assert fan.writer_table("mysql-m2", fan.node_names(3)) == "events_m2"
    assert fan.bootstrap_nodes(fan.node_names(3), fan.edges(fan.node_names(3))) == ["mysql-m1", "mysql-m2"]
    names = ring.node_names(3)
    assert ring.bootstrap_nodes(names, ring.edges(names)) == ["mysql-m1"]  # no root in a circle


def test_loops_and_role_changes():
    chain = get_topology("chain")
    edges = chain.edges(chain.node_names(3))
    assert chain.would_loop("mysql-s1", "mysql-s2", edges)  # s2 applies what s1 logs
    assert not chain.would_loop("mysql-s2", "mysql-m", edges)
    assert chain.would_loop("mysql-s1", "mysql-s1", edges)
    for kind in ("switchover", "failover", "rejoin", "repoint"):
        chain.require_role_change(kind)
    with pytest.raises(NotSupported, match="failover is not defined for a fan-in"):
        get_topology("fan-in").require_role_change("failover")
    with pytest.raises(NotSupported, match="crash is not defined for a galera"):
        get_topology("galera").require_fault("crash")
    for shape in ("star", "chain", "fan-in", "active-active", "ring"):  # per edge on all but the star
        for fault in ("partition", "heal", "link", "crash"):
            get_topology(shape).require_fault(fault)
    with pytest.raises(NotSupported, match="partition is not defined for a galera"):
        get_topology("galera").require_fault("partition")


def test_role_change_edges_per_shape():
    """What each shape declares a switchover, failover and rejoin do to its edges (failover.py follows it)."""
    star, chain = get_topology("star"), get_topology("chain")
    m, s1, s2 = "mysql-m", "mysql-s1", "mysql-s2"
    e = chain.edges([m, s1, s2])
    assert chain.promotable(m, e) == [s1]  # the tail replicates from s1, not from the primary
    assert chain.switchover_edges(m, s1, e) == [Edge(s1, m), Edge(m, s2)]  # s1 -> m -> s2: still a chain
    back = chain.switchover_edges(s1, m, chain.switchover_edges(m, s1, e))
    assert back == e  # switching back restores it
    assert chain.failover_edges(m, s1, e) == [Edge(s1, s2)]  # m demoted, s2 stays under s1
    assert chain.rejoin_source(m, s1, [Edge(s1, s2)]) == s2  # the old head comes back at the tail
    assert chain.rejoin_source(m, s1, []) == s1
    four = chain.edges([m, s1, s2, "mysql-s3"])
    assert chain.rejoin_source(m, s1, chain.failover_edges(m, s1, four)) == "mysql-s3"
    se = star.edges([m, s1, s2])
    assert star.promotable(m, se) == [s1, s2]
    assert star.switchover_edges(m, s2, se) == [Edge(s2, s1), Edge(s2, m)]
    assert star.failover_edges(m, s1, se) == [Edge(s1, s2)]
    assert star.failover_edges(m, s1, se, left_out={s2}) == []
    assert star.rejoin_source(m, s1, [Edge(s1, s2)]) == s1
    fan = get_topology("fan-in")
    assert fan.promotable("mysql-m1", fan.edges(fan.node_names(3))) == []  # over a named channel
    for shape, words in (("active-active", "mysql-m1 and mysql-m2 both take writes already, so there is nothing "
                                           "to promote"),
                         ("ring", "every node of a ring is a primary already, so there is nothing to promote"),
                         ("fan-in", "every mysql-mN is a primary already and mysql-s1 is the only replica")):
        for kind in ("switchover", "failover"):
            with pytest.raises(NotSupported, match=f"{kind} is not defined for a{'n' if shape[0] == 'a' else ''} "
                                                   f"{shape}") as exc:
                get_topology(shape).require_role_change(kind)
            assert exc.value.hint and exc.value.hint.startswith(words), exc.value.hint


def test_star_edges_follow_its_roles():
    state = {"nodes": [{"name": "mysql-m", "role": "replica"}, {"name": "mysql-s1", "role": "primary"},
                       {"name": "mysql-s2", "role": "replica"}]}
    assert from_state(state)[1] == [Edge("mysql-s1", "mysql-m"), Edge("mysql-s1", "mysql-s2")]
    state["nodes"][0]["role"] = "demoted"
    assert from_state(state)[1] == [Edge("mysql-s1", "mysql-s2")]


def test_old_cluster_json_is_a_star():
    state = {"nodes": [{"name": "mysql-m"}, {"name": "mysql-s1"}]}
    topo, edges = from_state(state)
    assert topo.name == "star" and edges == [Edge("mysql-m", "mysql-s1")]
    state["topology"] = {"name": "chain", "edges": [{"source": "mysql-s1", "replica": "mysql-m", "channel": ""}]}
    topo, edges = from_state(state)
    assert topo.name == "chain" and edges == [Edge("mysql-s1", "mysql-m")]  # the stored edges win


def test_channel_statements():
    maria, mysql = MariaDBFlavor("10.11.6-MariaDB", (10, 11, 6)), MySQLFlavor("9.7.0", (9, 7, 0))
    assert maria.change_source("127.0.0.1", 3306, channel="m1").startswith("CHANGE MASTER 'm1' TO MASTER_HOST=")
    assert maria.start_replica("m1") == "START SLAVE 'm1'" and maria.start_replica() == "START SLAVE"
    assert maria.show_all_replica_status() == "SHOW ALL SLAVES STATUS"
    assert mysql.change_source("127.0.0.1", 3306, channel="m1").endswith(" FOR CHANNEL 'm1'")
    assert mysql.stop_replica("m2") == "STOP REPLICA FOR CHANNEL 'm2'"
    assert mysql.stop_replica() == "STOP REPLICA"
    with pytest.raises(ConfigError):
        mysql.start_replica("m1' OR 1")
    assert maria.normalize_status({"Connection_name": "m1", "Slave_IO_Running": "Yes"}).channel == "m1"
    assert mysql.normalize_status({"Channel_Name": "m2", "Replica_IO_Running": "Yes"}).channel == "m2"


def test_lost_increments_arithmetic_on_recorded_numbers():
    from replab.verify import counters

    record = {1: (259, 0), 2: (100, 3), 3: (10, 0), 4: (0, 0)}
    observed = {"mysql-m1": {1: 59, 2: 99, 3: 12, 4: 0}, "mysql-m2": {1: 259, 2: 103, 3: 10}}
    v = counters.judge(record, observed)
    m1 = {r.id: r for r in v.nodes["mysql-m1"]}
    assert (m1[1].lost_min, m1[1].lost_max, m1[1].exact) == (200, 200, True)  # no unknowns: exact
    assert (m1[2].lost_min, m1[2].lost_max) == (1, 4)  # 3 unknown: lost between ok-v and ok+u-v
    assert m1[3].extra == 2 and m1[3].lost_min == 0  # more than was ever sent: applied twice
    assert v.lost("mysql-m1") == (201, 204) and v.extra("mysql-m1") == 2
    m2 = {r.id: r for r in v.nodes["mysql-m2"]}
    assert m2[2].lost_min == 0 and m2[2].extra == 0  # all 3 unknown ones applied: fine
    assert m2[4].observed is None  # the row is missing there
    assert not v.consistent
    assert counters.judge({1: (5, 0)}, {"a": {1: 5}, "b": {1: 5}}).consistent
    text = v.render()
    assert "counters on mysql-m1: 369 acknowledged increments of 4 hot rows, 201 to 204 lost, 2 extra" in text
    assert "row 1: holds 59, 259 acknowledged" in text


def test_counter_record_adds_up(tmp_path):
    from replab.verify import counters

    counters.add_to_record(tmp_path, {1: (3, 1), 2: (0, 0)})
    counters.add_to_record(tmp_path, {1: (2, 0), 3: (1, 0)})
    assert counters.read_record(tmp_path) == {1: (5, 1), 2: (0, 0), 3: (1, 0)}
