"""diagnose's pure pieces on recorded values: GTID states by source, reset/purged binary logs, GTIDs issued
twice (binary log output of both tools, recorded on MariaDB 10.11 and MySQL 9.7), failing DDL."""

from __future__ import annotations

from replab.verify.causes import (
    Column,
    before,
    binlog_gap,
    ddl_change,
    errant_gtids,
    gap_sentences,
    gtid_sources,
    gtid_stamps,
    read_past_end,
    reissue_gap,
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
    gap = binlog_gap("0-1-34", "0-1-3", "1", io_errno=0, io_error="", io_running=True, sql_running=True,
                     read_at="mysql-bin.000001 at 9526")
    assert gap is not None and (gap.kind, gap.replica_at, gap.primary_at, gap.lost, gap.lost_gtids, gap.stalled) == \
        ("reset", "0-1-34", "0-1-3", 3, "0-1-1..3", True)
    summary, causes, nxt = gap_sentences(gap, "mysql-m", "mysql-s1")
    assert "silent stall" in summary and "0-1-34" in summary and "(RESET MASTER)" in summary
    assert "mysql-bin.000001 at 9526" in nxt[0] and "replab repair mysql-s1" in nxt[-1]
    empty = binlog_gap("0-1-34", "", "1", io_errno=0, io_error="", io_running=True, sql_running=True)
    assert empty is not None and empty.primary_at == "" and empty.lost == 0
    assert "is empty" in gap_sentences(empty, "mysql-m", "mysql-s1")[1][0]
    err = ("Got fatal error 1236 from master when reading data from binary log: 'Could not find GTID state "
           "requested by slave in any binlog files. Probably the slave state is too old and required binlog files "
           "have been purged.'")
    purged = binlog_gap("0-1-24", "0-1-35", "1", io_errno=1236, io_error=err, io_running=False, sql_running=True)
    assert purged is not None and (purged.kind, purged.replica_at, purged.primary_at, purged.lost, purged.exact) == \
        ("purged", "0-1-24", "0-1-35", 11, False)
    assert "up to 11 of its transaction(s) after 0-1-24" in gap_sentences(purged, "mysql-m", "mysql-s1")[1][0]
    assert binlog_gap("0-1-24", "0-1-35", "1", io_errno=0, io_error="", io_running=True, sql_running=True) is None
    # MySQL: a reset source (RESET BINARY LOGS AND GTIDS) holds uuid:1-2 while the replica applied uuid:1-40
    mysql = binlog_gap(f"{U1}:1-40", f"{U1}:1-2", U1, io_errno=0, io_error="", io_running=True, sql_running=True)
    assert mysql is not None and (mysql.kind, mysql.primary_at, mysql.lost_gtids) == ("reset", f"{U1}:1-2", f"{U1}:1-2")
    assert "(RESET BINARY LOGS AND GTIDS)" in gap_sentences(mysql, "mysql-m", "mysql-s1",
                                                           "RESET BINARY LOGS AND GTIDS")[0]


def test_read_position_past_the_end_of_a_reset_log():
    logs = [("mysql-bin.000001", 4000)]
    assert read_past_end("mysql-bin.000001", 106864, logs) == "mysql-bin.000001 ends at 4000"
    assert read_past_end("mysql-bin.000001", 3900, logs) == ""  # still inside: lag, not a reset
    assert read_past_end("mysql-bin.000007", 400, logs) == ("it has no mysql-bin.000007 any more; its logs now run "
                                                            "mysql-bin.000001..mysql-bin.000001")
    assert read_past_end("mysql-bin.000001", 400, [("mysql-bin.000003", 900)]) == ""  # older: not a reset
    assert read_past_end(None, None, logs) == "" and read_past_end("mysql-bin.000001", 9, []) == ""
    # the primary re-issued 1..400 already: the replica is not ahead, only its read position tells
    gap = binlog_gap("0-1-24", "0-1-400", "1", io_errno=0, io_error="", io_running=True, sql_running=True,
                     read_at="mysql-bin.000001 at 106864", past_end="mysql-bin.000001 ends at 4000")
    assert gap is not None and (gap.kind, gap.stalled, gap.ahead, gap.lost, gap.lost_gtids) == \
        ("reset", True, False, 24, "0-1-1..24")
    summary, causes, nxt = gap_sentences(gap, "mysql-m", "mysql-s1")
    assert summary.endswith("is no longer in it; IO and SQL threads still say Yes but nothing arrives (a silent stall)")
    assert causes[0].startswith("this replica's IO thread reads mysql-bin.000001 at 106864, beyond the end of "
                                "mysql-m's binary log (mysql-bin.000001 ends at 4000)")
    assert nxt[0].endswith("its read fails there and the IO thread reconnects by itself, it replicates on silently, "
                           "without the transactions numbered up to 0-1-24")
    mysql_next = gap_sentences(gap, "mysql-m", "mysql-s1", "RESET BINARY LOGS AND GTIDS", reconnects=False)[2][0]
    assert "the IO thread stops (error 1236, 'I/O error reading log event'); started again, it replicates on " \
           "silently" in mysql_next
    # a stopped IO thread's position is an old one: no evidence
    assert binlog_gap("0-1-24", "0-1-400", "1", io_errno=0, io_error="", io_running=False, sql_running=True,
                      past_end="mysql-bin.000001 ends at 4000") is None


def test_binlog_gap_mysql_purged_by_gtid_purged():
    # MySQL 9.7, recorded: the replica stopped at uuid:1-24, the source purged its logs up to uuid:35
    err = ("Got fatal error 1236 from source when reading data from binary log: 'Cannot replicate because the "
           "source purged required binary logs. Replicate the missing transactions from elsewhere, or provision a "
           f"new replica from backup. Consider increasing the source's binary log expiration period. The GTID set "
           f"sent by the replica is '{U1}:1-24', and the missing transactions are '{U1}:25-35''")
    for errno, error, io in ((13114, err, False), (0, "", True)):  # the evidence is gtid_purged, not the message
        gap = binlog_gap(f"{U1}:1-24", f"{U1}:1-40", U1, io_errno=errno, io_error=error, io_running=io,
                         sql_running=True, primary_purged=f"{U1}:1-35")
        assert gap is not None and (gap.kind, gap.replica_at, gap.lost, gap.lost_gtids, gap.exact) == \
            ("purged", f"{U1}:1-24", 11, f"{U1}:25-35", True)
    assert gap_sentences(gap, "mysql-m", "mysql-s1")[1][0] == (
        f"mysql-m is at {U1}:1-40; 11 of its transaction(s) ({U1}:25-35) after {U1}:1-24 were in the purged logs "
        "and can never reach this replica by replication")
    # what the replica already retrieved into its relay log is not lost; a purged set it holds is no gap
    assert binlog_gap(f"{U1}:1-24", f"{U1}:1-40", U1, io_errno=0, io_error="", io_running=True, sql_running=True,
                      primary_purged=f"{U1}:1-35", replica_retrieved=f"{U1}:1-38") is None
    assert binlog_gap(f"{U1}:1-40", f"{U1}:1-40", U1, io_errno=0, io_error="", io_running=True, sql_running=True,
                      primary_purged=f"{U1}:1-35") is None


# mysqlbinlog 9.7 and mariadb-binlog 10.11 --base64-output=decode-rows, as printed (tabs included)
MYSQL_LOG = [
    "# at 158\n",
    "#261124  3:42:10 server id 1  end_log_pos 237 CRC32 0xb177b73f \tGTID\tlast_committed=0\tsequence_number=1"
    "\trbr_only=yes\toriginal_committed_timestamp=1795491730867150\timmediate_commit_timestamp=1795491730867150"
    "\ttransaction_length=305\n",
    "/*!80001 SET @@session.original_commit_timestamp=1795491730867150*//*!*/;\n",
    f"SET @@SESSION.GTID_NEXT= '{U1}:1'/*!*/;\n",
    "#261124  3:42:11 server id 1  end_log_pos 542 CRC32 0xf5477950 \tGTID\tlast_committed=1\tsequence_number=2"
    "\trbr_only=yes\toriginal_committed_timestamp=1795491731173783\timmediate_commit_timestamp=1795491731173783"
    "\ttransaction_length=305\n",
    f"SET @@SESSION.GTID_NEXT= '{U1.upper()}:2'/*!*/;\n",
    "#261124  3:42:10 server id 1  end_log_pos 198 CRC32 0x107b871c \tPrevious-GTIDs\n",
    "SET @@SESSION.GTID_NEXT= 'AUTOMATIC' /* added by mysqlbinlog */ /*!*/;\n",
]
MARIADB_LOG = [  # a transaction whose COMMIT came a second after its last statement: the GTID event's time is not
    # kept on a replica (it takes the last statement's), the first event's is
    "#261124  4:17:29 server id 1  end_log_pos 2858 CRC32 0xf263d223 \tGTID 0-1-14 trans\n",
    "/*M!100001 SET @@session.gtid_seq_no=14*//*!*/;\n",
    "START TRANSACTION\n",
    "/*!*/;\n",
    "# at 2858\n",
    "#261124  4:17:26 server id 1  end_log_pos 2923 CRC32 0xf58a86e2 \tAnnotate_rows:\n",
    "#Q> INSERT INTO events (name) VALUES ('long1')\n",
    "#261124  4:17:26 server id 1  end_log_pos 2979 CRC32 0xafa7776c \tTable_map: `mydb`.`events` mapped to "
    "number 22\n",
    "#261124  4:17:29 server id 1  end_log_pos 3221 CRC32 0x36268449 \tXid = 56\n",
    "#261124  4:17:31 server id 1  end_log_pos 3513 CRC32 0x5854e6df \tGTID 0-1-16 ddl\n",
    "/*M!100001 SET @@session.gtid_seq_no=16*//*!*/;\n",
    "#261124  4:17:31 server id 1  end_log_pos 3625 CRC32 0xb4efb1ce \tQuery\tthread_id=11\texec_time=0\t"
    "error_code=0\n",
    "#261124  4:17:32 server id 1  end_log_pos 3731 CRC32 0x01020304 \tGtid list [0-1-16]\n",
]
# the same two transactions in a replica's binary log (recorded): only the GTID and Xid events' times differ
MARIADB_REPLICA_LOG = [line.replace("4:17:29", "4:17:28") for line in MARIADB_LOG]


def test_gtid_stamps_of_both_tools():
    stamps, whole = gtid_stamps(MYSQL_LOG, limit=10)
    assert whole and stamps == {(U1, 1): "1795491730867150", (U1, 2): "1795491731173783"}
    assert gtid_stamps(MYSQL_LOG, limit=1) == ({(U1, 1): "1795491730867150"}, False)
    stamps, whole = gtid_stamps(MARIADB_LOG, limit=10)
    assert whole and stamps == {("0-1", 14): "261124  4:17:26", ("0-1", 16): "261124  4:17:31"}
    assert gtid_stamps(MARIADB_REPLICA_LOG, limit=10)[0] == stamps  # one transaction, copied: not re-issued
    # MySQL without original_committed_timestamp (a source older than 8.0): the first event's time as well
    old = [line.replace("\toriginal_committed_timestamp=1795491730867150", "") for line in MYSQL_LOG[:4]]
    old.insert(4, "#261124  3:42:10 server id 1  end_log_pos 308 CRC32 0x85267d9d \tQuery\tthread_id=21\n")
    assert gtid_stamps(old, limit=10) == ({(U1, 1): "261124  3:42:10"}, True)


def test_reissued_gtids_are_lost_not_errant():
    # the primary re-issued 1-34 after a reset; 35-40 are the same transactions on both
    primary = {(U1, n): f"new{n}" if n <= 34 else f"t{n}" for n in range(1, 41)}
    replica = {(U1, n): f"old{n}" if n <= 34 else f"t{n}" for n in range(1, 41)}
    replica[(U2, 1)] = "errant"  # another source: not the primary's reset
    gap = reissue_gap(primary, replica, U1, f"{U1}:1-40,{U2}:1", f"{U1}:1-40", complete=True)
    assert gap is not None and (gap.kind, gap.lost, gap.lost_gtids, gap.exact) == ("reissued", 34, f"{U1}:1-34", True)
    summary, causes, nxt = gap_sentences(gap, "mysql-m", "mysql-s1", "RESET BINARY LOGS AND GTIDS")
    assert "silent divergence" in summary and f"history {U1}:1-34 is not in it" in summary
    assert causes[1].startswith(f"lost for this replica: 34 transaction(s) of mysql-m ({U1}:1-34)")
    assert reissue_gap(primary, replica, U1, "", "", complete=False).lost_gtids == f"{U1}:1-34"
    assert "at least 34" in gap_sentences(reissue_gap(primary, replica, U1, "", "", complete=False),
                                          "mysql-m", "mysql-s1")[1][1]
    same = dict(primary)
    assert reissue_gap(primary, same, U1, "", "", complete=True) is None
    maria = reissue_gap({("0-1", 3): "a", ("0-1", 4): "b", ("0-1", 9): "c"},
                        {("0-1", 3): "x", ("0-1", 4): "y", ("0-1", 9): "z", ("0-3", 1): "q"}, "1", "0-1-9", "0-1-9",
                        complete=True)
    assert maria is not None and maria.lost_gtids == "0-1-3..4,0-1-9" and maria.lost == 3


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
