"""Switchover, failover and the old primary's return on real MariaDB 10.11 and MySQL 9.7 clusters: exact lost
ids against the ledger, topology afterwards, and bad input refused with nothing changed."""

from __future__ import annotations

import json
import re
import time

import pytest
from catalogue import params, require
from conftest import status_rows, wait_for

from replab import Cluster
from replab.cluster import replication
from replab.faults import failover, nemesis
from replab.servers.flavor import server_name
from replab.verify import checker
from replab.workload.feed import Feeder, feed

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
SERVERS = params("mariadb-10.11", "mysql-9.7")


@pytest.fixture
def replab_cluster(matrix_cluster) -> Cluster:
    """On MariaDB 10.11 and MySQL 9.7 (see conftest.matrix_cluster)."""
    return matrix_cluster


def _ids(cluster: Cluster, node: str) -> set[int]:
    return {int(r[0]) for r in cluster.sql(node, "SELECT id FROM mydb.events").rows}


def _sources(cluster: Cluster) -> dict[str, str | None]:
    return {s.name: s.source for s in cluster.status() if s.role == "replica"}


def _leave_s2_behind(cluster: Cluster, everywhere: int, s1_too: int) -> None:
    """``everywhere`` rows on every node, then S2 cut off and ``s1_too`` more rows on M and S1 only."""
    feed(cluster, rows=everywhere)
    assert all(cluster.wait_caught_up(20).values())
    nemesis.partition(cluster, S2)
    feed(cluster, rows=s1_too)
    assert cluster.wait_caught_up(20, names=[S1])[S1]


def _lag(cli, home, node: str) -> tuple[object, str]:
    """(lag_ms of ``status --json``, the lag cell of the status table) for ``node``."""
    data = json.loads(cli("status", "--json", home=home).stdout)
    lag = next(n["lag_ms"] for n in data["nodes"] if n["name"] == node)
    return lag, status_rows(cli("status", home=home).stdout)[node]["lag"]


def _roles(home) -> dict[str, str]:
    return {n["name"]: n["role"] for n in json.loads((home / "cluster.json").read_text())["nodes"]}


def test_switchover_under_load_loses_nothing_and_bad_input_changes_nothing(replab_cluster, cli):
    cluster, home = replab_cluster, replab_cluster.home
    feed(cluster, rows=200)
    assert all(cluster.wait_caught_up(20).values())
    before = _roles(home)
    for args, words in [(("switchover", M), "already the primary"),
                        (("switchover", "mysql-s9"), "unknown node"),
                        (("failover",), "still answers"),
                        (("failover", "--to", S2), "still answers"),
                        (("rejoin", M), "is the primary")]:
        r = cli(*args, home=home)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    nemesis.partition(cluster, S2)  # S2 falls behind: no heartbeat, no new rows
    f = Feeder(cluster, rate=300, threads=2, duration=2.5).start()
    time.sleep(1.5)
    r = cli("switchover", S2, "--max-lag", "0.5", home=home)
    assert r.returncode == 2 and "behind" in r.stderr and "transaction(s) not applied" in r.stderr, r.stderr
    assert _roles(home) == before
    nemesis.heal(cluster, S2)
    change = failover.switchover(cluster, S1)  # under load
    res = f.wait(30)
    assert change.new_primary == S1 and change.write_pause_s is not None and change.write_pause_s < 5
    assert _roles(home) == {M: "replica", S1: "primary", S2: "replica"}
    assert all(cluster.wait_caught_up(30).values())
    assert _sources(cluster) == {M: S1, S2: S1}
    # the demoted primary's source is named from its relay even by a view that does not know that relay's
    # port yet (a sampler's): it was '127.0.0.1:<relay port>' now and then in the switchover scenario
    view = Cluster.open(home)
    view.node(M).extra.pop("relay_port")
    assert {s.name: s.source for s in view.status()}[M] == S1
    rep = checker.check(cluster)
    assert rep.consistent and rep.lost == [], rep.render()
    assert res.ok > 0 and rep.to_dict()["ledger"]["acknowledged"] == 200 + res.ok
    # the feed after the switchover writes to mysql-s1, and switching back works too
    feed(cluster, rows=20)
    assert failover.switchover(cluster, M).new_primary == M
    assert all(cluster.wait_caught_up(30).values()) and _sources(cluster) == {S1: M, S2: M}
    assert checker.check(cluster).consistent


