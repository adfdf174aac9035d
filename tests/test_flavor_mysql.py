"""The MySQL dialect (5.7, 8.0, 8.4) next to MariaDB, on recorded server output: no server needed."""

from __future__ import annotations

import re

import pytest

from replab.servers.flavor import (
    COORDINATOR_ERROR,
    Flavor,
    MariaDBFlavor,
    MySQLFlavor,
    flavor_from_version_string,
    merge_worker_errors,
)

GTID_UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"

# SHOW SLAVE STATUS on MySQL 5.7.44, multi-threaded applier (slave_parallel_workers=4), a worker failed
# because the column was dropped on this replica only (trimmed to the columns replab reads).
MYSQL57_MTA_BROKEN = {
    "Slave_IO_State": "Waiting for master to send event", "Master_Host": "mysql-m", "Master_User": "replab_repl",
    "Master_Port": 3306, "Connect_Retry": 1, "Master_Log_File": "mysql-bin.000003",
    "Read_Master_Log_Pos": 52311, "Relay_Log_File": "relay-bin.000002", "Relay_Log_Pos": 4121,
    "Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Last_Errno": 1054,
    "Last_Error": f"{COORDINATOR_ERROR}. The most recent failure being: Worker 1 failed executing transaction "
                  f"'{GTID_UUID}:1042' at master log mysql-bin.000003, end_log_pos 48877. See error log and/or "
                  "performance_schema.replication_applier_status_by_worker table for more details about this "
                  "failure or others, if any.",
    "Skip_Counter": 0, "Exec_Master_Log_Pos": 47901, "Seconds_Behind_Master": None,
    "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 1054,
    "Last_SQL_Error": f"{COORDINATOR_ERROR}. The most recent failure being: Worker 1 failed executing transaction "
                      f"'{GTID_UUID}:1042' at master log mysql-bin.000003, end_log_pos 48877. See error log and/or "
                      "performance_schema.replication_applier_status_by_worker table for more details about this "
                      "failure or others, if any.",
    "Master_Server_Id": 1, "Master_UUID": GTID_UUID, "SQL_Delay": 0,
    "Slave_SQL_Running_State": "", "Retrieved_Gtid_Set": f"{GTID_UUID}:1-1180",
    "Executed_Gtid_Set": f"{GTID_UUID}:1-1041", "Auto_Position": 1,
}
# performance_schema.replication_applier_status_by_worker for that failure (replab's query aliases).
MYSQL57_WORKERS = [
    {"worker_id": 1, "errno": 1054,
     "message": f"Worker 1 failed executing transaction '{GTID_UUID}:1042' at master log mysql-bin.000003, "
                "end_log_pos 48877; Error 'Unknown column 'description' in 'field list'' on query. "
                "Default database: 'mydb'. Query: 'INSERT INTO events (name, counter, description) VALUES "
                "('some-event-1042', 1042, 'some-descr-1042')'"},
]

# SHOW REPLICA STATUS on MySQL 8.0.36, healthy, caught up.
MYSQL80_HEALTHY = {
    "Replica_IO_State": "Waiting for source to send event", "Source_Host": "127.0.0.1", "Source_User": "replab_repl",
    "Source_Port": 40001, "Connect_Retry": 1, "Source_Log_File": "mysql-bin.000002", "Read_Source_Log_Pos": 9512,
    "Relay_Log_File": "relay-bin.000002", "Relay_Log_Pos": 9728, "Replica_IO_Running": "Yes",
    "Replica_SQL_Running": "Yes", "Last_Errno": 0, "Last_Error": "", "Exec_Source_Log_Pos": 9512,
    "Seconds_Behind_Source": 0, "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 0,
    "Last_SQL_Error": "", "Source_Server_Id": 1, "Source_UUID": GTID_UUID,
    "Replica_SQL_Running_State": "Replica has read all relay log; waiting for more updates",
    "Retrieved_Gtid_Set": f"{GTID_UUID}:1-37", "Executed_Gtid_Set": f"{GTID_UUID}:1-37", "Auto_Position": 1,
}

