"""The SQL dialect layer: everything that differs between MariaDB and MySQL lives here.

A ``Flavor`` renders the statements replab sends and normalizes what servers answer into
``ReplicaStatus``. Nothing outside this module spells a dialect-specific statement.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..core.errors import BinaryNotFound, ConfigError, NotSupported

REDO_LOG_SIZE = "64M"
# reconnect attempts (1 s apart) before a replica's IO thread gives up on its source: MariaDB's default.
# MySQL's is 10, so a primary down for 10 s was never reconnected to ('attempt 10/10'), while start said
# its replicas reconnect within a few seconds and diagnose said the IO thread keeps reconnecting
RETRY_COUNT = 100000


@dataclass
class ReplicaStatus:
    """Replication status of one replica, the same shape for every flavor."""

    io_running: bool
    sql_running: bool
    io_state: str  # "Yes", "No", "Connecting"
    last_errno: int
    last_error: str
    last_io_errno: int
    last_io_error: str
    last_sql_errno: int
    last_sql_error: str
    seconds_behind: int | None
    source_host: str | None
    source_port: int | None
    gtid_io_pos: str | None
    using_gtid: str | None
    worker_error_pending: bool = False  # MySQL MTA: the real error is in the worker table, not fetched yet
    source_log_file: str | None = None  # where the IO thread reads in the source's binary log
    read_source_log_pos: int | None = None
    channel: str = ""  # the connection (MariaDB) or channel (MySQL) name; "" is the default one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


def source_host(host: str) -> str:
    """A host name or address safe to put in CHANGE MASTER/SOURCE (it cannot be a placeholder there)."""
    if not isinstance(host, str) or not _HOST.match(host):
        raise ConfigError(f"invalid replication host {host!r}: use a host name or an IP address",
                          hint="check replication_host / host in replab.toml")
    return host


_CHANNEL = re.compile(r"^[a-z0-9_]{0,32}$")


def channel_name(name: str) -> str:
    """A replication connection/channel name safe to put in a statement ("" is the default connection)."""
    if not isinstance(name, str) or not _CHANNEL.match(name):
        raise ConfigError(f"invalid replication channel {name!r}: lower-case letters, digits and underscores")
    return name


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Flavor:
    """Base class: the statements every flavor must provide."""

    name = "generic"
    missing_channel_errno = 0  # the error a statement naming a connection/channel that does not exist gets
    conversion_errno = 1677  # a ROW event value that does not fit the replica's column (MariaDB)
    # the error a replica's own (errant) GTID gives the next replicated event of its domain: MariaDB's
    # gtid_strict_mode refuses an out-of-order sequence number; MySQL's GTIDs (one UUID each) never collide
    errant_next_errno = 0
    version: tuple[int, ...] = ()
    version_string = ""

    def __init__(self, version_string: str = "", version: tuple[int, ...] = ()) -> None:
        self.version_string = version_string
        self.version = version

    # --- server configuration -------------------------------------------------------------
    def server_section(self) -> str:
        raise NotImplementedError

    def gtid_config(self) -> dict[str, str]:
        raise NotImplementedError

    # --- replication statements ----------------------------------------------------------
    def show_replica_status(self) -> str:
        raise NotImplementedError

    def show_all_replica_status(self) -> str:
        """Every connection/channel of a replica, one row each (the row names its channel)."""
        raise NotImplementedError

    def change_source(self, host: str, port: int, ssl: bool = True, channel: str = "") -> str:
        """CHANGE MASTER/SOURCE with placeholders %(user)s %(password)s for the driver to quote.

        ``ssl=False`` when the source has no TLS (a newer replica must not insist on it); ``channel``: a
        named connection (MariaDB) or channel (MySQL) of a replica with several sources."""
        raise NotImplementedError

    def start_replica(self, channel: str = "") -> str:
        raise NotImplementedError

    def skip_replica_start_option(self) -> str:
        """Server option: do not start the replication threads at this start."""
        raise NotImplementedError

    def stop_replica(self, channel: str = "") -> str:
        raise NotImplementedError

    def reset_replica(self, channel: str = "") -> str:
        raise NotImplementedError

    def executed_gtid(self) -> str:
        """SELECT returning the GTID position a node has applied (one value)."""
        raise NotImplementedError

    def wait_for_gtid(self) -> str:
        """SELECT with placeholders (%s gtid, %s timeout); returns 0 on success, -1/1 on timeout."""
        raise NotImplementedError

    def session_gtid_query(self) -> str:
        """A SELECT, run right after a session's write, whose one value is a GTID set holding that write (for
        causal reads: a replica waits for it with ``wait_for_gtid`` before it reads)."""
        raise NotImplementedError

    def causal_reads_unsupported(self) -> str | None:
        """Why this server cannot wait for a GTID before a read (None: it can)."""
        oldest = (10, 0, 9) if self.name == "mariadb" else (5, 7, 5)
        if self.version and tuple(self.version[:3]) < oldest:
            fn = "MASTER_GTID_WAIT" if self.name == "mariadb" else "WAIT_FOR_EXECUTED_GTID_SET"
            return (f"{self.name} {'.'.join(map(str, self.version))} has no {fn} (it came in "
                    f"{'.'.join(map(str, oldest))})")
        return None

    def replica_delay(self, seconds: int) -> str:
        """CHANGE MASTER/SOURCE to apply each transaction ``seconds`` after its commit on the source (a
        deliberately lagging replica; run between stop_replica and start_replica)."""
        raise NotImplementedError

    def wait_ok(self, value: Any) -> bool:
        raise NotImplementedError

    def replication_grants(self) -> str:
        raise NotImplementedError

    def normalize_status(self, row: dict[str, Any] | None) -> ReplicaStatus | None:
        raise NotImplementedError

    def show_source_status(self) -> str:
        """The statement that shows the binary log position of a source."""
        raise NotImplementedError

    def reset_gtid_state(self) -> list[str]:
        """Statements that empty a fresh server's binary logs and GTID state (before it becomes a replica)."""
        raise NotImplementedError

    def root_accounts_query(self) -> str:
        """SELECT (u, h) of the root accounts other than root@localhost and root@127.0.0.1."""
        raise NotImplementedError

    def adapt_server_options(self, opts: dict[str, str]) -> dict[str, str]:
        """Server options with this flavor's names (renamed in MySQL 8.0.26+) and its GTID settings."""
        raise NotImplementedError

    def init_datadir_argv(self, server: str, datadir: str, installer: str | None = None) -> list[str]:
        """The command that initializes an empty data dir (without a root password)."""
        raise NotImplementedError

    def snapshot_tools(self) -> list[str]:
        """Names of the logical dump tool, best first."""
        raise NotImplementedError

    def snapshot_args(self, databases: list[str] | None = None,
                      tool_version: tuple[int, ...] | None = None) -> list[str]:
        """Dump tool options for a consistent snapshot that records the GTID position (no credentials)."""
        raise NotImplementedError

    def worker_errors_query(self) -> str | None:
        """SELECT (worker_id, errno, message) of failed applier workers, or None when the status shows it."""
        raise NotImplementedError

    def share_lock_clause(self) -> str:
        """What ends a locking read with shared locks (it waits for uncommitted writes to the rows it reads)."""
        return "LOCK IN SHARE MODE"

    def stop_io_thread(self) -> str:
        """Stop receiving from the source (the SQL thread goes on applying what was received)."""
        return f"{self.stop_replica()} IO_THREAD"

    def start_io_thread(self) -> str:
        return f"{self.start_replica()} IO_THREAD"

    # --- rebuilding a replica (repair.py) -------------------------------------------------------
    def reset_binlog(self) -> str:
        """Forget this node's own binary log history (a rebuilt replica starts a clean one)."""
        return "RESET MASTER"

    def set_replica_position(self) -> str:
        """Statement with one %s placeholder: the GTID set a rebuilt replica has applied."""
        raise NotSupported(f"rebuilding a replica is not implemented for {self.name}")

    def binlog_gtid_state(self) -> str:
        """SELECT returning every GTID source in the node's binary log (errant-transaction detection)."""
        return self.executed_gtid()

    def purged_gtid(self) -> str | None:
        """SELECT returning the GTIDs whose binary logs this server no longer has (None: the flavor keeps no
        such set; MariaDB's gtid_binlog_state still lists purged GTIDs)."""
        return None

    # Does the IO thread reconnect by itself when its source fails in mid-stream? Observed when the source's
    # binary log was reset under a connected replica: MariaDB 10.11 logs "Failed reading log event,
    # reconnecting to retry", MySQL 9.7 stops on 13114 (fatal error 1236 "I/O error reading log event").
    reconnects_after_read_error = True

    def before_restore(self) -> list[str]:
        """Statements on a replica before a logical snapshot is loaded into it."""
        return [self.stop_replica()]

    # the server's own fastest physical rebuild (repair.py): MySQL's clone plugin, MariaDB's mariadb-backup
    physical_rebuild = "backup"

    def fresh_table_stats(self) -> list[str]:
        """Statements that make information_schema.TABLES sizes current for the session."""
        return []

    def clone_setup(self, donor: str) -> list[tuple[str, tuple[Any, ...]]]:
        """Statements on a recipient (and, without the donor argument, a donor) before CLONE INSTANCE."""
        raise NotImplementedError(f"{self.name} has no clone plugin")

    def clone_statement(self) -> str:
        """CLONE INSTANCE FROM user@host:port IDENTIFIED BY password (four arguments)."""
        raise NotImplementedError(f"{self.name} has no clone plugin")

    def snapshot_position(self, line: str) -> str | None:
        """The GTID position a dump was taken at, if ``line`` (a comment line or a whole statement, which
        may span lines) of the dump records it."""
        raise NotImplementedError

    def after_restore(self, gtid: str) -> list[tuple[str, tuple[Any, ...]]]:
        """Statements (with arguments) that record ``gtid`` as applied on a replica rebuilt from a snapshot."""
        return [(self.stop_replica(), ()), (self.reset_binlog(), ()), (self.set_replica_position(), (gtid,))]

    # --- roles: fencing, promotion, semi-synchronous replication (failover.py) --------------------------
    def fence_statements(self) -> list[str]:
        """Stop application writes on a node (a demoted primary, a replica)."""
        raise NotImplementedError

    def unfence_statements(self) -> list[str]:
        """Accept writes again (a promoted replica)."""
        raise NotImplementedError

    def promote_statements(self) -> list[str]:
        """Turn a caught-up replica into a primary: forget its source, accept writes."""
        return [self.stop_replica(), self.reset_replica(), *self.unfence_statements()]

    def demoted_replica_statements(self) -> list[str]:
        """Run on a former primary before it replicates from the new one (where to resume from)."""
        return []

    def sessions_query(self) -> str:
        """SELECT ID of client sessions other than this one (replication and system threads excluded)."""
        raise NotImplementedError

    def semisync_words(self) -> tuple[str, str]:
        """The words in the semi-sync variable names for (source, replica), e.g. ("master", "slave")."""
        raise NotImplementedError

    def semisync_available(self) -> str | None:
        """None when this server version has semi-synchronous replication, else why not."""
        return None

    def semisync_server_options(self, timeout_ms: int) -> dict[str, str]:
        """Server options every node gets with ``--semi-sync``: plugins, lossless wait point, timeout."""
        src, _ = self.semisync_words()
        return {f"rpl_semi_sync_{src}_wait_point": "AFTER_SYNC", f"rpl_semi_sync_{src}_timeout": str(timeout_ms)}

    def semisync_role_options(self, primary: bool) -> dict[str, str]:
        """Which side of semi-sync a node enables: the source side on the primary, the replica side elsewhere."""
        src, rep = self.semisync_words()
        return {f"rpl_semi_sync_{src}_enabled": "1" if primary else "0",
                f"rpl_semi_sync_{rep}_enabled": "0" if primary else "1"}

    def semisync_role_statements(self, primary: bool) -> list[str]:
        """The same as ``semisync_role_options``, at run time (a replica's IO thread restart applies it)."""
        return [f"SET GLOBAL {k.removeprefix('loose_')} = {v}" for k, v in self.semisync_role_options(primary).items()]

    def semisync_status_query(self) -> str:
        """SHOW GLOBAL STATUS of the semi-sync source side (status, clients, fallbacks, un-acked commits)."""
        src, _ = self.semisync_words()
        return f"SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_{src}_%'"

    def semisync_enabled_variable(self) -> str:
        src, _ = self.semisync_words()
        return f"rpl_semi_sync_{src}_enabled"

    def gtid_source_id(self) -> str:
        """SELECT returning what names this server in the GTIDs it writes (MariaDB server_id, MySQL UUID)."""
        raise NotImplementedError


