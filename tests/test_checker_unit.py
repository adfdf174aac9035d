"""The checker's verdict on recorded facts (no servers)."""

from __future__ import annotations

from replab.verify.checker import Facts, NodeFacts, RowDiff, TableFacts, diff_schema, judge
from replab.verify.rowhash import diff_row_hashes, differing_chunks

COLS = [("id", "int(11)", "NO"), ("name", "varchar(64)", "YES"), ("counter", "int(11)", "YES"),
        ("description", "varchar(255)", "YES")]
KEYS = [("PRIMARY", 1, "id", 0)]


def table(cols=COLS, keys=KEYS, rows=7010, checksum="00000000001a2b3c") -> TableFacts:
    return TableFacts(list(cols), list(keys), rows, checksum, [c[0] for c in cols])


def facts(**changes) -> Facts:
    nodes = [NodeFacts("mysql-m", "primary", True, tables={"events": table()})]
    for name in ("mysql-s1", "mysql-s2"):
        nodes.append(NodeFacts(name, "replica", True, io_running=True, sql_running=True, last_errno=0, lag_ms=3,
                               caught_up=True, tables={"events": table()}))
    f = Facts("mysql-m", "mydb", "0-1-100", 30.0, ["events"], nodes,
              ledger={"acknowledged": 7010, "failed": 0, "unknown": 0},
              ledger_diffs={n.name: {"missing": [], "unexpected": [], "missing_count": 0,
                                     "unexpected_count": 0} for n in nodes})
    for k, v in changes.items():
        setattr(f, k, v)
    return f


def test_consistent_facts():
    report = judge(facts())
    assert report.consistent and report.problems == []
    text = report.render()
    assert text.startswith("CONSISTENT") and "7010" in text
    d = report.to_dict()
    assert d["consistent"] is True
    assert d["ledger"] == {"acknowledged": 7010, "failed": 0, "unknown": 0, "missing": {"mysql-m": 0, "mysql-s1": 0,
                           "mysql-s2": 0}, "unexpected": {"mysql-m": 0, "mysql-s1": 0, "mysql-s2": 0}}
    assert d["nodes"][1]["tables"] == {"events": {"rows": 7010, "checksum": "00000000001a2b3c",
                                                  "columns": ["id", "name", "counter", "description"]}}
    assert "mysql-s1 (replica, lag 3 ms): 7010 rows, checksum 00000000001a2b3c" in text
    assert {"name", "reachable", "tables"} <= set(d["nodes"][0])


def test_row_diffs_and_ledger_become_problems_with_first_worst_last():
    f = facts(row_diffs=[RowDiff("mysql-s1", "events", missing=[5]), RowDiff("mysql-s2", "events",
                                                                              missing=[7, 8, 9], changed=[77])])
    f.ledger_diffs["mysql-s2"].update(missing=[7, 8, 9, 4000], missing_count=4)
    report = judge(f)
    assert not report.consistent
    kinds = [(p.node, p.kind, p.rows, p.source) for p in report.problems]
    # the rows the comparison and the ledger both name are one problem; the ledger keeps only its own 4000
    assert kinds == [("mysql-s1", "missing_rows", [5], "checksum"), ("mysql-s2", "missing_rows", [7, 8, 9], "checksum"),
                     ("mysql-s2", "missing_rows", [4000], "ledger"), ("mysql-s2", "changed_rows", [77], "checksum")]
    lines = report.render().splitlines()
    assert lines[0].startswith("INCONSISTENT: 4 problem(s): missing_rows, changed_rows")
    assert lines[1] == "missing_rows: 3 problem(s), 5 row(s)"
    assert lines[2].startswith("  first: mysql-s1 events") and "ids 5" in lines[2]
    assert lines[3] == ("  worst: mysql-s2 events: 3 row(s) missing (on the primary, not here); the ledger agrees on 3 "
                        "of them (ids 7, 8, 9)")
    assert lines[4] == "  last: mysql-s2 events: ledger: 1 acknowledged write(s) missing besides those (ids 4000)"
    d = report.to_dict()
    assert d["ledger"]["missing"]["mysql-s2"] == 4
    assert set(d["problems"][0]) >= {"node", "kind", "table", "detail", "rows"}


