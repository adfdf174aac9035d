"""The compose engine on a real Docker engine, with images built from the server catalogue.

A Docker engine that answers is used as is; otherwise the session starts a private ``dockerd`` (own data
root, exec root and socket in a temp dir, no iptables, no default bridge) and stops it at the end, with
its containers. Tests skip only when no daemon can be started here, and say why in one line.
One cluster per image serves the fault tests (module-scoped, parametrized); its last test takes it down
and checks that nothing labelled as replab's is left.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replab.cluster.cluster import Cluster
from replab.core.errors import NodeStateError, StateError
from replab.engines import dockerctl, images, netns
from replab.engines.base import RUNNING, STOPPED
from replab.engines.compose import network_name, project_name
from replab.faults import nemesis, repair
from replab.pytest_plugin import teardown
from replab.runs import builtin as builtin_scenarios
from replab.runs import scenarios
from replab.runs.builtin import seed
from replab.servers import db
from replab.verify import diagnose

IMAGES = {"mysql-9.7": "replab/mysql:9.7", "mariadb-10.11": "replab/mariadb:10.11"}
UP_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """DOCKER_HOST of an engine that answers: the machine's own, or a private daemon for this session."""
    saved = os.environ.get("DOCKER_HOST")
    if dockerctl.unavailable(saved) is None:
        yield saved or ""
        return
    daemon = dockerctl.PrivateDaemon(Path(tempfile.mkdtemp(prefix="rdk-", dir="/tmp")))
    try:
        host = daemon.start()
    except Exception as exc:  # noqa: BLE001 - any reason dockerd cannot run here is a skip, said in one line
        daemon.stop()
        pytest.skip(f"dockerd cannot start here: {str(exc).splitlines()[0]}")
    os.environ["DOCKER_HOST"] = host
    try:
        why = dockerctl.unavailable(host)
        assert why is None, f"private dockerd answers but: {why}"
        yield host
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        daemon.stop()
        assert daemon.pid() is None, "the private dockerd is still running"


@pytest.fixture(scope="session")
def built_images(docker_host: str) -> dict[str, images.BuiltImage]:
    """Both images, built once per session (a second build with the same content does nothing)."""
    return {name: images.build(name, docker_host or None) for name in IMAGES}


def test_image_build_is_cached_by_content(built_images: dict[str, images.BuiltImage], docker_host: str) -> None:
    for name, image in IMAGES.items():
        assert built_images[name].image == image
        again = images.build(name, docker_host or None)
        assert not again.built and again.digest == built_images[name].digest
        assert images.image_digest(image, docker_host or None) == again.digest


