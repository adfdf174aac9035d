"""The run history's views on recorded data (no servers): GTID transaction counts, lanes, skew-free frames,
rows behind the primary, catch-ups; and the text summary saying each thing once."""

from __future__ import annotations

import time

from test_report import make_report, synthetic_timeline

from replab.runs.report import final_grid, summary, with_unit
from replab.runs.timeline import Event, Sample, Timeline, frame_of, gtid_transactions, lane_of, rate_of, rows_behind_of


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
    assert "mysql-s1 out for 3 s, caught up in 0.61 s: 320 transactions missed, applied at ~525 tx/s" in text
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


def _ticked(rate: float = 400, interval: float = 0.25) -> Timeline:
    """4 s sampled as the sampler does now: every node at the multiples of the interval, each replica's
    count read just before the primary's; mysql-s1 healthy (1 row behind: the one written meanwhile), and
    mysql-s2 really 120 rows behind."""
    tl = Timeline(started_at=1.0)
    tl.interval, tl.primary = interval, "mysql-m"
    for k in range(17):
        t = k * interval
        rows = int(rate * t)
        tl.samples.append(Sample(t + 0.004, "mysql-m", "running", rows=rows + 1, tx=rows + 1, took=0.002,
                                 counted=t + 0.005, role="primary"))
        for name, late in (("mysql-s1", 0), ("mysql-s2", 120)):
            r = max(0, rows - late)
            tl.samples.append(Sample(t, name, "running", rows=r, tx=r, took=0.003, counted=t + 0.002,
                                     io_running=True, sql_running=True, role="replica"))
    return tl


def test_frame_compares_samples_of_one_moment() -> None:
    """The live view showed healthy replicas rate x refresh behind (100 rows at 400 rows/s, 0.25 s)."""
    tl = _ticked()
    frame = tl.frame()
    assert {n: round(s.t / 0.25) for n, s in frame.items()} == {"mysql-m": 16, "mysql-s1": 16, "mysql-s2": 16}
    assert rows_behind_of(frame["mysql-s1"], frame["mysql-m"]) == 1
    assert rows_behind_of(frame["mysql-s2"], frame["mysql-m"]) == 121
    # at the same GTID position: 0, whatever the counts (rows deleted on the replica are check's business)
    same = Sample(4.0, "mysql-s1", "running", rows=1500, tx=1601)
    assert rows_behind_of(same, frame["mysql-m"]) == 0
    assert rows_behind_of(None, frame["mysql-m"]) is None
    # a replica whose sample of the newest tick is not finished yet: the frame shows the tick before, for all
    recent = {n: tl.of(n) for n in tl.nodes()}
    recent["mysql-s1"] = recent["mysql-s1"][:-1]
    older = frame_of(recent, "mysql-m", 0.25)
    assert {round(s.t / 0.25) for s in older.values() if s} == {15}
    assert rows_behind_of(older["mysql-s1"], older["mysql-m"]) == 1


def test_rows_per_second_starts_again_when_the_lane_changes() -> None:
    """Issue 23.19: a replica cut off at 200 rows/s kept showing 180, 149, 121, 106, 65, 38, 6 rows/s for two
    seconds while its count stood still (a 2 s average over rows applied before the cut). The rate counts
    from the node's lane change on: '-' for the first sample of the new lane, then what it applies now."""
    def s1(k: int, rows: int, cut: bool) -> Sample:
        return Sample(k * 0.25, "mysql-s1", "running", rows=rows, io_running=True, sql_running=True, cut=cut,
                      role="replica")
    healthy = [s1(k, 50 * k, False) for k in range(12)]               # 200 rows/s for 2.75 s
    assert rate_of(healthy) == 200.0
    cut = healthy + [s1(12, 600, True)]                               # cut off at 3 s
    assert rate_of(cut) is None                                        # one sample of the new lane: '-'
    assert rate_of(cut + [s1(13, 600, True)]) == 0.0                   # not 180: nothing applied since
    backlog = cut + [s1(13, 620, True), s1(14, 640, True)]             # applying its relay log after the cut
    assert rate_of(backlog) == 80.0
    # a paused or killed node has no rate at once, and none on its first sample back
    down = healthy + [Sample(3.0, "mysql-s1", "paused", role="replica")]
    assert rate_of(down) is None
    back = down + [s1(13, 900, False)]
    assert rate_of(back) is None and rate_of(back + [s1(14, 1000, False)]) == 400.0
    # a lane that holds: the window is the last 2 s, as before
    assert rate_of([s1(k, 10 * k * k, False) for k in range(20)]) == round((10 * 19 * 19 - 10 * 11 * 11) / 2.0, 6)