def test_async_failover_names_exactly_the_lost_writes_then_rejoin(replab_cluster, cli):
    cluster, home = replab_cluster, replab_cluster.home
    _leave_s2_behind(cluster, everywhere=100, s1_too=30)  # ids 1..100 everywhere, 101..130 not on S2
    nemesis.partition(cluster, S1)
    feed(cluster, rows=20)                          # 131..150: acknowledged by M only
    nemesis.kill(cluster, M)
    before = _roles(home)
    r = cli("failover", "--to", S2, home=home)      # S2 lacks 101..130 that S1 has
    lacks = re.search(r"lacks (\d+) transaction\(s\) that mysql-s1 has", r.stderr)  # 30 rows + heartbeats
    assert r.returncode == 2 and lacks and int(lacks.group(1)) >= 30, r.stderr
    r = cli("switchover", S1, home=home)
    assert r.returncode == 2 and "does not answer" in r.stderr
    assert _roles(home) == before
    r = cli("failover", "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["new_primary"] == S1
    cluster = Cluster.open(home)
    assert _roles(home) == {M: "demoted", S1: "primary", S2: "replica"}
    feed(cluster, rows=10)                          # 151..160 on the new primary
    assert all(cluster.wait_caught_up(20).values())
    assert _sources(cluster) == {S2: S1}
    assert _ids(cluster, S2) == _ids(cluster, S1) == set(range(1, 131)) | set(range(151, 161))
    rep = checker.check(cluster)
    assert rep.consistent, rep.render()
    assert [(lw.acknowledged_by, lw.ids, lw.exact) for lw in rep.lost] == [(M, list(range(131, 151)), True)]
    assert rep.lost[0].lost_at and rep.lost[0].lost_at["new_primary"] == S1
    # the old primary comes back: its errant transactions are named and it stays out
    r = cli("start", M, home=home)
    assert r.returncode == 0 and "errant transaction(s)" in r.stdout and "--rebuild" in r.stdout, r.stdout
    # issue 23.12: they reached no replica, but "no other node" was not the claim to make: the primary lacks them
    assert f"errant transaction(s) that {S1} never had" in r.stdout, r.stdout
    # ... and diagnose explains the demoted primary, not "RESET SLAVE ALL or a rebuild left it without a source"
    d = json.loads(cli("diagnose", M, "--json", home=home).stdout)[0]
    assert d["summary"] == f"demoted former primary: read-only and out of replication since {S1} was promoted", d
    assert re.fullmatch(rf"it holds \d+ transaction\(s\) {S1} never had \(.+\): written while it was the "
                        rf"primary, never received by {S1}", d["causes"][0]), d
    assert d["next_writes"] == [f"rebuild it from {S1}: replab rejoin {M} --rebuild (those transactions are "
                                "discarded)"], d
    assert set(range(131, 151)) <= _ids(cluster, M)
    assert int(cluster.sql(M, "SELECT @@GLOBAL.read_only").rows[0][0]) == 1
    assert _lag(cli, home, M) == (None, "-")  # demoted, not replicating: no lag (it showed 0 ms)
    r = cli("rejoin", M, home=home)
    assert r.returncode == 2 and "errant" in r.stderr
    r = cli("rejoin", M, "--rebuild", home=home)
    assert r.returncode == 0 and "rebuilt from mysql-s1" in r.stdout and "verified" in r.stdout, r.stdout + r.stderr
    cluster = Cluster.open(home)
    assert _sources(cluster) == {M: S1, S2: S1}
    rep = checker.check(cluster)
    assert rep.consistent and len(rep.facts.nodes) == 3, rep.render()
    assert [lw.ids for lw in rep.lost] == [list(range(131, 151))]
    status = json.loads(cli("status", "--json", home=home).stdout)
    assert status["primary"] == S1 and status["topology"] == {M: S1, S2: S1}


def test_failover_without_loss_rejoins_the_old_primary_as_is(replab_cluster):
    cluster = replab_cluster
    feed(cluster, rows=50)
    assert all(cluster.wait_caught_up(20).values())
    nemesis.kill(cluster, M)
    change = failover.failover(cluster)
    assert change.new_primary == S1 and change.repointed == [S2] and change.to_writable_s < 10
    assert f"; {S2} replicates from it; {M} is demoted" in change.sentence()  # it said "replicate"
    feed(cluster, rows=10)
    sentence = nemesis.start(cluster, M)  # nothing errant: it rejoins by itself
    assert "no errant transaction" in sentence and f"rejoined as a replica of {S1}" in sentence, sentence
    assert all(cluster.wait_caught_up(20).values())
    assert _sources(cluster) == {M: S1, S2: S1}
    rep = checker.check(cluster)
    assert rep.consistent and rep.lost == [] and len(rep.facts.nodes) == 3, rep.render()
    # the promoted node's config follows its role: a restart keeps mysql-s1 writable, mysql-m read-only
    nemesis.restart(cluster, S1)
    nemesis.restart(cluster, M)
    assert int(cluster.sql(S1, "SELECT @@GLOBAL.read_only").rows[0][0]) == 0
    assert int(cluster.sql(M, "SELECT @@GLOBAL.read_only").rows[0][0]) == 1


def test_a_paused_primary_is_resumed_not_started(replab_cluster, cli):
    """Issue 23.12: check and switchover told a paused primary to be started; resume is what brings it back."""
    home = replab_cluster.home
    assert cli("pause", M, home=home).returncode == 0
    try:
        # status and diagnose say so at once, while the replicas' threads still say Yes (no diagnosis line
        # before), and say what is true of a frozen server: no reconnect every second, no 'start'
        said = (f"not receiving: {M} is paused: its connection stays open and nothing arrives; the IO thread "
                f"waits out slave_net_timeout, then retries until it is back (replab resume {M})")
        r = cli("status", home=home)
        assert r.returncode == 0 and [line for line in r.stdout.splitlines() if line.startswith("diagnosis: ")] \
            == [f"diagnosis: {S1}: {said}", f"diagnosis: {S2}: {said}"], r.stdout
        r = cli("diagnose", home=home)
        assert [line for line in r.stdout.splitlines() if not line.startswith(" ")] == [f"{S1}: {said}",
                                                                                      f"{S2}: {said}"], r.stdout
        r = cli("check", home=home)
        assert r.returncode == 2 and r.stderr.splitlines() == [
            f"error: {M}: the primary {M} is paused: cannot check without it",
            f"hint: bring it back: replab resume {M}"], r.stderr
        r = cli("switchover", S1, home=home)
        assert r.returncode == 2 and r.stderr.splitlines() == [
            f"error: the primary {M} does not answer (paused): a switchover needs it",
            f"hint: bring it back (replab resume {M}), or promote a replica without it: replab failover"], r.stderr
    finally:
        assert cli("resume", M, home=home).returncode == 0


def _receiving(cluster: Cluster, node: str) -> bool:
    with cluster.connect(node) as conn:
        st = replication.replica_status(conn, cluster.flavor)
    return st is not None and st.io_state != "No"


def test_forced_failover_to_a_lagging_replica_leaves_the_one_ahead_out(replab_cluster, cli):
    cluster, home = replab_cluster, replab_cluster.home
    _leave_s2_behind(cluster, everywhere=50, s1_too=20)  # ids 1..50 everywhere, 51..70 not on S2
    nemesis.kill(cluster, M)
    before = _roles(home)
    r = cli("failover", "--to", S2, home=home)
    assert r.returncode == 2 and "lacks" in r.stderr, r.stderr
    assert _roles(home) == before and _receiving(cluster, S1) and _receiving(cluster, S2)  # nothing changed
    change = failover.failover(cluster, S2, force=True)
    assert change.new_primary == S2 and change.repointed == [] and list(change.left_out) == [S1], change
    assert f"replab rejoin {S1} --rebuild" in change.sentence()
    assert any(step.startswith(f"{S1}: received ") for step in change.steps), change.steps  # the decision log
    # S1 applied 51..70, which S2 never had: following S2 would keep them (MySQL) or break (MariaDB)
    assert set(range(51, 71)) <= _ids(cluster, S1) and not set(range(51, 71)) & _ids(cluster, S2)
    assert int(cluster.sql(S1, "SELECT @@GLOBAL.read_only").rows[0][0]) == 1 and not _receiving(cluster, S1)
    out = cli("feed", "--rows", "10", home=home)   # 71..80 on S2
    assert out.returncode == 0, out.stderr
    # the live view's last frame: S1 holds 70 rows, 20 of them S2 lacks, and lacks 71..80: not '0 behind'
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith(S1) and " count: " not in line)
    assert row[-4:] == ["70", "-", "-", "-"], out.stdout  # rows, behind primary, rows/s, lag
    assert _lag(cli, home, S1) == (None, "-")       # left out, not replicating: no lag (it showed 0 ms)
    assert _lag(cli, home, S2)[0] is None           # the new primary has no lag either
    rep = checker.check(cluster, wait=3)
    assert [(lw.acknowledged_by, lw.ids) for lw in rep.lost] == [(M, list(range(51, 71)))], rep.render()
    assert {p.node for p in rep.problems} == {S1}, rep.render()  # out of replication: reported, not hidden
    # issue 23.12: check and diagnose say what failover said (rejoin --rebuild), not "SQL thread stopped ...
    # replab repair" and "errant transaction(s) ... written on this replica"
    out = cli("check", "--wait", "3", home=home).stdout
    assert (f"diagnosis: {S1}: left out of replication by the failover to {S2}: it holds transaction(s) {S2} "
            f"never had; read-only") in out, out
    assert f"  rebuild it from {S2}: replab rejoin {S1} --rebuild (those transactions are discarded)" in out, out
    assert "replab repair" not in out and "written on this replica" not in out, out
    d = json.loads(cli("diagnose", S1, "--json", home=home).stdout)[0]
    assert d["next_writes"] == [f"rebuild it from {S2}: replab rejoin {S1} --rebuild (those transactions are "
                                "discarded)"], d
    assert re.fullmatch(rf"\d+ transaction\(s\) \(.+\): received from {M} before the failover, never by {S2} "
                        r"\(promoted with --force although it lacked them\)", d["causes"][0]), d
    r = cli("rejoin", S1, "--rebuild", home=home)
    assert r.returncode == 0 and f"rebuilt from {S2}" in r.stdout, r.stdout + r.stderr
    cluster = Cluster.open(home)
    assert _sources(cluster) == {S1: S2}
    rep = checker.check(cluster)
    assert rep.consistent and [lw.ids for lw in rep.lost] == [list(range(51, 71))], rep.render()


