"""The built-in scenarios, each with the outcome it expects (``replab scenario list`` shows them).

Hold fractions are of the run's --duration (default 6 s of feed in total).
"""

from __future__ import annotations

from .errors import ConfigError
from .scenarios import (
    ByFlavor,
    Phase,
    Scenario,
    check,
    diagnose,
    end_fault,
    errnos_text,
    expect_caught_up,
    expect_column_missing,
    expect_consistent,
    expect_diagnosis,
    expect_inconsistent,
    expect_metric_above,
    expect_metric_below,
    expect_no_replication_error,
    expect_replication_error,
    fault,
    heal,
    hold,
    measure_lag,
    record_columns,
    stall_apply,
    start_feed,
    stop_feed,
    wait_caught_up,
    wait_lag_below,
)

M, S1, S2 = "mysql-m", "mysql-s1", "mysql-s2"
# What a replica-only drop of a middle column does under ROW: the same failure, numbered per server
# (MariaDB: 1677 "cannot be converted"; MySQL: 13146, with the worker's own message in
# performance_schema.replication_applier_status_by_worker).
MIDDLE_DROP: ByFlavor = {"mariadb": (1677,), "mysql": (13146,)}
STATEMENT_DROP: ByFlavor = {"mariadb": (1054,), "mysql": (1054,)}


def _load(fraction: float = 0.3) -> Phase:
    return Phase("load", [start_feed(), hold(fraction), check("under-load")],
                 "frequent inserts on the primary; every node checked against the ledger")


def seed() -> Scenario:
    return Scenario(
        "seed",
        "The original task: a 3-node cluster; frequent inserts with consistency checks on all instances; "
        "mysql-s1 turned off while inserts go on, then on again, and it fetches everything it missed; a column "
        "removed on a replica, and what replication does about it.",
        phases=[
            _load(0.3),
            Phase("s1-off", [fault("stop", S1), hold(0.3)], "mysql-s1 shut down while the inserts go on"),
            Phase("s1-on", [heal("start", S1), wait_caught_up([S1], metric="s1_catch_up_s"), stop_feed(),
                            check("after-restart")],
                  "mysql-s1 started again: it fetches what it missed from the primary's binary log"),
            Phase("drop-column", [fault("drift", S1, drop_column="events.name"), start_feed(), hold(0.25),
                                  stop_feed(), wait_caught_up([S2]), record_columns(S1), diagnose(S1),
                                  check("after-drop", wait=2)],
                  "column events.name dropped on mysql-s1 only (sql_log_bin=0) while inserts go on (ROW format)"),
        ],
        expectations=[
            expect_consistent("under-load"),
            expect_consistent("after-restart"),
            expect_caught_up([S1]),
            expect_metric_below("s1_catch_up_s", 30),
            expect_replication_error(S1, MIDDLE_DROP),
            expect_diagnosis(S1, MIDDLE_DROP, "dropped on this replica only"),
            expect_consistent("after-drop", nodes=[M, S2]),
            expect_no_replication_error([S2]),
        ],
    )