def _failover_timeline() -> Timeline:
    """failover-async, recorded: every replica link cut at 3 s (a partition of mysql-m, never healed), mysql-m
    killed at 4.8 s, mysql-s2 promoted at 5.2 s; mysql-s1 follows it. Samples carry no ``cut`` (the fault
    windows decide), as in the reports this was found in."""
    tl = Timeline(started_at=1.0)
    tl.interval, tl.primary = 0.2, "mysql-m"
    for k in range(40):
        t = round(k * 0.2, 3)
        after = t >= 5.2
        m_rows = int(100 * min(t, 4.8))
        if t < 4.8:
            tl.samples.append(Sample(t + 0.01, "mysql-m", "running", rows=m_rows, tx=m_rows, role="primary"))
        else:
            tl.samples.append(Sample(t + 0.01, "mysql-m", "stopped", role="demoted" if after else "primary"))
        cut_rows = int(100 * min(t, 3.0))
        s2 = cut_rows + (int(100 * (t - 5.2)) if after else 0)
        s1 = s2 - (40 if after and t < 6.0 else 0)
        tl.samples.append(Sample(t, "mysql-s2", "running", rows=s2, tx=s2, role="primary" if after else "replica",
                                 io_running=None if after else True, sql_running=None if after else True))
        tl.samples.append(Sample(t, "mysql-s1", "running", rows=s1, tx=s1, role="replica", io_running=True,
                                 sql_running=True))
    tl.events = [Event(3.0, "fault", "partition mysql-m", "mysql-m"), Event(4.8, "fault", "kill mysql-m", "mysql-m")]
    return tl


def test_after_a_failover_the_timeline_measures_against_the_new_primary() -> None:
    tl = _failover_timeline()
    assert tl.primary_changes() == [(0.0, "mysql-m"), (5.2, "mysql-s2")]
    assert tl.primary_at(5.0) == "mysql-m" and tl.primary_at(6.0) == "mysql-s2" and tl.final_primary == "mysql-s2"
    lanes = {n: [(round(g.start, 1), g.label) for g in tl.segments(n)] for n in ("mysql-s1", "mysql-s2")}
    # cut off from mysql-m while it was the primary; not "cut off until the end" (they replicate from mysql-s2)
    assert lanes["mysql-s1"] == [(0.0, "running"), (3.0, "cut off"), (5.2, "running")]
    assert lanes["mysql-s2"] == [(0.0, "running"), (3.0, "cut off"), (5.2, "running")]
    ts, behind = tl.rows_behind("mysql-s1")
    at = dict(zip(ts, behind, strict=True))
    assert at[5.6] == 40 and at[6.2] == 0  # against mysql-s2, not the dead mysql-m's last count
    ts, behind = tl.rows_behind("mysql-s2")
    assert [v for t, v in zip(ts, behind, strict=True) if t >= 5.2] == [None] * 14  # it is the primary then
    assert tl.catch_ups() == []  # mysql-m went down as the primary: no replica's outage
    assert {n: s.role for n, s in tl.frame().items()} == {"mysql-m": "demoted", "mysql-s1": "replica",
                                                          "mysql-s2": "primary"}


