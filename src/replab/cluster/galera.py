"""Building and running a MariaDB Galera cluster (the ``galera`` topology) on the local engine.

How ``up`` stays fast: a full state transfer (mariabackup SST) of each joiner is what made a hand-made
cluster take ~24 s. Here every node starts from a copy of one *Galera template*: a data dir that has been a
one-node cluster once and was shut down cleanly, so InnoDB and ``grastate.dat`` both record the same
position (uuid:seqno). It is made once per server build and provider (cached like the plain template).
The first node bootstraps from it (``--wsrep-new-cluster``, ``safe_to_bootstrap: 1``); the joiners have the
same uuid and data, so the donor sends them only the few writesets since (the accounts, the schema, the
view changes) by IST from its gcache: no full state transfer.

Each node has its own ``gmcast.listen_addr``, ``ist.recv_addr`` and ``wsrep_sst_receive_address`` (free
ports on its address; 127.0.0.1 until the member network gives each member its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from ..core.config import ClusterSpec
from ..core.errors import (
    ConfigError,
    NodeStartError,
    NodeStateError,
    NotSupported,
    ReplabError,
    ReplabTimeout,
    SqlError,
)
from ..core.state import cache_root, free_ports, new_password
from ..engines import NodeInfo
from ..engines.base import RUNNING
from ..engines.local import _copy_datadir
from ..servers import catalogue, db
from ..servers.catalogue import Server, system_server
from ..servers.process import wait_for
from . import replication

if TYPE_CHECKING:
    from .core import ClusterCore

GALERA_TEMPLATE_REV = "1"
PACKAGE = "galera-4"
PROVIDER_PATHS = ("usr/lib/galera/libgalera_smm.so", "usr/lib/galera-4/libgalera_smm.so",
                  "usr/lib/libgalera_smm.so", "usr/lib64/galera-4/libgalera_smm.so")
WSREP_FIELDS = ("wsrep_cluster_status", "wsrep_cluster_size", "wsrep_local_state_comment",
                "wsrep_flow_control_paused", "wsrep_flow_control_sent", "wsrep_flow_control_recv",
                "wsrep_local_recv_queue", "wsrep_local_send_queue", "wsrep_last_committed", "wsrep_ready",
                "wsrep_cluster_conf_id", "wsrep_local_bf_aborts", "wsrep_local_cert_failures")
SYNCED = "Synced"
SST_USER = "replab_sst"  # the donor's mariabackup logs in as this user (wsrep_sst_auth), over its socket
SST_GRANTS = "RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR"


# --- what the cluster needs ---------------------------------------------------------------------------
def provider_for(server: Server) -> str | None:
    """The Galera provider library for this server build: in its own tree (a catalogue build) or the
    system's (the system's server)."""
    roots = [Path(server.root)] if server.root else [Path("/")]
    for root in roots:
        for rel in PROVIDER_PATHS:
            if (root / rel).is_file():
                return str(root / rel)
    return None


def check_spec(spec: ClusterSpec, flavor: str, server: Server) -> str:
    """Refuse what a Galera cluster cannot be (ConfigError/NotSupported, exit 2, nothing created); return the
    provider library's path."""
    if flavor not in ("mariadb",):
        have = [s.name for s in _mariadb_servers()]
        raise ConfigError(f"--topology galera needs MariaDB (Galera is MariaDB's wsrep cluster); {server.name} is "
                          f"{flavor}", hint=f"use --server {' or --server '.join(have) or 'mariadb-10.11'} "
                          "(replab servers lists them); MySQL has --topology group")
    if getattr(spec, "multi_primary", False) or spec.extra.get("multi_primary"):
        raise ConfigError("--multi-primary is for --topology group: a Galera cluster is always multi-primary "
                          "(every node takes writes)", hint="leave out --multi-primary")
    if spec.binlog_format.upper() != "ROW":
        raise ConfigError(f"--binlog-format {spec.binlog_format}: Galera replicates row events only",
                          hint="leave out --binlog-format (ROW)")
    gcache_size(spec)  # a bad [galera] gcache_size is refused here, before anything exists
    provider = provider_for(server)
    if provider is None:
        where = f"in {server.name}'s tree ({server.root})" if server.root else "on this machine"
        hint = (f"install it with: apt-get install {PACKAGE} (or: make system-deps DEPS=galera)" if not server.root else
                f"add it to the tree with: replab servers add-galera {server.name} (make servers does it)")
        raise NotSupported(f"no Galera provider (libgalera_smm.so, package {PACKAGE}) {where}", hint=hint)
    return provider


