"""``diagnose`` on a Galera cluster, from recorded wsrep states (SHOW GLOBAL STATUS LIKE 'wsrep%' of MariaDB 10.11
with galera-4 26.4, as read in the real runs of tests/test_galera.py): the states a real test cannot hold
still long enough (Joiner, Donor, a stale view after resume) and the SST/IST decision for a node that is down."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from replab.verify import galera_diagnose as gd

NAMES = ["mysql-m", "mysql-s1", "mysql-s2"]
UUID = "5d6af1d4-f2b1-11f1-bd75-7e12396db6ac"


def _cluster(tmp_path: Path, states: dict[str, str]):
    nodes = {}
    for n in NAMES:
        (tmp_path / n).mkdir(exist_ok=True)
        nodes[n] = SimpleNamespace(name=n, datadir=str(tmp_path / n), errlog=str(tmp_path / n / "error.log"))
    engine = SimpleNamespace(state=lambda node: states.get(node.name, "running"))
    return SimpleNamespace(names=NAMES, node=lambda n: nodes[n], engine=engine)


def _w(status="Primary", local="Synced", size=3, last=120, conf=6, cached=1, queue=0):
    return {"wsrep_cluster_status": status, "wsrep_local_state_comment": local, "wsrep_cluster_size": str(size),
            "wsrep_last_committed": str(last), "wsrep_cluster_conf_id": str(conf), "wsrep_local_cached_downto":
            str(cached), "wsrep_local_recv_queue": str(queue), "wsrep_local_state_uuid": UUID}


def _grastate(tmp_path: Path, node: str, seqno: int, uuid: str = UUID) -> None:
    (tmp_path / node / "grastate.dat").write_text(f"# GALERA saved state\nversion: 2.1\nuuid: {uuid}\n"
                                                  f"seqno: {seqno}\nsafe_to_bootstrap: 0\n")


def test_synced_is_ok(tmp_path):
    c = _cluster(tmp_path, {})
    d = gd._one(c, "mysql-m", {n: _w() for n in NAMES})
    assert (d.severity, d.summary) == ("ok", "Synced in the Primary component (3 of 3 nodes, last committed seqno 120)")


def test_down_node_ist_or_sst_from_grastate_and_gcache(tmp_path):
    c = _cluster(tmp_path, {"mysql-s2": "stopped"})
    views = {"mysql-m": _w(size=2, last=500, conf=7, cached=300), "mysql-s1": _w(size=2, last=500, conf=7),
             "mysql-s2": None}
    _grastate(tmp_path, "mysql-s2", 450)  # clean stop at 450, the gcache holds 300..500: IST
    d = gd._one(c, "mysql-s2", views)
    assert d.severity == "down" and d.summary == ("is down (stopped); mysql-m, mysql-s1 go on in the Primary "
                                                  "component without it")
    assert d.next_writes == ["replab start mysql-s2: it has seqno 450, 50 writesets behind; mysql-m's gcache "
                             "holds seqno 300 to 500: it rejoins by IST"]
    _grastate(tmp_path, "mysql-s2", 200)  # the gap 201..299 is gone from the gcache: SST
    assert gd._one(c, "mysql-s2", views).next_writes == [
        "replab start mysql-s2: it has seqno 200, 300 writesets behind, and mysql-m's gcache holds seqno 300 to "
        "500: the gap is gone from the gcache, so it rejoins by a full SST (mariabackup)"]
    _grastate(tmp_path, "mysql-s2", -1)
    assert "it crashed (grastate seqno -1)" in gd._one(c, "mysql-s2", views).next_writes[0]
    _grastate(tmp_path, "mysql-s2", 499, uuid="00000000-0000-0000-0000-000000000001")
    assert "from another history" in gd._one(c, "mysql-s2", views).next_writes[0]
    _grastate(tmp_path, "mysql-s2", -1, uuid="00000000-0000-0000-0000-000000000000")  # after a failed SST
    assert "it has no state (grastate uuid all zeros" in gd._one(c, "mysql-s2", views).next_writes[0]
    (tmp_path / "mysql-s2" / "grastate.dat").unlink()
    assert gd._one(c, "mysql-s2", views).next_writes == [
        "replab start mysql-s2: it has no grastate.dat: replab start first reads its last committed position from "
        "InnoDB (--wsrep-recover); it rejoins by IST if what it missed is still in the gcache (mysql-m's gcache "
        "holds seqno 300 to 500), else by a full SST (mariabackup)"]
    # killed a moment ago: the others still count it, and their commits wait until they evict it
    views = {"mysql-m": _w(), "mysql-s1": _w(), "mysql-s2": None}
    assert "still count it as a member: commits wait until they evict it" in gd._one(c, "mysql-s2", views).summary


def test_state_transfer_states(tmp_path):
    c = _cluster(tmp_path, {})
    views = {"mysql-m": _w(local="Donor/Desynced", queue=7), "mysql-s1": _w(), "mysql-s2": _w(local="Joiner")}
    joiner = gd._one(c, "mysql-s2", views)
    assert joiner.severity == "drift" and joiner.summary.startswith("is a Joiner: a state transfer from mysql-m is "
                                                                    "in progress")
    donor = gd._one(c, "mysql-m", views)
    assert donor.severity == "drift" and donor.summary.startswith("is a Donor: it sends a state transfer to mysql-s2")
    assert "(7 waiting)" in donor.summary
    views["mysql-s2"] = _w(local="Joined", queue=12)
    assert gd._one(c, "mysql-s2", views).summary.startswith("is Joined: it received its state and now applies the "
                                                            "writesets queued meanwhile (12 waiting)")


def test_stale_view_after_resume(tmp_path):
    c = _cluster(tmp_path, {})
    views = {"mysql-m": _w(size=2, conf=7), "mysql-s1": _w(size=2, conf=7), "mysql-s2": _w(size=3, conf=6)}
    d = gd._one(c, "mysql-s2", views)
    assert d.severity == "drift" and "its view is old (configuration 6, the others are at 7)" in d.summary


def test_paused(tmp_path):
    c = _cluster(tmp_path, {"mysql-s2": "paused"})
    member = gd._one(c, "mysql-s2", {"mysql-m": _w(), "mysql-s1": _w(), "mysql-s2": None})
    assert member.severity == "down" and "it is still a member: every commit on every node waits for it" in \
        member.summary and member.next_writes == ["replab resume mysql-s2"]
    evicted = gd._one(c, "mysql-s2", {"mysql-m": _w(size=2), "mysql-s1": _w(size=2), "mysql-s2": None})
    assert "the others (mysql-m, mysql-s1) evicted it after evs.suspect_timeout" in evicted.summary


def test_quorum_lost_everywhere_names_the_latest_node(tmp_path):
    c = _cluster(tmp_path, {})
    views = {"mysql-m": _w("non-Primary", "Initialized", 1, 129), "mysql-s1": _w("non-Primary", "Initialized", 1, 131),
             "mysql-s2": _w("non-Primary", "Initialized", 1, 130)}
    d = gd._one(c, "mysql-m", views)
    assert d.severity == "broken"
    assert d.summary == ("non-Primary: quorum lost, it sees 1 of the 3 nodes (needs more than 1 for a Primary "
                         "component). No node is in a Primary component: every node refuses queries (1047) until "
                         "one is")
    assert ("bootstrap the node with the latest state (mysql-s1, last committed seqno 131): replab sql mysql-s1 "
            "\"SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'\"") in d.next_writes[0]
    assert d.next_writes[1].startswith("risk:") and "split brain" in d.next_writes[1]


def test_nothing_runs(tmp_path):
    c = _cluster(tmp_path, {n: "stopped" for n in NAMES})
    _grastate(tmp_path, "mysql-m", -1)
    _grastate(tmp_path, "mysql-s1", 77)
    views = {n: None for n in NAMES}
    crashed = gd._one(c, "mysql-m", views)
    assert (crashed.severity, crashed.summary) == ("down", "is down (stopped; crashed: grastate seqno -1)")
    assert crashed.next_writes == ["no node runs: replab up bootstraps from the node with the latest position (a "
                                   "crashed node's is recovered from InnoDB with --wsrep-recover first); the others "
                                   "join it by IST or SST"]
    assert gd._one(c, "mysql-s1", views).summary == "is down (stopped; saved seqno 77)"
