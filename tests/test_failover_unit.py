"""Failover pieces without servers: GTID gaps of both flavors, choosing the candidate, epochs, the checker's
lost-in-failover accounting on recorded facts, and both flavors' role statements."""

from __future__ import annotations

from types import SimpleNamespace

from replab.cluster import roles
from replab.faults.failover import Candidate, RoleChange, ahead_of, choose, gtid_missing, replicate_from
from replab.runs import builtin, scenarios
from replab.runs.report import with_unit
from replab.runs.scenarios import expect_consistent, expect_no_replication_error
from replab.servers.flavor import MariaDBFlavor, MySQLFlavor
from replab.verify.checker import Facts, NodeFacts, judge

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4f22ab58-82db-22f2-af44-d91bb0530673"


def test_gtid_missing_mariadb_positions_and_states():
    assert gtid_missing("0-1-100", "0-1-105") == (["domain 0: 101..105"], 5)
    assert gtid_missing("0-2-150", "0-1-120") == ([], 0)  # by domain: 150 covers 120 whoever wrote it
    # errant detection compares per server: mysql-m wrote 0-1-101..110 that the new primary never got
    assert gtid_missing("0-1-100,0-2-150", "0-1-110", by_server=True) == (["0-1-101..110"], 10)
    assert gtid_missing("0-1-110,0-2-150", "0-1-110", by_server=True) == ([], 0)
    assert gtid_missing("", "0-1-3,1-1-2") == (["domain 0: 1..3", "domain 1: 1..2"], 5)


def test_gtid_missing_mysql_sets_with_gaps():
    assert gtid_missing(f"{U1}:1-100", f"{U1}:1-110") == ([f"{U1}:101-110"], 10)
    assert gtid_missing(f"{U1}:1-50:60-100", f"{U1}:1-100") == ([f"{U1}:51-59"], 9)
    assert gtid_missing(f"{U1}:1-100,\n{U2}:1-5", f"{U1}:1-100,{U2}:1-7") == ([f"{U2}:6-7"], 2)
    assert gtid_missing(f"{U1.upper()}:1-10", f"{U1}:1-10") == ([], 0)
    assert gtid_missing("", f"{U1}:3") == ([f"{U1}:3-3"], 1)


def test_choose_the_most_advanced_candidate_in_node_order():
    a, b, c = Candidate("mysql-s1", "0-1-100", True), Candidate("mysql-s2", "0-1-130", True), \
        Candidate("mysql-s3", "0-1-130", True)
    assert choose([a, b, c]).name == "mysql-s2"
    assert choose([a, Candidate("mysql-s2", "0-1-100", True)]).name == "mysql-s1"
    assert choose([Candidate("x", f"{U1}:1-5", True), Candidate("y", f"{U1}:1-9", True)]).name == "y"


def test_what_other_candidates_applied_that_the_chosen_one_lacks():
    a, b = Candidate("mysql-s1", "0-1-130", True, "0-1-130"), Candidate("mysql-s2", "0-1-100", True, "0-1-100")
    assert ahead_of(a, [a, b]) == {}
    assert ahead_of(b, [a, b]) == {"mysql-s1": (["domain 0: 101..130"], 30)}  # --to mysql-s2 --force
    assert ahead_of(Candidate("y", f"{U1}:1-9", True), [Candidate("x", f"{U1}:1-5,{U2}:1-2", True)]) == \
        {"x": ([f"{U2}:1-2"], 2)}
    assert a.line(10) == "mysql-s1: received 0-1-130, applied 0-1-130"
    late = Candidate("mysql-s2", "0-1-90", False, "0-1-100").line(10)
    assert "received 0-1-100, applied 0-1-90" in late and "within 10s" in late


def test_epochs_attribute_ids_to_the_primary_that_wrote_them(tmp_path):
    roles.record_epoch(tmp_path, "events", 1, "mysql-m")
    roles.record_epoch(tmp_path, "events", 40, "mysql-m")  # nothing new: not recorded
    roles.record_epoch(tmp_path, "events", 251, "mysql-s1")
    (tmp_path / "ledger" / "events.epochs").open("a").write('{"from_id": 9')  # a torn line is skipped
    epochs = roles.read_epochs(tmp_path)
    assert [(e.from_id, e.primary) for e in epochs] == [(1, "mysql-m"), (251, "mysql-s1")]
    assert [roles.acknowledged_by(epochs, i) for i in (0, 1, 250, 251, 10**9)] == \
        [None, "mysql-m", "mysql-m", "mysql-s1", "mysql-s1"]


