"""Row hashes and chunk checksums for ``check`` (and ``repair``): the SQL the servers run and its Python
mirror, so the construction is unit-tested on recorded rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from typing import Any

from ..core.config import quote_ident

# A row hashes to the first 64 bits of SHA-256 over a text that parses back into exactly one tuple. The
# text is CONCAT_WS(',') of, first, a header: each integer column's value as a plain number (IFNULL(c,
# 'NULL'): digits and '-', or the word NULL) and each string column's length in bytes (IFNULL(LENGTH(c),
# -1): -1 for NULL), in column order; then the string columns' raw values (CONCAT_WS skips the NULLs)
# and every other column QUOTE()d (the bare word NULL, or a '...' literal with ' and \ escaped), in
# column order. The header holds no comma, so it splits into its fields; the lengths then cut the raw
# values apart and each quoted literal ends at its first unescaped quote: NULL, 'NULL' and '' differ, and
# ('x#1', 2) cannot meet ('x', '1#2') as they do under CONCAT_WS('#'). The primary key is one of the
# columns, so equal contents at different ids hash differently. The lengths are exact only if CONCAT_WS
# converts no string to another character set: string columns go raw only when every column of the
# table (on the primary) is an integer or a string and the character columns share one character set;
# otherwise every non-integer column is QUOTE()d. The same expression runs on every node, whatever type
# the column has there (the schema diff reports a changed type). Measured on MariaDB 10.11 (per million
# rows, the events table): plain numbers skip QUOTE()'s scan and copy, and raw strings with their length
# cost 0.11 s less than QUOTE() (MySQL 9.7: 0.05 s more; its time goes elsewhere).
#
# A chunk of a keyed table read as one range scan (ids [c*N, (c+1)*N), the checker's usual case) is
# (COUNT, DIGEST): the first 64 bits of SHA-256 over its rows' texts (the texts above) joined by commas in
# id order (``text_digest_sql``). Each text has as many header fields as the table has integer and string
# columns and reads back into one row, so the joined texts read back into exactly those rows in that
# order. One SHA-256 a chunk instead of one a row: 0.35 s of server CPU per million rows and node instead
# of 0.43 s (MariaDB 10.11; MySQL 9.7: 0.77 s vs 0.80 s, where building the text costs most). GROUP_CONCAT
# holds the chunk in memory and cuts it at group_concat_max_len, so this is used only where the primary's
# column types bound a chunk's text to TEXT_DIGEST_MAX (``max_text_len``). Other tables get the digest of
# the row hashes in id order, each as its 16 hex digits (``digest_sql``). A digest does not cancel at all:
# two chunks agree only if every row (or row hash) agrees in order, or SHA-256 collides on 64 bits.
# Measured on MariaDB 10.11: the digest of row hashes costs 0.11 s less per million rows than BIT_XOR of
# the row hashes, whose CONV() from hex to integer alone costs 0.26 s (MySQL 9.7: 0.1 s less). Either
# digest depends on the order the rows arrive in, so the scan goes through the primary key (FORCE INDEX),
# or the rows are sorted in the GROUP_CONCAT on a node without that key; should two nodes still disagree
# on order, the chunk differs, its rows are compared one by one, and nothing is reported (a slower check,
# never a false verdict).
# Chunks the server groups (sparse or negative ids: no order within a group) are (COUNT, BIT_XOR of row
# hashes); a keyless table is (COUNT, SUM). A table's checksum combines its chunks: XOR for a keyed
# table, the sum mod 2^64 otherwise. CRC32 + BIT_XOR, the construction pt-table-checksum uses, is linear:
# CRC(a) ^ CRC(a') depends only on a ^ a' for equal lengths, so two rows changed by the same bit pattern
# (a column shift, two values swapped between rows) cancel out exactly. SHA-256 is not linear: a set of
# row changes cancels in a BIT_XOR only if the XOR of their hash differences happens to be 0, a chance of
# 2^-64 per chunk. XOR does cancel a row present twice; rows of a keyed table are distinct (the key is
# hashed), and a keyless table gets an exact SUM, which does not (the sum is a little slower to compute,
# hence not used everywhere).
HASH_MOD = 1 << 64
INT_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
STRING_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "binary", "varbinary",
                "tinyblob", "blob", "mediumblob", "longblob")
DIGEST_MAX_LEN = 1 << 30  # group_concat_max_len for digests: 16 hex digits a row, 67M rows a chunk
# a chunk's rows' texts are digested only where they cannot exceed this (server memory per node and query)
TEXT_DIGEST_MAX = 128 << 20


def _parts(columns: list[str], plain: Collection[str], raw: Collection[str]) -> str:
    q = {c: quote_ident(c) for c in columns}
    head = [f"IFNULL({q[c]}, 'NULL')" if c in plain else f"IFNULL(LENGTH({q[c]}), -1)"
            for c in columns if c in plain or c in raw]
    tail = [q[c] if c in raw else f"QUOTE({q[c]})" for c in columns if c not in plain]
    return ", ".join(head + tail)


def row_hex_sql(columns: list[str], plain: Collection[str] = (), raw: Collection[str] = ()) -> str:
    """SQL expression: a row's 64-bit hash over ``columns`` as 16 lowercase hex digits; ``plain``: the
    integer columns, ``raw``: the string columns to take as they are (see above). MariaDB and MySQL."""
    # SHA2 measured faster than MD5 on MariaDB 10.11 (0.85 s vs 1.45 s per million rows: this CPU has SHA
    # instructions); MySQL 9.7 has no MD5() at all
    return f"LEFT(SHA2(CONCAT_WS(',', {_parts(columns, plain, raw)}), 256), 16)"


def row_hash_sql(columns: list[str], plain: Collection[str] = (), raw: Collection[str] = ()) -> str:
    """SQL expression: a row's 64-bit hash over ``columns`` (an unsigned BIGINT)."""
    return f"CAST(CONV({row_hex_sql(columns, plain, raw)}, 16, 10) AS UNSIGNED)"


