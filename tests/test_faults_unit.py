"""Pure parts of faults/diagnose, without servers: drift arguments, GTID sets, schema-drift predictions."""

from __future__ import annotations

import pytest

from replab.core.errors import ConfigError
from replab.faults.nemesis import _parse
from replab.verify.causes import errant_gtids, gtid_sources
from replab.verify.diagnose import Column, Diagnosis, conversion, event_group, schema_findings, worker_gtid


def _cols(spec: str) -> list[Column]:
    out = []
    for i, item in enumerate(spec.split(), start=1):
        name, ctype = item.split(":")
        out.append(Column(name, i, ctype.split("(")[0], ctype, None))
    return out


EVENTS = "id:int(11) name:varchar(64) counter:int(11) description:varchar(255)"


@pytest.mark.parametrize("kind,value", [
    ("drop_column", "events"), ("drop_column", "events.na me"), ("drop_column", "ev`ents.name"),
    ("drop_column", "events.name:INT"), ("add_column", "events.x"), ("add_column", "events.x:INT);DROP"),
    ("modify_column", "events.x:VARCHAR(64) CHARACTER SET latin1"), ("delete_rows", "events"),
    ("delete_rows", "events:-1"), ("delete_rows", "events:0"), ("insert_rows", "events:x"),
    ("update_rows", "events';:3"),
])
def test_bad_drift_arguments_are_refused(kind, value):
    with pytest.raises(ConfigError):
        _parse(kind, value)


def test_good_drift_arguments():
    assert _parse("add_column", "events.x:bigint unsigned").type == "BIGINT UNSIGNED"
    assert _parse("modify_column", "events.price:DECIMAL(10,2)").type == "DECIMAL(10,2)"
    t = _parse("delete_rows", "events:5")
    assert (t.table, t.count) == ("events", 5)


def test_gtid_sets_and_errant_transactions():
    assert gtid_sources("0-1-12,0-4-13") == {"0-1": [(1, 12)], "0-4": [(1, 13)]}
    assert errant_gtids("0-1-12,0-4-13", "0-1-20", "1") == ["0-4-13"]
    assert errant_gtids("0-1-12", "0-1-20", "1") == []
    assert errant_gtids("", "0-1-3", "1") == []


def test_predictions_for_dropped_columns_under_row():
    prim = _cols(EVENTS)
    causes, nxt = schema_findings("mydb.events", prim, _cols("id:int(11) name:varchar(64) counter:int(11)"), "ROW")
    assert "the last column" in causes[0] and "stays missing" in nxt[0]
    causes, nxt = schema_findings("mydb.events", prim,
                                  _cols("id:int(11) counter:int(11) description:varchar(255)"), "ROW")
    assert "column 2 of 4" in causes[0] and "1677" in nxt[0] and "`name`->`counter`" in nxt[0]
    same = "id:int(11) a:varchar(64) b:varchar(64) c:varchar(64)"
    _, nxt = schema_findings("mydb.t", _cols(same), _cols("id:int(11) b:varchar(64) c:varchar(64)"), "ROW")
    assert "SILENTLY" in nxt[0]


def test_predictions_under_statement_and_for_type_changes():
    prim = _cols(EVENTS)
    _, nxt = schema_findings("mydb.events", prim, _cols("id:int(11) counter:int(11) description:varchar(255)"),
                             "STATEMENT")
    assert nxt == ["the next replicated statement naming `name` stops the SQL thread with error 1054 "
                   "(Unknown column)"]
    widened = _cols("id:int(11) name:varchar(255) counter:int(11) description:varchar(255)")
    causes, nxt = schema_findings("mydb.events", prim, widened, "ROW")
    assert "varchar(64) on the primary but varchar(255)" in causes[0] and "1677" in nxt[0]


def test_diagnosis_renders_every_part():
    d = Diagnosis("mysql-s2", "broken", "SQL thread stopped: error 1032", errno=1032, error="Can't find record",
                  causes=["row deleted here"], next_writes=["nothing more is applied"])
    text = d.render()
    assert text.splitlines()[0] == "mysql-s2: SQL thread stopped: error 1032"
    assert "  cause: row deleted here" in text and d.to_dict()["errno"] == 1032


# mysqlbinlog -v from MySQL 9.7's applied position (recorded, shortened): the heartbeat another worker had
# applied comes first, then the transaction worker 1 failed on (issue 23.1)
_MYSQL_BINLOG = """# at 3911
#261203 13:56:25 server id 1  end_log_pos 3990 CRC32 0xbae40c03 \tGTID\tlast_committed=13\tsequence_number=14
SET @@SESSION.GTID_NEXT= '5331d61f-ef21-11f1-a88f-02fc00000001:14'/*!*/;
BEGIN
/*!*/;
### INSERT INTO `replab`.`heartbeat`
### SET
###   @1=1
###   @2='2026-12-03 13:56:25.115574'
###   @3=1
COMMIT/*!*/;
#261203 13:56:25 server id 1  end_log_pos 4295 CRC32 0x1d2582b4 \tGTID\tlast_committed=13\tsequence_number=15
SET @@SESSION.GTID_NEXT= '5331d61f-ef21-11f1-a88f-02fc00000001:15'/*!*/;
BEGIN
/*!*/;
### INSERT INTO `mydb`.`events`
### SET
###   @1=1
###   @2='some-event-1'
COMMIT/*!*/;
SET @@SESSION.GTID_NEXT= '5331d61f-ef21-11f1-a88f-02fc00000001:16'/*!*/;
### INSERT INTO `mydb`.`events`
""".splitlines(keepends=True)


def test_event_group_is_the_workers_transaction_not_the_first_after_the_position():
    error = ("worker 1: Worker 1 failed executing transaction '5331d61f-ef21-11f1-a88f-02fc00000001:15' at source "
             "log mysql-bin.000001, end_log_pos 4506; Column 2 (counting the first column as number 1) of table "
             "'mydb.events' cannot be converted from type 'varchar(256(bytes))' to type 'int'")
    gtid = worker_gtid(error)
    assert gtid == "5331d61f-ef21-11f1-a88f-02fc00000001:15"
    assert event_group(_MYSQL_BINLOG, gtid) == ([], ["INSERT INTO `mydb`.`events`", "SET", "  @1=1",
                                                     "  @2='some-event-1'"])
    assert event_group(_MYSQL_BINLOG, None)[1][0] == "INSERT INTO `replab`.`heartbeat`"  # MariaDB: the first
    assert event_group(_MYSQL_BINLOG, "5331d61f-ef21-11f1-a88f-02fc00000001:99") == ([], [])
    assert conversion(error) == (1, "varchar(256(bytes))", "int")  # MySQL counts from 1
    assert conversion("Column 1 of table 'mydb.events' cannot be converted from type 'varchar(256 octets)' to "
                      "type 'int(11)'") == (1, "varchar(256 octets)", "int(11)")  # MariaDB from 0
    mariadb = ["#261203 13:56:25 server id 1  end_log_pos 380 CRC32 0x5e1f2d3c \tGTID 0-1-15 trans\n",
               "### UPDATE `mydb`.`events`\n", "COMMIT/*!*/;\n",
               "#261203 13:56:25 server id 1  end_log_pos 480 CRC32 0x5e1f2d3c \tGTID 0-1-16 trans\n",
               "### DELETE FROM `mydb`.`events`\n"]
    assert event_group(mariadb, "0-1-16")[1] == ["DELETE FROM `mydb`.`events`"]
