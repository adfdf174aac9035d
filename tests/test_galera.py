"""MariaDB Galera (``--topology galera``) on real servers: up without state transfers, status, feeds on every
node, conflicting increments, a node killed and rejoined by IST, bad input; on 10.11 (system) and 11.8
(catalogue, with galera-4 from its own suite in its tree)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pymysql
import pytest
from catalogue import params, require
from conftest import run_cli, wait_for

from replab.cluster import galera
from replab.cluster.cluster import Cluster, teardown_home
from replab.core.config import ClusterSpec
from replab.core.errors import ConfigError, NotSupported
from replab.faults import nemesis
from replab.runs.timeline import lane_of
from replab.servers.catalogue import Server
from replab.servers.galera_tree import tree_provider
from replab.verify import checker
from replab.workload import counter
from replab.workload.feed import FeedGroup, FeedOptions, writer_targets

NODES = ["mysql-m", "mysql-s1", "mysql-s2"]


def _up(tmp_path_factory, server: str) -> Cluster:
    found = require(server)
    if galera.provider_for(found) is None:
        pytest.skip(f"no Galera provider for {server}: replab servers add-galera {server} / apt-get install galera-4")
    home = tmp_path_factory.mktemp(f"galera-{server}") / "home"
    return Cluster.up(home=home, topology="galera", server=server)


@pytest.fixture(scope="module", params=params("mariadb-10.11", "mariadb-11.8"))
def cluster(request, tmp_path_factory):
    c = _up(tmp_path_factory, request.param)
    try:
        yield c
    finally:
        teardown_home(c.home)


def _consistent(c: Cluster) -> checker.ShapeReport:
    report = checker.check(c, wait=30)
    assert isinstance(report, checker.ShapeReport)
    assert report.consistent, report.render()
    return report


def test_up_status_feed_on_all_kill_and_rejoin(cluster):
    c = cluster
    # up: every node started from the Galera template with a saved primary view: none needed a transfer
    assert c.names == NODES and c.writers() == NODES
    assert {galera.join_method(n) for n in c.nodes} == {"no transfer"}
    out = run_cli("status", "--json", home=c.home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["shape"] == "galera" and data["writers"] == NODES
    for node in data["nodes"]:
        w = node["wsrep"]
        assert (w["cluster_status"], w["cluster_size"], w["local_state_comment"]) == ("Primary", 3, "Synced")
        assert 0.0 <= w["flow_control_paused"] <= 1.0
    table = run_cli("status", home=c.home)
    assert "galera: 3 of 3 nodes Synced in the Primary component" in table.stdout
    sw = run_cli("switchover", "mysql-s1", home=c.home)  # every node takes writes: nothing to switch over
    assert sw.returncode == 2 and "Traceback" not in sw.stderr, sw.stderr
    assert sw.stderr.splitlines() == ["error: switchover is not defined for a galera topology (its role changes: none)",
                                      "hint: every Galera node takes writes already: write to another one (replab "
                                      "feed --on all)"], sw.stderr
    healthy = run_cli("diagnose", home=c.home)  # every node Synced in the Primary component: exit 0
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert [line.split(" (")[0] for line in healthy.stdout.splitlines()] == [
        f"{n}: Synced in the Primary component" for n in NODES]
    assert all("(3 of 3 nodes, last committed seqno " in line for line in healthy.stdout.splitlines())
    # feed --on all: one writer per node, each its own table and ledger; all of it on every node
    ok = run_cli("feed", "--on", "all", "--rows", "50", home=c.home)
    assert ok.returncode == 0, ok.stderr
    assert all(f"{n} events_{s} count: 50" in ok.stdout for n in NODES for s in ("m", "s1", "s2"))
    # mysql-s2 killed under writes on the others: they go on; it rejoins by IST; nothing acknowledged lost
    group = FeedGroup(c, FeedOptions(rate=100, duration=8, threads=1), writer_targets(c, ["mysql-m", "mysql-s1"]))
    group.start()
    nemesis.kill(c, "mysql-s2")
    down = run_cli("diagnose", "mysql-s2", home=c.home)  # down, and how it comes back: crashed, IST if the gcache
    assert down.returncode == 1, down.stdout + down.stderr
    assert down.stdout.startswith("mysql-s2: is down (stopped); mysql-m, mysql-s1 ")
    assert ("next writes: replab start mysql-s2: it crashed (grastate seqno -1): replab start first reads its last "
            "committed position from InnoDB (--wsrep-recover); it rejoins by IST if what it missed is still in the "
            "gcache (mysql-") in down.stdout
    said = nemesis.start(c, "mysql-s2")
    result = group.wait(60)
    assert "rejoined the cluster by IST" in said, said
    assert result.ok > 0 and result.failed == 0
    assert all(galera.wait_synced(c, timeout=60).values())
    report = _consistent(c)
    assert sum(int(r.facts.ledger.get("acknowledged", 0)) for r in report.reports.values()) >= 150 + result.ok


def test_conflicting_increments_on_every_node(cluster):
    c = cluster
    r = counter.run(c, counter.shared_writers(c, ["all"]), hot_rows=1, threads=2, duration=3, seed=7)
    assert r.ok > 0 and set(r.by_writer) == set(NODES)
    assert r.failed > 0, "no conflict was refused: 6 sessions on 1 hot row for 3 s"
    assert r.unknown == 0
    report = _consistent(c)
    cv = report.counters
    assert cv is not None and all(cv.lost(n)[0] == 0 for n in NODES)


def test_bad_input(tmp_path):
    spec = ClusterSpec(topology="galera")
    system = Server(name="x", flavor="mariadb", version="1", version_line="x", kind="path", binary="/bin/true",
                    root=str(tmp_path))
    with pytest.raises(NotSupported, match="no Galera provider .*package galera-4"):
        galera.check_spec(spec, "mariadb", system)
    with pytest.raises(ConfigError, match="needs MariaDB"):
        galera.check_spec(spec, "mysql", system)
    spec.extra["multi_primary"] = True
    with pytest.raises(ConfigError, match="always multi-primary"):
        galera.check_spec(spec, "mariadb", system)
    r = run_cli("up", "--topology", "galera", "--nodes", "2", home=tmp_path / "h")
    assert r.returncode == 2 and "a galera has 3 to 9 nodes" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("up", "--topology", "galera", "--multi-primary", home=tmp_path / "h")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == ("error: --multi-primary is for --topology group only (a galera cluster is always "
                                "multi-primary: leave it out)")
    assert not (tmp_path / "h").exists()
    require("mysql-9.7")
    r = run_cli("up", "--topology", "galera", "--server", "mysql-9.7", home=tmp_path / "h")
    assert r.returncode == 2 and "needs MariaDB" in r.stderr and "--topology group" in r.stderr
    assert not (tmp_path / "h").exists()


def test_no_provider_refused_before_anything_is_created(tmp_path, monkeypatch):
    """up on the system's MariaDB with no libgalera_smm.so anywhere: refused naming the package; no home made."""
    require("mariadb-10.11")
    monkeypatch.setattr(galera, "PROVIDER_PATHS", ("usr/lib/galera/not-installed.so",))
    with pytest.raises(NotSupported) as err:
        Cluster.up(home=tmp_path / "h", topology="galera", server="mariadb-10.11")
    assert err.value.render().splitlines() == [
        "error: no Galera provider (libgalera_smm.so, package galera-4) on this machine",
        "hint: install it with: apt-get install galera-4 (or: make system-deps DEPS=galera)"]
    assert err.value.exit_code == 2 and not (tmp_path / "h").exists()


