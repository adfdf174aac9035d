"""Shared CLI helpers: global options, consoles, JSON output, status table."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..cluster.cluster import Cluster, NodeStatus
from ..cluster.core import EdgeStatus
from ..core import links
from ..core.config import resolve_home
from ..core.state import STATE_FILE, home_lock
from ..servers.flavor import server_name

OPTIONS: dict[str, Any] = {"home": None, "quiet": False}
_GLOBAL_FLAGS = ("-q", "--quiet")
# soft_wrap: a long line (an error, a diagnosis) is left to the terminal to wrap, never cut into a column;
# tables still fit the width (the terminal's, or 160 columns when piped)
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160, soft_wrap=True)


def say(message: str) -> None:
    """Print one readable decision line (to stderr, so stdout stays parseable)."""
    if not OPTIONS.get("quiet"):
        err_console.print(f"[dim]replab:[/dim] {message}", highlight=False)


_LOCKS = contextlib.ExitStack()


def open_cluster(change: bool = False) -> Cluster:
    """The cluster of --home. ``change``: this command changes it, so it first takes the home's lock (held
    until the command ends; another changing command waits), then reads the state fresh."""
    if change:
        home = resolve_home(OPTIONS.get("home"))
        if (home / STATE_FILE).exists():
            _LOCKS.enter_context(home_lock(home, say))
    return Cluster.open(OPTIONS.get("home"), say=say)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "[green]Yes[/green]" if value else "[red]No[/red]"


def semi_sync_text(semi: dict[str, Any] | None) -> str:
    """A node's semi-sync in the status table: the primary's ``on (2 replicas)`` or ``fell back to async``,
    a replica's ``replica: on`` / ``replica: off``, ``-`` without semi-sync."""
    if not semi:
        return "-"
    if semi.get("side") == "replica":
        return f"replica: {'on' if semi.get('active') else 'off'}"
    if semi.get("active"):
        clients = int(semi.get("clients") or 0)
        return f"on ({clients} replica{'' if clients == 1 else 's'})"
    return "fell back to async"


def status_table(rows: list[NodeStatus]) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    with_links = any(st.link for st in rows)
    cols = ("node", "role", "source", *(("link",) if with_links else ()), "address", "state", "IO", "SQL", "lag",
            "last error", "GTID", "server", "binlog", "semi-sync")
    for col in cols:
        table.add_column(col, overflow="fold")
    colors = {"running": "green", "stopped": "red", "paused": "yellow", "unreachable": "red"}
    for st in rows:
        lag = "-" if st.lag_ms is None else f"{st.lag_ms} ms"
        err = f"{st.last_errno}: {st.last_error}" if st.last_errno else "-"
        link = (link_text(st.link),) if with_links else ()
        table.add_row(st.name, st.role, st.source or "-", *link, f"{st.host}:{st.port}",
                      f"[{colors.get(st.state, 'white')}]{st.state}[/]",
                      _yes_no(st.io_running), _yes_no(st.sql_running), lag, err, st.gtid or "-",
                      server_name(st.version) if st.version else "-", st.binlog_format or "-",
                      semi_sync_text(st.semi_sync))
    return table


def link_text(state: dict[str, Any] | None) -> str:
    """A link's conditions for the status table: ``20ms ±5ms 2mbit each way``, ``to-replica 40ms``, ``CUT
    to-replica``, ``plain``; ``-`` for a node without a link of its own."""
    if not state:
        return "-"
    conds = {d: links.Conditions.from_dict(c) for d, c in (state.get("conditions") or {}).items()}
    conds = {d: c for d, c in conds.items() if c}
    if len(conds) == 2 and conds[links.TO_REPLICA] == conds[links.TO_PRIMARY]:
        text = f"{conds[links.TO_REPLICA].text()} each way"
    else:
        text = links.describe(conds)
    cut = state.get("cut") or []
    if cut:
        where = "both ways" if len(cut) == 2 else cut[0]
        text = f"[red]CUT {where}[/red]" + ("" if text == "plain" else f"; {text}")
        if "primary_view" in state:
            view = state["primary_view"]
            text += f"; source: dump thread {view['id']} up" if view else "; source: no dump thread"
    return text


