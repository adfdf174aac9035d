"""Partitions between the members of a real group (Group Replication, MySQL 9.7) and a real Galera cluster,
through the member network: each member runs in its own namespace; a minority member is cut off and the
majority goes on without it, then it comes back and catches up; two of three cut off: nobody can write."""

from __future__ import annotations

import os
import time

import pytest
from catalogue import require
from conftest import run_cli

from replab.cluster.cluster import Cluster
from replab.core.errors import ReplabError, SqlError
from replab.engines import membernet
from replab.faults import nemesis
from replab.topologies import get_topology

pytestmark = [pytest.mark.skipif(membernet.unusable() is not None, reason=f"{membernet.unusable()}"),
              pytest.mark.slow]


def _shape(name: str) -> None:
    try:
        get_topology(name)
    except ReplabError:
        pytest.skip(f"the {name} shape is not on this branch")


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _until(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except ReplabError:
            pass
        time.sleep(0.5)
    return False


def _members_in_namespaces(cluster: Cluster) -> membernet.MemberNet:
    net = membernet.MemberNet.load(cluster.home)
    assert net is not None
    assert {n.name: n.host for n in cluster.nodes} == net.addresses()
    for node in cluster.nodes:  # the server process lives in its member's namespace (not the host's)
        pid = cluster.engine.pid(node)
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == _netns_inode(f"/run/netns/{net.namespace(node.name)}")
    return net


def _count(cluster: Cluster, node: str) -> int:
    return int(cluster.sql(node, "SELECT COUNT(*) FROM replab.netcut", timeout=5).rows[0][0])


def _group_view(cluster: Cluster, node: str) -> dict[str, str]:
    rows = cluster.sql(node, "SELECT MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members",
                       timeout=5).rows
    by_host = {n.host: n.name for n in cluster.nodes}
    return {by_host.get(str(h), str(h)): str(s) for h, s in rows}


def test_group_minority_partition_and_quorum_loss(replab_cluster_factory) -> None:
    _shape("group")
    require("mysql-9.7")
    cluster = replab_cluster_factory(server="mysql-9.7", topology="group")
    net = _members_in_namespaces(cluster)
    cluster.sql("mysql-m", "CREATE TABLE replab.netcut (id INT PRIMARY KEY)")
    cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (1)")

    said = nemesis.partition(cluster, "mysql-s2")
    assert "mysql-s2: cut off from the other members, both ways" in said
    assert "mysql-m and mysql-s1 keep a majority (2 of 3)" in said and "heal with: replab heal mysql-s2" in said
    assert net.cuts() == sorted([("mysql-s2", "mysql-m"), ("mysql-m", "mysql-s2"), ("mysql-s2", "mysql-s1"),
                                 ("mysql-s1", "mysql-s2")])
    assert nemesis.partitioned(cluster) == ["mysql-s2"]
    # the majority expels it and goes on; it sees the others UNREACHABLE; it does not get the new row
    assert _until(lambda: "mysql-s2" not in _group_view(cluster, "mysql-m"), 40), _group_view(cluster, "mysql-m")
    assert _group_view(cluster, "mysql-s2") == {"mysql-m": "UNREACHABLE", "mysql-s1": "UNREACHABLE",
                                                "mysql-s2": "ONLINE"}
    cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (2)", timeout=10)
    assert _until(lambda: _count(cluster, "mysql-s1") == 2, 10)
    assert _count(cluster, "mysql-s2") == 1

    said = nemesis.heal(cluster, "mysql-s2")
    assert said.startswith("healed: mysql-s2 can reach the other members again") and net.cuts() == []
    t0 = time.monotonic()
    assert _until(lambda: set(_group_view(cluster, "mysql-m").values()) == {"ONLINE"} and
                  len(_group_view(cluster, "mysql-m")) == 3 and _count(cluster, "mysql-s2") == 2, 120)
    print(f"mysql-s2 back ONLINE with the row written while it was cut off: {time.monotonic() - t0:.1f}s")

    # two of three, each cut from every other: no majority anywhere, the primary's write never returns
    said = nemesis.partition(cluster, "mysql-m", also=["mysql-s1"])
    assert "no side has a majority of the 3 members: writes stop everywhere" in said
    assert _until(lambda: "UNREACHABLE" in _group_view(cluster, "mysql-m").values(), 30)
    with pytest.raises(SqlError):
        cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (3)", timeout=8)
    assert "nothing to heal" not in nemesis.heal(cluster)
    assert _until(lambda: set(_group_view(cluster, "mysql-s2").values()) == {"ONLINE"}, 60)
    # nobody had a majority, so nobody was expelled: the group takes writes again, every member the same
    cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (4)", timeout=30)
    assert _until(lambda: len({_count(cluster, n.name) for n in cluster.nodes}) == 1 and
                  _count(cluster, "mysql-s2") >= 3, 30)
    cluster.down()
    assert net.leftovers() == [] and not net.state_path.exists()


def test_galera_minority_partition(replab_cluster_factory) -> None:
    _shape("galera")
    cluster = replab_cluster_factory(server="mariadb-10.11", topology="galera")
    net = _members_in_namespaces(cluster)
    cluster.sql("mysql-m", "CREATE TABLE replab.netcut (id INT PRIMARY KEY)")
    cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (1)")

    said = nemesis.partition(cluster, "mysql-s2")
    assert "mysql-m and mysql-s1 keep a majority (2 of 3)" in said and "evs.suspect_timeout" in said
    assert len(net.cuts()) == 4

    def status(node: str) -> str:
        return str(cluster.sql(node, "SHOW STATUS LIKE 'wsrep_cluster_status'", timeout=5).rows[0][1])

    assert _until(lambda: status("mysql-s2") == "non-Primary", 40)
    assert status("mysql-m") == "Primary"
    cluster.sql("mysql-m", "INSERT INTO replab.netcut VALUES (2)", timeout=10)
    with pytest.raises(SqlError) as refused:  # the minority refuses queries (never acknowledges a write)
        cluster.sql("mysql-s2", "INSERT INTO replab.netcut VALUES (3)", timeout=5)
    assert refused.value.errno == 1047
    cut = run_cli("diagnose", "mysql-s2", home=cluster.home)  # from its own wsrep state: quorum lost, do not force
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert cut.stdout.startswith("mysql-s2: non-Primary: quorum lost here, it sees 1 of the 3 nodes (needs more than "
                                 "1 for a Primary component); the majority (mysql-m, mysql-s1) is a Primary "
                                 "component and goes on without it."), cut.stdout
    assert ("next writes: heal the network and mysql-s2 rejoins by itself (IST from a donor's gcache, else SST); do "
            "NOT force it with SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'") in cut.stdout
    assert "(split brain)" in cut.stdout
    nemesis.heal(cluster)
    assert _until(lambda: status("mysql-s2") == "Primary" and _count(cluster, "mysql-s2") == 2, 60)
    assert _count(cluster, "mysql-m") == 2
    assert _until(lambda: run_cli("diagnose", home=cluster.home).returncode == 0, 30)

    # two of three cut, each from every other: no Primary component anywhere; diagnose says how to force one
    nemesis.partition(cluster, "mysql-m", also=["mysql-s1"])
    assert _until(lambda: all(status(n) == "non-Primary" for n in ("mysql-m", "mysql-s1", "mysql-s2")), 40)
    lost = run_cli("diagnose", "mysql-s1", home=cluster.home)
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert lost.stdout.startswith("mysql-s1: non-Primary: quorum lost, it sees 1 of the 3 nodes (needs more than 1 "
                                  "for a Primary component). No node is in a Primary component"), lost.stdout
    assert "when the others are reachable again (heal, resume) a Primary component forms by itself" in lost.stdout
    assert "\"SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'\"" in lost.stdout and "split brain" in lost.stdout
    nemesis.heal(cluster)
    assert _until(lambda: all(status(n) == "Primary" for n in ("mysql-m", "mysql-s1", "mysql-s2")), 60)
    assert _until(lambda: run_cli("diagnose", home=cluster.home).returncode == 0, 30)
    cluster.down()
    assert net.leftovers() == [] and not net.state_path.exists()