def test_lanes_from_what_the_engine_said() -> None:
    """A partitioned replica: the sample's ``cut`` decides (the live view has no fault events to go by)."""
    cut = Sample(0, "mysql-s1", "running", io_running=True, sql_running=True, last_errno=0, cut=True)
    assert lane_of(cut, cut=bool(cut.cut)) == ("cut off", None)
    tl = Timeline()
    tl.primary = "mysql-m"
    tl.samples = [Sample(0.0, "mysql-m", "running", role="primary"), cut,
                  Sample(0.2, "mysql-s1", "running", io_running=True, sql_running=True, cut=False)]
    assert [g.label for g in tl.segments("mysql-s1")] == ["cut off", "running"]
    assert lane_of(Sample(0, "mysql-m", "running", role="demoted")) == ("demoted", None)


def test_report_names_the_roles_at_the_end() -> None:
    """failover-semisync showed the new primary as `replica` with schema `+id, +name, ...`, and the killed
    mysql-m of failover-async as `primary ... consistent`."""
    from replab.runs.report import RunReport
    from replab.runs.report_svg import story_svg

    cols = ["id", "name", "counter", "description"]
    report = RunReport("failover-semisync", "recorded", timeline=_failover_timeline(),
                       cluster={"nodes": [{"name": "mysql-m", "role": "primary"},
                                          {"name": "mysql-s1", "role": "replica"},
                                          {"name": "mysql-s2", "role": "replica"}]},
                       final={"mysql-m": {"state": "stopped", "role": "demoted"},
                              "mysql-s1": {"state": "running", "role": "replica", "rows": 780, "columns": cols},
                              "mysql-s2": {"state": "running", "role": "primary", "rows": 780, "columns": cols}},
                       checks={"final": {"consistent": True, "nodes": [], "problems": []}})
    grid = {g["node"]: g for g in final_grid(report)}
    assert [(n, g["role"]) for n, g in grid.items()] == [("mysql-m", "demoted"), ("mysql-s1", "replica"),
                                                         ("mysql-s2", "primary")]
    assert grid["mysql-s2"]["extra"] == [] and grid["mysql-s2"]["missing"] == [] and grid["mysql-s2"]["ok"]
    assert grid["mysql-m"]["verdict"] == "demoted former primary, out of the cluster (not checked)"
    assert grid["mysql-m"]["ok"] is None
    # a report written before final roles were recorded: the samples' last roles decide
    for fin in report.final.values():
        fin.pop("role")
    assert {n: g["role"] for n, g in ((g["node"], g) for g in final_grid(report))} == {
        "mysql-m": "demoted", "mysql-s1": "replica", "mysql-s2": "primary"}
    assert "rows behind the primary (mysql-m, then mysql-s2 from 5.2 s) per replica" in story_svg(report.timeline)


def test_one_catch_up_printed_the_same_way_everywhere() -> None:
    """The seed printed "501 transactions in 0.34 s" (start), "caught up in 0.03 s" (the wait) and "547
    missed, caught up 0.41 s" (the summary): where ``start`` measured a catch-up, that is the one."""
    from replab.faults.nemesis import catch_up_phrase

    assert catch_up_phrase(501, 0.3412) == "caught up in 0.34 s: 501 transactions missed, applied at ~1,474 tx/s"
    assert catch_up_phrase(5, 2.0, exact=False) == ("caught up in 2 s: at least 5 transactions missed, applied "
                                                    "at ~2 tx/s")
    assert catch_up_phrase(7, None) == "7 transactions missed, not caught up"
    tl = synthetic_timeline()
    tl.events.append(Event(6.5, "note", "mysql-s1: caught up ...", "mysql-s1",
                           {"catch_up": {"transactions": 301, "seconds": 0.34, "exact": True}}))
    (c,) = tl.catch_ups()
    assert (c.node, c.out_from, c.back_at, c.missed_tx, c.caught_up_at, c.seconds) == \
        ("mysql-s1", 3.02, 6.16, 301, 6.5, 0.34)
    report = make_report()
    report.timeline = tl
    assert "mysql-s1 out for 3.14 s, caught up in 0.34 s: 301 transactions missed, applied at ~885 tx/s" in \
        summary(report)


