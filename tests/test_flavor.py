from replab.servers.flavor import MariaDBFlavor, MySQLFlavor, flavor_from_version_string

MARIADB_VERSION = "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
MYSQL_VERSION = "/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"

# Recorded from MariaDB 10.11 (SHOW SLAVE STATUS, trimmed) with the SQL thread stopped by error 1677.
MARIADB_BROKEN = {
    "Slave_IO_State": "Waiting for master to send event", "Master_Host": "127.0.0.1", "Master_Port": 40001,
    "Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Last_Errno": 1677,
    "Last_Error": "Column 1 of table 'mydb.events' cannot be converted from type 'varchar(64)' to type 'int(11)'",
    "Seconds_Behind_Master": None, "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 1677,
    "Last_SQL_Error": "Column 1 of table 'mydb.events' cannot be converted from type 'varchar(64)' to type "
                      "'int(11)'",
    "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-42",
}


def test_detects_flavor_and_version():
    f = flavor_from_version_string(MARIADB_VERSION)
    assert isinstance(f, MariaDBFlavor) and f.version == (10, 11, 19)
    m = flavor_from_version_string(MYSQL_VERSION)
    assert isinstance(m, MySQLFlavor) and m.version == (8, 0, 36)


def test_mariadb_status_normalized():
    st = MariaDBFlavor().normalize_status(MARIADB_BROKEN)
    assert st is not None
    assert st.io_running and not st.sql_running
    assert st.last_errno == 1677 and "cannot be converted" in st.last_error
    assert st.seconds_behind is None and st.gtid_io_pos == "0-1-42"
    assert MariaDBFlavor().normalize_status(None) is None


def test_dialects_do_not_mix():
    maria = MariaDBFlavor()
    mysql = MySQLFlavor(version=(8, 0, 36))
    assert "MASTER_USE_GTID" in maria.change_source("127.0.0.1", 3306)
    assert "SOURCE_AUTO_POSITION" in mysql.change_source("127.0.0.1", 3306)
    assert "MASTER_USE_GTID" not in mysql.change_source("127.0.0.1", 3306)
    assert "MASTER_GTID_WAIT" in maria.wait_for_gtid()
    assert "WAIT_FOR_EXECUTED_GTID_SET" in mysql.wait_for_gtid()
    assert maria.show_replica_status() == "SHOW SLAVE STATUS"
    assert mysql.show_replica_status() == "SHOW REPLICA STATUS"