def digest_sql(columns: list[str], plain: Collection[str] = (), raw: Collection[str] = (),
               order_by: str | None = None) -> str:
    """SQL aggregate: a chunk's digest (16 hex digits, NULL for no rows) over its row hashes in the order
    the rows arrive, or sorted by the column ``order_by`` (slower: for a node without the primary key)."""
    order = f" ORDER BY {quote_ident(order_by)}" if order_by else ""
    return f"LEFT(SHA2(GROUP_CONCAT({row_hex_sql(columns, plain, raw)}{order} SEPARATOR ''), 256), 16)"


def text_digest_sql(columns: list[str], plain: Collection[str] = (), raw: Collection[str] = (),
                    order_by: str | None = None) -> str:
    """SQL aggregate: a chunk's digest (16 hex digits, NULL for no rows) over its rows' texts (the text a
    row hash is taken of) joined by commas in the order the rows arrive (or sorted by ``order_by``): one
    SHA-256 per chunk instead of one per row. Only for tables whose chunk text cannot exceed
    TEXT_DIGEST_MAX (``max_text_len``), far below the DIGEST_MAX_LEN where GROUP_CONCAT would cut it."""
    order = f" ORDER BY {quote_ident(order_by)}" if order_by else ""
    return f"LEFT(SHA2(GROUP_CONCAT(CONCAT_WS(',', {_parts(columns, plain, raw)}){order} SEPARATOR ','), 256), 16)"


# the longest text a value of a type can have QUOTE()d (where information_schema gives no octet length)
_QUOTED_MAX = {"decimal": 70, "numeric": 70, "float": 30, "double": 30, "real": 30, "bit": 20, "year": 6,
               "date": 14, "time": 20, "datetime": 30, "timestamp": 30, "bool": 6, "boolean": 6}


def max_text_len(columns: Iterable[tuple[str, str, int | None]], plain: Collection[str] = (),
                 raw: Collection[str] = ()) -> int | None:
    """The longest row text (plus its separator) a table's columns allow, from (name, column_type,
    character_octet_length) triples; None when a column has no bound (JSON, spatial types)."""
    total = 0
    for name, ctype, octets in columns:
        base = _base_type(ctype)
        if name in plain:
            total += 21
        elif name in raw and octets is not None:
            total += 11 + int(octets) + 1
        elif octets is not None:
            total += 2 * int(octets) + 3  # QUOTE() escapes at most every byte, and adds the quotes
        elif base in _QUOTED_MAX:
            total += _QUOTED_MAX[base] + 1
        else:
            return None
    return total + 1


def chunk_text_digest(rows: Iterable[Iterable[Any]], plain: Collection[int] = (),
                      raw: Collection[int] = ()) -> tuple[int, int]:
    """(count, digest) of rows in id order: a chunk as ``text_digest_sql`` computes it (Python mirror)."""
    texts = [row_text(r, plain, raw) for r in rows]
    return len(texts), int(hashlib.sha256(b",".join(texts)).hexdigest()[:16], 16)


