"""Row hashes and chunk checksums for ``check`` (and ``repair``): the SQL the servers run and its Python
mirror, so the construction is unit-tested on recorded rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from typing import Any

from .config import quote_ident

# A row hashes to the first 64 bits of SHA-256 over its columns, each QUOTE()d and joined by ','. QUOTE()
# returns the bare word NULL for NULL and a '...' literal with ' and \ escaped for every value, so the
# joined text parses back into exactly one tuple: NULL, 'NULL' and '' differ, and ('x#1', 2) cannot meet
# ('x', '1#2') as they do under CONCAT_WS('#'). The primary key is one of the columns, so equal contents
# at different ids hash differently. Columns of an integer type (on the primary) go in as plain numbers,
# IFNULL(c, 'NULL'): digits and '-' only, never a quote or a comma, so the text stays unambiguous; the
# same expression runs on every node, whatever type the column has there (the schema diff reports a
# changed type). That skips QUOTE()'s conversion and copy: about 10% of the hashing time.
#
# A chunk is (COUNT, BIT_XOR of row hashes) for a table with an integer primary key, (COUNT, SUM) for
# one without; a table's checksum combines its chunks the same way (XOR, or the sum mod 2^64). CRC32 +
# BIT_XOR, the construction pt-table-checksum uses, is linear: CRC(a) ^ CRC(a') depends only on a ^ a'
# for equal lengths, so two rows changed by the same bit pattern (a column shift, two values swapped
# between rows) cancel out exactly. SHA-256 is not linear: a set of row changes cancels only if the XOR
# of their hash differences happens to be 0, a chance of 2^-64 per chunk. XOR does cancel a row present
# twice; rows of a keyed table are distinct (the key is hashed), and a keyless table gets an exact SUM,
# which does not (the sum is a little slower to compute, hence not used everywhere).
HASH_MOD = 1 << 64
INT_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")


def row_hash_sql(columns: list[str], plain: Collection[str] = ()) -> str:
    """SQL expression: a row's 64-bit hash over ``columns`` (an unsigned BIGINT); ``plain``: the integer
    columns, written as numbers. MariaDB and MySQL alike."""
    parts = ", ".join(f"IFNULL({quote_ident(c)}, 'NULL')" if c in plain else f"QUOTE({quote_ident(c)})"
                      for c in columns)
    # SHA2 measured faster than MD5 on MariaDB 10.11 (1.2 s vs 1.9 s per million rows)
    return f"CAST(CONV(LEFT(SHA2(CONCAT_WS(',', {parts}), 256), 16), 16, 10) AS UNSIGNED)"


def quote_value(value: Any) -> str:
    """Python mirror of the server's QUOTE() for str, bytes-free values, numbers and None."""
    if value is None:
        return "NULL"
    text = str(value)
    for a, b in (("\\", "\\\\"), ("'", "\\'"), ("\0", "\\0"), ("\x1a", "\\Z")):
        text = text.replace(a, b)
    return f"'{text}'"


def row_hash(values: Iterable[Any], plain: Collection[int] = ()) -> int:
    """Python mirror of ``row_hash_sql`` (unit tests and recorded data): the same 64 bits for the same row.
    ``plain``: positions of the integer columns."""
    text = ",".join("NULL" if v is None else str(v) if i in plain else quote_value(v) for i, v in enumerate(values))
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


def chunk_of(hashes: Iterable[int], keyed: bool = True) -> tuple[int, int]:
    """(count, XOR) of row hashes, or (count, sum) for a keyless table: a chunk as the server computes it."""
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


def aggregate_sql(columns: list[str], keyed: bool, plain: Collection[str] = ()) -> str:
    """SQL aggregate of the row hashes of a chunk (see above: XOR for keyed tables, SUM otherwise)."""
    return f"{'BIT_XOR' if keyed else 'SUM'}({row_hash_sql(columns, plain)})"


def integer_columns(columns: Iterable[tuple[str, str]]) -> set[str]:
    """Names of the integer-typed columns among (name, column_type) pairs."""
    return {name for name, ctype in columns if ctype.split("(")[0].split()[0].lower() in INT_TYPES}



def diff_row_hashes(primary: dict[int, int], node: dict[int, int]) -> tuple[list[int], list[int], list[int]]:
    """(missing, extra, changed) ids between two {id: row hash} maps. Pure."""
    missing = sorted(i for i in primary if i not in node)
    extra = sorted(i for i in node if i not in primary)
    changed = sorted(i for i in primary if i in node and primary[i] != node[i])
    return missing, extra, changed


def differing_chunks(primary: dict[int, tuple[int, int]], node: dict[int, tuple[int, int]]) -> list[int]:
    """Chunk numbers whose (count, checksum) differ. Pure."""
    return sorted(c for c in set(primary) | set(node) if primary.get(c) != node.get(c))