# SHOW REPLICA STATUS on MySQL 8.0.36 with replica_parallel_workers=4 (the 8.0.27+ default): a worker hit a
# duplicate key; the coordinator message names the GTID and "source log".
MYSQL80_MTA_BROKEN = {
    **MYSQL80_HEALTHY,
    "Replica_SQL_Running": "No", "Last_Errno": 1062, "Last_SQL_Errno": 1062, "Seconds_Behind_Source": None,
    "Replica_SQL_Running_State": "",
    "Last_Error": f"{COORDINATOR_ERROR}. The most recent failure being: Worker 2 failed executing transaction "
                  f"'{GTID_UUID}:38' at source log mysql-bin.000002, end_log_pos 9841. See error log and/or "
                  "performance_schema.replication_applier_status_by_worker table for more details about this "
                  "failure or others, if any.",
}
MYSQL80_MTA_BROKEN["Last_SQL_Error"] = MYSQL80_MTA_BROKEN["Last_Error"]
MYSQL80_WORKERS = [
    {"worker_id": 2, "errno": 1062,
     "message": f"Worker 2 failed executing transaction '{GTID_UUID}:38' at source log mysql-bin.000002, "
                "end_log_pos 9841; Could not execute Write_rows event on table mydb.events; Duplicate entry '38' "
                "for key 'events.PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's "
                "source log mysql-bin.000002, end_log_pos 9841"},
]

# SHOW REPLICA STATUS on MySQL 8.4.3: the IO thread cannot authenticate (wrong replication password).
MYSQL84_IO_ERROR = {
    **MYSQL80_HEALTHY,
    "Replica_IO_State": "Connecting to source", "Replica_IO_Running": "Connecting", "Last_IO_Errno": 1045,
    "Last_IO_Error": "Error connecting to source 'replab_repl@127.0.0.1:40001'. This was attempt 3/86400, with a "
                     "delay of 1 seconds between attempts. Message: Access denied for user "
                     "'replab_repl'@'localhost' (using password: YES)",
    "Seconds_Behind_Source": None, "Retrieved_Gtid_Set": "", "Executed_Gtid_Set": "",
}

VERSIONS = {
    "5.7": "mysqld  Ver 5.7.44-log for Linux on x86_64 (MySQL Community Server (GPL))",
    "8.0.21": "/usr/sbin/mysqld  Ver 8.0.21 for Linux on x86_64 (MySQL Community Server - GPL)",
    "8.0.22": "/usr/sbin/mysqld  Ver 8.0.22 for Linux on x86_64 (MySQL Community Server - GPL)",
    "8.0": "/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)",
    "8.4": "/usr/sbin/mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)",
}
MARIADB = {
    "10.11": "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)",
    "11.4": "mariadbd  Ver 11.4.4-MariaDB-ubu2404 for debian-linux-gnu on x86_64 (mariadb.org binary distribution)",
}

# Words that only one dialect understands; a statement for the other must never contain them.
MYSQL_ONLY = re.compile(r"SOURCE_AUTO_POSITION|MASTER_AUTO_POSITION|WAIT_FOR_EXECUTED_GTID_SET|gtid_executed|"
                        r"gtid_mode|enforce_gtid_consistency|REPLICA|SOURCE_|BINARY LOG|mysql\.user|"
                        r"performance_schema|--initialize|--source-data|--set-gtid-purged|PUBLIC_KEY|mysqlx")
MARIADB_ONLY = re.compile(r"MASTER_USE_GTID|MASTER_GTID_WAIT|gtid_current_pos|gtid_slave_pos|gtid_strict_mode|"
                          r"gtid_pos_auto_engines|global_priv|install-db|--gtid\b|auth-root")
MASTER_WORDS = re.compile(r"\bMASTER\b|\bSLAVE\b(?! ON)|MASTER_")


def all_output(f: Flavor) -> list[str]:
    """Every statement, option and argument the flavor can produce."""
    opts = f.adapt_server_options({"log_slave_updates": "1", "slave_net_timeout": "10",
                                   "innodb_log_file_size": "64M", "server_id": "2"})
    return [
        f.show_replica_status(), f.change_source("10.0.0.5", 3306), f.start_replica(), f.stop_replica(),
        f.reset_replica(), f.executed_gtid(), f.wait_for_gtid(), f.show_source_status(),
        *f.reset_gtid_state(), f.root_accounts_query(), f.worker_errors_query() or "",
        " ".join(f"{k}={v}" for k, v in opts.items()), " ".join(f.init_datadir_argv("/srv/bin/server", "/d")),
        " ".join(f.snapshot_args(["mydb"])), f.server_section(), " ".join(f.gtid_config()),
    ]


@pytest.mark.parametrize("label", list(VERSIONS))
def test_mysql_is_never_sent_mariadb_syntax(label):
    f = flavor_from_version_string(VERSIONS[label])
    assert isinstance(f, MySQLFlavor)
    for text in all_output(f):
        assert not MARIADB_ONLY.search(text), (label, text)


@pytest.mark.parametrize("label", list(MARIADB))
def test_mariadb_is_never_sent_mysql_syntax(label):
    f = flavor_from_version_string(MARIADB[label])
    assert isinstance(f, MariaDBFlavor)
    for text in all_output(f):
        assert not MYSQL_ONLY.search(text), (label, text)