def quote_value(value: Any) -> str:
    """Python mirror of the server's QUOTE() for str, bytes-free values, numbers and None."""
    if value is None:
        return "NULL"
    text = str(value)
    for a, b in (("\\", "\\\\"), ("'", "\\'"), ("\0", "\\0"), ("\x1a", "\\Z")):
        text = text.replace(a, b)
    return f"'{text}'"


def _raw_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def row_text(values: Iterable[Any], plain: Collection[int] = (), raw: Collection[int] = ()) -> bytes:
    """Python mirror of the text ``row_hex_sql`` hashes (utf8mb4 strings), by column position."""
    vals = list(values)
    head = [("NULL" if v is None else str(v)) if i in plain else ("-1" if v is None else str(len(_raw_bytes(v))))
            for i, v in enumerate(vals) if i in plain or i in raw]
    tail = [_raw_bytes(v) if i in raw else quote_value(v).encode("utf-8")
            for i, v in enumerate(vals) if i not in plain and not (i in raw and v is None)]
    return b",".join([h.encode("ascii") for h in head] + tail)


def row_hash(values: Iterable[Any], plain: Collection[int] = (), raw: Collection[int] = ()) -> int:
    """Python mirror of ``row_hash_sql`` (unit tests and recorded data): the same 64 bits for the same row.
    ``plain``, ``raw``: positions of the integer and raw string columns."""
    return int(hashlib.sha256(row_text(values, plain, raw)).hexdigest()[:16], 16)


def chunk_digest(hashes: Iterable[int]) -> tuple[int, int]:
    """(count, digest) of row hashes in id order: a chunk as ``digest_sql`` computes it."""
    text = "".join(f"{h:016x}" for h in hashes)
    return len(text) // 16, int(hashlib.sha256(text.encode("ascii")).hexdigest()[:16], 16)


def chunk_of(hashes: Iterable[int], keyed: bool = True) -> tuple[int, int]:
    """(count, XOR) of row hashes, or (count, sum) for a keyless table: a chunk the server groups."""
    count = total = 0
    for h in hashes:
        count += 1
        total = total ^ h if keyed else total + h
    return count, total


def combine(chunks: Iterable[tuple[int, int]], keyed: bool = True) -> int:
    """One 64-bit value from chunks (count, XOR or sum)."""
    total = 0
    for _, v in chunks:
        total = total ^ v if keyed else (total + v) % HASH_MOD
    return total


def table_checksum(chunks: Iterable[tuple[int, int]], keyed: bool = True) -> str:
    """A table's checksum from its chunks: 16 hex digits."""
    return f"{combine(chunks, keyed):016x}"


def aggregate_sql(columns: list[str], keyed: bool, plain: Collection[str] = (), raw: Collection[str] = ()) -> str:
    """SQL aggregate of the row hashes of a chunk the server groups (XOR for keyed tables, SUM otherwise)."""
    return f"{'BIT_XOR' if keyed else 'SUM'}({row_hash_sql(columns, plain, raw)})"


def _base_type(ctype: str) -> str:
    return ctype.split("(")[0].split()[0].lower()


def integer_columns(columns: Iterable[tuple[str, str]]) -> set[str]:
    """Names of the integer-typed columns among (name, column_type) pairs."""
    return {name for name, ctype in columns if _base_type(ctype) in INT_TYPES}


def raw_columns(columns: Iterable[tuple[str, str, str | None]]) -> set[str]:
    """The string columns to hash raw, among (name, column_type, character_set) triples: all of them when
    every column is an integer or a string and the character columns share one character set (so no
    value is converted and its byte length holds); else none."""
    cols = list(columns)
    kinds = [_base_type(t) for _, t, _ in cols]
    if any(k not in INT_TYPES and k not in STRING_TYPES for k in kinds):
        return set()
    if len({cs for _, _, cs in cols if cs}) > 1:
        return set()
    return {name for (name, _, _), k in zip(cols, kinds, strict=True) if k in STRING_TYPES}


def diff_row_hashes(primary: dict[int, int], node: dict[int, int]) -> tuple[list[int], list[int], list[int]]:
    """(missing, extra, changed) ids between two {id: row hash} maps. Pure."""
    missing = sorted(i for i in primary if i not in node)
    extra = sorted(i for i in node if i not in primary)
    changed = sorted(i for i in primary if i in node and primary[i] != node[i])
    return missing, extra, changed


def differing_chunks(primary: dict[int, tuple[int, int]], node: dict[int, tuple[int, int]]) -> list[int]:
    """Chunk numbers whose (count, checksum) differ. Pure."""
    return sorted(c for c in set(primary) | set(node) if primary.get(c) != node.get(c))
