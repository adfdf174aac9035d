"""GtidSet on recorded positions of both flavors: gaps, tags, contains, subtract, count."""

from __future__ import annotations

import pytest

from replab.servers.gtid import GtidParseError, GtidSet, transactions_between

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "d1ba5e13-e7a0-11f1-b962-02fc00000001"


def test_mysql_sets_with_gaps_and_several_sources():
    s = GtidSet.parse(f"{U1}:1-5:7-9,\n{U2}:1-3")
    assert s.flavor == "mysql" and s.count() == 11
    assert str(s) == f"{U1}:1-5:7-9,{U2}:1-3"
    full = GtidSet.parse(f"{U1}:1-9,{U2}:1-3")
    assert full.contains(s) and not s.contains(full)
    assert str(full - s) == f"{U1}:6" and (full - s).count() == 1
    assert not (s - full)


def test_mysql_single_numbers_merge_and_tags():
    s = GtidSet.parse(f"{U1}:1:2:3-4:6")
    assert s.sources[U1] == [(1, 4), (6, 6)]
    tagged = GtidSet.parse(f"{U1}:replab:1-3,{U1}:1-2")
    assert tagged.count() == 5 and f"{U1}:replab" in tagged.sources


def test_mariadb_positions_compare_per_domain():
    primary = GtidSet.parse("0-1-100,1-1-5")
    replica = GtidSet.parse("0-1-90,1-1-5")
    assert primary.contains(replica) and not replica.contains(primary)
    assert (primary - replica).count() == 10
    # a seqno written by another server in the same domain still counts as "up to N applied"
    assert GtidSet.parse("0-2-101").contains(GtidSet.parse("0-1-100"))
    assert transactions_between("0-1-10", "0-2-25,1-1-3") == 18


def test_transactions_between_mysql_counts_only_the_missing():
    assert transactions_between(f"{U1}:1-3", f"{U1}:1-10") == 7
    assert transactions_between(f"{U1}:1-3:5", f"{U1}:1-10") == 6
    assert transactions_between("", f"{U1}:1-10,{U2}:1-2") == 12
    assert transactions_between(f"{U1}:1-10", f"{U1}:1-10") == 0


@pytest.mark.parametrize("text", ["garbage", f"{U1}", f"{U1}:5-2", "0-1", f"{U1}:1-3,0-1-5", "0-1-x"])
def test_bad_sets_are_refused(text):
    with pytest.raises(GtidParseError):
        GtidSet.parse(text)


def test_describe_names_sources():
    assert GtidSet.parse("0-4-13").describe() == "domain 0, server_id 4: #1-13"
    assert GtidSet.parse(f"{U1}:7").describe() == f"server uuid {U1}: #7"
    assert GtidSet.parse("").describe() == "none" and not GtidSet.parse("")