def _facts(missing: dict[str, list[int]], count: dict[str, int] | None = None) -> Facts:
    nodes = [NodeFacts("mysql-s1", "primary", True), NodeFacts("mysql-s2", "replica", True, io_running=True,
                                                             sql_running=True, caught_up=True)]
    diffs = {n: {"missing": ids, "unexpected": [], "altered": [], "missing_count": (count or {}).get(n, len(ids)),
                 "unexpected_count": 0, "altered_count": 0} for n, ids in missing.items()}
    return Facts("mysql-s1", "mydb", "0-2-300", 5.0, ["events"], nodes, ledger={"acknowledged": 280},
                 ledger_diffs=diffs,
                 epochs=[{"from_id": 1, "primary": "mysql-m", "at": 100.0},
                         {"from_id": 251, "primary": "mysql-s1", "at": 200.0}],
                 role_changes=[{"kind": "failover", "old_primary": "mysql-m", "new_primary": "mysql-s1",
                                "at": 199.0}])


def test_checker_reports_failover_losses_apart_from_divergence():
    lost = list(range(201, 251))
    rep = judge(_facts({"mysql-s1": lost, "mysql-s2": lost}))
    assert rep.consistent, rep.problems
    assert len(rep.lost) == 1 and rep.lost[0].acknowledged_by == "mysql-m" and rep.lost[0].ids == lost
    assert rep.lost[0].count == 50 and rep.lost[0].exact and rep.lost[0].lost_at["new_primary"] == "mysql-s1"
    assert "LOST IN FAILOVER: 50" in rep.render() and "230 acknowledged writes present" in rep.render()
    assert rep.to_dict()["lost_in_failover"][0]["ids"][:2] == [201, 202]


def test_consistent_never_passes_beside_lost_writes_it_claims_are_not_lost():
    """consistent-final said "every node: no acknowledged write lost" and PASS next to LOST IN FAILOVER: 450."""
    lost = list(range(201, 251))
    ctx = SimpleNamespace(checks={"final": judge(_facts({"mysql-s1": lost, "mysql-s2": lost}))})
    plain = expect_consistent("final")
    assert plain.description == "every node: no acknowledged write lost, nothing extra (check final)"
    held, evidence = plain.fn(ctx)
    assert not held and evidence[0] == "check 'final': 50 of 280 acknowledged writes lost"
    assert evidence[1].startswith("LOST IN FAILOVER: 50 acknowledged write(s) acknowledged by mysql-m")
    meant = expect_consistent("final", lost_in_failover=True)  # a scenario that loses writes on purpose
    assert "no acknowledged write lost" not in meant.description
    assert meant.description == ("every node: every acknowledged write the primary kept, nothing extra; writes "
                                 "lost in a failover are judged by lost-final (check final)")
    assert meant.fn(ctx) == (True, ["check 'final': the nodes agree; 230 acknowledged writes on every node, "
                                    "50 lost in a failover (judged by lost-final)"])
    # the demoted former primary is not checked: not 'every node' (failover-semisync's last check had one node)
    facts = _facts({"mysql-s1": lost, "mysql-s2": lost})
    facts.demoted = ["mysql-m"]
    ctx.checks["final"] = judge(facts)
    assert meant.fn(ctx) == (True, ["check 'final': the nodes agree; 230 acknowledged writes on every node but "
                                    "the demoted mysql-m (not checked), 50 lost in a failover (judged by lost-final)"])
    ctx.checks["final"] = judge(_facts({"mysql-s1": [], "mysql-s2": []}))
    assert plain.fn(ctx) == (True, ["check 'final': consistent (280 acknowledged writes checked on every node)"])
    # the built-in scenarios that lose writes say so next to their consistency claim
    for name in ("failover-async", "failover-semisync", "old-primary-rejoin"):
        final = next(e for e in builtin.get(name).expectations if e.name == "consistent-final")
        assert "no acknowledged write lost" not in final.description, name


