"""The CLI traps of the story issue and the live view, on real MariaDB servers started by the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from conftest import REPLAB, run_cli, servers_under, wait_for

from replab import Cluster
from replab.runs.timeline import Sampler


def _err(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def test_options_anywhere_version_help_and_sources(tmp_path, cli):
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("replab ")
    # --home and -q after the command
    none = tmp_path / "none"
    _err(cli("status", "--home", str(none)), f"no cluster in {none}")
    _err(cli("status", f"--home={none}", "-q"), f"no cluster in {none}")
    helptext = cli("scenario", "run", "--help").stdout
    for name in ("seed", "replica-outage", "drop-middle-column", "lag-under-load"):
        assert name in helptext
    # a bad value from the environment or replab.toml is named by its source, not by a flag
    _err(cli("up", home=tmp_path / "a", env={"REPLAB_NODES": "12"}), "REPLAB_NODES must be between 2 and 9")
    toml = tmp_path / "replab.toml"
    toml.write_text('[cluster]\nbinlog_format = "JSON"\n')
    _err(cli("up", "--config", str(toml), home=tmp_path / "b"), f"{toml} [cluster].binlog_format: unknown binlog")
    # --rate 0 means "as fast as possible" in scenario run as in feed: accepted (checked before any server)
    _err(cli("scenario", "run", "seed", "--rate", "-1"), "--rate must be between 0 (as fast as possible)")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_up_with_other_settings_replica_writes_down_twice(tmp_path, cli):
    home = tmp_path / "lab"
    assert cli("up", home=home).returncode == 0
    try:
        _err(cli("up", "--nodes", "5", "--binlog-format", "STATEMENT", home=home),
             "built with other settings", "--nodes 5 (it has 3)", "--binlog-format STATEMENT (it has ROW)")
        same = cli("up", "--nodes", "3", "--binlog-format", "row", home=home)
        assert same.returncode == 0 and "already running" in same.stderr
        # a write on a replica is refused (it would be an errant transaction), unless asked for
        ins = "INSERT INTO mydb.events (name) VALUES ('errant')"
        _err(cli("sql", "mysql-s1", ins, home=home), "mysql-s1 is a replica", "errant transaction",
             "--allow-replica-write")
        _err(cli("sql", "mysql-s1", " /* x */ alter table mydb.events add column z int", home=home), "replica")
        assert cli("sql", "mysql-s1", "SELECT COUNT(*) FROM mydb.events", home=home).returncode == 0
        assert cli("sql", "mysql-s1", "STOP SLAVE", home=home).returncode == 0
        assert cli("sql", "mysql-s1", "START SLAVE", home=home).returncode == 0
        cluster = Cluster.open(home)
        assert cluster.sql("mysql-s1", "SELECT COUNT(*) FROM mydb.events").rows == [(0,)]
        forced = cli("sql", "mysql-s1", ins, "--allow-replica-write", home=home)
        assert forced.returncode == 0 and "warning: writing on replica mysql-s1" in forced.stderr
        assert cluster.sql("mysql-s1", "SELECT COUNT(*) FROM mydb.events").rows == [(1,)]
    finally:
        first = cli("down", home=home)
    assert first.returncode == 0, first.stderr
    second = cli("down", home=home)
    assert second.returncode == 0 and "nothing to stop" in second.stdout
    assert servers_under(tmp_path) == []


def test_corrupt_state_and_orphans_are_stopped_by_home_path(tmp_path, cli):
    home = tmp_path / "lab"
    assert cli("up", home=home).returncode == 0
    assert len(servers_under(home)) == 3
    (home / "cluster.json").write_text("{oops")
    down = cli("down", home=home)
    assert down.returncode == 0, down.stderr
    assert "stopped 5 process(es)" in down.stdout  # 3 servers and 2 link relays, found by their home path
    assert servers_under(home) == [] and not home.exists()
    # the home removed while servers run: up refuses to start a second cluster beside them
    assert cli("up", home=home).returncode == 0
    try:
        shutil.rmtree(home)
        again = cli("up", home=home)
        _err(again, "replab process(es) of an earlier cluster", "server mysql-m (pid", f"replab --home {home} down")
    finally:
        down = cli("down", home=home)
    assert down.returncode == 0 and "stopped 5 process(es)" in down.stdout
    assert servers_under(tmp_path) == []


def test_feed_with_a_paused_replica_and_down_during_a_feed(tmp_path, cli):
    home = tmp_path / "lab"
    assert cli("up", home=home).returncode == 0
    try:
        assert cli("pause", "mysql-s2", home=home).returncode == 0
        t0 = time.monotonic()
        out = cli("feed", "--rate", "200", "--duration", "3", home=home, timeout=60)
        took = time.monotonic() - t0
        assert out.returncode == 0, out.stderr
        assert took < 10, f"a paused replica stalled the feed: {took:.1f}s for a 3 s feed"
        assert "mysql-s2 count: OUT" in out.stdout
        lines = dict(line.split(" count: ") for line in out.stdout.splitlines() if " count: " in line)
        assert int(lines["mysql-m"]) == int(lines["mysql-s1"]) >= 500
        assert "paused" in out.stdout  # the live view said so
        assert cli("resume", "mysql-s2", home=home).returncode == 0
        env = dict(os.environ, REPLAB_HOME=str(home))
        feed = subprocess.Popen([*REPLAB, "feed", "--rate", "100", "--duration", "60"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        time.sleep(2.5)
        t0 = time.monotonic()
        down = run_cli("down", home=home)
        assert down.returncode == 0, down.stderr
        assert "warning: a replab feed (pid" in down.stderr
        fout, ferr = feed.communicate(timeout=30)
        assert time.monotonic() - t0 < 20
        assert feed.returncode == 1 and "was taken down (replab down) while it ran" in ferr, (fout, ferr)
        assert "Traceback" not in ferr
    finally:
        run_cli("down", home=home)
    assert servers_under(tmp_path) == []


def test_sampler_rows_constant_time_path_and_skew(replab_cluster):
    """The incremental count (forced here from the first sample) agrees with COUNT(*); while a feed runs,
    no frame shows a replica ahead of the primary; a paused node does not slow the others' samples."""
    from replab.workload.feed import Feeder, sample_nodes

    cluster = replab_cluster
    sampler = Sampler(cluster, interval=0.05, exact_below=0, settle=0.5).start()
    feeder = Feeder(cluster, rate=2000, threads=4, duration=3).start()
    try:
        seen = 0
        while feeder.running:
            frame = sampler.frame()
            m = frame["mysql-m"]
            for name in ("mysql-s1", "mysql-s2"):
                s = frame[name]
                if m is not None and s is not None and m.rows is not None and s.rows is not None:
                    assert s.rows <= m.rows, (name, s, m)
                    seen += 1
            time.sleep(0.02)
        feeder.wait()
        assert seen > 50
        assert all(cluster.wait_caught_up(timeout=20).values())
        time.sleep(0.3)
        exact = {s.name: s.rows for s in sample_nodes(cluster)}
        frame = sampler.frame()
        assert {n: s.rows for n, s in frame.items() if s is not None} == exact
        # pause a replica: the primary keeps being sampled every interval
        cluster.engine.pause(cluster.node("mysql-s2"))
        try:
            t0 = sampler.timeline.now()
            time.sleep(1.0)
            recent = [s for s in sampler.timeline.samples if s.t >= t0]
            assert len([s for s in recent if s.node == "mysql-m"]) >= 10
            assert {s.state for s in recent if s.node == "mysql-s2"} == {"paused"}
        finally:
            cluster.engine.resume(cluster.node("mysql-s2"))
    finally:
        feeder.stop()
        sampler.stop()