def test_catalogue_tree_has_its_own_provider():
    server = require("mariadb-11.8")
    found = tree_provider(server)
    if found is None:
        pytest.skip("replab servers add-galera mariadb-11.8 (make servers does it)")
    assert str(found).startswith(server.root) and galera.provider_for(server) == str(found)


@pytest.mark.parametrize("name", ["galera-conflict",
                                  pytest.param("galera-node-kill", marks=pytest.mark.slow),
                                  pytest.param("galera-flow-control", marks=pytest.mark.slow),
                                  "galera-minority-partition"])
def test_galera_scenarios(name, tmp_path):
    from replab.runs import builtin
    from replab.runs.scenarios import run

    require("mariadb-10.11")
    report = run(builtin.get(name), home=tmp_path / "home", duration=6, server="mariadb-10.11")
    failed = [f"{e.name}: {e.evidence}" for e in report.expectations if not e.passed]
    assert report.error is None, report.error
    assert not failed, failed
    if name == "galera-minority-partition":  # the report's lanes show the cut node without quorum
        lanes = {lane_of(s)[0] for s in report.timeline.samples if s.node == "mysql-s2"}
        assert "non-Primary" in lanes and "running" in lanes, lanes
        assert {s.member for s in report.timeline.samples if s.node == "mysql-m"} <= {"Synced", "Donor/Desynced"}



