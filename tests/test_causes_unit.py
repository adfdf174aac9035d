"""diagnose's pure pieces on recorded values: GTID states by source, reset/purged binary logs, failing DDL."""

from __future__ import annotations

from replab.causes import (
    Column,
    before,
    binlog_gap,
    ddl_change,
    errant_gtids,
    gap_sentences,
    gtid_sources,
    subtract,
)

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4a22bb11-0000-11e1-9e33-c80aa9429562"


def test_gtid_sources_both_flavors():
    assert gtid_sources("0-1-12,0-4-13,\n1-1-3") == {"0-1": [(1, 12)], "0-4": [(1, 13)], "1-1": [(1, 3)]}
    assert gtid_sources(f"{U1}:1-5:7,\n{U2}:3") == {U1: [(1, 5), (7, 7)], U2: [(3, 3)]}
    assert gtid_sources("") == {}
    assert subtract([(1, 10)], [(3, 4), (8, 20)]) == [(1, 2), (5, 7)]


def test_errant_only_for_gtids_the_primary_never_wrote():
    # the replica is ahead in the primary's own sequence (a reset primary): not errant
    assert errant_gtids("0-1-34", "0-1-3", "1") == []
    assert errant_gtids("0-1-34,0-3-2", "0-1-3", "1") == ["0-3-2"]
    # a former primary's GTIDs the current primary also holds are not errant
    assert errant_gtids("0-1-34,0-2-40", "0-1-34,0-2-40", "2") == []
    assert errant_gtids(f"{U1}:1-10,{U2}:1-3", f"{U1}:1-4", U1) == [f"{U2}:1-3"]
    assert errant_gtids(f"{U1}:1-10,{U2}:1-5", f"{U1}:1-10,{U2}:1-3", U1.upper()) == [f"{U2}:4-5"]


def test_binlog_gap_reset_and_purged():
    gap = binlog_gap("0-1-34", "0-1-3", "1", io_errno=0, io_error="", io_running=True, sql_running=True)
    assert gap is not None and (gap.kind, gap.replica_at, gap.primary_at, gap.lost, gap.stalled) == \
        ("reset", "0-1-34", "0-1-3", 3, True)
    summary, causes, nxt = gap_sentences(gap, "mysql-m", "mysql-s1")
    assert "silent stall" in summary and "0-1-34" in summary and "replab repair mysql-s1" in nxt[0]
    empty = binlog_gap("0-1-34", "", "1", io_errno=0, io_error="", io_running=True, sql_running=True)
    assert empty is not None and empty.primary_at == "" and empty.lost == 0
    assert "is empty" in gap_sentences(empty, "mysql-m", "mysql-s1")[1][0]
    err = ("Got fatal error 1236 from master when reading data from binary log: 'Could not find GTID state "
           "requested by slave in any binlog files. Probably the slave state is too old and required binlog files "
           "have been purged.'")
    purged = binlog_gap("0-1-24", "0-1-35", "1", io_errno=1236, io_error=err, io_running=False, sql_running=True)
    assert purged is not None and (purged.kind, purged.replica_at, purged.primary_at, purged.lost) == \
        ("purged", "0-1-24", "0-1-35", 11)
    assert binlog_gap("0-1-24", "0-1-35", "1", io_errno=0, io_error="", io_running=True, sql_running=True) is None
    mysql = binlog_gap(f"{U1}:1-40", f"{U1}:1-2", U1, io_errno=0, io_error="", io_running=True, sql_running=True)
    assert mysql is not None and mysql.kind == "reset" and mysql.primary_at == f"{U1}:1-2"


def test_ddl_change_and_schema_before_it():
    assert ddl_change("ALTER TABLE t DROP COLUMN b", "mydb").__dict__ == {"table": "mydb.t", "added": [],
                                                                          "dropped": ["b"]}
    c = ddl_change("alter table `mydb`.`t1054` add column x INT AFTER description, ADD INDEX (name), "
                   "drop `c`, ADD y DECIMAL(10,2)", None)
    assert c is not None and (c.table, c.added, c.dropped) == ("mydb.t1054", ["x", "y"], ["c"])
    assert ddl_change("INSERT INTO t VALUES (1)", "mydb") is None
    assert ddl_change("ALTER TABLE t ADD INDEX i (a)", "mydb") is None
    assert ddl_change("ALTER TABLE t DROP COLUMN b", None) is None  # no database to name the table
    cols = [Column("id", 1, "int", "int(11)", None), Column("name", 2, "varchar", "varchar(20)", 20),
            Column("x", 3, "int", "int(11)", None)]
    old = before(cols, c)
    assert [(col.name, col.position) for col in old] == [("id", 1), ("name", 2), ("c", 3)]