@pytest.mark.parametrize("server", SERVERS)
def test_semi_sync_holds_then_falls_back(replab_cluster_factory, cli, tmp_path, server):
    r = cli("up", "--semi-sync", "--engine", "compose", home=tmp_path / "x")
    assert r.returncode == 2 and "--semi-sync needs --engine local" in r.stderr
    assert not (tmp_path / "x" / "cluster.json").exists()
    require(server)
    cluster = replab_cluster_factory(semi_sync=True, semi_sync_timeout_ms=800, server=server)
    st = failover.semisync_status(cluster, M)
    # up's own transactions never waited out a timeout (it used to: a whole semi-sync timeout per up)
    assert st["on"] and st["clients"] >= 2 and st["no_tx"] == 0, st
    # status shows each node's semi-sync (and, as an upgrade rehearsal wants, its server and binlog format)
    version = str(cluster.sql(M, "SELECT VERSION()").rows[0][0])
    shown = status_rows(cli("status", home=cluster.home).stdout)
    assert {n: (r["semi-sync"], r["server"], r["binlog"]) for n, r in shown.items()} == {
        M: ("on (2 replicas)", server_name(version), "ROW"), S1: ("replica: on", server_name(version), "ROW"),
        S2: ("replica: on", server_name(version), "ROW")}
    assert server_name(version).startswith({"mariadb-10.11": "MariaDB 10.11.", "mysql-9.7": "MySQL 9.7."}[server])
    nodes = {n["name"]: n for n in json.loads(cli("status", "--json", home=cluster.home).stdout)["nodes"]}
    assert nodes[M]["semi_sync"]["side"] == "source" and nodes[M]["semi_sync"]["active"] is True
    assert nodes[M]["semi_sync"]["clients"] == 2 and nodes[S1]["semi_sync"] == {"side": "replica", "active": True}
    assert nodes[S2]["version"] == version and nodes[S2]["binlog_format"] == "ROW"
    f = Feeder(cluster, rate=300, threads=2).start()
    time.sleep(1.0)
    assert failover.semisync_status(cluster, M)["on"]
    nemesis.kill(cluster, M)                         # writes in flight: none acknowledged without a replica
    change = failover.failover(cluster)
    time.sleep(0.5)
    f.stop()
    assert all(cluster.wait_caught_up(20).values())
    rep = checker.check(cluster)
    assert rep.consistent and rep.lost == [], rep.render()
    new = change.new_primary
    assert failover.semisync_status(cluster, new)["on"]  # the new primary waits for its replica too
    other = S2 if new == S1 else S1
    nemesis.partition(cluster, new)                  # its replica is cut off: after 0.8 s it goes async
    feed(cluster, rows=20)
    st = failover.semisync_status(cluster, new)
    assert not st["on"] and st["fallbacks"] >= 1
    assert status_rows(cli("status", home=cluster.home).stdout)[new]["semi-sync"] == "fell back to async"
    fell = next(n for n in json.loads(cli("status", "--json", home=cluster.home).stdout)["nodes"] if n["name"] == new)
    assert fell["semi_sync"]["side"] == "source" and fell["semi_sync"]["active"] is False
    acked_async = set(range(rep.facts.ledger["end"], rep.facts.ledger["end"] + 20))
    nemesis.kill(cluster, new)
    assert failover.failover(cluster).new_primary == other
    rep = checker.check(cluster)
    assert rep.consistent, rep.render()
    assert [(lw.acknowledged_by, set(lw.ids)) for lw in rep.lost] == [(new, acked_async)]