def test_bootstrap_order_latest_state_first(tmp_path):
    from replab.engines import NodeInfo

    nodes = []
    for name, seqno in (("mysql-m", 5), ("mysql-s1", 9), ("mysql-s2", -1)):
        d = tmp_path / name
        d.mkdir()
        (d / "grastate.dat").write_text(f"# GALERA saved state\nversion: 2.1\nuuid: x\nseqno: {seqno}\n"
                                        "safe_to_bootstrap: 0\n")
        nodes.append(NodeInfo(name=name, role="primary", server_id=1, host="127.0.0.1", port=1, datadir=str(d)))
    assert [n.name for n in galera.bootstrap_order(nodes)] == ["mysql-s1", "mysql-m", "mysql-s2"]
    galera.set_safe_to_bootstrap(tmp_path / "mysql-s1", 1)
    assert galera.grastate(tmp_path / "mysql-s1")["safe_to_bootstrap"] == "1"


def test_quorum_lost_then_forced(tmp_path_factory):
    """Two of three killed: the survivor is non-Primary and refuses writes; start of another is refused (it
    would split the cluster) with the operator's fix, which then works: both rejoin by IST."""
    c = _up(tmp_path_factory, "mariadb-10.11")
    try:
        nemesis.kill(c, "mysql-s1")
        nemesis.kill(c, "mysql-s2")
        assert wait_for(lambda: (galera.node_state(c, "mysql-m") or {}).get("cluster_status") == "non-Primary", 30)
        out = run_cli("status", home=c.home)
        assert "no Primary component: quorum is lost" in out.stdout and "pc.bootstrap=YES" in out.stdout
        lost = run_cli("diagnose", "mysql-m", home=c.home)
        assert lost.returncode == 1, lost.stdout + lost.stderr
        assert lost.stdout.startswith("mysql-m: non-Primary: quorum lost, it sees 1 of the 3 nodes (needs more than 1 "
                                      "for a Primary component); mysql-s1, mysql-s2 are down or not answering. No "
                                      "node is in a Primary component"), lost.stdout
        assert "replab start mysql-s1 refuses: bootstrapping it would split the cluster" in lost.stdout
        assert ("bootstrap the node with the latest state (mysql-m, last committed seqno ") in lost.stdout
        assert "replab sql mysql-m \"SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'\"" in lost.stdout
        assert "next writes: risk: the bootstrapped node becomes a new Primary component" in lost.stdout
        assert "(split brain)" in lost.stdout
        refused = run_cli("start", "mysql-s1", home=c.home)
        assert refused.returncode == 2 and "would split the cluster" in refused.stderr
        with pytest.raises(pymysql.MySQLError, match="1047"), c.connect("mysql-m", database=c.database) as conn:
            conn.cursor().execute("INSERT INTO events_m (id, name, n, descr) VALUES (1, 'x', 1, 'x')")
        c.sql("mysql-m", "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")  # takes effect a moment later
        assert wait_for(lambda: (galera.node_state(c, "mysql-m") or {}).get("cluster_status") == "Primary", 30)
        assert "by IST" in nemesis.start(c, "mysql-s1") and "by IST" in nemesis.start(c, "mysql-s2")
        assert all(galera.wait_synced(c, timeout=60).values())
        assert run_cli("diagnose", home=c.home).returncode == 0
    finally:
        teardown_home(c.home)