class MariaDBFlavor(Flavor):
    name = "mariadb"
    missing_channel_errno = 1617  # ER_MASTER_CONNECTION_NOT_FOUND: "There is no master connection 'x'"
    errant_next_errno = 1950  # ER_GTID_STRICT_OUT_OF_ORDER (replab runs MariaDB with gtid_strict_mode=1)

    def server_section(self) -> str:
        return "mariadbd"

    def gtid_config(self) -> dict[str, str]:
        return {"gtid_strict_mode": "1", "gtid_pos_auto_engines": "InnoDB"}

    @staticmethod
    def _conn(channel: str) -> str:
        return f" '{channel_name(channel)}'" if channel else ""

    def show_replica_status(self, channel: str = "") -> str:
        return f"SHOW SLAVE{self._conn(channel)} STATUS"

    def show_all_replica_status(self) -> str:
        return "SHOW ALL SLAVES STATUS"

    def change_source(self, host: str, port: int, ssl: bool = True, channel: str = "") -> str:
        return (
            f"CHANGE MASTER{self._conn(channel)} TO MASTER_HOST='{source_host(host)}', MASTER_PORT={int(port)}, "
            "MASTER_USER=%(user)s, MASTER_PASSWORD=%(password)s, MASTER_USE_GTID=slave_pos, "
            "MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1" + ("" if ssl else ", MASTER_SSL=0")
        )

    def start_replica(self, channel: str = "") -> str:
        return f"START SLAVE{self._conn(channel)}"

    def skip_replica_start_option(self) -> str:
        return "--skip-slave-start"

    def stop_replica(self, channel: str = "") -> str:
        return f"STOP SLAVE{self._conn(channel)}"

    def reset_replica(self, channel: str = "") -> str:
        return f"RESET SLAVE{self._conn(channel)} ALL"

    def executed_gtid(self) -> str:
        return "SELECT @@GLOBAL.gtid_current_pos"

    def wait_for_gtid(self) -> str:
        return "SELECT MASTER_GTID_WAIT(%s, %s)"

    def session_gtid_query(self) -> str:
        return "SELECT @@SESSION.last_gtid"  # exactly this session's last transaction

    def replica_delay(self, seconds: int) -> str:
        return f"CHANGE MASTER TO MASTER_DELAY={int(seconds)}"

    def wait_ok(self, value: Any) -> bool:
        return _int(value, -1) == 0

    def replication_grants(self) -> str:
        return "REPLICATION SLAVE"

    def show_source_status(self) -> str:
        return "SHOW MASTER STATUS"

    def reset_gtid_state(self) -> list[str]:
        return ["RESET MASTER", "SET GLOBAL gtid_slave_pos=''"]

    def root_accounts_query(self) -> str:
        return ("SELECT User AS u, Host AS h FROM mysql.global_priv WHERE User='root' "
                "AND Host NOT IN ('localhost', '127.0.0.1')")

    def adapt_server_options(self, opts: dict[str, str]) -> dict[str, str]:
        return {**opts, **self.gtid_config()}

    def init_datadir_argv(self, server: str, datadir: str, installer: str | None = None) -> list[str]:
        return [installer or "mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db", "--force",
                f"--innodb-log-file-size={REDO_LOG_SIZE}"]

    def snapshot_tools(self) -> list[str]:
        return ["mariadb-dump", "mysqldump"]

    def snapshot_args(self, databases: list[str] | None = None,
                      tool_version: tuple[int, ...] | None = None) -> list[str]:
        # --gtid makes --master-data record gtid_slave_pos instead of a file/position pair; =2: as a comment
        return [*_DUMP_COMMON, "--master-data=2", "--gtid", *_dump_scope(databases)]

    def snapshot_position(self, line: str) -> str | None:
        m = re.search(r"gtid_slave_pos\s*=\s*'([^']*)'", line) if line.startswith("--") else None
        return m.group(1) if m else None

    def worker_errors_query(self) -> str | None:
        return None  # MariaDB's parallel applier reports the failing event in Last_SQL_Error itself

    def set_replica_position(self) -> str:
        return "SET GLOBAL gtid_slave_pos = %s"

    def binlog_gtid_state(self) -> str:
        return "SELECT @@GLOBAL.gtid_binlog_state"

    def fence_statements(self) -> list[str]:
        # MariaDB has no super_read_only: admin accounts (READ_ONLY ADMIN) still write, so failover.py also
        # ends every other session on a fenced primary
        return ["SET GLOBAL read_only = 1"]

    def unfence_statements(self) -> list[str]:
        return ["SET GLOBAL read_only = 0"]

    def demoted_replica_statements(self) -> list[str]:
        # a former primary's own writes are in its binlog, not in gtid_slave_pos: resume after them
        return ["SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"]

    def sessions_query(self) -> str:
        return ("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN "
                "('system user', 'event_scheduler') AND COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', "
                "'Slave_SQL', 'Slave_worker')")

    def semisync_words(self) -> tuple[str, str]:
        return "master", "slave"

    def semisync_available(self) -> str | None:
        if self.version and self.version < (10, 3, 3):
            return f"MariaDB {'.'.join(map(str, self.version))} needs the semisync plugins; replab needs 10.3.3+"
        return None
    def gtid_source_id(self) -> str:
        return "SELECT @@GLOBAL.server_id"

    def normalize_status(self, row: dict[str, Any] | None) -> ReplicaStatus | None:
        if not row:
            return None
        io_state = str(row.get("Slave_IO_Running") or "No")
        return ReplicaStatus(
            io_running=io_state == "Yes",
            sql_running=str(row.get("Slave_SQL_Running")) == "Yes",
            io_state=io_state,
            last_errno=_int(row.get("Last_Errno")) or _int(row.get("Last_IO_Errno")),
            last_error=str(row.get("Last_Error") or row.get("Last_IO_Error") or ""),
            last_io_errno=_int(row.get("Last_IO_Errno")),
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_errno=_int(row.get("Last_SQL_Errno")),
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
            seconds_behind=_opt_int(row.get("Seconds_Behind_Master")),
            source_host=row.get("Master_Host"),
            source_port=_opt_int(row.get("Master_Port")),
            gtid_io_pos=row.get("Gtid_IO_Pos"),
            using_gtid=row.get("Using_Gtid"),
            source_log_file=row.get("Master_Log_File") or None,
            read_source_log_pos=_opt_int(row.get("Read_Master_Log_Pos")),
            channel=str(row.get("Connection_name") or ""),
        )