def gcache_size(spec: ClusterSpec) -> str:
    """The writeset cache each node keeps for IST (``gcache.size``): 64M, or ``[galera] gcache_size`` from the
    config file (a small one makes a node that was away for a while rejoin by a full SST)."""
    section = spec.extra.get("galera") or {}
    value = str(section.get("gcache_size", "64M")) if isinstance(section, dict) else "?"
    if not re.fullmatch(r"[1-9][0-9]*[KMG]?", value):
        raise ConfigError(f"[galera] gcache_size = {value!r}: expected a size such as 64M, 512K or 1G",
                          hint="fix it in the config file (replab.toml)")
    return value


def _mariadb_servers() -> list[Server]:
    return [s for s in catalogue.installed() if s.flavor == "mariadb"]


def node_options(cluster: ClusterCore, node: NodeInfo, provider: str, sst_password: str,
                 gcache: str = "64M") -> dict[str, str]:
    """The wsrep settings of one node: the provider, the other members, its own addresses, and the account a
    donor's mariabackup uses for a full state transfer (SST). ``wsrep_sst_auth`` is in the node's config file
    only (under the 0700 home; the server hands it to the SST script in its environment, never on a command
    line, and shows it as ******** in SHOW VARIABLES)."""
    g = node.extra["galera"]
    members = ",".join(f"{n.host}:{n.extra['galera']['gcomm']}" for n in cluster.nodes)
    name_digest = hashlib.sha1(str(cluster.home).encode()).hexdigest()[:8]
    return {
        **cluster.topology.server_options(node.name, cluster.names, cluster.flavor.name),
        "wsrep_on": "ON",
        "wsrep_provider": provider,
        "wsrep_cluster_name": f"replab-{name_digest}",
        "wsrep_cluster_address": f"gcomm://{members}",
        "wsrep_node_name": node.name,
        "wsrep_node_address": f"{node.host}:{g['gcomm']}",
        "wsrep_provider_options": f"gmcast.listen_addr=tcp://{node.host}:{g['gcomm']};"
                                  f"ist.recv_addr={node.host}:{g['ist']};gcache.size={gcache};"
                                  "pc.wait_prim_timeout=PT30S",
        "wsrep_sst_receive_address": f"{node.host}:{g['sst']}",
        "wsrep_sst_method": "mariabackup",
        "wsrep_sst_auth": f"{SST_USER}:{sst_password}",
        "wsrep_slave_threads": "2",
    }


