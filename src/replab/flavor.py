"""The SQL dialect layer: everything that differs between MariaDB and MySQL lives here.

A ``Flavor`` renders the statements replab sends and normalizes what servers answer into
``ReplicaStatus``. Nothing outside this module spells a dialect-specific statement.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from .errors import BinaryNotFound, NotSupported


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def change_source(self, host: str, port: int) -> str:
        """CHANGE MASTER/SOURCE with placeholders %(user)s %(password)s for the driver to quote."""
        raise NotImplementedError

    def start_replica(self) -> str:
        raise NotImplementedError

    def stop_replica(self) -> str:
        raise NotImplementedError

    def reset_replica(self) -> str:
        raise NotImplementedError

    def executed_gtid(self) -> str:
        """SELECT returning the GTID position a node has applied (one value)."""
        raise NotImplementedError

    def wait_for_gtid(self) -> str:
        """SELECT with placeholders (%s gtid, %s timeout); returns 0 on success, -1/1 on timeout."""
        raise NotImplementedError

    def wait_ok(self, value: Any) -> bool:
        raise NotImplementedError

    def replication_grants(self) -> str:
        raise NotImplementedError

    def normalize_status(self, row: dict[str, Any] | None) -> ReplicaStatus | None:
        raise NotImplementedError

    # --- rebuilding a replica (repair.py) -------------------------------------------------------
    def reset_binlog(self) -> str:
        """Forget this node's own binary log history (a rebuilt replica starts a clean one)."""
        return "RESET MASTER"

    def set_replica_position(self) -> str:
        """Statement with one %s placeholder: the GTID set a rebuilt replica has applied."""
        raise NotSupported(f"rebuilding a replica is not implemented for {self.name}")


class MariaDBFlavor(Flavor):
    name = "mariadb"

    def server_section(self) -> str:
        return "mariadbd"

    def gtid_config(self) -> dict[str, str]:
        return {"gtid_strict_mode": "1", "gtid_pos_auto_engines": "InnoDB"}

    def show_replica_status(self) -> str:
        return "SHOW SLAVE STATUS"

    def change_source(self, host: str, port: int) -> str:
        return (
            f"CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT={int(port)}, "
            "MASTER_USER=%(user)s, MASTER_PASSWORD=%(password)s, MASTER_USE_GTID=slave_pos, "
            "MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"
        )

    def start_replica(self) -> str:
        return "START SLAVE"

    def stop_replica(self) -> str:
        return "STOP SLAVE"

    def reset_replica(self) -> str:
        return "RESET SLAVE ALL"

    def executed_gtid(self) -> str:
        return "SELECT @@GLOBAL.gtid_current_pos"

    def wait_for_gtid(self) -> str:
        return "SELECT MASTER_GTID_WAIT(%s, %s)"

    def wait_ok(self, value: Any) -> bool:
        return _int(value, -1) == 0

    def replication_grants(self) -> str:
        return "REPLICATION SLAVE"

    def set_replica_position(self) -> str:
        return "SET GLOBAL gtid_slave_pos = %s"

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
        )


class MySQLFlavor(Flavor):
    """MySQL 8.x. Only the parts the local engine needs are here now; see the MySQL issue."""

    name = "mysql"

    def server_section(self) -> str:
        return "mysqld"

    def gtid_config(self) -> dict[str, str]:
        return {"gtid_mode": "ON", "enforce_gtid_consistency": "ON"}

    def _has_replica_syntax(self) -> bool:
        return self.version >= (8, 0, 23)

    def show_replica_status(self) -> str:
        return "SHOW REPLICA STATUS" if self.version >= (8, 0, 22) else "SHOW SLAVE STATUS"

    def change_source(self, host: str, port: int) -> str:
        if self._has_replica_syntax():
            return (
                f"CHANGE REPLICATION SOURCE TO SOURCE_HOST='{host}', SOURCE_PORT={int(port)}, "
                "SOURCE_USER=%(user)s, SOURCE_PASSWORD=%(password)s, SOURCE_AUTO_POSITION=1, "
                "SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1"
            )
        return (
            f"CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT={int(port)}, MASTER_USER=%(user)s, "
            "MASTER_PASSWORD=%(password)s, MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1"
        )

    def start_replica(self) -> str:
        return "START REPLICA" if self.version >= (8, 0, 22) else "START SLAVE"

    def stop_replica(self) -> str:
        return "STOP REPLICA" if self.version >= (8, 0, 22) else "STOP SLAVE"

    def reset_replica(self) -> str:
        return "RESET REPLICA ALL" if self.version >= (8, 0, 22) else "RESET SLAVE ALL"

    def executed_gtid(self) -> str:
        return "SELECT @@GLOBAL.gtid_executed"

    def wait_for_gtid(self) -> str:
        return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"

    def wait_ok(self, value: Any) -> bool:
        return _int(value, 1) == 0

    def replication_grants(self) -> str:
        return "REPLICATION SLAVE"

    def normalize_status(self, row: dict[str, Any] | None) -> ReplicaStatus | None:
        if not row:
            return None

        def get(new: str, old: str) -> Any:
            return row.get(new, row.get(old))

        io_state = str(get("Replica_IO_Running", "Slave_IO_Running") or "No")
        sql_errno = _int(row.get("Last_SQL_Errno"))
        io_errno = _int(row.get("Last_IO_Errno"))
        return ReplicaStatus(
            io_running=io_state == "Yes",
            sql_running=str(get("Replica_SQL_Running", "Slave_SQL_Running")) == "Yes",
            io_state=io_state,
            last_errno=sql_errno or io_errno,
            last_error=str(row.get("Last_SQL_Error") or row.get("Last_IO_Error") or ""),
            last_io_errno=io_errno,
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_errno=sql_errno,
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
            seconds_behind=_opt_int(get("Seconds_Behind_Source", "Seconds_Behind_Master")),
            source_host=get("Source_Host", "Master_Host"),
            source_port=_opt_int(get("Source_Port", "Master_Port")),
            gtid_io_pos=row.get("Retrieved_Gtid_Set"),
            using_gtid="auto_position" if str(row.get("Auto_Position")) == "1" else None,
        )


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


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
