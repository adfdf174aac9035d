"""Building a new cluster: data dirs, configs, processes, accounts, schema, replication.

On any failure everything this call started is stopped and everything it created is removed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import db, replication
from .config import ClusterSpec
from .engines import NodeInfo
from .engines.local import find_server
from .flavor import detect_flavor

if TYPE_CHECKING:
    from .cluster import Cluster

REPL_USER, APP_USER = "replab_repl", "replab_app"


def build_cluster(cls: type[Cluster], spec: ClusterSpec, home: Path, say: Callable[[str], None]) -> Cluster:
    from .cluster import STATE_VERSION, check_ports, new_password, remove_state

    t0 = time.monotonic()
    if spec.engine != "local":
        from .engines import get_engine_class

        get_engine_class(spec.engine)  # raises NotSupported with a hint
    server = find_server(spec.server_binary)
    flavor = detect_flavor(server)
    ports = check_ports(spec)
    created_home = not home.exists()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    nodes = [
        NodeInfo(name=name, role="primary" if i == 0 else "replica", server_id=i + 1, host=spec.host,
                 port=ports[i])
        for i, name in enumerate(spec.node_names)
    ]
    state: dict[str, Any] = {
        "replab": STATE_VERSION,
        "engine": spec.engine,
        "flavor": flavor.name,
        "version_string": flavor.version_string,
        "server_binary": server,
        "database": spec.database,
        "spec": {"nodes": spec.nodes, "binlog_format": spec.binlog_format, "base_port": spec.base_port,
                 "host": spec.host},
        "created": time.time(),
        "status": "creating",
        "nodes": [n.to_dict() for n in nodes],
    }
    admin_pw, repl_pw, app_pw = new_password(), new_password(), new_password()
    cluster = cls(home, state, say)
    nodes = cluster.nodes
    try:
        db.write_option_file(cluster.credentials_file, {
            db.ADMIN: {"user": "root", "password": admin_pw},
            db.APP: {"user": APP_USER, "password": app_pw},
            db.REPL: {"user": REPL_USER, "password": repl_pw},
        })
        settings = {"server_binary": server, "version_string": flavor.version_string, "flavor": flavor,
                    "binlog_format": spec.binlog_format,
                    "server_options": dict(spec.extra.get("server_options", {}))}
        cluster.engine.create(nodes, settings)
        cluster.save()  # from here on, `replab down` can clean up even if this process dies
        for node in nodes:
            cluster.engine.start(node)

        def ready_and_secure(node: NodeInfo) -> None:
            params = cluster.engine.connect_params(node)

            def probe() -> None:
                with db.connect(**params, user="root", password="", timeout=1, node=node.name) as conn:
                    db.scalar(conn, "SELECT 1")

            cluster.engine.wait_ready(node, probe, 60)
            with db.connect(**params, user="root", password="", node=node.name) as conn:
                replication.secure_node(conn, admin_pw, flavor)

        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(ready_and_secure, nodes))
        say(f"{len(nodes)} servers answering ({flavor.name} {'.'.join(map(str, flavor.version))}) "
            f"after {time.monotonic() - t0:.2f}s")
        primary = cluster.primary
        with cluster.connect(primary.name) as conn:
            replication.bootstrap_primary(conn, flavor, database=spec.database, repl=(REPL_USER, repl_pw),
                                          app=(APP_USER, app_pw), client_host="127.%")
        for replica in cluster.replicas:
            host, port = cluster.engine.source_address(primary, replica)
            with cluster.connect(replica.name) as conn:
                replication.attach_replica(conn, flavor, host=host, port=port, repl=(REPL_USER, repl_pw))
        replication.wait_threads(cluster, [r.name for r in cluster.replicas], timeout=30)
        caught = replication.wait_caught_up(cluster, timeout=30)
        lagging = [n for n, ok in caught.items() if not ok]
        if lagging:
            from .errors import ReplabTimeout

            raise ReplabTimeout(f"{', '.join(lagging)} did not catch up with the primary within 30s",
                                hint="run: replab status")
        cluster.state["status"] = "ready"
        cluster.save()
        say(f"cluster ready: {len(nodes)} nodes replicating with GTID ({spec.binlog_format}) "
            f"in {time.monotonic() - t0:.2f}s")
        return cluster
    except BaseException:
        say("set-up failed; stopping and removing what was started")
        try:
            cluster.engine.destroy(nodes, keep_data=False)
        finally:
            remove_state(home)
            if created_home and home.exists() and not any(home.iterdir()):
                home.rmdir()
        raise