# --- the Galera template --------------------------------------------------------------------------------
def template(engine: Any, server: Server, provider: str, say: Any) -> Path:
    """A data dir that has been a one-node Galera cluster and was shut down cleanly (InnoDB and grastate.dat
    agree on uuid:seqno); made once per server build and provider."""
    plain = engine.template(server)
    st = os.stat(provider)
    key = hashlib.sha1(f"{GALERA_TEMPLATE_REV}|{plain}|{provider}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root() / f"galera-{key}"
    if (target / ".replab-complete").exists():
        return target
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".replab-complete").exists():
            return target
        say(f"preparing a Galera template data dir for {server.name} (once per build) in {target}")
        tmp = Path(tempfile.mkdtemp(prefix="gtmpl-", dir=cache_root()))
        try:
            _copy_datadir(plain, tmp / "data")
            _bootstrap_once(server, provider, tmp)
            (tmp / "data" / ".replab-complete").write_text(server.version_line + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp / "data", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _bootstrap_once(server: Server, provider: str, tmp: Path) -> None:
    datadir, sock, pidfile, log = tmp / "data", tmp / "s.sock", tmp / "s.pid", tmp / "error.log"
    port = free_ports("127.0.0.1", 1)[0]
    argv = [server.binary, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", f"--pid-file={pidfile}",
            f"--log-error={log}", "--skip-networking", "--innodb-log-file-size=64M", "--binlog-format=ROW",
            "--innodb-autoinc-lock-mode=2", "--wsrep-on=ON", f"--wsrep-provider={provider}",
            "--wsrep-cluster-address=gcomm://", f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{port};"
            "gcache.size=64M", "--wsrep-new-cluster",
            *[f"--{k.replace('_', '-')}={v}" for k, v in server.server_options().items()]]
    if os.geteuid() == 0:
        argv.append("--user=root")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        def synced() -> bool | None:
            if proc.poll() is not None:
                raise NodeStartError("the Galera template's one-node cluster exited", log_tail=_tail(log),
                                     hint=f"check the provider {provider}")
            with contextlib.suppress(pymysql.MySQLError, OSError, SqlError):
                with db.connect(unix_socket=str(sock), user="root", password="", timeout=1) as conn:
                    return True if _status(conn).get("wsrep_local_state_comment") == SYNCED else None
            return None
        wait_for("the Galera template's one-node cluster Synced", synced, 60, interval=0.1,
                 hint=f"see {log}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if grastate(datadir).get("seqno", "-1") == "-1":
        raise NodeStartError("the Galera template did not shut down cleanly (grastate.dat has no seqno)",
                             log_tail=_tail(log))
    (datadir / "gvwstate.dat").unlink(missing_ok=True)


def _tail(path: Path, n: int = 12) -> list[str]:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace").strip().splitlines()[-n:]
    return []


def grastate(datadir: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (datadir / "grastate.dat").read_text().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
    return out


def set_safe_to_bootstrap(datadir: Path, value: int) -> None:
    path = datadir / "grastate.dat"
    if path.exists():
        text = re.sub(r"safe_to_bootstrap:\s*\d", f"safe_to_bootstrap: {value}", path.read_text())
        path.write_text(text)


# --- building -------------------------------------------------------------------------------------------
def build(cluster: ClusterCore, spec: ClusterSpec, settings: dict[str, Any], admin_pw: str,
          repl: tuple[str, str], app: tuple[str, str], ready_and_secure: Any) -> None:
    t0 = time.monotonic()
    engine, nodes, flavor = cluster.engine, cluster.nodes, cluster.flavor
    server = engine.server  # type: ignore[attr-defined]
    provider = check_spec(spec, flavor.name, server)
    member_network = getattr(engine, "member_network", None)  # a namespace and address per member, if it can
    if callable(member_network):
        member_network(nodes)
    taken = {n.port for n in nodes}  # chosen, not bound yet: a free-port pick could return one of them
    ports = iter([p for p in free_ports("127.0.0.1", 4 * len(nodes)) if p not in taken][:3 * len(nodes)])
    for n in nodes:
        n.extra["galera"] = {"gcomm": next(ports), "ist": next(ports), "sst": next(ports)}
    sst_password = new_password()
    settings["node_options"] = {n.name: node_options(cluster, n, provider, sst_password, gcache_size(spec))
                                for n in nodes}
    gtemplate = template(engine, server, provider, cluster.say)
    engine.create(nodes, settings)
    for n in nodes:  # a donor's mariabackup reads its login here too: a catalogue server (11.8) runs the system's
        with open(n.cnf, "a") as fh:  # SST script, which does not get wsrep_sst_auth from it
            fh.write(f"\n[mariadb-backup]\nuser={SST_USER}\npassword={sst_password}\n")
            # the SST script keeps its old logs in /tmp/sst_log_archive unless told: in the node's own dir
            fh.write(f"\n[sst]\nsst-log-archive-dir={Path(n.dir) / 'sst_log_archive'}\n")
    members = [str(uuid.uuid1()) for _ in nodes]
    for n, me in zip(nodes, members, strict=True):  # the Galera template instead of the plain one
        shutil.rmtree(n.datadir, ignore_errors=True)
        _copy_datadir(gtemplate, Path(n.datadir))
        set_safe_to_bootstrap(Path(n.datadir), 0)
        write_primary_view(Path(n.datadir), me, members)
    cluster.save()
    for n in nodes:  # all at once: together they restore the saved Primary component
        engine.start(n)
    cluster.save()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(ready_and_secure_one(cluster, ready_and_secure), nodes))
    first = nodes[0]
    # a node answers SELECT 1 before the saved Primary component is restored; writes need it (else 1047)
    lagging = [n for n, ok in wait_synced(cluster, timeout=60).items() if not ok]
    if lagging:
        raise ReplabTimeout(f"{', '.join(lagging)} did not join the Primary component within 60s",
                            hint=f"see {first.errlog}")
    with cluster.connect(first.name) as conn:  # replicated to every member (DDL and accounts by TOI)
        replication.bootstrap_primary(conn, flavor, database=spec.database, repl=repl, app=app,
                                      client_host=engine.client_host)
        with conn.cursor() as cur:  # without it a donor's mariabackup is refused and SST fails (access denied)
            cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED BY %s", (SST_USER, sst_password))
            cur.execute(f"GRANT {SST_GRANTS} ON *.* TO %s@'localhost'", (SST_USER,))
        for writer in cluster.topology.writers(cluster.names):
            replication.ensure_table(conn, spec.database, cluster.topology.writer_table(writer, cluster.names))
        cluster.state["source_ssl"] = replication.source_has_ssl(conn)
    lagging = [n for n, ok in wait_synced(cluster, timeout=60).items() if not ok]
    if lagging:
        raise ReplabTimeout(f"{', '.join(lagging)} did not reach Synced within 60s", hint="run: replab status")
    how = {n.name: join_method(n) for n in nodes}
    cluster.say(f"{len(nodes)} Galera nodes Synced ({flavor.name} {'.'.join(map(str, flavor.version))}) after "
                f"{time.monotonic() - t0:.2f}s; state transfers: " + ", ".join(f"{k} {v}" for k, v in how.items()))


def write_primary_view(datadir: Path, me: str, members: list[str]) -> None:
    """A saved Primary component (gvwstate.dat) naming every member: nodes started together from the same
    data restore it (pc.recovery) without a bootstrap node and without any state transfer."""
    lines = [f"my_uuid: {me}", "#vwbeg", f"view_id: 3 {members[0]} 1", "bootstrap: 0",
             *[f"member: {m} 0" for m in members], "#vwend"]
    (datadir / "gvwstate.dat").write_text("\n".join(lines) + "\n")


def ready_and_secure_one(cluster: ClusterCore, ready_and_secure: Any) -> Any:
    """The first node is secured (its ALTER USER replicates to the others, by TOI); the others are waited
    for with the initial login, which works until that statement reaches them, then with the admin's."""
    first = cluster.nodes[0]

    def one(node: NodeInfo) -> None:
        if node is first:  # securing writes accounts: only once the saved Primary component is restored
            cluster.engine.wait_ready(node, _primary_probe(cluster, node), 120)
            ready_and_secure(node)
        else:
            cluster.engine.wait_ready(node, _either_probe(cluster, node), 120)
    return one


def _primary_probe(cluster: ClusterCore, node: NodeInfo) -> Any:
    """The fresh node answers as root without a password and is in a Primary component (wsrep_ready)."""
    params = cluster.engine.connect_params(node)

    def probe() -> None:
        with db.connect(**params, user="root", password="", timeout=1, node=node.name) as conn:
            if _status(conn).get("wsrep_ready") != "ON":
                raise ReplabError(f"{node.name}: not in a Primary component yet")
    return probe


def _either_probe(cluster: ClusterCore, node: NodeInfo) -> Any:
    admin = _admin_probe(cluster, node)
    params = cluster.engine.connect_params(node)

    def probe() -> None:
        try:
            admin()
        except ReplabError:
            try:
                with db.connect(**params, user="root", password="", timeout=1, node=node.name) as conn:
                    db.scalar(conn, "SELECT 1")
            except SqlError as exc:  # the admin's password arrived between the two tries: try again
                if exc.errno == 1045:
                    raise ReplabError(f"{node.name}: its accounts are changing (replicated)") from None
                raise
    return probe


def _admin_probe(cluster: ClusterCore, node: NodeInfo) -> Any:
    """SELECT 1 as replab's admin. A joiner accepts connections before IST has brought it the accounts, so
    "access denied" is a state to wait through here, not a failure."""
    def probe() -> None:
        try:
            with cluster.connect(node.name, timeout=1) as conn:
                db.scalar(conn, "SELECT 1")
        except ReplabError as exc:
            if getattr(exc, "errno", None) == 1045:
                raise ReplabError(f"{node.name}: no accounts yet (state transfer under way)") from None
            raise
    return probe


# --- state ----------------------------------------------------------------------------------------------
def _status(conn: Any) -> dict[str, str]:
    rows = db.query(conn, "SHOW GLOBAL STATUS LIKE 'wsrep\\_%'")
    return {str(r["Variable_name"]).lower(): str(r["Value"]) for r in rows}


def wsrep_status(conn: Any) -> dict[str, Any]:
    """What ``replab status`` shows of a node: cluster status, size, local state, flow control paused share
    (since the last FLUSH STATUS / start), queues, last committed seqno, conflicts."""
    raw = _status(conn)
    out: dict[str, Any] = {}
    for key in WSREP_FIELDS:
        value = raw.get(key)
        short = key.removeprefix("wsrep_")
        if value is None:
            out[short] = None
        elif key in ("wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_ready"):
            out[short] = value
        elif key == "wsrep_flow_control_paused":
            out[short] = float(value)
        else:
            with contextlib.suppress(ValueError):
                out[short] = int(float(value))
    return out


def _read_running(cluster: ClusterCore, name: str, read: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
    """``read`` on a connection to node ``name`` if it runs and answers, else None."""
    node = cluster.node(name)
    if cluster.engine.state(node) != RUNNING:
        return None
    try:
        with cluster.connect(name, timeout=2, read_timeout=5) as conn:
            return read(conn)
    except (SqlError, pymysql.MySQLError, OSError):
        return None


def node_state(cluster: ClusterCore, name: str) -> dict[str, Any] | None:
    """What status shows of a running node (``wsrep_status``), or None."""
    return _read_running(cluster, name, wsrep_status)


def node_wsrep(cluster: ClusterCore, name: str) -> dict[str, Any] | None:
    """Every ``wsrep_%`` status variable of a running node that answers (lower-case names), or None."""
    return _read_running(cluster, name, _status)


def wait_synced(cluster: ClusterCore, timeout: float = 30.0, names: list[str] | None = None) -> dict[str, bool]:
    """Wait until each running node is Synced in the Primary component and has committed every writeset the
    others have (wsrep_last_committed); returns {node: caught_up} and never raises for a node that is down."""
    names = names or cluster.names
    last: dict[str, dict[str, Any] | None] = {}

    def check() -> bool | None:
        for n in names:
            last[n] = node_state(cluster, n)
        live = {n: s for n, s in last.items() if s}
        unreadable = [n for n, s in last.items() if not s and cluster.engine.state(cluster.node(n)) == RUNNING]
        if unreadable:  # running but not answering yet (or not with these accounts yet): not done
            return None
        if not live:
            return True
        top = max(int(s.get("last_committed") or 0) for s in live.values())
        ok = all(s.get("local_state_comment") == SYNCED and s.get("cluster_status") == "Primary"
                 and int(s.get("last_committed") or 0) >= top for s in live.values())
        return True if ok else None

    with contextlib.suppress(ReplabTimeout):
        wait_for("every Galera node Synced", check, timeout, interval=0.05)
    top = max((int(s.get("last_committed") or 0) for s in last.values() if s), default=0)
    return {n: bool(s and s.get("local_state_comment") == SYNCED and int(s.get("last_committed") or 0) >= top)
            for n, s in last.items()}


# --- restarts ----------------------------------------------------------------------------------------------
def start_args(cluster: ClusterCore, node: NodeInfo) -> list[str]:
    """How to start a Galera node again: join the others where some are in the Primary component; else
    bootstrap a new Primary component from this node (its grastate is made safe to bootstrap). After a crash
    (grastate seqno -1) the position is recovered from InnoDB first (``--wsrep-recover``), so the node can
    ask for IST instead of a full SST."""
    others = [n.name for n in cluster.nodes if n.name != node.name]
    states = {n: node_state(cluster, n) for n in others}
    primary = any((s or {}).get("cluster_status") == "Primary" for s in states.values())
    stuck = [n for n, s in states.items() if s and s.get("cluster_status") != "Primary"]
    if not primary and stuck:  # bootstrapping here would make a second cluster beside theirs
        raise NodeStateError(f"{', '.join(stuck)} run(s) without a Primary component (quorum lost): {node.name} "
                             "would have nothing to join, and bootstrapping it would split the cluster",
                             node=node.name, hint=f"restore a Primary component first: on the node with the latest "
                             f"state, replab sql {stuck[0]} \"SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'\"")
    args: list[str] = []
    datadir = Path(node.datadir)
    recovered = node.extra.pop("recovered_position", None)  # read just before by recover_crashed, or none
    if grastate(datadir).get("seqno", "-1") == "-1":
        position = recovered or recover_position(cluster, node)
        if position:
            args.append(f"--wsrep-start-position={position}")
    if not primary:
        set_safe_to_bootstrap(datadir, 1)
        args.append("--wsrep-new-cluster")
    node.extra["galera_start"] = "bootstrap" if not primary else "join"
    return args


def bootstrap_order(nodes: list[NodeInfo], recovered: dict[str, int] | None = None) -> list[NodeInfo]:
    """Stopped nodes in the order to start them when none runs: the highest seqno first (it bootstraps the
    new Primary component; the others join it by IST). A crashed node (grastate seqno -1) counts with the
    seqno recovered from its InnoDB (``recovered``, see ``recover_crashed``), else last."""
    recovered = recovered or {}

    def seqno(n: NodeInfo) -> int:
        try:
            saved = int(grastate(Path(n.datadir)).get("seqno", "-1"))
        except ValueError:
            saved = -1
        return saved if saved >= 0 else recovered.get(n.name, -1)
    return sorted(nodes, key=seqno, reverse=True)


def recover_crashed(cluster: ClusterCore, stopped: list[NodeInfo]) -> dict[str, int]:
    """When no node runs and some crashed (grastate seqno -1): each crashed node's last committed seqno,
    read from its InnoDB (``--wsrep-recover``), so the node with the latest state bootstraps. The position
    is kept for its start (``start_args`` does not run the recovery twice). Says what it found."""
    if any(cluster.engine.state(n) == RUNNING for n in cluster.nodes):
        return {}
    crashed = [n for n in stopped if grastate(Path(n.datadir)).get("seqno", "-1") == "-1"]
    if not crashed:
        return {}
    out: dict[str, int] = {}
    for n in crashed:
        position = recover_position(cluster, n)
        if position:
            n.extra["recovered_position"] = position
            out[n.name] = int(position.rsplit(":", 1)[1])
    seen = {n.name: out.get(n.name) for n in crashed}
    saved = {n.name: grastate(Path(n.datadir)).get("seqno") for n in stopped if n not in crashed}
    first = bootstrap_order(stopped, out)[0].name if stopped else "?"
    what = "every node crashed" if len(crashed) == len(cluster.nodes) else f"{', '.join(seen)} crashed"
    cluster.say(f"galera: {what}: positions recovered from InnoDB (--wsrep-recover): "
                + ", ".join(f"{k} {'unknown' if v is None else v}" for k, v in seen.items())
                + ("; saved: " + ", ".join(f"{k} {v}" for k, v in saved.items()) if saved else "")
                + f"; {first} bootstraps (the latest)")
    return out


_RECOVERED = re.compile(r"WSREP: Recovered position:\s*([0-9a-f-]{36}:-?\d+)")


def recover_position(cluster: ClusterCore, node: NodeInfo) -> str | None:
    """Run the server once with ``--wsrep-recover`` (it reads the last committed position from InnoDB and
    exits) and return uuid:seqno, or None."""
    binary = cluster.engine.server_for(node).binary  # type: ignore[attr-defined]
    log = Path(node.dir) / "wsrep-recover.log"
    log.unlink(missing_ok=True)
    argv = [binary, f"--defaults-file={node.cnf}", "--wsrep-recover", f"--log-error={log}"]
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, cwd=node.dir)
    with contextlib.suppress(OSError):
        found = _RECOVERED.findall(log.read_text(errors="replace"))
        if found and not found[-1].endswith(":-1"):
            return str(found[-1])
    return None


def join_method(node: NodeInfo) -> str:
    """How the node's last start got its state, from its error log since that start: ``IST`` (n writesets),
    ``SST`` (a full state transfer), ``bootstrap`` or ``no transfer``."""
    try:
        with open(node.errlog, errors="replace") as fh:
            fh.seek(int(node.extra.get("log_offset") or 0))
            text = fh.read()
    except OSError:
        return "unknown"
    if "SST completed on joiner" in text or "Proceeding with SST" in text:
        return "SST"
    m = re.search(r"Receiving IST: (\d+) writesets", text)
    if m or "IST received" in text or "IST completed on joiner" in text:
        return f"IST ({m.group(1)} writesets)" if m else "IST"
    if "bootstrapping new group" in text or "--wsrep-new-cluster" in str(node.extra.get("galera_start")):
        return "bootstrap"
    return "no transfer"


def require_galera(server: Server | None) -> None:
    """For callers outside a build (bench, tests): NotSupported naming the package when no provider is."""
    server = server or system_server()
    if server is None or provider_for(server) is None:
        raise NotSupported(f"no Galera provider (package {PACKAGE})", hint=f"apt-get install {PACKAGE}")