def test_mysql_84_has_no_master_or_slave_statements():
    f = flavor_from_version_string(VERSIONS["8.4"])
    statements = [s for s in all_output(f) if not s.startswith("mysqld")]
    for text in statements:
        assert not MASTER_WORDS.search(text.replace("--source-data", "")), text
    assert f.show_source_status() == "SHOW BINARY LOG STATUS"
    assert f.reset_gtid_state() == ["RESET BINARY LOGS AND GTIDS"]
    assert "--source-data=2" in f.snapshot_args()
    opts = f.adapt_server_options({"log_slave_updates": "1", "slave_net_timeout": "10"})
    assert opts["log_replica_updates"] == "1" and opts["replica_net_timeout"] == "10"
    assert "log_slave_updates" not in opts


def test_syntax_switches_at_the_documented_versions():
    f57, f21, f22, f80 = (flavor_from_version_string(VERSIONS[k]) for k in ("5.7", "8.0.21", "8.0.22", "8.0"))
    assert f57.show_replica_status() == f21.show_replica_status() == "SHOW SLAVE STATUS"
    assert f22.show_replica_status() == "SHOW REPLICA STATUS" and f22.start_replica() == "START REPLICA"
    assert f22.change_source("h", 1).startswith("CHANGE MASTER TO")  # the SOURCE form arrived in 8.0.23
    assert f80.change_source("h", 1).startswith("CHANGE REPLICATION SOURCE TO")
    assert "SOURCE_AUTO_POSITION=1" in f80.change_source("h", 1)
    assert "MASTER_AUTO_POSITION=1" in f57.change_source("h", 1)
    assert "PUBLIC_KEY" not in f57.change_source("h", 1)  # 5.7 has no caching_sha2_password
    assert f57.show_source_status() == f80.show_source_status() == "SHOW MASTER STATUS"
    assert "--master-data=2" in f57.snapshot_args() and "--source-data=2" in f80.snapshot_args()
    # the dump tool's own version decides, when known
    assert "--master-data=2" in f80.snapshot_args(tool_version=(8, 0, 25))
    assert "--set-gtid-purged=ON" in f57.snapshot_args(["mydb"])
    assert f57.snapshot_args(["mydb"])[-2:] == ["--databases", "mydb"]
    assert "mysqlx" not in f57.adapt_server_options({}) and f80.adapt_server_options({})["mysqlx"] == "0"
    assert f57.adapt_server_options({"log_slave_updates": "1"})["log_slave_updates"] == "1"
    assert f80.adapt_server_options({"innodb_log_file_size": "64M"}) == {
        "innodb_redo_log_capacity": "64M", "mysqlx": "0", "gtid_mode": "ON", "enforce_gtid_consistency": "ON"}


def test_mysql_initializes_insecure_and_waits_on_gtid_sets():
    f = flavor_from_version_string(VERSIONS["8.0"])
    argv = f.init_datadir_argv("/usr/sbin/mysqld", "/tmp/d")
    assert argv[:3] == ["/usr/sbin/mysqld", "--no-defaults", "--initialize-insecure"]
    assert "--innodb-redo-log-capacity=64M" in argv
    assert "--innodb-redo-log-capacity=64M" not in flavor_from_version_string(VERSIONS["5.7"]).init_datadir_argv(
        "/m", "/d")
    assert f.gtid_config() == {"gtid_mode": "ON", "enforce_gtid_consistency": "ON"}
    assert f.wait_for_gtid() == "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"
    assert f.wait_ok(0) and not f.wait_ok(1) and not f.wait_ok(None)
    maria = flavor_from_version_string(MARIADB["11.4"])
    assert maria.wait_ok(0) and not maria.wait_ok(-1)
    assert maria.init_datadir_argv("/usr/sbin/mariadbd", "/d", "/usr/bin/mariadb-install-db")[0].endswith(
        "mariadb-install-db")
    assert maria.snapshot_tools()[0] == "mariadb-dump" and f.snapshot_tools() == ["mysqldump"]


def test_mysql57_mta_error_is_replaced_by_the_workers_error():
    f = flavor_from_version_string(VERSIONS["5.7"])
    st = f.normalize_status(MYSQL57_MTA_BROKEN)
    assert st is not None and st.io_running and not st.sql_running
    assert st.worker_error_pending and st.last_sql_errno == 1054
    assert st.source_host == "mysql-m" and st.source_port == 3306 and st.seconds_behind is None
    assert st.using_gtid == "auto_position" and st.gtid_io_pos == f"{GTID_UUID}:1-1180"
    merged = merge_worker_errors(st, MYSQL57_WORKERS)
    assert not merged.worker_error_pending
    assert merged.last_errno == merged.last_sql_errno == 1054
    assert "Unknown column 'description'" in merged.last_error and merged.last_error.startswith("worker 1:")
    assert "Coordinator" not in merged.last_sql_error