def test_the_steps_and_expectations_around_a_failover_say_what_happened(monkeypatch):
    """failover-semisync printed 'check final: consistent' beside '447 acknowledged id(s) are not on
    mysql-s2', 'no replica applied everything the primary has' and 'topology: ' with no replica left, and
    '[PASS] topology ... every replica replicates from it' when none did; failover-async printed
    'failover_s = 0.03 s' in its measured line and 'failover_s = 0.034s' in its expectation."""
    lost = list(range(201, 251))
    monkeypatch.setattr(scenarios, "run_check", lambda cluster, wait: judge(_facts({"mysql-s1": lost,
                                                                                     "mysql-s2": lost})))
    ctx = SimpleNamespace(cluster=None, checks={})
    assert scenarios.check("final").fn(ctx) == \
        "check final: the nodes agree; 50 acknowledged write(s) lost in a failover"
    monkeypatch.setattr(scenarios, "run_check", lambda cluster, wait: judge(_facts({"mysql-s1": [], "mysql-s2": []})))
    assert scenarios.check("final").fn(ctx) == "check final: consistent"
    # the second failover of failover-semisync: mysql-m and mysql-s1 demoted and down, no replica left
    alone = {"mysql-m": ("demoted", None, False), "mysql-s1": ("demoted", None, False),
             "mysql-s2": ("primary", None, False)}
    topo = builtin.expect_topology()
    assert topo.fn(SimpleNamespace(facts={"topology": alone})) == (True, [
        "primary mysql-s2; no replica replicates from it; out of replication: mysql-m (demoted), mysql-s1 (demoted)"])
    after = {"mysql-m": ("demoted", None, False), "mysql-s1": ("replica", "mysql-s2", True),
             "mysql-s2": ("primary", None, False)}
    assert topo.fn(SimpleNamespace(facts={"topology": after})) == (True, [
        "primary mysql-s2; mysql-s1 replicates from it; out of replication: mysql-m (demoted)"])
    cluster = SimpleNamespace(topology=SimpleNamespace(name="star"), wait_caught_up=lambda timeout, names: {})
    waited = SimpleNamespace(cluster=cluster, facts={}, metrics={}, phase_started=0.0,
                             timeline=SimpleNamespace(catch_ups=lambda: []))
    assert scenarios.wait_caught_up().fn(waited) == "no replica to wait for: no other node replicates from the primary"
    # a metric printed as the measured line prints it, the limit too
    below = scenarios.expect_metric_below("failover_s", 10)
    assert below.description == "failover_s at most 10 s"
    assert below.fn(SimpleNamespace(metrics={"failover_s": 0.034})) == (True, ["failover_s = 0.03 s (limit 10 s)"])
    assert with_unit("failover_s", 0.034) == "0.03 s"
    above = scenarios.expect_metric_above("peak_lag_ms", 1000, " ms")
    assert above.fn(SimpleNamespace(metrics={"peak_lag_ms": 2210})) == (
        True, ["peak_lag_ms = 2210 ms (at least 1000 ms expected)"])
    # the verb agrees with the nodes
    assert scenarios.expect_caught_up(["mysql-s1"]).description == "mysql-s1 catches up with the primary"
    assert scenarios.expect_no_replication_error(["mysql-s1", "mysql-s2"]).description == \
        "mysql-s1, mysql-s2 apply every event without an SQL-thread error"


def test_missing_writes_of_the_current_primary_stay_a_problem():
    # 260 was acknowledged by mysql-s1 itself (the current primary): missing there is divergence, not loss;
    # 205 is missing on the replica only: a replica problem
    rep = judge(_facts({"mysql-s1": [201, 260], "mysql-s2": [201, 205, 260]}))
    assert [lw.ids for lw in rep.lost] == [[201]]
    got = sorted((p.node, p.kind, tuple(p.rows)) for p in rep.problems)
    assert got == [("mysql-s1", "missing_rows", (260,)), ("mysql-s2", "missing_rows", (205, 260))]


def test_truncated_evidence_makes_the_count_a_lower_bound():
    rep = judge(_facts({"mysql-s1": [201, 202]}, {"mysql-s1": 5000}))
    assert rep.lost[0].count == 2 and not rep.lost[0].exact and "at least 2" in rep.render()