def test_several_writers_keep_one_primary_on_the_timeline() -> None:
    """active-active: both nodes are sampled as primary all along; that is no role change."""
    tl = Timeline()
    tl.samples = [Sample(k * 0.2 + d, n, "running", rows=k, role="primary")
                  for k in range(10) for n, d in (("mysql-m", 0.0), ("mysql-s1", 0.01))]
    assert tl.primary_changes() == [(0.0, "mysql-m")] and tl.primary_at(1.5) == "mysql-m"


def test_member_states_are_lanes_and_serving_members_run() -> None:
    assert lane_of(Sample(1.0, "mysql-s2", "running", member="non-Primary"))[0] == "non-Primary"
    assert lane_of(Sample(1.0, "mysql-s1", "running", member="RECOVERING"))[0] == "RECOVERING"
    assert lane_of(Sample(1.0, "mysql-s1", "running", member="ONLINE", member_role="SECONDARY"))[0] == "running"
    assert lane_of(Sample(1.0, "mysql-m", "running", member="Synced"))[0] == "running"
    assert lane_of(Sample(1.0, "mysql-m", "stopped", member="Synced"))[0] == "OUT"  # a stopped node is OUT first


def _proxy_timeline():
    """A recorded-shaped timeline: mysql-m in the write pool until 1.0 s, then down; mysql-s1 in the read pool,
    then in the write pool from 1.0 s; mysql-s2 drained at 0.4 s; read violations on mysql-s2."""
    from replab.runs.timeline import ProxySample, ReadMark, ReadRun, Sample, Timeline
    tl = Timeline(started_at=1.0)
    tl.interval = 0.2
    tl.primary = "mysql-m"
    for k in range(10):
        t = round(k * 0.2, 1)
        tl.samples += [Sample(t, n, "running", rows=k, role="primary" if n == "mysql-m" else "replica")
                       for n in ("mysql-m", "mysql-s1", "mysql-s2")]
        old = t < 1.0
        tl.proxy_samples += [
            ProxySample(t, "mysql-m", write="UP" if old else "DOWN", read="DOWN", why_read="down writable"),
            ProxySample(t, "mysql-s1", write="DOWN" if old else "UP", read="UP" if old else "DOWN"),
            ProxySample(t, "mysql-s2", write="DOWN", read="MAINT" if t == 0.4 else "UP")]
    tl.read_runs = [ReadRun("lagging", "mysql-s2", False, 0.2, 1.0, 4, 3, 1, 0,
                            {"mysql-s2": {"reads": 4, "read_your_writes": 3, "monotonic": 1, "first": 0.2,
                                          "last": 0.9}}),
                    ReadRun("causal", "mysql-s2", True, 1.1, 1.8, 5, 0, 0, 0,
                            {"mysql-s2": {"reads": 5, "read_your_writes": 0, "monotonic": 0, "first": 1.1,
                                          "last": 1.7}})]
    tl.read_marks = [ReadMark(0.2, "mysql-s2", "read-your-writes", "lagging", 1250.5),
                     ReadMark(0.5, "mysql-s2", "monotonic", "lagging"),
                     ReadMark(0.6, "mysql-s2", "read-your-writes", "lagging", None),
                     ReadMark(0.9, "mysql-s2", "read-your-writes", "lagging", 1003.0)]
    return tl