def test_mysql80_status_columns_and_mta_error():
    f = flavor_from_version_string(VERSIONS["8.0"])
    ok = f.normalize_status(MYSQL80_HEALTHY)
    assert ok is not None and ok.io_running and ok.sql_running and ok.seconds_behind == 0
    assert ok.last_errno == 0 and not ok.worker_error_pending and ok.source_port == 40001
    broken = f.normalize_status(MYSQL80_MTA_BROKEN)
    assert broken is not None and broken.worker_error_pending and not broken.sql_running
    query = f.worker_errors_query()
    assert query and "replication_applier_status_by_worker" in query and "LAST_ERROR_NUMBER <> 0" in query
    merged = merge_worker_errors(broken, MYSQL80_WORKERS)
    assert merged.last_errno == 1062 and "Duplicate entry '38'" in merged.last_error
    # no worker rows (e.g. performance_schema off): the coordinator text stays, nothing is invented
    assert merge_worker_errors(broken, []) == broken


def test_mysql84_io_error_is_reported():
    st = flavor_from_version_string(VERSIONS["8.4"]).normalize_status(MYSQL84_IO_ERROR)
    assert st is not None and st.io_state == "Connecting" and not st.io_running and st.sql_running
    assert st.last_io_errno == 1045 and st.last_errno == 1045 and "Access denied" in st.last_error
    assert not st.worker_error_pending


def test_mariadb_never_asks_for_worker_table():
    maria = MariaDBFlavor()
    assert maria.worker_errors_query() is None
    assert "--gtid" in maria.snapshot_args() and "--master-data=2" in maria.snapshot_args()
    assert maria.reset_gtid_state() == ["RESET MASTER", "SET GLOBAL gtid_slave_pos=''"]


def test_snapshot_positions_of_both_dump_tools():
    """The GTID position a dump records, as each tool writes it (MySQL: one source or several, over lines)."""
    from replab.faults.repair import _statements_naming_gtids

    u1, u2 = "a2792502-e7a4-11f1-a87e-02fc00000001", "b1792502-e7a4-11f1-a87e-02fc00000002"
    mysql_dump = ["-- MySQL dump 10.13\n", "SET @@SESSION.SQL_LOG_BIN= 0;\n", "\n",
                  "--\n", "-- GTID state at the beginning of the backup \n", "--\n", "\n",
                  f"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{u1}:1-768,\n", f"{u2}:1-10';\n",
                  "CREATE DATABASE mydb;\n"]
    f = MySQLFlavor("9.7.4", (9, 7, 4))
    found = [f.snapshot_position(s) for s in _statements_naming_gtids(mysql_dump)]
    assert [g for g in found if g] == [f"{u1}:1-768,{u2}:1-10"]
    single = [f"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{u1}:1-5';\n"]
    assert [f.snapshot_position(s) for s in _statements_naming_gtids(single)] == [f"{u1}:1-5"]
    maria = MariaDBFlavor()
    maria_dump = ["-- MariaDB dump\n", "CREATE DATABASE mydb;\n",
                  "-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=345;\n",
                  "-- SET GLOBAL gtid_slave_pos='0-1-432';\n"]
    got = [maria.snapshot_position(s) for s in _statements_naming_gtids(maria_dump)]
    assert [g for g in got if g] == ["0-1-432"]


def test_commit_order_follow_on_stops_never_hide_the_cause():
    """replica_preserve_commit_order: workers queued behind a failed one stop with 3030, at the same moment
    or later (recorded on MySQL 9.7); the cause is the earliest error that is not 3030, in any row order."""
    f = flavor_from_version_string(VERSIONS["8.0"])
    broken = f.normalize_status(MYSQL80_MTA_BROKEN)
    assert broken is not None
    follow_on = {"worker_id": 4, "errno": 3030,
                 "message": f"Worker 4 failed executing transaction '{GTID_UUID}:19' at source log "
                            "mysql-bin.000001, end_log_pos 1813182; Replica worker has stopped after at least one "
                            "previous worker encountered an error when replica-preserve-commit-order was enabled."}
    cause = {**MYSQL80_WORKERS[0], "worker_id": 1}
    for rows in ([cause, follow_on], [follow_on, cause], [follow_on, follow_on, cause]):
        merged = merge_worker_errors(broken, rows)
        assert merged.last_errno == 1062 and merged.last_error.startswith("worker 1:"), rows
    # only follow-on stops in the table (the cause already cleared): they are all there is to report
    assert merge_worker_errors(broken, [follow_on]).last_errno == 3030