@pytest.fixture(scope="module", params=list(IMAGES))
def compose_cluster(request: pytest.FixtureRequest, built_images: dict[str, images.BuiltImage],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("compose") / "home"
    t0 = time.monotonic()
    cluster = Cluster.up(home=home, engine="compose", image=IMAGES[request.param])
    UP_SECONDS[IMAGES[request.param]] = time.monotonic() - t0
    try:
        yield cluster
    finally:
        teardown(home)
        assert not any(dockerctl.leftovers(project_name(home)).values())


def _insert(cluster: Cluster, n: int) -> None:
    with cluster.connect(cluster.primary.name, user="app", database=cluster.database) as conn, conn.cursor() as cur:
        for i in range(n):
            cur.execute("INSERT INTO events (name, counter, description) VALUES (%s, %s, %s)",
                        (f"ev-{i}", i, "compose test"))


def _count(cluster: Cluster, node: str) -> int:
    with cluster.connect(node) as conn:
        return int(db.scalar(conn, f"SELECT COUNT(*) FROM `{cluster.database}`.events"))


def test_up_three_containers_on_one_network(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    engine = cluster.engine
    expected = "9.7" if "mysql" in engine.options["image"] else "10.11"
    assert cluster.flavor.name == ("mysql" if expected == "9.7" else "mariadb")
    assert ".".join(map(str, cluster.flavor.version[:2])) == expected
    status = {st.name: st for st in cluster.status()}
    assert [n.name for n in cluster.nodes] == ["mysql-m", "mysql-s1", "mysql-s2"]
    assert all(status[n].state == RUNNING for n in status)
    assert all(status[n].io_running and status[n].sql_running for n in ("mysql-s1", "mysql-s2"))
    assert status["mysql-s1"].source == status["mysql-s2"].source == "mysql-m"  # the service name, as a node
    for node in cluster.nodes:  # published on loopback only, labelled as replab's, on the project's network
        ports = dockerctl.run(["port", engine.container(node), "3306/tcp"], engine.host).stdout.split()
        assert ports == [f"127.0.0.1:{node.port}"]
    left = dockerctl.leftovers(engine.project, engine.host)
    assert left["containers"] == sorted(engine.container(n) for n in cluster.nodes)
    assert left["networks"] == [network_name(engine.project)]
    assert len(left["volumes"]) == 3
    print(f"\nup on compose ({engine.options['image']}): {UP_SECONDS[engine.options['image']]:.1f}s")


def test_kill_start_catches_up(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    _insert(cluster, 10)
    cluster.wait_caught_up(timeout=30)
    sentence = nemesis.kill(cluster, "mysql-s1")
    assert "docker kill" in sentence and "SIGKILL" in sentence
    assert cluster.engine.state(cluster.node("mysql-s1")) == STOPPED
    with pytest.raises(NodeStateError, match="already down"):
        nemesis.kill(cluster, "mysql-s1")
    with pytest.raises(NodeStateError, match="mysql-s1 is already down"):
        nemesis.crash(cluster, "mysql-s1")
    missed = _count(cluster, "mysql-m") + 57
    _insert(cluster, 57)
    sentence = nemesis.start(cluster, "mysql-s1")
    assert "caught up in " in sentence and "(mysql-m's position when it came back)" in sentence, sentence
    assert _count(cluster, "mysql-s1") == _count(cluster, "mysql-m") == missed


def test_partition_heal_through_the_docker_network(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    s1 = cluster.node("mysql-s1")
    before = _count(cluster, "mysql-s1")
    sentence = nemesis.partition(cluster, "mysql-s1")
    assert "mysql-s1: partitioned: the link mysql-s1 <-> mysql-m is cut both ways (nft drops in mysql-s1's network " \
           "namespace, only packets to and from mysql-m:3306; silent, no reset)" in sentence, sentence
    assert nemesis.partitioned(cluster) == ["mysql-s1"]
    assert cluster.engine.state(s1) == RUNNING  # it keeps running, cut off
    with pytest.raises(NodeStateError, match="already partitioned"):
        nemesis.partition(cluster, "mysql-s1")
    _insert(cluster, 25)
    assert cluster.wait_caught_up(timeout=30, names=["mysql-s2"]) == {"mysql-s2": True}
    assert _count(cluster, "mysql-s2") == before + 25
    assert _count(cluster, "mysql-s1") == before  # replab still reaches it; replication does not
    assert "healed" in nemesis.heal(cluster, "mysql-s1")
    assert nemesis.partitioned(cluster) == []
    assert cluster.wait_caught_up(timeout=60, names=["mysql-s1"]) == {"mysql-s1": True}
    assert _count(cluster, "mysql-s1") == before + 25
    with pytest.raises(NodeStateError, match="not partitioned"):
        nemesis.heal(cluster, "mysql-s1")


def _ruleset(cluster: Cluster, node: str) -> str:
    pid = cluster.engine.pid(cluster.node(node))
    assert pid
    return netns.run(pid, ["nft", "list", "ruleset"], check=False).stdout


def test_one_way_partitions(compose_cluster: Cluster) -> None:
    """The replica's IO thread view against the primary's dump thread, each way, as on the local engine."""
    cluster = compose_cluster
    cluster.wait_caught_up(timeout=30)
    before = _count(cluster, "mysql-m")
    t0 = time.monotonic()
    sentence = nemesis.partition(cluster, "mysql-s1", direction="to-replica")
    assert "cut toward the replica only (nft drops in mysql-s1's network namespace, only packets to and from " \
           "mysql-m:3306; silent, no reset): it hears nothing from mysql-m" in sentence, sentence
    _insert(cluster, 7)
    time.sleep(0.5)
    row = {r.name: r for r in cluster.status()}["mysql-s1"]
    assert time.monotonic() - t0 < 8, "too slow to see the view before slave_net_timeout (10 s)"
    assert row.link["cut"] == ["to-replica"] and row.io_running and not row.last_errno, row
    assert row.link["primary_view"] is not None, row.link  # the primary's dump thread writes into the cut
    assert _count(cluster, "mysql-s1") == before and _count(cluster, "mysql-s2") == before + 7
    assert 'tcp sport 3306' in _ruleset(cluster, "mysql-s1") and 'comment "to-replica"' in _ruleset(cluster, "mysql-s1")
    assert "hears nothing" in diagnose.diagnose(cluster, "mysql-s1")[0].render()
    nemesis.heal(cluster, "mysql-s1")
    assert "table inet replab" not in _ruleset(cluster, "mysql-s1")  # heal removes exactly replab's table
    assert "table ip nat" in _ruleset(cluster, "mysql-s1")  # Docker's own table (its DNS) is untouched
    assert cluster.wait_caught_up(timeout=60, names=["mysql-s1"]) == {"mysql-s1": True}

    sentence = nemesis.partition(cluster, "mysql-s2", direction="to-primary")
    assert "cut toward the primary only" in sentence and "the replica still receives" in sentence, sentence
    _insert(cluster, 300)  # far more than a TCP window: bare acknowledgements still cross, so the stream flows
    assert cluster.wait_caught_up(timeout=20, names=["mysql-s2"]) == {"mysql-s2": True}  # still receives
    row = {r.name: r for r in cluster.status()}["mysql-s2"]
    assert row.link["cut"] == ["to-primary"] and row.io_running and row.link["primary_view"] is not None, row.link
    assert _count(cluster, "mysql-s2") == before + 307
    nemesis.partition(cluster, "mysql-s2", direction="to-replica")  # both rules now
    assert {r.name: r for r in cluster.status()}["mysql-s2"].link["cut"] == ["to-primary", "to-replica"]
    nemesis.heal(cluster, "mysql-s2")
    assert nemesis.partitioned(cluster) == []
    assert all(cluster.wait_caught_up(timeout=60).values())
    assert _count(cluster, "mysql-s1") == _count(cluster, "mysql-s2") == before + 307


def _bulk_seconds(cluster: Cluster, replica: str, statement: str, stdin: str | None = None) -> float:
    """A client in the replica's container, against the primary over the link: the time the client reports."""
    engine = cluster.engine
    argv = engine.tool_argv("client", cluster.node(replica), cluster.home / "credentials.cnf")
    proc = subprocess.run([*argv, "-h", cluster.primary.name, "-vvv", "--max-allowed-packet=64M",
                           *([] if stdin else ["-e", statement])], input=stdin, capture_output=True, text=True,
                          timeout=120, check=True)
    found = re.search(r"row in set \((\d+\.\d+) sec\)", proc.stdout)
    assert found, proc.stdout[-300:]
    return float(found.group(1))


def test_rate_is_what_a_bulk_transfer_measures(compose_cluster: Cluster, cli) -> None:
    cluster = compose_cluster
    size = 4_000_000  # at 16 mbit/s: 2.0 s each way
    down_sql, up_sql = f"SELECT REPEAT('x', {size})", f"SELECT LENGTH('{'y' * size}');\n"
    plain = {"to-replica": _bulk_seconds(cluster, "mysql-s1", down_sql),  # the result comes to the replica
             "to-primary": _bulk_seconds(cluster, "mysql-s1", "", stdin=up_sql)}  # the statement goes out
    sentence = nemesis.link(cluster, "mysql-s1", rate="16mbit")
    assert sentence == ("the link mysql-s1 <-> mysql-m: to-replica 16mbit, to-primary 16mbit, by the tc htb in "
                        "mysql-s1's network namespace (to-primary: eth0 egress; to-replica: eth0 ingress through ifb "
                        "replab-in)"), sentence
    try:
        shaped = {"to-replica": _bulk_seconds(cluster, "mysql-s1", down_sql),
                  "to-primary": _bulk_seconds(cluster, "mysql-s1", "", stdin=up_sql)}
        # the payload's rate: the time the shaping added over the same transfer unshaped (TCP/IP headers are
        # about 4.5% of what the link carries, so ~15.3 mbit/s of payload is expected)
        rates = {way: size * 8 / (shaped[way] - plain[way]) for way in shaped}
        print(f"\nrate 16mbit on compose: unshaped {plain['to-replica']:.3f}s/{plain['to-primary']:.3f}s, shaped "
              f"{shaped['to-replica']:.3f}s/{shaped['to-primary']:.3f}s: to-replica {rates['to-replica'] / 1e6:.2f} "
              f"mbit/s, to-primary {rates['to-primary'] / 1e6:.2f} mbit/s of payload")
        for way, rate in rates.items():
            assert 0.9 <= rate / 16e6 <= 1.1, f"{way}: {rate / 1e6:.2f} mbit/s through a 16mbit link"
        row = {r.name: r for r in cluster.status()}["mysql-s1"]
        assert row.link["conditions"] == {d: {"rate_bps": 16_000_000} for d in ("to-replica", "to-primary")}
        assert row.link["mechanism"].startswith("tc htb in the container's network namespace"), row.link
        _insert(cluster, 3)  # replication runs over the shaped link
        assert cluster.wait_caught_up(timeout=30) == {"mysql-s1": True, "mysql-s2": True}

        if netns.netem_missing():  # this machine's kernel: delay refused, one line and a hint, nothing changed
            r = cli("link", "mysql-s1", "--delay", "20ms", home=cluster.home)
            assert r.returncode == 2 and r.stderr.strip().splitlines() == [
                "error: the compose engine cannot add delay or jitter: this kernel has no netem qdisc (tc: Error: "
                "Specified qdisc kind is unknown.)",
                "hint: --engine local adds delay in its user-space relay; compose shapes --rate here"], r.stderr
        assert nemesis.link_conditions(cluster, "mysql-s1")["to-replica"].rate_bps == 16_000_000
    finally:
        assert "plain again" in nemesis.link(cluster, "mysql-s1", clear=True)
    assert {r.name: r for r in cluster.status()}["mysql-s1"].link["conditions"] == {}
    assert "htb" not in netns.run(cluster.engine.pid(cluster.node("mysql-s1")) or 0, ["tc", "qdisc", "show"]).stdout


def test_pause_resume(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    assert "docker pause" in nemesis.pause(cluster, "mysql-s2")
    assert cluster.engine.state(cluster.node("mysql-s2")) == "paused"
    nemesis.resume(cluster, "mysql-s2")
    assert cluster.engine.state(cluster.node("mysql-s2")) == RUNNING


def test_drift_diagnose_repair(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    nemesis.drift(cluster, "mysql-s2", drop_column="events.name")
    _insert(cluster, 3)
    deadline = time.monotonic() + 30
    d = diagnose.diagnose(cluster, "mysql-s2")[0]
    while not d.errno and time.monotonic() < deadline:
        time.sleep(0.3)
        d = diagnose.diagnose(cluster, "mysql-s2")[0]
    assert d.node == "mysql-s2"
    mysql = cluster.flavor.name == "mysql"
    assert d.errno == (13146 if mysql else 1677), d
    assert d.table == "mydb.events"
    # the failing event was read from the primary's binary log by the binlog tool inside its container
    assert d.event and d.event[0].startswith("INSERT INTO `mydb`.`events`"), d.event
    assert any(line.strip().startswith("name(@2)=") for line in d.event), d.event
    report = repair.repair(cluster, "mysql-s2")  # the containers' own dump and client, through docker exec
    assert report.verified, report
    assert report.tables["mydb.events"]["match"] and report.tables["mydb.events"]["rows_replica"] == \
        _count(cluster, "mysql-m")


def test_down_leaves_nothing(compose_cluster: Cluster) -> None:
    cluster = compose_cluster
    engine, home = cluster.engine, cluster.home
    assert any(dockerctl.leftovers(engine.project, engine.host).values())
    cluster.down()
    assert dockerctl.leftovers(engine.project, engine.host) == {"containers": [], "networks": [], "volumes": []}
    assert not home.exists()


def test_seed_scenario_on_compose(built_images: dict[str, images.BuiltImage], tmp_path: Path) -> None:
    """The original task on containers (MariaDB 10.11: the seed's expectations name MariaDB's 1677)."""
    report = scenarios.run(seed(), home=tmp_path / "home", duration=6,
                           up_args={"engine": "compose", "image": IMAGES["mariadb-10.11"]})
    assert report.error is None, report.error
    failed = [e for e in report.expectations if not e.passed]
    assert report.expectations and not failed, failed
    assert report.verdict == "pass"
    assert report.cluster["flavor"] == "mariadb"
    assert not any(dockerctl.leftovers(project_name(tmp_path / "home")).values())


def test_crash_loses_exactly_the_writes_after_the_cut(built_images: dict[str, images.BuiltImage],
                                                      tmp_path: Path) -> None:
    """crash-vs-kill's crash phase on containers, judged by the ledger: the primary's links cut both ways (nft,
    the primary still takes writes), writes acknowledged, its host crashed (every packet in and out of its
    namespace dropped, then SIGKILL), links healed, failover: exactly the writes acknowledged after the cut are
    lost, by id. (Its kill phase does not apply here: a killed container's namespace goes with its server, so
    on compose a kill also loses what the kernel held; see docs/engines.md.)"""
    whole = builtin_scenarios.get("crash-vs-kill")  # the registry's own object: a copy, never changed in place
    scenario = dataclasses.replace(whole, phases=[p for p in whole.phases if p.name != "kill"],
                                   expectations=[e for e in whole.expectations if "kill" not in e.name])
    report = scenarios.run(scenario, home=tmp_path / "home", duration=4, rate=200,
                           up_args={"engine": "compose", "image": IMAGES["mariadb-10.11"]})
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed, f"{report.error} {failed}"
    names = {e.name for e in report.expectations}
    assert {"lost-after-crash", "lost-exactly-after-crash", "crash_dropped_bytes-above-0"} <= names, names
    print(f"\ncrash on compose: {report.metrics['crash_dropped_bytes']} byte(s) dropped; "
          + next(e.evidence[0] for e in report.expectations if e.name == "lost-exactly-after-crash"))
    assert not any(dockerctl.leftovers(project_name(tmp_path / "home")).values())


def test_one_way_partition_scenario_on_compose(built_images: dict[str, images.BuiltImage], tmp_path: Path) -> None:
    """The built-in one-way-partition scenario, unchanged, on containers under a feed (MariaDB 10.11)."""
    report = scenarios.run(builtin_scenarios.get("one-way-partition"), home=tmp_path / "home", duration=4, rate=200,
                           up_args={"engine": "compose", "image": IMAGES["mariadb-10.11"]})
    failed = [(e.name, e.evidence) for e in report.expectations if not e.passed]
    assert report.error is None and not failed and report.verdict == "pass", f"{report.error} {failed}"
    names = {e.name for e in report.expectations}
    assert {"link-view-to-replica", "link-view-to-primary", "diagnosis-mysql-s1"} <= names
    assert not any(dockerctl.leftovers(project_name(tmp_path / "home")).values())


def test_crashed_project_is_reported_and_cleaned_by_label(docker_host: str, tmp_path: Path, cli) -> None:
    home = tmp_path / "home"
    project = project_name(home)
    host = docker_host or None
    dockerctl.run(["network", "create", "--label", f"replab.project={project}", f"{project}-net"], host)
    dockerctl.run(["network", "create", f"{project}-unlabelled"], host)  # not replab's: must survive clean
    try:
        with pytest.raises(StateError, match="left by a crashed run"):
            Cluster.up(home=home, engine="compose", image=IMAGES["mariadb-10.11"])
        assert not home.exists()
        r = cli("compose", "clean", home=home)
        assert r.returncode == 0 and f"{project}-net" in r.stdout, r.stderr
        assert dockerctl.leftovers(project, host)["networks"] == []
        names = dockerctl.run(["network", "ls", "--format", "{{.Name}}"], host).stdout.split()
        assert f"{project}-unlabelled" in names
    finally:
        dockerctl.run(["network", "rm", f"{project}-unlabelled"], host, check=False)
        dockerctl.remove_leftovers(project, host)


def test_bad_input_exit_2_nothing_created(docker_host: str, tmp_path: Path, cli) -> None:
    home = tmp_path / "home"
    r = cli("up", "--engine", "compose", "--image", "nginx:latest", home=home)
    assert r.returncode == 2 and "replab runs MySQL or MariaDB server images" in r.stderr
    r = cli("up", "--engine", "compose", "--image", "mysql:8.0.99", home=home)
    assert r.returncode == 2 and "image build" in r.stderr, r.stderr
    r = cli("up", "--engine", "compose", "--image", IMAGES["mariadb-10.11"], home=home,
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert r.returncode == 2 and "no Docker engine answers" in r.stderr and "dockerd start" in r.stderr
    r = cli("image", "build", "postgres-16")
    assert r.returncode == 2 and "replab builds images of" in r.stderr
    with subprocess.Popen(["python3", "-c", "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));"
                           "s.listen();print(s.getsockname()[1],flush=True);time.sleep(60)"],
                          stdout=subprocess.PIPE, text=True) as busy:
        assert busy.stdout is not None
        port = int(busy.stdout.readline())
        r = cli("up", "--engine", "compose", "--image", IMAGES["mariadb-10.11"], "--base-port", str(port),
                home=home)
        busy.kill()
    assert r.returncode == 2 and f"port {port}" in r.stderr and "in use" in r.stderr
    assert not home.exists()
    assert not any(dockerctl.leftovers(project_name(home), docker_host or None).values())


def test_no_compose_plugin_says_how_to_install(tmp_path: Path, cli) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\n[ "$1" = compose ] && { echo "unknown command: compose" >&2; exit 1; }\n'
                                 'echo 99.0\n')
    (fake / "docker").chmod(0o755)
    r = cli("up", "--engine", "compose", "--image", "mysql:8.4", home=tmp_path / "home",
            env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert r.returncode == 2 and "compose plugin" in r.stderr and "DEPS=docker" in r.stderr, r.stderr
    assert not (tmp_path / "home").exists()