def _outage(name: str, description: str, down: str, up: str, up_node: str | None = S1) -> Scenario:
    return Scenario(
        name, description,
        phases=[
            _load(0.3),
            Phase("fault", [fault(down, S1), hold(0.4)], f"{down} {S1} while the inserts go on"),
            Phase("recover", [heal(up, up_node), wait_caught_up(metric="catch_up_s"), stop_feed(), check("final")],
                  f"{up} {S1}; wait until it applied everything"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_metric_below("catch_up_s", 30)],
    )


def drop_column(name: str, column: str, binlog_format: str, errnos: ByFlavor | None) -> Scenario:
    if errnos is None:
        what = f"ROW format: {column} is the last column, so the replica just ignores it: replication goes on"
        expectations = [expect_no_replication_error([S1, S2]), expect_column_missing(S1, column),
                        expect_caught_up([S1, S2]), expect_consistent("final", nodes=[M, S2])]
    else:
        what = (f"{binlog_format} format: dropping {column} on a replica breaks replication there with error "
                f"{errnos_text(errnos)}")
        expectations = [expect_replication_error(S1, errnos), expect_diagnosis(S1, errnos),
                        expect_no_replication_error([S2]), expect_consistent("final", nodes=[M, S2])]
    return Scenario(
        name, f"Column events.{column} dropped on {S1} only; {what}.",
        phases=[
            Phase("load", [start_feed(), hold(0.3), wait_caught_up()], "inserts; replicas caught up"),
            Phase("drop", [fault("drift", S1, drop_column=f"events.{column}"), hold(0.5)],
                  f"ALTER TABLE events DROP COLUMN {column} on {S1} (not binlogged) while inserts go on"),
            Phase("observe", [stop_feed(), wait_caught_up([S2]), wait_caught_up([S1], timeout=3),
                              record_columns(S1), diagnose(S1), check("final", wait=3)],
                  "what did replication do?"),
        ],
        expectations=expectations, binlog_format=binlog_format,
    )


def errant() -> Scenario:
    return Scenario(
        "errant-transaction",
        f"A write on {S2} with its binary log on (an errant transaction: a GTID the primary never had) is "
        "detected by the checker and explained by the diagnosis.",
        phases=[
            Phase("load", [start_feed(), hold(0.4), stop_feed(), wait_caught_up(), check("before")],
                  "inserts; everything consistent"),
            Phase("errant-write", [fault("drift", S2, insert_rows="events:3", binlog=True), diagnose(S2),
                                   check("final", wait=3)],
                  f"3 rows inserted directly on {S2}, binlogged under its own server id"),
        ],
        expectations=[expect_consistent("before"), expect_inconsistent("final", S2),
                      expect_diagnosis(S2, "errant"), expect_consistent("final", nodes=[M, S1])],
    )


def primary_restart() -> Scenario:
    return Scenario(
        "primary-restart",
        "A clean restart, then a kill -9, of the primary under load: replicas reconnect by themselves and no "
        "acknowledged write is lost.",
        phases=[
            _load(0.25),
            Phase("restart", [fault("restart", M), end_fault(M, "restarted"), hold(0.25),
                              wait_caught_up(metric="catch_up_after_restart_s")],
                  "clean shutdown and start of the primary while the feed retries"),
            Phase("kill", [fault("kill", M), hold(0.1), heal("start", M), hold(0.25),
                           wait_caught_up(metric="catch_up_after_kill_s"), stop_feed(), check("final")],
                  "kill -9 of the primary, then start it again (crash recovery)"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_no_replication_error([S1, S2]), expect_metric_below("catch_up_after_kill_s", 30)],
    )


def lag_under_load() -> Scenario:
    return Scenario(
        "lag-under-load",
        f"The primary takes writes faster than {S1} applies them (its apply is stalled by a local lock): lag "
        "grows, then drains once the replica can apply again; peak lag and drain time are reported.",
        phases=[
            Phase("load", [start_feed(), hold(0.2)], "steady inserts; lag near zero"),
            Phase("stall", [stall_apply(S1, fraction=0.5), end_fault(S1)],
                  f"{S1}'s SQL thread waits on a lock while its IO thread keeps receiving"),
            Phase("drain", [wait_lag_below(S1, 100), hold(0.1), stop_feed(), measure_lag(S1, "stall"),
                            wait_caught_up(), check("final")], "the lock is gone: the backlog drains"),
        ],
        expectations=[expect_metric_above("peak_lag_ms", 1000, " ms"), expect_metric_below("drain_s", 30),
                      expect_consistent("final"), expect_no_replication_error([S1, S2])],
    )


def upgrade_rehearsal() -> Scenario:
    return Scenario(
        "upgrade-rehearsal",
        "An upgrade rehearsal: a MariaDB 10.11 primary with MariaDB 11.8 replicas under load; a replica killed "
        "and started again fetches everything it missed; every node consistent.",
        phases=[
            _load(0.3),
            Phase("kill-s1", [fault("kill", S1), hold(0.3), heal("start", S1),
                              wait_caught_up([S1], metric="s1_catch_up_s")],
                  f"kill -9 {S1} (11.8) under load, then start it again"),
            Phase("final", [stop_feed(), wait_caught_up(), check("final")], "everything applied everywhere"),
        ],
        expectations=[expect_consistent("under-load"), expect_consistent("final"), expect_caught_up([S1, S2]),
                      expect_no_replication_error([S1, S2]), expect_metric_below("s1_catch_up_s", 30)],
        server="mariadb-10.11", replica_server="mariadb-11.8",
    )


BUILTIN: dict[str, Scenario] = {s.name: s for s in [
    seed(),
    _outage("replica-outage", f"{S1} shut down under load and started again: it fetches everything it missed; "
            "no acknowledged write lost; catch-up time measured.", "stop", "start", S1),
    _outage("replica-pause", f"{S1} frozen (SIGSTOP) under load and resumed: no acknowledged write lost; catch-up "
            "time measured.", "pause", "resume", S1),
    _outage("partition", f"The link between {S1} and the primary cut both ways under load, then healed: no "
            "acknowledged write lost; catch-up time measured.", "partition", "heal", S1),
    drop_column("drop-last-column", "description", "ROW", None),
    drop_column("drop-middle-column", "name", "ROW", MIDDLE_DROP),
    drop_column("drop-column-statement", "name", "STATEMENT", STATEMENT_DROP),
    errant(),
    primary_restart(),
    lag_under_load(),
    upgrade_rehearsal(),
]}


def builtin() -> dict[str, Scenario]:
    """The built-in scenarios by name."""
    return dict(BUILTIN)


def get(name: str) -> Scenario:
    """A built-in scenario by name; ConfigError listing the known ones otherwise."""
    if name not in BUILTIN:
        raise ConfigError(f"unknown scenario {name!r}", hint=f"choose one of: {', '.join(BUILTIN)} "
                          "(replab scenario list)")
    return BUILTIN[name]