def test_proxy_lanes_follow_the_write_pool_and_say_drained_and_proxy_down() -> None:
    from replab.runs.timeline import ProxySample, proxy_lane_of
    tl = _proxy_timeline()
    lanes = {n: [(g.lane, g.start, round(g.end, 1)) for g in tl.proxy_segments(n)] for n in tl.proxy_nodes()}
    assert lanes == {"mysql-m": [("write pool", 0.0, 1.0), ("down", 1.0, 2.0)],
                     "mysql-s1": [("read pool", 0.0, 1.0), ("write pool", 1.0, 2.0)],
                     "mysql-s2": [("read pool", 0.0, 0.4), ("drained", 0.4, 0.6), ("read pool", 0.6, 2.0)]}
    assert tl.proxy_segments("mysql-m")[1].why == "down writable"
    assert proxy_lane_of(ProxySample(0.0, "mysql-m", "stopped")) == "proxy stopped"
    assert proxy_lane_of(ProxySample(0.0, "mysql-m", write="UP", read="UP")) == "write+read pools"
    assert proxy_lane_of(ProxySample(0.0, "mysql-m", write="DRAIN", read="DOWN")) == "drained"


def test_read_runs_and_marks_round_trip_and_add_reads_converts_the_clock() -> None:
    from replab.runs.timeline import Timeline
    from replab.workload.reads import NodeReads, ReadResult
    tl = _proxy_timeline()
    back = Timeline.from_dict(tl.to_dict())
    assert back.proxy_samples == tl.proxy_samples and back.read_runs == tl.read_runs
    assert back.read_marks == tl.read_marks and back.read_nodes() == ["mysql-s2"]
    live = Timeline()
    t0 = live._t0
    res = ReadResult(read_from="proxy", reads=3, ryw=1, monotonic=1,
                     per_node={"mysql-s1": NodeReads(2, 0, 1), "mysql-s2": NodeReads(1, 1, 0)},
                     marks=[(t0 + 2.5, "mysql-s2", "read-your-writes", 812.34),
                            (t0 + 2.0, "mysql-s1", "monotonic", None)],
                     spans={"mysql-s1": [t0 + 1.5, t0 + 2.0], "mysql-s2": [t0 + 2.5, t0 + 2.5]},
                     started=t0 + 1.0, stopped=t0 + 3.0)
    run = live.add_reads("round-robin", res)
    assert (run.start, run.end, run.reads, run.read_your_writes, run.monotonic) == (1.0, 3.0, 3, 1, 1)
    assert run.nodes["mysql-s1"] == {"reads": 2, "read_your_writes": 0, "monotonic": 1, "first": 1.5, "last": 2.0}
    assert [(m.t, m.node, m.kind, m.run, m.staleness_ms) for m in live.read_marks] == [
        (2.0, "mysql-s1", "monotonic", "round-robin", None),
        (2.5, "mysql-s2", "read-your-writes", "round-robin", 812.3)]


def test_report_draws_and_prints_proxy_and_read_lanes() -> None:
    from replab.runs.report import RunReport, summary
    from replab.runs.report_svg import story_svg
    tl = _proxy_timeline()
    rep = RunReport("x", "synthetic", timeline=tl)
    text = summary(rep)
    assert "  as the proxy routed to each node:\n    mysql-m   write pool 0.0-1.0 s; down 1.0-2.0 s\n" \
           "    mysql-s1  read pool 0.0-1.0 s; write pool 1.0-2.0 s\n" \
           "    mysql-s2  read pool 0.0-0.4 s; drained 0.4-0.6 s; read pool 0.6-2.0 s\n" in text
    assert "  reads and their violations:\n    lagging from mysql-s2 0.2-1.0 s: mysql-s2 4 reads: " \
           "3 read-your-writes, 1 monotonic at 0.2-0.9 s\n" \
           "    causal from mysql-s2 (causal) 1.1-1.8 s: mysql-s2 5 reads: " \
           "0 read-your-writes, 0 monotonic\n" in text
    assert rep.to_dict()["proxy_lanes"]["mysql-s1"] == [
        {"start": 0.0, "end": 1.0, "lane": "read pool", "why": ""},
        {"start": 1.0, "end": 2.0, "lane": "write pool", "why": ""}]
    svg = story_svg(tl)
    assert svg.count("class=proxy-lane ") == 3 and "id='proxy-lane-mysql-s1'" in svg
    assert svg.count("class=anomaly data-kind='read-your-writes'") == 3
    assert svg.count("class=anomaly data-kind='monotonic'") == 1
    assert "class=read-run data-run='causal' data-causal='true' data-reads='5' data-ryw='0' data-monotonic='0'" in svg


