"""The run history's views on recorded data (no servers): GTID transaction counts, lanes, skew-free frames,
rows behind the primary, catch-ups; and the text summary saying each thing once."""

from __future__ import annotations

from test_report import make_report, synthetic_timeline

from replab.runs.report import final_grid, summary, with_unit
from replab.runs.timeline import Sample, Timeline, gtid_transactions, lane_of


def test_gtid_transactions_both_flavors() -> None:
    assert gtid_transactions("0-1-1444") == 1444
    assert gtid_transactions("0-1-100,1-3-5") == 105
    assert gtid_transactions("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9") == 8
    assert gtid_transactions("a:1-3,\nb:10") == 4
    assert gtid_transactions("") == 0
    assert gtid_transactions(None) is None


def test_lanes() -> None:
    assert lane_of(Sample(0, "n", "stopped")) == ("OUT", None)
    assert lane_of(Sample(0, "n", "paused")) == ("paused", None)
    assert lane_of(Sample(0, "n", "unreachable")) == ("not answering", None)
    broken = Sample(0, "n", "running", io_running=True, sql_running=False, last_errno=1677, sql_errno=1677)
    assert lane_of(broken) == ("SQL stopped", 1677)
    ok = Sample(0, "n", "running", io_running=True, sql_running=True, last_errno=0)
    assert lane_of(ok) == ("running", None) and lane_of(ok, cut=True) == ("cut off", None)
    assert lane_of(Sample(0, "m", "running", rows=5)) == ("running", None)  # a primary has no threads


def test_frame_never_shows_a_replica_ahead_because_of_skew() -> None:
    tl = synthetic_timeline()
    # mysql-s2's samples are 0.05 s younger than the primary's: its latest holds more rows
    assert tl.last_sample("mysql-s2").rows > tl.last_sample("mysql-m").rows  # type: ignore[union-attr,operator]
    frame = tl.frame()
    assert frame["mysql-s2"].rows <= frame["mysql-m"].rows  # type: ignore[operator]
    assert frame["mysql-s2"].done <= frame["mysql-m"].t


def test_rows_behind_is_never_negative_and_frozen_while_out() -> None:
    tl = synthetic_timeline()
    ts, behind = tl.rows_behind("mysql-s2")
    assert all(v is not None and 0 <= v <= 5 for v in behind)
    ts, behind = tl.rows_behind("mysql-s1")
    out = [v for t, v in zip(ts, behind, strict=True) if 3.0 <= t < 6.0]
    assert out == sorted(out) and out[0] > 0  # count frozen at 280 while the primary grows


def test_catch_up_from_the_history() -> None:
    (c,) = synthetic_timeline().catch_ups()
    assert (c.node, c.out_from, c.back_at, c.missed_tx) == ("mysql-s1", 3.02, 6.02, 320)
    assert c.seconds == 0.61 and round(c.rate or 0) == 525


def test_summary_says_the_diagnosis_once_in_the_tasks_words() -> None:
    text = summary(make_report(), notes=False)
    assert text.count("SQL thread stopped: error 1677") == 1
    assert text.count("cause:") == 1
    assert "mysql-s1 count: OUT" in text
    assert "mysql-s1 out for 3 s, 320 transactions missed" in text
    assert "catch_up_s = 1.2 s" in text and "peak_lag_ms = 3000 ms" in text


def test_units() -> None:
    assert with_unit("catch_up_s", 0.155) == "0.15 s"
    assert with_unit("peak_lag_ms", 3000) == "3000 ms"
    assert with_unit("writes_acknowledged", 12) == "12 rows"
    assert with_unit("drain_s", None) == "not measured"


def test_final_grid_names_the_missing_column() -> None:
    grid = {g["node"]: g for g in final_grid(make_report())}
    assert grid["mysql-s1"]["missing"] == ["name"] and grid["mysql-s1"]["ok"] is False
    assert grid["mysql-s1"]["verdict"] == "SQL stopped, error 1677"
    assert grid["mysql-m"]["checksum"] == grid["mysql-s2"]["checksum"] == "c0ffee01"
    assert grid["mysql-s2"]["verdict"] == "consistent"


def test_old_reports_still_load() -> None:
    tl = Timeline.from_dict({"started_at": 1.0, "samples": [{"t": 0.0, "node": "mysql-m", "state": "running",
                                                              "rows": 3}], "events": []})
    assert tl.primary == "mysql-m" and tl.samples[0].tx is None
