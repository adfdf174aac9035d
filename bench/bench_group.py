"""MySQL Group Replication (``--topology group``, MySQL 9.7 from the catalogue), measured side by side:

- ``up --topology group`` vs a hand-written shell script doing the same steps (bench/shell_group_mysql.sh);
- the election after a SIGKILL of the primary: replab's measurement (``group.current_primary``, as the
  group-primary-kill scenario uses it) vs a bare poll of performance_schema.replication_group_members on a
  survivor, both watching the same kill;
- insert throughput of the same feed (4 threads, ledger on) on the group vs on the asynchronous star.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_cluster, result  # noqa: E402
from bench_up import _ours, _row, _script  # noqa: E402

from replab.cluster import group  # noqa: E402
from replab.faults import nemesis  # noqa: E402
from replab.servers import db  # noqa: E402
from replab.workload.feed import feed  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVER = "mysql-9.7"


def _shim() -> Path:
    return Path(os.environ.get("REPLAB_CACHE") or Path.home() / ".cache" / "replab") / f"servers/{SERVER}/shim/bin"


def _bare_poll(cluster, survivor: str, old_port: int, out: dict, t0: float, timeout: float = 120.0) -> None:
    """What a DBA's loop would do: ask one survivor for the ONLINE PRIMARY until it is another member."""
    user, password = cluster.credentials(db.ADMIN)
    node = cluster.node(survivor)
    while time.monotonic() - t0 < timeout:
        try:
            with db.connect(unix_socket=node.socket, user=user, password=password, timeout=1) as conn:
                rows = db.query(conn, "SELECT MEMBER_PORT AS p FROM performance_schema.replication_group_members "
                                      "WHERE MEMBER_ROLE='PRIMARY' AND MEMBER_STATE='ONLINE'")
            if rows and int(rows[0]["p"]) != old_port:
                out["bare"] = time.monotonic() - t0
                return
        except Exception:  # noqa: BLE001 - a busy member: poll again
            pass
        time.sleep(0.05)


def _elections(rounds: int) -> tuple[list[float], list[float]]:
    ours, bare = [], []
    with bench_cluster(3, topology="group", server=SERVER) as cluster:
        for _ in range(rounds):
            old = group.current_primary(cluster, max_age=0) or cluster.primary.name
            survivor = next(n for n in cluster.names if n != old)
            out: dict[str, float] = {}
            t0 = time.monotonic()
            nemesis.kill(cluster, old)
            poller = threading.Thread(target=_bare_poll, args=(cluster, survivor, cluster.node(old).port, out, t0))
            poller.start()
            while time.monotonic() - t0 < 120:
                new = group.current_primary(cluster, max_age=0)
                if new is not None and new != old:
                    ours.append(time.monotonic() - t0)
                    break
                time.sleep(0.05)
            poller.join()
            bare.append(out.get("bare", float("nan")))
            nemesis.start(cluster, old)  # rejoins (distributed recovery) before the next round
    return ours, bare


def _throughput(seconds: float, **up_args: object) -> float:
    with bench_cluster(3, server=SERVER, **up_args) as cluster:
        return feed(cluster, duration=seconds, threads=4).rate


def run(quick: bool = False) -> list[dict]:
    rounds = 1 if quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-group-") as tmp:
        env = dict(os.environ, REPLAB_HOME=f"{tmp}/lab")
        sh = ["bash", str(HERE / "shell_group_mysql.sh"), str(_shim()), f"{tmp}/sh"]
        rows.append(_row("up --topology group --server mysql-9.7: 3 members ONLINE",
                         _ours(env, ["--topology", "group", "--server", SERVER], rounds),
                         _script([*sh, "up"], [*sh, "down"], rounds),
                         "hand-written shell script (bench/shell_group_mysql.sh: --initialize-insecure per member, "
                         "bootstrap, joins one by one)", "no slower than the script"))
    ours, bare = _elections(1 if quick else 2)
    rows.append({**result(f"election after SIGKILL of the primary, seen by replab (median of {len(ours)})",
                          statistics.median(ours), "bare poll of replication_group_members on a survivor",
                          statistics.median(bare), "s", False, "within 0.5 s of the bare poll")})
    seconds = 3.0 if quick else 10.0
    grp = _throughput(seconds, topology="group")
    star = _throughput(seconds)
    rows.append(result("feed inserts, 4 threads, on a single-primary group", grp,
                       "the same feed on the asynchronous star (mysql-9.7)", star, "rows/s", True,
                       "measured: the price of group certification"))
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