def edge_table(rows: list[EdgeStatus]) -> Table:
    """Every replication edge of a shaped cluster, each with its own threads, lag and error."""
    table = Table(title=None, show_lines=False, header_style="bold")
    with_links = any(e.link for e in rows)
    for col in ("edge", "channel", *(("link",) if with_links else ()), "IO", "SQL", "lag", "last error"):
        table.add_column(col, overflow="fold")
    for e in rows:
        lag = "-" if e.lag_ms is None else f"{e.lag_ms} ms"
        if e.state != "running":
            err = f"{e.replica} is {e.state}"
        elif not e.configured:
            err = "not configured on the replica"
        else:
            err = f"{e.last_errno}: {e.last_error}" if e.last_errno else "-"
        link = (link_text(e.link),) if with_links else ()
        table.add_row(f"{e.source} -> {e.replica}", e.channel or "(default)", *link, _yes_no(e.io_running),
                      _yes_no(e.sql_running), lag, err)
    return table


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--home DIR`` / ``--home=DIR`` / ``-q`` written after the command in front of it, where the
    parser expects them (``replab status --home lab`` = ``replab --home lab status``). Nothing after a
    ``--`` is touched."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS or arg.startswith("--home="):
            front.append(arg)
        elif arg == "--home" and i + 1 < len(argv):
            front.extend(argv[i:i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("replab")
    except PackageNotFoundError:
        return "unknown (not installed)"


# --- a feed and `down` in two terminals --------------------------------------------------------------
# A running `replab feed` leaves run/feed-<pid> in the home; `down` warns about it and leaves
# run/down-requested, which the feed sees within a tick and stops on, before the servers go.
_DOWN_MARK = "down-requested"


@contextlib.contextmanager
def feed_marker(home: Path) -> Iterator[None]:
    mark = home / "run" / f"feed-{os.getpid()}"
    mark.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mark.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        mark.unlink(missing_ok=True)


def running_feeds(home: Path) -> list[int]:
    """Pids of `replab feed` commands writing to the cluster in ``home`` now."""
    pids = []
    for mark in (home / "run").glob("feed-*"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(mark.name.removeprefix("feed-"))
            os.kill(pid, 0)
            pids.append(pid)
    return pids


def request_down(home: Path, on: bool = True) -> None:
    mark = home / "run" / _DOWN_MARK
    if on:
        mark.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mark.touch()
    else:
        mark.unlink(missing_ok=True)


def down_requested(home: Path) -> bool:
    return (home / "run" / _DOWN_MARK).exists() or not (home / "cluster.json").exists()


def topology_line(cluster: Cluster, rows: list[NodeStatus]) -> str:
    """``primary: mysql-s1 <- mysql-m, mysql-s2`` plus the last role change, if any."""
    primary = cluster.primary.name
    followers = [r.name for r in rows if r.source == primary]
    others = [f"{r.name} ({r.role}{', source ' + r.source if r.source else ''})" for r in rows
              if r.name != primary and r.name not in followers]
    line = f"primary: {primary}" + (f" <- {', '.join(followers)}" if followers else "")
    if others:
        line += f"; not replicating from it: {', '.join(others)}"
    changes = cluster.state.get("role_changes") or []
    if changes:
        last = changes[-1]
        line += f" (since the {last['kind']} from {last['old_primary']})"
    return line


def proxy_line(proxy: dict[str, Any] | None) -> str | None:
    """One line on the proxy for status: its state, where each endpoint routes, and why a node is out."""
    if not proxy:
        return None
    head = f"proxy ({proxy['kind']}, {proxy['state']}" + (f", pid {proxy['pid']}" if proxy.get("pid") else "") + ")"
    if proxy["state"] != "running":
        return f"{head}: writes {proxy['host']}:{proxy['write_port']}, reads {proxy['host']}:{proxy['read_port']}"
    if proxy.get("static"):  # MySQL Router without metadata: its routes as replab wrote them
        w, r = proxy["routes"].get("write") or [], proxy["routes"].get("read") or []
        return (f"{head}: writes {proxy['host']}:{proxy['write_port']} -> {w[0] if w else 'nobody'} first"
                + (f", then {', '.join(w[1:])}" if w[1:] else "") + f"; reads {proxy['host']}:{proxy['read_port']} -> "
                f"{', '.join(r) or 'nobody'} round-robin (static routes: Router does not check roles or replication)")
    parts = []
    for pool, label in (("write", "writes"), ("read", "reads")):
        mine = [b for b in proxy["backends"] if b["pool"] == pool]
        up = [b["node"] for b in mine if b["status"] == "UP"]
        out = [f"{b['node']} out: {b['why']}" for b in mine
               if b["status"] != "UP" and pool == "read" and "writable" not in b["why"]]
        parts.append(f"{label} {proxy['host']}:{proxy[f'{pool}_port']} -> {', '.join(up) or 'nobody'}"
                     + (f" ({'; '.join(out)})" if out else ""))
    return f"{head}: " + "; ".join(parts)