def test_role_statements_of_both_flavors():
    maria, mysql80, mysql97 = MariaDBFlavor("", (10, 11, 6)), MySQLFlavor("", (8, 0, 36)), MySQLFlavor("", (9, 7, 0))
    assert maria.promote_statements() == ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"]
    assert mysql97.promote_statements() == ["STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL super_read_only = 0",
                                            "SET GLOBAL read_only = 0"]
    assert maria.fence_statements() == ["SET GLOBAL read_only = 1"]
    assert mysql80.fence_statements() == ["SET GLOBAL super_read_only = 1"]
    assert maria.demoted_replica_statements() == ["SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"]
    assert mysql97.demoted_replica_statements() == []
    assert "performance_schema.processlist" in mysql97.sessions_query()
    assert (maria.stop_io_thread(), maria.start_io_thread()) == ("STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
    assert mysql97.stop_io_thread() == "STOP REPLICA IO_THREAD"
    assert (maria.share_lock_clause(), mysql97.share_lock_clause()) == ("LOCK IN SHARE MODE", "FOR SHARE")
    assert "information_schema.PROCESSLIST" in maria.sessions_query()


def test_semi_sync_options_of_both_flavors():
    maria, old, new = MariaDBFlavor("", (10, 11, 6)), MySQLFlavor("", (8, 0, 25)), MySQLFlavor("", (9, 7, 0))
    assert maria.semisync_available() is None
    assert MariaDBFlavor("", (10, 2, 9)).semisync_available()
    assert maria.semisync_server_options(1000) == {"rpl_semi_sync_master_wait_point": "AFTER_SYNC",
                                                   "rpl_semi_sync_master_timeout": "1000"}
    assert maria.semisync_role_options(True) == {"rpl_semi_sync_master_enabled": "1",
                                                 "rpl_semi_sync_slave_enabled": "0"}
    opts = new.semisync_server_options(500)
    assert opts["plugin_load_add"] == ("rpl_semi_sync_source=semisync_source.so;"
                                       "rpl_semi_sync_replica=semisync_replica.so")
    assert opts["loose_rpl_semi_sync_source_wait_point"] == "AFTER_SYNC"
    assert "semisync_master.so" in old.semisync_server_options(500)["plugin_load_add"]
    assert new.semisync_role_statements(False) == ["SET GLOBAL rpl_semi_sync_source_enabled = 0",
                                                   "SET GLOBAL rpl_semi_sync_replica_enabled = 1"]
    assert new.semisync_status_query() == "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_%'"
    assert new.semisync_enabled_variable() == "rpl_semi_sync_source_enabled"


def test_role_change_sentences_agree_in_number():
    assert replicate_from(["mysql-s2"], "it") == "mysql-s2 replicates from it"
    assert replicate_from(["mysql-m", "mysql-s2"], "it") == "mysql-m and mysql-s2 replicate from it"
    assert replicate_from(["a", "b", "c"], "x") == "a, b and c replicate from x"
    assert replicate_from([], "mysql-s1") == "no replica replicates from mysql-s1"
    one = RoleChange("failover", "mysql-m", "mysql-s1", to_writable_s=0.5, repointed=["mysql-s2"])
    assert one.sentence().startswith("failover: mysql-s1 is the primary (0.50s to accept writes); mysql-s2 "
                                     "replicates from it; mysql-m is demoted")
    sw = RoleChange("switchover", "mysql-m", "mysql-s1", write_pause_s=0.02, repointed=["mysql-m", "mysql-s2"])
    assert sw.sentence() == ("switchover: mysql-s1 is the primary; mysql-m and mysql-s2 replicate from it; writes "
                             "paused 0.020s; no acknowledged write lost")


def test_no_apply_error_expectation_agrees_in_number():
    """drop-middle-column printed "[PASS] no-apply-error: mysql-s2 apply every event ..." for one node."""
    assert expect_no_replication_error(["mysql-s2"]).description == \
        "mysql-s2 applies every event without an SQL-thread error"
    assert expect_no_replication_error(["mysql-s1", "mysql-s2"]).description == \
        "mysql-s1, mysql-s2 apply every event without an SQL-thread error"


def test_a_candidate_that_did_not_apply_all_it_received_says_why():
    """failover's decision log said "(did not apply all it received within 10s: that is lost)" of a replica whose
    SQL thread had stopped on 1677 (not waited for) and that was not promoted (it fetches the rest again)."""
    done = Candidate("mysql-s2", "0-1-30", True, "0-1-30")
    assert done.line(10) == "mysql-s2: received 0-1-30, applied 0-1-30"
    broken = Candidate("mysql-s1", "0-1-20", False, "0-1-30", True, 1677)
    assert broken.line(10) == ("mysql-s1: received 0-1-30, applied 0-1-20 (did not apply all it received: its SQL "
                               "thread stopped on error 1677)")
    slow = Candidate("mysql-s1", "0-1-20", False, "0-1-30", True)
    assert slow.line(10) == "mysql-s1: received 0-1-30, applied 0-1-20 (did not apply all it received within 10s)"
    assert slow.line(10, promoted=True) == ("mysql-s1: received 0-1-30, applied 0-1-20 (did not apply all it "
                                            "received within 10s: promoted, it loses the rest)")
