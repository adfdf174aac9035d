"""The ledger and the feeder's pure parts, without servers."""

from __future__ import annotations

import threading

import pymysql
import pytest

from replab.core.errors import ConfigError, ReplabError
from replab.verify import ledger
from replab.verify.ledger import FAILED, OK, UNKNOWN, Run
from replab.workload.feed import FeedOptions, classify, insert_sql


def test_writer_keeps_a_contiguous_prefix_in_id_order(tmp_path):
    path = ledger.ledger_path(tmp_path, "events")
    w = ledger.LedgerWriter(path, first_id=10)
    w.record(12, 3, OK)  # 12..14 arrives before 10..11: nothing can be written yet
    w.flush()
    assert list(ledger.read_runs(path)) == []
    w.record(10, 2, OK)
    w.record(15, 1, UNKNOWN)
    w.record(17, 1, OK)  # 16 is still in flight
    w.flush()
    assert [(r.start, r.end, r.outcome) for r in ledger.read_runs(path)] == [(10, 15, OK), (15, 16, UNKNOWN)]
    w.record(16, 1, FAILED)
    w.close()
    runs = [(r.start, r.end, r.outcome) for r in ledger.read_runs(path)]
    assert runs == [(10, 15, OK), (15, 16, UNKNOWN), (16, 17, FAILED), (17, 18, OK)]
    s = ledger.summarize(ledger.read_runs(path))
    assert (s.acknowledged, s.failed, s.unknown, s.first, s.end) == (6, 1, 1, 10, 18)
    assert ledger.last_end(path) == 18
    assert ledger.unknown_ids(path) == [(15, 16)]


def test_writer_is_exclusive_and_ignores_a_torn_record(tmp_path):
    path = ledger.ledger_path(tmp_path)
    w = ledger.LedgerWriter(path, 1)
    with pytest.raises(ReplabError, match="another feed"):
        ledger.LedgerWriter(path, 1)
    w.record(1, 5, OK)
    w.close()
    with open(path, "ab") as fh:
        fh.write(b"\x01\x02\x03")  # a writer killed mid-append
    assert [len(r) for r in ledger.read_runs(path)] == [5]
    w2 = ledger.LedgerWriter(path, ledger.last_end(path))
    w2.record(6, 1, OK)
    w2.close()
    assert [(r.start, r.end) for r in ledger.read_runs(path)] == [(1, 6), (6, 7)]


def test_writer_from_many_threads(tmp_path):
    path = ledger.ledger_path(tmp_path)
    w = ledger.LedgerWriter(path, 1)
    ids = list(range(1, 20001))

    def work(part: list[int]) -> None:
        for i in part:
            w.record(i, 1, OK)

    threads = [threading.Thread(target=work, args=(ids[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    runs = list(ledger.read_runs(path))
    assert sum(len(r) for r in runs) == 20000 and runs[0].start == 1 and runs[-1].end == 20001
    assert all(a.end == b.start for a, b in zip(runs, runs[1:], strict=False))


def rows(*ids: int) -> list[tuple]:
    return [(i, *ledger.row_content(i)) for i in ids]


def test_diff_rows_missing_unexpected_altered_and_unknown():
    runs = [Run(1, 6, OK), Run(6, 8, UNKNOWN), Run(8, 9, FAILED), Run(20, 22, OK)]
    node = rows(1, 2, 4, 6, 7, 8, 15, 21)
    node[1] = (2, "some-event-2", 99, "some-descr-2")
    d = ledger.diff_rows(runs, node, primary_has={6})
    assert d.missing == [3, 5, 20]  # acknowledged, absent
    assert d.altered == [2]
    assert d.unexpected == [7, 8]  # unknown that the primary lacks; a failed write that exists
    assert (d.missing_count, d.unexpected_count, d.altered_count) == (3, 2, 1)
    # id 15 is in no run: not the ledger's business
    assert ledger.diff_rows([Run(1, 3, OK)], rows(1, 2)).clean
    # another client's row at the id of a failed write (duplicate key): not an unexpected feed row
    assert ledger.diff_rows([Run(8, 9, FAILED)], [(8, "someone else", 1, "x")]).clean


def test_diff_rows_ignores_a_missing_column():
    node = [(1, None, 1, "some-descr-1"), (2, None, 2, "some-descr-2")]
    assert ledger.diff_rows([Run(1, 3, OK)], node, present=(False, True, True)).clean
    assert ledger.diff_rows([Run(1, 3, OK)], node).altered == [1, 2]


def test_chunks_split_long_runs():
    groups = list(ledger.chunks([Run(0, 250, OK), Run(250, 260, FAILED)], size=100))
    assert [[(r.start, r.end) for r in g] for g in groups] == [[(0, 100)], [(100, 200)], [(200, 250), (250, 260)]]


def test_feed_options_validation_lists_every_problem():
    with pytest.raises(ConfigError) as exc:
        FeedOptions(rate=-1, rows=5, duration=2, threads=0, batch=0).validate()
    assert len(exc.value.errors) == 4
    FeedOptions(rate=0, rows=10).validate()
    with pytest.raises(ConfigError):
        FeedOptions(table="x; DROP").validate()


def test_insert_sql_and_outcome_classification():
    assert insert_sql("events", 7, 2) == ("INSERT INTO `events` (id, name, counter, description) VALUES "
                                          "(7,'some-event-7',7,'some-descr-7'),(8,'some-event-8',8,'some-descr-8')")
    assert classify(pymysql.err.IntegrityError(1062, "Duplicate entry")) == FAILED
    assert classify(pymysql.err.OperationalError(2013, "Lost connection")) == UNKNOWN
    assert classify(ConnectionResetError()) == UNKNOWN


def test_existence_check_uses_known_counts_before_querying():
    """content=False: a group whose row count the checker already knows (aligned chunks) needs no query;
    a count that does not match falls back to fetching the group's rows."""
    class Conn:
        def __init__(self, rows):
            self.rows, self.queries = rows, 0

        def cursor(self):
            conn = self

            class Cur:
                def __enter__(self):
                    return self

                def __exit__(self, *a):
                    return False

                def execute(self, sql, args):
                    conn.queries += 1
                    lo, hi = args
                    self.got = [r for r in conn.rows if lo <= r[0] < hi]

                def fetchone(self):
                    return (len(self.got), len(self.got))

                def fetchall(self):
                    return self.got

            return Cur()

    import tempfile
    from array import array
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.runs"
        path.write_bytes(array("q", [100, 300, OK]).tobytes())
        rows = [(i, *ledger.row_content(i)) for i in range(100, 300) if i != 250]
        full = Conn(rows)
        d = ledger.verify_node(full, path, content=False, known_count=lambda lo, hi: hi - lo)
        assert d.clean and full.queries == 0  # the checker's counts said every id is there
        d = ledger.verify_node(full, path, content=False, known_count=lambda lo, hi: None)
        assert d.missing == [250] and full.queries == 2  # unknown: count, then the rows
        d = ledger.verify_node(full, path, content=False, known_count=lambda lo, hi: hi - lo - 1)
        assert d.missing == [250]
        rows[0] = (100, "edited", -1, "x")  # the primary's own UPDATE: not the ledger's business
        assert ledger.verify_node(Conn(rows), path, content=False).missing == [250]
        assert ledger.verify_node(Conn(rows), path).altered == [100]