@pytest.mark.parametrize("server", params("mariadb-10.11", "mariadb-11.8"))
def test_rejoin_by_sst_when_the_gcache_lost_the_gap(tmp_path, server):
    """A node stopped while the others write more than their gcache holds ([galera] gcache_size = "1M" here):
    diagnose predicts a full SST from its grastate and the donor's gcache range, start says an SST ran (the
    donor's mariabackup logs in with wsrep_sst_auth: without it the SST failed with access denied), and check
    finds every node consistent. On 11.8 the SST runs the tree's own scripts and tools (add-galera puts them
    there): the system's 10.11 ones failed on the joiner (xtrabackup_checkpoints missing)."""
    found = require(server)
    if galera.provider_for(found) is None:
        pytest.skip(f"no Galera provider for {server}: replab servers add-galera {server}")
    config = tmp_path / "replab.toml"
    config.write_text('[galera]\ngcache_size = "1M"\n')
    c = Cluster.up(home=tmp_path / "home", topology="galera", server=server, config_file=str(config))
    try:
        assert "gcache.size = 1M;" in c.sql("mysql-m", "SELECT @@wsrep_provider_options").rows[0][0]
        assert run_cli("feed", "--on", "all", "--rows", "20", home=c.home).returncode == 0
        nemesis.stop(c, "mysql-s2")
        with c.connect("mysql-m") as conn, conn.cursor() as cur:  # ~2.4 MB of writesets: more than the gcache
            cur.execute("CREATE TABLE replab.gap (id INT PRIMARY KEY, b TEXT)")
            for i in range(600):
                cur.execute("INSERT INTO replab.gap VALUES (%s, REPEAT('x', 4000))", (i,))
        predicted = run_cli("diagnose", "mysql-s2", home=c.home)
        assert predicted.returncode == 1, predicted.stdout + predicted.stderr
        assert "the gap is gone from the gcache, so it rejoins by a full SST (mariabackup)" in predicted.stdout
        said = nemesis.start(c, "mysql-s2")
        assert "rejoined the cluster by SST" in said, said
        assert galera.join_method(c.node("mysql-s2")) == "SST"
        # the joiner ran its own build's stream tool and mariadb-backup (the tree's shims on 11.8): the SST
        # script logs the commands it evaluates into the node's error log
        tools = Path(found.base) / "bin" if found.base else Path("/usr/bin")
        joiner = re.sub(r"/{2,}", "/", Path(c.node("mysql-s2").errlog).read_text(errors="replace"))
        assert f"'{tools}/mbstream' -x" in joiner, joiner[-3000:]
        assert f"Evaluating {tools}/mariadb-backup --prepare" in joiner, joiner[-3000:]
        assert all(galera.wait_synced(c, timeout=60).values())
        assert c.sql("mysql-s2", "SELECT COUNT(*) FROM replab.gap").rows[0][0] == 600
        _consistent(c)
        healthy = run_cli("diagnose", home=c.home)
        assert healthy.returncode == 0, healthy.stdout
    finally:
        teardown_home(c.home)


def test_bad_gcache_size_refused(tmp_path):
    config = tmp_path / "replab.toml"
    config.write_text('[galera]\ngcache_size = "lots"\n')
    r = run_cli("up", "--topology", "galera", "--config", str(config), home=tmp_path / "h")
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "error: [galera] gcache_size = 'lots': expected a size such as 64M, 512K or 1G",
        "hint: fix it in the config file (replab.toml)"], r.stderr
    assert not (tmp_path / "h").exists()


def test_every_node_crashed_the_latest_bootstraps(tmp_path_factory):
    """mysql-m killed; the others go on and commit more; then both killed too (every grastate seqno -1).
    replab up must compare the positions each node recovers from InnoDB (--wsrep-recover) and bootstrap from
    the latest (mysql-s1 or mysql-s2), not from mysql-m: bootstrapping mysql-m would make the others rejoin a
    cluster behind them (by SST) and lose the rows committed after mysql-m died."""
    c = _up(tmp_path_factory, "mariadb-10.11")
    try:
        c.sql("mysql-m", "CREATE TABLE replab.late (id INT PRIMARY KEY)")
        nemesis.kill(c, "mysql-m")
        assert wait_for(lambda: (galera.node_state(c, "mysql-s1") or {}).get("cluster_size") == 2, 30)
        for i in range(50):
            c.sql("mysql-s1", f"INSERT INTO replab.late VALUES ({i})")
        nemesis.kill(c, "mysql-s1")
        nemesis.kill(c, "mysql-s2")
        assert {galera.grastate(Path(n.datadir)).get("seqno") for n in c.nodes} == {"-1"}
        up = run_cli("up", "--topology", "galera", "--server", "mariadb-10.11", home=c.home, timeout=400)
        assert up.returncode == 0, up.stdout + up.stderr
        said = up.stdout + up.stderr
        assert "every node crashed: positions recovered from InnoDB (--wsrep-recover): mysql-m " in said, said
        assert "bootstraps (the latest)" in said and "mysql-m bootstraps" not in said, said
        c = Cluster.open(c.home)
        assert all(galera.wait_synced(c, timeout=60).values())
        assert [c.sql(n, "SELECT COUNT(*) FROM replab.late").rows[0][0] for n in NODES] == [50, 50, 50]
        assert galera.join_method(c.node("mysql-m")).startswith("IST")
        _consistent(c)
    finally:
        teardown_home(c.home)