@pytest.mark.parametrize("statement,writes", [
    ("SELECT 1", False), ("  show slave status", False), ("(SELECT 1)", False), ("SET GLOBAL x=1", False),
    ("insert into t values (1)", True), ("/* hi */ DELETE FROM t", True), ("WITH a AS (SELECT 1) SELECT * FROM a",
                                                                           False),
    ("WITH a AS (SELECT 1) UPDATE t SET x=1", True), ("CREATE TABLE t (a int)", True), ("SET PASSWORD = 'x'", True),
    ("-- note\nTRUNCATE t", True),
])
def test_writes_data(statement, writes):
    from replab.cli.lifecycle import writes_data

    assert writes_data(statement) is writes


@pytest.mark.parametrize("statement,kind", [
    ("SELEC 1", "unknown"), ("selct * from t", "unknown"), ("CALL p()", "write"), ("LOAD DATA INFILE 'x'", "write"),
    ("GRANT ALL ON *.* TO x", "write"), ("SHOW TABLES", "read"), ("FROBNICATE", "unknown"),
])
def test_statement_kind(statement, kind):
    from replab.cli.lifecycle import statement_kind

    assert statement_kind(statement) == kind


def test_a_typo_on_a_replica_is_not_called_a_write(replab_cluster_factory, server, cli):
    """Issue 23.13: `sql mysql-s1 'SELEC 1'` answered "SELEC there bypasses read_only ...". A word that
    starts no statement is said to be one replab does not recognise; with --allow-replica-write the server
    rejects it itself, and nothing is written."""
    cluster = replab_cluster_factory(nodes=2, server=server)
    proc = cli("sql", "mysql-s1", "SELEC 1", home=cluster.home)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: SELEC is not a statement replab recognises, so it cannot tell whether it writes on replica mysql-s1",
        "hint: check the spelling; to send it to the server as it is, pass --allow-replica-write"]
    sent = cli("sql", "mysql-s1", "SELEC 1", "--allow-replica-write", home=cluster.home)
    assert sent.returncode == 2 and "error 1064" in sent.stderr and "warning" not in sent.stderr, sent.stderr
    write = cli("sql", "mysql-s1", "INSERT INTO mydb.events (name) VALUES ('x')", home=cluster.home)
    assert write.returncode == 2 and "INSERT there bypasses read_only" in write.stderr


