"""The row hash and chunk combination against adversarial divergences (no servers).

Each case is a primary table and a replica table that differ; the check must name exactly the row ids
that differ, under each row encoding (every value QUOTE()d; integers plain; integers plain and strings
raw after their lengths). ``old_chunk`` recomputes the construction replab used before (and pt-table-checksum uses):
``BIT_XOR(CRC32(CONCAT_WS('#', cols..., CONCAT(ISNULL(col)...))))``; each case asserts that it really is
adversarial, i.e. that construction sees nothing (or less than everything).
"""

from __future__ import annotations

import hashlib
import zlib

import pytest

from replab.verify.checker import CHUNK_IDS
from replab.verify.rowhash import (
    TEXT_DIGEST_MAX,
    chunk_digest,
    chunk_of,
    chunk_text_digest,
    diff_row_hashes,
    differing_chunks,
    integer_columns,
    max_text_len,
    quote_value,
    raw_columns,
    row_hash,
    row_text,
    table_checksum,
)

Row = tuple


def _old_row(row: Row) -> int:
    text = "#".join(str(v) for v in row if v is not None)  # CONCAT_WS skips NULLs
    flags = "".join("1" if v is None else "0" for v in row)
    return zlib.crc32(f"{text}#{flags}".encode())


def old_chunk(rows: dict[int, Row]) -> tuple[int, int]:
    x = 0
    for r in rows.values():
        x ^= _old_row(r)
    return len(rows), x


# (plain, raw) positions: how the checker encodes a row of each case's tables, by their column types
ENCODINGS = {"quoted": lambda row: ((), ()),
             "plain": lambda row: ({0}, ()),
             "raw": lambda row: ({0}, {i for i in range(1, len(row))})}