class _FakeRanges:
    """A connection to a table with the given ids, counting ``id > a AND id <= b`` as a server would; it
    records how many counts run at once across every connection (``shared``)."""

    def __init__(self, ids: list[int], shared: dict[str, int], kill_on: int | None = None) -> None:
        self.ids, self.shared, self.kill_on = ids, shared, kill_on
        self.statements: list[str] = []
        self._row: tuple = ()

    def thread_id(self) -> int:
        return 7

    def cursor(self):  # noqa: ANN201 - the fake is its own cursor
        return self

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def execute(self, sql: str, args: tuple = ()) -> None:
        import bisect

        import pymysql

        self.statements.append(sql % tuple(args) if args else sql)
        if sql.startswith("KILL QUERY"):
            return
        if sql.startswith("SELECT COUNT(*)"):
            if self.kill_on is not None and len(self.statements) >= self.kill_on:
                self.kill_on = None
                raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
            self.shared["now"] += 1
            self.shared["most"] = max(self.shared["most"], self.shared["now"])
            time.sleep(0.002)
            lo, hi = args
            self._row = (bisect.bisect_right(self.ids, hi) - bisect.bisect_right(self.ids, lo),)
            self.shared["now"] -= 1
        elif args:  # the next id above a gap
            i = bisect.bisect_right(self.ids, args[0])
            self._row = (self.ids[i] if i < len(self.ids) else None,)
        else:
            self._row = (self.ids[0] if self.ids else None,)

    def fetchone(self) -> tuple:
        return self._row


def test_base_count_sums_ranges_one_at_a_time_and_resumes_after_a_break() -> None:
    """The base count is a sum of exact ranges (a gap in the ids jumped over, not walked), never two ranges
    at once across nodes, and after a broken connection it ends the old statement and goes on where it was."""
    from replab.runs.timeline import BaseCount

    class Quick(BaseCount):
        FIRST_SPAN = 1_000
        CHUNK_S = 0.001
        SHARE = 0.5

    ids = list(range(5, 20_000)) + list(range(10**9, 10**9 + 3_000))  # a gap of a billion ids
    shared = {"now": 0, "most": 0}
    conns = [_FakeRanges(ids, shared), _FakeRanges(ids, shared), _FakeRanges(ids, shared, kill_on=4)]
    counts = []
    for c in conns:
        attempts = iter([c, c])
        counts.append(Quick("t", lambda attempts=attempts: next(attempts)))
    mark = 10**9 + 1_999
    for b in counts:
        b.start(mark)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(b.rows is None for b in counts):
        for b in counts:
            b.start(mark)  # the sampler's next ticks: never a second count while one runs
        time.sleep(0.01)
    want = 19_995 + 2_000
    assert [b.rows for b in counts] == [want, want, want]
    assert shared["most"] == 1
    assert all(5 < b.ranges < 60 for b in counts), [b.ranges for b in counts]
    for c in conns:
        full = [s for s in c.statements if s.startswith("SELECT COUNT(*)")]
        assert all(" WHERE id > " in s and " AND id <= " in s for s in full)
    broke = conns[2].statements
    assert "KILL QUERY 7" in broke  # the range that broke is ended before counting goes on
    after = broke[broke.index("KILL QUERY 7") + 1:]
    assert not any(s.startswith("SELECT MIN(id) FROM t") and "WHERE" not in s for s in after)  # resumed, not restarted