class MySQLFlavor(Flavor):
    """MySQL 5.7, 8.0 and 8.4.

    Syntax by version: ``SHOW REPLICA STATUS``/``START REPLICA`` from 8.0.22, ``CHANGE REPLICATION SOURCE
    TO`` from 8.0.23, ``SHOW BINARY LOG STATUS``/``RESET BINARY LOGS AND GTIDS`` from 8.2, and 8.4 no
    longer accepts the MASTER/SLAVE statements at all. An unknown version (``()``) gets the 5.7 syntax,
    which every 5.7 and 8.0 server accepts.
    """

    name = "mysql"
    reconnects_after_read_error = False
    missing_channel_errno = 3074  # ER_REPLICA_CHANNEL_DOES_NOT_EXIST
    conversion_errno = 13146  # ER_REPLICA_CONVERSION_FAILED, observed on MySQL 9.7 (where MariaDB says 1677)

    def server_section(self) -> str:
        return "mysqld"

    def gtid_config(self) -> dict[str, str]:
        return {"gtid_mode": "ON", "enforce_gtid_consistency": "ON"}

    def _at_least(self, *version: int) -> bool:
        return self.version >= version

    def _has_replica_syntax(self) -> bool:
        return self._at_least(8, 0, 23)

    def _replica_word(self) -> bool:
        return self._at_least(8, 0, 22)

    @staticmethod
    def _for(channel: str) -> str:
        return f" FOR CHANNEL '{channel_name(channel)}'" if channel else ""

    def show_replica_status(self, channel: str = "") -> str:
        return ("SHOW REPLICA STATUS" if self._replica_word() else "SHOW SLAVE STATUS") + self._for(channel)

    def show_all_replica_status(self) -> str:
        return "SHOW REPLICA STATUS" if self._replica_word() else "SHOW SLAVE STATUS"

    def show_source_status(self) -> str:
        return "SHOW BINARY LOG STATUS" if self._at_least(8, 2) else "SHOW MASTER STATUS"

    def change_source(self, host: str, port: int, ssl: bool = True, channel: str = "") -> str:
        if self._has_replica_syntax():
            return (
                f"CHANGE REPLICATION SOURCE TO SOURCE_HOST='{source_host(host)}', SOURCE_PORT={int(port)}, "
                "SOURCE_USER=%(user)s, SOURCE_PASSWORD=%(password)s, SOURCE_AUTO_POSITION=1, "
                f"SOURCE_CONNECT_RETRY=1, SOURCE_RETRY_COUNT={RETRY_COUNT}, SOURCE_HEARTBEAT_PERIOD=1, "
                "GET_SOURCE_PUBLIC_KEY=1" + self._for(channel)
            )
        key = ", GET_MASTER_PUBLIC_KEY=1" if self._at_least(8, 0, 4) else ""
        return (
            f"CHANGE MASTER TO MASTER_HOST='{source_host(host)}', MASTER_PORT={int(port)}, MASTER_USER=%(user)s, "
            f"MASTER_PASSWORD=%(password)s, MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1, "
            f"MASTER_RETRY_COUNT={RETRY_COUNT}, MASTER_HEARTBEAT_PERIOD=1{key}" + self._for(channel)
        )

    def start_replica(self, channel: str = "") -> str:
        return ("START REPLICA" if self._replica_word() else "START SLAVE") + self._for(channel)

    def skip_replica_start_option(self) -> str:
        return "--skip-replica-start" if self._at_least(8, 0, 26) else "--skip-slave-start"

    def stop_replica(self, channel: str = "") -> str:
        return ("STOP REPLICA" if self._replica_word() else "STOP SLAVE") + self._for(channel)

    def share_lock_clause(self) -> str:
        return "FOR SHARE" if self._at_least(8, 0, 1) else "LOCK IN SHARE MODE"

    def reset_replica(self, channel: str = "") -> str:
        return ("RESET REPLICA ALL" if self._replica_word() else "RESET SLAVE ALL") + self._for(channel)

    def reset_gtid_state(self) -> list[str]:
        return ["RESET BINARY LOGS AND GTIDS" if self._at_least(8, 2) else "RESET MASTER"]

    def reset_binlog(self) -> str:
        return "RESET BINARY LOGS AND GTIDS" if self._at_least(8, 2) else "RESET MASTER"

    def set_replica_position(self) -> str:
        # MySQL records what a rebuilt replica already has as purged GTIDs (after the reset above)
        return "SET GLOBAL gtid_purged = %s"

    def fence_statements(self) -> list[str]:
        return ["SET GLOBAL super_read_only = 1"]  # implies read_only; blocks admin accounts too

    def unfence_statements(self) -> list[str]:
        return ["SET GLOBAL super_read_only = 0", "SET GLOBAL read_only = 0"]

    def sessions_query(self) -> str:
        table = "performance_schema.processlist" if self._at_least(8, 0, 22) else "information_schema.PROCESSLIST"
        return (f"SELECT ID FROM {table} WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', "
                "'event_scheduler') AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon')")

    def semisync_words(self) -> tuple[str, str]:
        # the source/replica plugins exist from 8.0.26 and are the only ones left in 9.x
        return ("source", "replica") if self._at_least(8, 0, 26) else ("master", "slave")

    def semisync_server_options(self, timeout_ms: int) -> dict[str, str]:
        src, rep = self.semisync_words()
        libs = ("semisync_source.so", "semisync_replica.so") if src == "source" else \
            ("semisync_master.so", "semisync_slave.so")
        # loose_: a server without the plugin files still starts, and replab reports it (semisync_enabled_variable)
        return {"plugin_load_add": f"rpl_semi_sync_{src}={libs[0]};rpl_semi_sync_{rep}={libs[1]}",
                f"loose_rpl_semi_sync_{src}_wait_point": "AFTER_SYNC",
                f"loose_rpl_semi_sync_{src}_timeout": str(timeout_ms)}

    def semisync_role_options(self, primary: bool) -> dict[str, str]:
        return {f"loose_{k}": v for k, v in super().semisync_role_options(primary).items()}

    def executed_gtid(self) -> str:
        return "SELECT @@GLOBAL.gtid_executed"

    def purged_gtid(self) -> str | None:
        return "SELECT @@GLOBAL.gtid_purged"

    def gtid_source_id(self) -> str:
        return "SELECT @@GLOBAL.server_uuid"

    def wait_for_gtid(self) -> str:
        return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"

    def session_gtid_query(self) -> str:
        # MySQL reports a session's own GTID only as session-state tracking in the OK packet, which the Python
        # drivers do not expose; the server's whole executed set holds it too (a superset: a causal read may
        # wait a little longer than it must, never too little)
        return "SELECT @@GLOBAL.gtid_executed"

    def replica_delay(self, seconds: int) -> str:
        if self._has_replica_syntax():
            return f"CHANGE REPLICATION SOURCE TO SOURCE_DELAY={int(seconds)}"
        return f"CHANGE MASTER TO MASTER_DELAY={int(seconds)}"

    def wait_ok(self, value: Any) -> bool:
        return _int(value, 1) == 0

    def replication_grants(self) -> str:
        return "REPLICATION SLAVE"

    def root_accounts_query(self) -> str:
        return ("SELECT User AS u, Host AS h FROM mysql.user WHERE User='root' "
                "AND Host NOT IN ('localhost', '127.0.0.1')")

    def adapt_server_options(self, opts: dict[str, str]) -> dict[str, str]:
        out = dict(opts)
        if self._at_least(8, 0, 26):
            for old, new in _MYSQL_RENAMED_OPTIONS.items():
                if old in out:
                    out[new] = out.pop(old)
        if self._at_least(8, 0, 30) and "innodb_log_file_size" in out:
            out["innodb_redo_log_capacity"] = out.pop("innodb_log_file_size")
        if self._at_least(8):
            out.setdefault("mysqlx", "0")
        out.update(self.gtid_config())
        return out

    def init_datadir_argv(self, server: str, datadir: str, installer: str | None = None) -> list[str]:
        argv = [server, "--no-defaults", "--initialize-insecure", f"--datadir={datadir}"]
        if self._at_least(8, 0, 30):
            argv.append(f"--innodb-redo-log-capacity={REDO_LOG_SIZE}")
        return argv

    def snapshot_tools(self) -> list[str]:
        return ["mysqldump"]

    def snapshot_args(self, databases: list[str] | None = None,
                      tool_version: tuple[int, ...] | None = None) -> list[str]:
        version = tool_version if tool_version is not None else self.version
        position = "--source-data=2" if version >= (8, 0, 26) else "--master-data=2"
        return [*_DUMP_COMMON, position, "--set-gtid-purged=ON", *_dump_scope(databases)]

    physical_rebuild = "clone"

    def fresh_table_stats(self) -> list[str]:
        return ["SET SESSION information_schema_stats_expiry = 0"]  # else cached for a day

    def clone_setup(self, donor: str) -> list[tuple[str, tuple[Any, ...]]]:
        plugin = ("INSTALL PLUGIN clone SONAME 'mysql_clone.so'", ())
        return [plugin] if not donor else [plugin, ("SET GLOBAL clone_valid_donor_list = %s", (donor,))]

    def clone_statement(self) -> str:
        return "CLONE INSTANCE FROM %s@%s:%s IDENTIFIED BY %s"

    def before_restore(self) -> list[str]:
        # the dump sets gtid_purged itself, which MySQL accepts only on an empty GTID history; a fenced node
        # (super_read_only, e.g. a demoted primary) refuses the load even from an admin
        return [self.stop_replica(), "SET GLOBAL super_read_only = OFF", self.reset_binlog()]

    def snapshot_position(self, line: str) -> str | None:
        m = re.search(r"GTID_PURGED\s*=\s*(?:/\*!\d+ '\+'\*/ )?'([^']*)'", line, re.IGNORECASE)
        return re.sub(r"\s+", "", m.group(1).replace("\\n", "")) if m else None

    def after_restore(self, gtid: str) -> list[tuple[str, tuple[Any, ...]]]:
        # loading the dump recorded gtid_purged already; the node is a replica again: read-only
        return [(self.stop_replica(), ()), ("SET GLOBAL read_only = ON", ())]

    def worker_errors_query(self) -> str | None:
        return (
            "SELECT WORKER_ID AS worker_id, LAST_ERROR_NUMBER AS errno, LAST_ERROR_MESSAGE AS message "
            "FROM performance_schema.replication_applier_status_by_worker "
            "WHERE LAST_ERROR_NUMBER <> 0 ORDER BY LAST_ERROR_TIMESTAMP, WORKER_ID"
        )

    def normalize_status(self, row: dict[str, Any] | None) -> ReplicaStatus | None:
        if not row:
            return None

        def get(new: str, old: str) -> Any:
            return row.get(new, row.get(old))

        io_state = str(get("Replica_IO_Running", "Slave_IO_Running") or "No")
        sql_errno = _int(row.get("Last_SQL_Errno"))
        io_errno = _int(row.get("Last_IO_Errno"))
        sql_error = str(row.get("Last_SQL_Error") or "")
        return ReplicaStatus(
            io_running=io_state == "Yes",
            sql_running=str(get("Replica_SQL_Running", "Slave_SQL_Running")) == "Yes",
            io_state=io_state,
            last_errno=sql_errno or io_errno,
            last_error=str(sql_error or row.get("Last_IO_Error") or ""),
            last_io_errno=io_errno,
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_errno=sql_errno,
            last_sql_error=sql_error,
            seconds_behind=_opt_int(get("Seconds_Behind_Source", "Seconds_Behind_Master")),
            source_host=get("Source_Host", "Master_Host"),
            source_port=_opt_int(get("Source_Port", "Master_Port")),
            gtid_io_pos=row.get("Retrieved_Gtid_Set"),
            using_gtid="auto_position" if str(row.get("Auto_Position")) == "1" else None,
            worker_error_pending=sql_error.startswith(COORDINATOR_ERROR),
            source_log_file=get("Source_Log_File", "Master_Log_File") or None,
            read_source_log_pos=_opt_int(get("Read_Source_Log_Pos", "Read_Master_Log_Pos")),
            channel=str(row.get("Channel_Name") or ""),
        )