def find(primary: dict[int, Row], replica: dict[int, Row], encoding: str = "quoted",
         digest: bool | str = True) -> tuple[list[int], list[int], list[int]]:
    """What the checker does: chunk digests (of the rows' texts, of their hashes, or BIT_XOR) per CHUNK_IDS
    ids, in id order, then row hashes in the chunks that differ."""
    plain, raw = ENCODINGS[encoding](next(iter(primary.values())))

    def h(r: Row) -> int:
        return row_hash(r, plain, raw)

    def chunks(rows: dict[int, Row]) -> dict[int, tuple[int, int]]:
        by: dict[int, list[int]] = {}
        texts: dict[int, list[Row]] = {}
        for i in sorted(rows):
            by.setdefault(i // CHUNK_IDS, []).append(h(rows[i]))
            texts.setdefault(i // CHUNK_IDS, []).append(rows[i])
        if digest == "text":
            return {c: chunk_text_digest(rs, plain, raw) for c, rs in texts.items()}
        return {c: chunk_digest(hs) if digest else chunk_of(hs) for c, hs in by.items()}

    bad = differing_chunks(chunks(primary), chunks(replica))
    missing: list[int] = []
    extra: list[int] = []
    changed: list[int] = []
    for c in bad:
        def part(rows: dict[int, Row], c: int = c) -> dict[int, int]:
            return {i: h(r) for i, r in rows.items() if i // CHUNK_IDS == c}

        m, e, ch = diff_row_hashes(part(primary), part(replica))
        missing += m
        extra += e
        changed += ch
    return missing, extra, changed


def feed_rows(n: int) -> dict[int, Row]:
    return {i: (i, f"some-event-{i}", i * 10, f"some-descr-{i}") for i in range(1, n + 1)}


def with_changes(rows: dict[int, Row], **changes: Row) -> dict[int, Row]:
    out = dict(rows)
    for key, row in changes.items():
        out[int(key[1:])] = row
    return out


BASE = feed_rows(30)
ABC = {i: (i, f"A{i % 10}", f"B{i % 10}", f"C{i % 10}") for i in range(1, 30)}


def shifted(rows: dict[int, Row], ids: list[int]) -> tuple[dict[int, Row], dict[int, Row]]:
    """A replica that dropped middle column a: rows applied afterwards hold (id, a, b) in (id, b, c).
    Compared over the shared columns (id, b, c)."""
    primary = {i: (r[0], r[2], r[3]) for i, r in rows.items()}
    replica = dict(primary)
    for i in ids:
        replica[i] = (rows[i][0], rows[i][1], rows[i][2])
    return primary, replica


# (name, primary rows, replica rows, expected changed ids)
CASES = [
    ("same bit pattern in two rows (counter 10->11, 20->21)", BASE,
     with_changes(BASE, r1=(1, "some-event-1", 11, "some-descr-1"), r2=(2, "some-event-2", 21, "some-descr-2")),
     [1, 2]),
    ("values swapped between two rows", BASE,
     with_changes(BASE, r3=(3, "some-event-4", 30, "some-descr-3"), r4=(4, "some-event-3", 40, "some-descr-4")),
     [3, 4]),
    ("'#' inside values: ('x#1', 2, 'd') vs ('x', 1, '2#d')",
     {7: (7, "x#1", 2, "d")}, {7: (7, "x", 1, "2#d")}, [7]),
    ("NULL vs the string 'NULL'", {8: (8, None, 1, "d")}, {8: (8, "NULL", 1, "d")}, [8]),
    ("NULL vs ''", {9: (9, None, 1, "d")}, {9: (9, "", 1, "d")}, [9]),
    ("'' vs the string 'NULL'", {10: (10, "", 1, "d")}, {10: (10, "NULL", 1, "d")}, [10]),
    ("NULL vs the dump marker '\\N'", {11: (11, None, 1, "d")}, {11: (11, "\\N", 1, "d")}, [11]),
    ("a quote and comma inside a value: (\"a','b\") vs ('a', 'b')", {12: (12, "a','b", "c")},
     {12: (12, "a", "b','c")}, [12]),
    ("a trailing backslash moved to the next value", {13: (13, "a\\", "b")}, {13: (13, "a", "\\b")}, [13]),
    ("column shift after a replica-only drop of a middle column, two rows", *shifted(ABC, [21, 22]), [21, 22]),
]


@pytest.mark.parametrize("digest", ["text", True, False], ids=["text_digest", "digest", "bit_xor"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize(("name", "primary", "replica", "changed"), CASES, ids=[c[0] for c in CASES])
def test_adversarial_divergence_is_found_by_row_id(name, primary, replica, changed, encoding, digest):
    assert find(primary, replica, encoding, digest) == ([], [], changed), name


def test_the_cases_are_adversarial_for_the_linear_construction():
    """Under CRC32 + BIT_XOR these cases cancel (or collide) at the chunk level: nothing would be narrowed."""
    blind = [name for name, p, r, _ in CASES if old_chunk(p) == old_chunk(r)]
    assert blind == ["same bit pattern in two rows (counter 10->11, 20->21)", "values swapped between two rows",
                     "'#' inside values: ('x#1', 2, 'd') vs ('x', 1, '2#d')",
                     "column shift after a replica-only drop of a middle column, two rows"]
    # the observation: a third shifted row makes the old construction notice (odd count)
    p, r = shifted(ABC, [21, 22, 23])
    assert old_chunk(p) != old_chunk(r)
    assert find(p, r) == ([], [], [21, 22, 23])


def test_duplicated_rows_do_not_cancel_in_a_sum():
    """Tables without a key: XOR cancels a row present twice, a sum does not (same count on both sides)."""
    a, b, c = (row_hash(r) for r in ((1, "a"), (2, "b"), (3, "c")))
    primary, replica = [a, b, c, c], [a, b, b, b]
    assert chunk_of(primary) == chunk_of(replica)  # what BIT_XOR cannot tell apart: why keyless tables sum
    assert chunk_of(primary, keyed=False) != chunk_of(replica, keyed=False)
    assert chunk_of(primary, keyed=False)[0] == chunk_of(replica, keyed=False)[0] == 4


def test_missing_and_extra_rows_named():
    primary = feed_rows(25_000)
    replica = dict(primary)
    del replica[17]
    del replica[19_999]
    replica[24_001] = (24_001, "rogue", 1, "x")
    del primary[24_001]
    assert find(primary, replica) == ([17, 19_999], [24_001], [])


def test_quote_value_and_checksum():
    assert [quote_value(v) for v in (None, "NULL", "", 5, "it's", "a\\b", "\0", "\x1a")] == \
        ["NULL", "'NULL'", "''", "'5'", "'it\\'s'", "'a\\\\b'", "'\\0'", "'\\Z'"]
    h = row_hash((1, "some-event-1", 1, "some-descr-1"))
    assert 0 <= h < 2 ** 64 and row_hash((1, "some-event-1", 1, "some-descr-1")) == h
    assert table_checksum([(1, 2 ** 64 + 5), (2, 10)], keyed=False) == f"{15:016x}"
    assert table_checksum([(1, 5), (2, 12)]) == f"{9:016x}"


def test_integer_columns_hash_as_plain_numbers_unambiguously():
    assert integer_columns([("id", "int(11)"), ("n", "bigint(20) unsigned"), ("s", "varchar(5)"),
                            ("d", "decimal(5,2)")]) == {"id", "n"}
    plain = {0, 2}
    rows = [(1, "a", 5), (1, "a", None), (1, "a", 0), (1, "NULL", None), (1, None, None), (15, "a", 5),
            (1, "5a", 5), (-1, "a", 5)]
    assert len({row_hash(r, plain) for r in rows}) == len(rows)
    assert row_hash((1, "a", 5), plain) != row_hash((1, "a", 5))  # a different (still unambiguous) text


def test_raw_strings_split_by_their_byte_lengths():
    """Raw strings carry their lengths in bytes ahead of them: no two of these rows share a text."""
    raw = {1, 2}
    rows = [(1, "ab", "c"), (1, "a", "bc"), (1, "a,b", "c"), (1, "a", "b,c"), (1, None, "x"), (1, "x", None),
            (1, "", None), (1, None, ""), (1, None, None), (1, "", ""), (1, "-1", None), (1, "é", "e"),
            (1, "e", "é"), (1, "1,1", ""), (1, "NULL", None), (11, "", ""), (1, "1", "")]
    texts = [row_text(r, {0}, raw) for r in rows]
    assert len(set(texts)) == len(rows)
    assert texts[:2] == [b"1,2,1,ab,c", b"1,1,2,a,bc"]
    assert texts[4] == b"1,-1,1,x" and texts[11] == b"1,2,1,\xc3\xa9,e"
    assert len({row_hash(r, {0}, raw) for r in rows}) == len(rows)


def test_raw_columns_only_when_no_value_is_converted():
    utf8 = [("id", "int(11)", None), ("name", "varchar(255)", "utf8mb4"), ("d", "text", "utf8mb4"),
            ("b", "varbinary(16)", None), ("l", "longblob", None), ("c", "char(3)", "utf8mb4")]
    assert raw_columns(utf8) == {"name", "d", "b", "l", "c"}
    assert raw_columns([*utf8, ("x", "varchar(5)", "latin1")]) == set()  # CONCAT_WS would convert one
    assert raw_columns([*utf8, ("t", "datetime", None)]) == set()  # every other type: all QUOTE()d
    assert raw_columns([*utf8, ("e", "enum('a','b')", "utf8mb4")]) == set()
    assert raw_columns([("id", "bigint(20) unsigned", None)]) == set()


def test_digest_is_over_row_hashes_in_order():
    hs = [row_hash((i, f"v{i}")) for i in range(5)]
    count, digest = chunk_digest(hs)
    assert count == 5 and 0 <= digest < 2 ** 64
    assert chunk_digest(hs) == (count, digest)
    assert chunk_digest(hs[::-1])[1] != digest  # the order is part of it: the checker reads in id order
    assert chunk_digest(hs[:4])[1] != digest and chunk_digest([*hs, hs[0]])[1] != digest


def test_text_digest_is_over_row_texts_in_order():
    rows = [(i, f"v{i}", None if i % 2 else "x") for i in range(5)]
    plain, raw = {0}, {1, 2}
    count, digest = chunk_text_digest(rows, plain, raw)
    assert count == 5 and 0 <= digest < 2 ** 64
    assert chunk_text_digest(rows[::-1], plain, raw)[1] != digest  # the checker reads in id order
    assert chunk_text_digest(rows[:4], plain, raw)[1] != digest
    # a value that holds what looks like the next row's text: the lengths in the header tell them apart
    joined = [(1, "a,2,1,b", None), (2, "c", None)]
    split = [(1, "a", None), (2, "1,b,2,1,c", None)]
    assert chunk_text_digest(joined, plain, raw) != chunk_text_digest(split, plain, raw)
    assert chunk_text_digest([(1, "a", None)], plain, raw)[1] == int(hashlib.sha256(b"1,1,-1,a").hexdigest()[:16], 16)


def test_max_text_len_bounds_a_row_text_or_says_none():
    cols = [("id", "bigint(20)", None), ("name", "varchar(255)", 1020), ("counter", "int(11)", None),
            ("d", "decimal(65,30)", None), ("t", "datetime(6)", None)]
    plain = {"id", "counter"}
    # raw strings: the length in the header, the bytes in the tail; QUOTE()d: every byte escaped, quotes
    assert max_text_len(cols[:3], plain, {"name"}) == 21 + (11 + 1020 + 1) + 21 + 1
    assert max_text_len(cols, plain, ()) == 21 + (2 * 1020 + 3) + 21 + 71 + 31 + 1
    assert max_text_len([*cols, ("j", "json", None)], plain, ()) is None  # no bound: the row hashes' digest
    worst = [-(2 ** 63), "\\" * 255, -(2 ** 31)]  # 255 backslashes: 510 bytes QUOTE()d, plus the quotes
    assert len(row_text(worst, {0, 2})) + 1 <= max_text_len(cols[:3], plain, ()) == 21 + 2043 + 21 + 1


def test_which_tables_get_the_text_digest():
    """The events table's chunk texts are bounded well below TEXT_DIGEST_MAX; a TEXT column's are not (its
    chunks get the digest of row hashes)."""
    events = [("id", "int(11)", None), ("name", "varchar(64)", 256), ("counter", "int(11)", None),
              ("description", "varchar(255)", 1020)]
    plain, raw = {"id", "counter"}, {"name", "description"}
    assert max_text_len(events, plain, raw) * CHUNK_IDS == 1343 * 25_000 <= TEXT_DIGEST_MAX
    assert max_text_len([*events, ("note", "text", 65535)], plain, {*raw, "note"}) * CHUNK_IDS > TEXT_DIGEST_MAX