def test_ledger_naming_the_same_rows_is_not_a_second_problem():
    f = facts(row_diffs=[RowDiff("mysql-s2", "events", missing=[1, 2, 3, 4, 5])])
    f.ledger_diffs["mysql-s2"].update(missing=[1, 2, 3, 4, 5], missing_count=5)
    lines = judge(f).render().splitlines()
    assert lines[:3] == ["INCONSISTENT: 1 problem(s): missing_rows", "missing_rows: 1 problem(s), 5 row(s)",
                         "  first: mysql-s2 events: 5 row(s) missing (on the primary, not here); the ledger agrees "
                         "(ids 1, 2, 3, 4, 5)"]
    # more ids than were kept: the overlap cannot be told, so the larger count stands alone
    f = facts(row_diffs=[RowDiff("mysql-s2", "events", missing=list(range(1, 1501)))])
    f.ledger_diffs["mysql-s2"].update(missing=list(range(1, 1001)), missing_count=1600)
    report = judge(f)
    assert [(p.source, p.row_count) for p in report.problems] == [("checksum", 1600)]
    assert "the ledger finds 1600 acknowledged write(s) missing" in report.problems[0].detail


def test_replication_and_unreachable():
    f = facts()
    s1 = f.nodes[1]
    s1.sql_running, s1.last_errno, s1.last_error, s1.caught_up = False, 1677, "Column 1 of table cannot be converted", \
        False
    f.nodes[2] = NodeFacts("mysql-s2", "replica", False, error="stopped")
    report = judge(f)
    got = [(p.node, p.kind) for p in report.problems]
    assert got == [("mysql-s1", "replication"), ("mysql-s1", "replication"), ("mysql-s2", "unreachable")]
    assert "error 1677" in report.problems[0].detail and "not compared" in report.problems[1].detail


def test_schema_diff():
    assert diff_schema(table(), table()) == []
    no_desc = table(cols=COLS[:3])
    assert diff_schema(table(), no_desc) == ["column description is missing (varchar(255) on the primary)"]
    retyped = table(cols=[COLS[0], ("name", "varchar(32)", "YES"), *COLS[2:]])
    assert diff_schema(table(), retyped) == ["column name is varchar(32) NULL, primary has varchar(64) NULL"]
    reordered = table(cols=[COLS[0], COLS[2], COLS[1], COLS[3]])
    assert any("column order differs" in d for d in diff_schema(table(), reordered))
    extra_key = table(keys=[*KEYS, ("by_name", 1, "name", 0)])
    assert diff_schema(table(), extra_key) == ["key by_name UNIQUE (name) exists only on this node"]
    assert diff_schema(table(), None) == ["table is missing on this node"]
    report = judge(facts())
    report.facts.nodes[1].tables["events"] = no_desc
    problems = judge(report.facts).problems
    assert [(p.node, p.kind, p.table) for p in problems] == [("mysql-s1", "schema", "events")]


def test_row_hash_and_chunk_diffs():
    assert diff_row_hashes({1: 10, 2: 20, 3: 30}, {1: 10, 2: 21, 4: 40}) == ([3], [4], [2])
    assert differing_chunks({0: (10, 5), 1: (10, 6)}, {0: (10, 5), 1: (9, 6), 2: (1, 1)}) == [1, 2]


def test_summary_shows_each_nodes_own_count_and_shared_columns():
    f = facts(row_diffs=[RowDiff("mysql-s1", "events", extra=[100000])])
    f.nodes[1].tables["events"].rows = 7011  # its own count: the extra row included
    shared = ["id", "counter", "description"]
    for n in f.nodes:
        n.tables["events"].compared_columns = shared
    f.nodes[2].tables["events"] = table(cols=[c for c in COLS if c[0] != "name"])
    f.nodes[2].tables["events"].compared_columns = shared
    text = judge(f).render()
    assert "mysql-m (primary): 7010 rows" in text and "mysql-s1 (replica, lag 3 ms): 7011 rows" in text
    assert ("events checksums cover the columns every node shares: id, counter, description (not name)" in text)


def test_stopped_sql_thread_is_not_told_to_wait_longer():
    f = facts()
    s1 = f.nodes[1]
    s1.sql_running, s1.last_errno, s1.last_error, s1.caught_up = False, 1091, "Can't DROP COLUMN `x`", False
    s1.tables["events"].checksum = None
    s1.tables["events"].rows = 600
    s2 = f.nodes[2]
    s2.caught_up, s2.lag_ms = False, 4000
    report = judge(f)
    details = {p.node: p.detail for p in report.problems if "not compared" in p.detail}
    assert details["mysql-s1"].startswith("its SQL thread stopped on error 1091: Can't DROP COLUMN `x`; it cannot "
                                          "catch up") and "--wait" not in details["mysql-s1"]
    assert "a longer --wait may let it catch up" in details["mysql-s2"]
    assert "mysql-s1 (replica, lag 3 ms): 600 rows (not compared)" in report.render()
    s1.sql_running, s1.last_errno = False, 0
    assert "stopped by hand" in judge(f).problems[1].detail