def test_json_feed_output_has_counts(replab_cluster, cli):
    out = cli("feed", "--rows", "20", "--json", home=replab_cluster.home)
    data = json.loads(out.stdout)
    assert data["ok"] == 20 and data["counts"] == {"mysql-m": 20, "mysql-s1": 20, "mysql-s2": 20}


def _view(feeder, sampler) -> dict[str, list[str]]:
    """The live view of ``replab feed`` as printed: {node: [state, rows, behind primary, rows/s, lag]}."""
    import re

    from rich.console import Console

    from replab.cli.data import _display

    con = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    con.print(_display(feeder, sampler))
    rows = {}
    for line in con.export_text().splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0].startswith("mysql-"):
            rows[cells[0]] = cells[1:]
    return rows


def test_feed_beside_a_cut_off_replica_ends_without_waiting_for_it(replab_cluster, cli):
    """The final counts waited 10 s for a partitioned replica to catch up, which it cannot: the last frame
    froze (a 3 s feed took 13.8 s). It is counted as it is, shown cut off, and the feed ends at once."""
    from replab.faults import nemesis

    cluster = replab_cluster
    nemesis.partition(cluster, "mysql-s1")
    t0 = time.monotonic()
    out = cli("feed", "--rows", "100", "--rate", "200", home=cluster.home)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-3:] == ["mysql-m count: 100", "mysql-s1 count: 0", "mysql-s2 count: 100"]
    frame = {line.split()[0]: line.split()[1:3] for line in out.stdout.splitlines()
             if line.startswith("mysql-s") and " count: " not in line}
    assert frame["mysql-s1"] == ["cut", "off"] and frame["mysql-s2"][0] == "running", out.stdout
    assert took < 8, took  # 0.5 s of rows, a CLI start and the counts; 10 s more when it waited


