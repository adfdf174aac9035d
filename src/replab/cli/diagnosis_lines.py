"""Diagnosis lines printed under other commands' output (`status`, an inconsistent `check`)."""

from __future__ import annotations

from typing import Any

from ..verify.diagnose import diagnose as run_diagnose
from . import common


def print_diagnosis_lines(cluster: Any, rows: list[Any]) -> None:
    """Under ``replab status``: one diagnosis line per running replica that is not replicating, or whose
    source is not running (a paused primary: its replicas' threads still say Yes until slave_net_timeout)."""
    states = {s.name: s.state for s in rows}
    broken = [s.name for s in rows if s.role == "replica" and s.state == "running"
              and (not (s.io_running and s.sql_running) or states.get(s.source or "", "running") != "running")]
    for name in broken:
        for d in run_diagnose(cluster, name):
            common.console.print(f"diagnosis: {d.node}: {d.summary}", markup=False)


def print_predictions(cluster: Any) -> None:
    """After an inconsistent ``replab check``: what replication will do with each drifting replica's next writes."""
    for d in run_diagnose(cluster):
        if d.severity in ("drift", "broken"):
            common.console.print(f"diagnosis: {d.node}: {d.summary}", markup=False)
            for line in d.shifted + d.next_writes:
                common.console.print(f"  {line}", markup=False)