WORKER_STOPPED_AFTER_PREVIOUS = 3030  # ER_REPLICA_WORKER_STOPPED_PREVIOUS_THD_ERROR
COORDINATOR_ERROR = "Coordinator stopped because there were error(s) in the worker(s)"
_MYSQL_RENAMED_OPTIONS = {
    "log_slave_updates": "log_replica_updates",
    "slave_net_timeout": "replica_net_timeout",
    "slave_parallel_workers": "replica_parallel_workers",
    "slave_preserve_commit_order": "replica_preserve_commit_order",
}
_DUMP_COMMON = ["--single-transaction", "--triggers", "--routines", "--events", "--hex-blob", "--add-drop-database"]


def _dump_scope(databases: list[str] | None) -> list[str]:
    return ["--databases", *databases] if databases else ["--all-databases"]


def merge_worker_errors(status: ReplicaStatus, rows: list[dict[str, Any]]) -> ReplicaStatus:
    """Replace the multi-threaded applier's coordinator message by the failing worker's own error.

    MySQL's coordinator only says "Coordinator stopped because there were error(s) in the worker(s)...
    See ... performance_schema.replication_applier_status_by_worker"; the reason (e.g. error 1054, unknown
    column) is in that table. ``rows`` are the result of ``Flavor.worker_errors_query()``, oldest error first.
    """
    if not rows or not status.worker_error_pending:
        return status
    # With replica_preserve_commit_order (MySQL 8.0.27+ default) the workers queued behind the failing one
    # stop too, each with 3030 ("a previous worker encountered an error"), stamped at the same moment or
    # later: the cause is the earliest error that is not such a follow-on stop.
    causes = [r for r in rows if _int(r.get("errno")) != WORKER_STOPPED_AFTER_PREVIOUS]
    worst = (causes or rows)[0]
    errno = _int(worst.get("errno"))
    message = f"worker {worst.get('worker_id')}: {worst.get('message') or ''}".strip()
    return replace(status, last_sql_errno=errno, last_sql_error=message, last_errno=errno, last_error=message,
                   worker_error_pending=False)


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def server_name(version: str) -> str:
    """``10.11.19-MariaDB-0+deb12u1-log`` or ``mariadbd Ver 10.11.19-MariaDB...`` -> ``MariaDB 10.11.19``;
    ``9.7.0`` -> ``MySQL 9.7.0``."""
    m = re.search(r"(\d+\.\d+\.\d+)(-MariaDB)?", version)
    if not m:
        return version
    return f"{'MariaDB' if m.group(2) or 'mariadb' in version.lower() else 'MySQL'} {m.group(1)}"


def flavor_from_version_string(text: str) -> Flavor:
    """Pick the flavor from a ``--version`` line or ``SELECT VERSION()``."""
    match = _VERSION.search(text)
    version = tuple(int(x) for x in match.groups()) if match else ()
    if "mariadb" in text.lower():
        return MariaDBFlavor(text.strip(), version)
    return MySQLFlavor(text.strip(), version)


def detect_flavor(server_binary: str) -> Flavor:
    """Run ``SERVER --version`` and return the matching flavor."""
    try:
        out = subprocess.run([server_binary, "--version"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise BinaryNotFound(f"server binary {server_binary} not found") from None
    text = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or not text:
        raise BinaryNotFound(f"{server_binary} --version failed: {text[:200]}")
    flavor = flavor_from_version_string(text)
    if isinstance(flavor, MySQLFlavor) and flavor.version < (5, 7):
        raise NotSupported(f"unsupported server version: {text}")
    return flavor