def test_live_view_compares_one_moment_and_says_what_each_node_is_doing(replab_cluster_factory, server):
    """The live view at 200 rows/s compares counts read at one moment (it compared samples up to a refresh
    apart, so healthy replicas showed up to 50 rows behind), 0 once at the primary's position; a partitioned replica
    shows `cut off` (it showed `running`), a killed one `OUT` with no rows/s (it kept its old rate); the
    first frame has every node."""
    from statistics import median

    from replab.faults import nemesis
    from replab.workload.feed import Feeder

    cluster = replab_cluster_factory(server=server)
    sampler = Sampler(cluster, interval=0.25).start()
    feeder = Feeder(cluster, rate=200).start()
    try:
        assert sampler.wait_first(timeout=2.0)
        first = _view(feeder, sampler)
        assert [first[n][0] for n in ("mysql-m", "mysql-s1", "mysql-s2")] == ["running"] * 3, first
        assert "OUT" not in {first[n][1] for n in first}, first  # it showed `starting OUT`
        apart: list[float] = []  # how far apart in time a replica's count and the primary's were read
        shown = 0
        for _ in range(16):  # 4 s of frames, every 0.25 s as replab feed draws them
            time.sleep(0.25)
            frame = sampler.frame()
            view = _view(feeder, sampler)
            if sampler.frame() != frame:
                continue  # a sample arrived meanwhile: the view may show the next moment
            m = frame["mysql-m"]
            for n in ("mysql-s1", "mysql-s2"):
                r = frame[n]
                assert m is not None and r is not None and r.counted is not None
                apart.append(m.t - r.counted)  # >= 0: the replica's count is never read after the primary's
                # the view prints that comparison: 0 at the primary's GTID position, else the difference
                gap = 0 if r.tx == m.tx else max(0, (m.rows or 0) - (r.rows or 0))
                assert view[n][2] == f"{gap:,}", (n, view[n], r, m)
                shown += 1
        assert shown >= 8 and all(a >= 0 for a in apart), apart
        # one moment: read within 60 ms of each other (the refresh is 250 ms; it compared samples up to a
        # refresh apart, so a healthy replica showed the rows written meanwhile as behind)
        assert median(apart) < 0.06, apart
        nemesis.partition(cluster, "mysql-s1")
        assert wait_for(lambda: _view(feeder, sampler)["mysql-s1"][0] == "cut off", timeout=3)
        # its rows/s is what it applied since the cut, not a 2 s average of the rows before it (it showed
        # 180, 149, 121 ... rows/s for two seconds while its count stood still)
        time.sleep(1.0)
        shown = _view(feeder, sampler)["mysql-s1"][3]
        cut = [x for x in sampler.timeline.of("mysql-s1") if x.cut and x.rows is not None]
        since = (cut[-1].rows - cut[0].rows) / (cut[-1].t - cut[0].t)
        assert shown != "-" and float(shown.replace(",", "")) <= since + 5, (shown, since, cut[0], cut[-1])
        nemesis.pause(cluster, "mysql-s2")
        time.sleep(0.6)  # two frames
        assert _view(feeder, sampler)["mysql-s2"][::3] == ["paused", "-"]  # no rows/s while frozen
        nemesis.resume(cluster, "mysql-s2")
        nemesis.kill(cluster, "mysql-s2")
        time.sleep(0.6)  # two frames
        assert _view(feeder, sampler)["mysql-s2"][0] == "OUT"
        assert _view(feeder, sampler)["mysql-s2"][3] == "-"  # no rows/s for a node that is down
        nemesis.heal(cluster, "mysql-s1")
        assert wait_for(lambda: _view(feeder, sampler)["mysql-s1"][0] == "running", timeout=5)
    finally:
        feeder.stop()
    try:
        assert cluster.wait_caught_up(timeout=20, names=["mysql-s1"])["mysql-s1"]
        time.sleep(0.6)
        view = _view(feeder, sampler)
        assert view["mysql-s1"][1] == view["mysql-m"][1] and view["mysql-s1"][2] == "0", view
    finally:
        sampler.stop()