def test_switchover_refuses_to_break_the_version_rule_without_force(replab_cluster_factory, cli):
    """Issue 23.17: in an upgrade rehearsal (a 10.11 primary, 11.8 replicas) a switchover silently made the
    10.11 node replicate from 11.8, the order up refuses. Refused without --force, nothing changed; with
    --force it is done and the result says what it broke."""
    require("mariadb-10.11")
    require("mariadb-11.8")
    cluster = replab_cluster_factory(server="mariadb-10.11", replica_server="mariadb-11.8")
    home = cluster.home
    old = cluster.sql(M, "SELECT VERSION()").rows[0][0].split("-")[0]
    new = cluster.sql(S1, "SELECT VERSION()").rows[0][0].split("-")[0]
    before = _roles(home)
    r = cli("switchover", S1, home=home)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"error: {S1} runs {new}, newer than {M} ({old}): after a switchover it would replicate from a newer "
        "server, and a replica must run the same version as its primary or a newer one (the rule up enforces)",
        f"hint: upgrade {M} first, or pass --force to switch over anyway"], r.stderr
    assert _roles(home) == before and _sources(cluster) == {S1: M, S2: M}
    r = cli("switchover", S1, "--force", home=home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(f"; warning: {M} ({old}) replicates from {S1} ({new}), a newer server "
                                     "(--force)"), r.stdout
    assert _roles(home) == {M: "replica", S1: "primary", S2: "replica"}
    # S2 runs 11.8 too: M would follow it as well, so it is refused the same way
    r = cli("switchover", S2, home=home)
    assert r.returncode == 2 and f"newer than {M} ({old})" in r.stderr, r.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_failover_says_why_a_broken_replica_did_not_apply_what_it_received(replab_cluster_factory, server):
    """The decision log said "mysql-s1: ... (did not apply all it received within 10s: that is lost)" of a
    replica whose SQL thread had stopped on the replica-only dropped column: the drain does not wait 10 s for
    it (it never moves), and it was not the one promoted, so nothing of it is lost by the failover."""
    require(server)
    cluster = replab_cluster_factory(server=server)
    nemesis.drift(cluster, S1, drop_column="events.name")
    assert feed(cluster, rows=10).ok == 10
    errno = cluster.flavor.conversion_errno

    def s1_stopped() -> bool:
        with cluster.connect(S1) as conn:
            st = replication.replica_status(conn, cluster.flavor)
        return st is not None and st.last_sql_errno == errno

    assert wait_for(s1_stopped, 20)
    assert cluster.wait_caught_up(20, names=[S2]) == {S2: True}
    nemesis.kill(cluster, M)
    change = failover.failover(cluster)
    assert change.new_primary == S2, change
    (line,) = [s for s in change.steps if s.startswith(f"{S1}: received ")]
    assert line.endswith(f" (did not apply all it received: its SQL thread stopped on error {errno})"), line
    assert f"{S2}: received " in "\n".join(change.steps) and "that is lost" not in "\n".join(change.steps)
    assert change.to_writable_s < 8, change.to_writable_s  # it did not wait out the 10 s drain for mysql-s1
    # it is pointed at the new primary, but it does not "replicate from it": its own error stops it again (the
    # wait for its threads sometimes caught them running a moment, else ended the failover in a 30 s timeout)
    assert change.repointed == [S1] and change.still_broken == {S1: errno}, change
    assert change.sentence().startswith(f"failover: {S2} is the primary ("), change.sentence()
    assert f"s to accept writes); no replica replicates from it; {M} is demoted" in change.sentence()
    assert change.sentence().endswith(f"; {S1} is pointed at {S2} but its SQL thread stays stopped on error "
                                      f"{errno}, as before the failover: replab diagnose {S1}"), change.sentence()
    assert change.seconds < 20, change.seconds
    assert wait_for(s1_stopped, 20)
    with cluster.connect(S1) as conn:
        port = replication.replica_status(conn, cluster.flavor).source_port
    assert port == cluster.engine.source_address(cluster.node(S2), cluster.node(S1))[1]  # S2's, through its link


def test_the_old_primary_does_not_rejoin_a_newer_primary_without_force(replab_cluster_factory, cli):
    """Issue 23.17, the other way in: after a failover in an upgrade rehearsal (10.11 primary, 11.8 replicas),
    `start mysql-m` silently made the 10.11 node a replica of the 11.8 primary, the order up and switchover
    refuse. It stays read-only and out of replication, and says why; rejoin is refused (exit 2, nothing
    changed) unless --force, whose result says what it broke."""
    require("mariadb-10.11")
    require("mariadb-11.8")
    cluster = replab_cluster_factory(server="mariadb-10.11", replica_server="mariadb-11.8")
    home = cluster.home
    old = cluster.sql(M, "SELECT VERSION()").rows[0][0].split("-")[0]
    new = cluster.sql(S1, "SELECT VERSION()").rows[0][0].split("-")[0]
    feed(cluster, rows=20)
    assert all(cluster.wait_caught_up(20).values())
    nemesis.kill(cluster, M)
    assert cli("failover", home=home).returncode == 0
    rule = (f"{M} runs {old}, older than the primary {S1} ({new}): a replica must run the same version as its "
            "primary or a newer one (the rule up enforces)")
    r = cli("start", M, home=home)
    assert r.returncode == 0 and r.stdout.strip() == (
        f"{M}: no errant transaction: everything it wrote reached {S1}; {rule}: it stays read-only and out of "
        f"replication; upgrade it, or replab rejoin {M} --force"), r.stdout
    cluster = Cluster.open(home)
    assert _roles(home)[M] == "demoted" and _sources(cluster) == {S2: S1} and not _receiving(cluster, M)
    assert int(cluster.sql(M, "SELECT @@GLOBAL.read_only").rows[0][0]) == 1
    r = cli("rejoin", M, home=home)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"error: {rule}", f"hint: upgrade {M} first, or pass --force to rejoin it anyway"], r.stderr
    assert _roles(home)[M] == "demoted" and not _receiving(cluster, M)
    r = cli("rejoin", M, "--force", home=home)
    assert r.returncode == 0 and r.stdout.strip() == (
        f"{M}: no errant transaction: everything it wrote reached {S1}; rejoined as a replica of {S1}; "
        f"warning: {M} ({old}) replicates from {S1} ({new}), a newer server (--force)"), r.stdout
    assert _sources(Cluster.open(home)) == {M: S1, S2: S1}
