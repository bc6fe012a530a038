"""One test per SCD2 rule (issue 3), expected tables written out by hand."""

from __future__ import annotations

import re

import pytest
from chispa import assert_df_equality
from delta.exceptions import ConcurrentAppendException
from delta.tables import DeltaTable

from lakehouse.scd2 import (
    SCD2ConflictError,
    SCD2InvariantError,
    SCD2SchemaError,
    SCD2Spec,
    SCD2SpecError,
    apply_scd2,
    check_scd2_invariants,
    default_merge_conf,
    read_as_of,
)
from lakehouse.scd2 import apply as apply_mod
from lakehouse.scd2 import schema as schema_mod
from lakehouse.scd2.merge import ADVISORY_SIZE_KEY, SHJ_THRESHOLD_KEY
from lakehouse.writes.retry import RetryExhaustedError, RetryPolicy

FEED = "id string, v string, w string, op string, seq int"
TABLE = "id string, v string, w string, valid_from int, valid_to int, is_current boolean"
SPEC = SCD2Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'")


def feed(spark, rows, schema=FEED):
    return spark.createDataFrame(rows, schema)


def table(spark, path):
    return spark.read.format("delta").load(path)


def expect(spark, rows, schema=TABLE):
    return spark.createDataFrame(rows, schema)


def same(actual, expected):
    assert_df_equality(
        actual.select(*expected.columns),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert sorted(actual.columns) == sorted(expected.columns)


def version(spark, path):
    return DeltaTable.forPath(spark, path).history(1).first()["version"]


# 1 + 2 -----------------------------------------------------------------------------


def test_change_detection_is_null_safe(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [
        ("a", None, "p", "U", 1),
        ("a", "x", "p", "U", 2),  # NULL -> x opens
        ("a", "x", "p", "U", 3),  # no change
        ("a", None, "p", "U", 4),  # x -> NULL opens
        ("a", None, "p", "U", 5),  # NULL -> NULL does not
    ]
    res = apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", None, "p", 1, 2, False),
                ("a", "x", "p", 2, 4, False),
                ("a", None, "p", 4, None, True),
            ],
        ),
    )
    assert (res.metrics["inserted"], res.metrics["unchanged"], res.metrics["events"]) == (3, 2, 5)


def test_untracked_columns_update_the_version_in_effect(spark, tmp_path):
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="seq", track=["v"], delete_when="op = 'D'")
    apply_scd2(spark, path, feed(spark, [("a", "x", "p", "U", 1)]), spec)
    res = apply_scd2(
        spark,
        path,
        feed(spark, [("a", "x", "q", "U", 2), ("b", "y", "r", "U", 2)]),
        spec,
    )
    same(
        table(spark, path),
        expect(spark, [("a", "x", "q", 1, None, True), ("b", "y", "r", 2, None, True)]),
    )
    assert (res.metrics["inserted"], res.metrics["updated"], res.metrics["unchanged"]) == (1, 1, 1)
    apply_scd2(spark, path, feed(spark, [("a", "z", "s", "U", 3)]), spec)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", "x", "q", 1, 3, False),
                ("a", "z", "s", 3, None, True),
                ("b", "y", "r", 2, None, True),
            ],
        ),
    )


# 3 ---------------------------------------------------------------------------------


def test_several_events_for_a_key_in_one_batch_make_the_full_chain(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [("a", "z", None, "U", 30), ("a", "x", None, "U", 10), ("a", "y", None, "U", 20)]
    res = apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", "x", None, 10, 20, False),
                ("a", "y", None, 20, 30, False),
                ("a", "z", None, 30, None, True),
            ],
        ),
    )
    assert (res.metrics["inserted"], res.metrics["closed"]) == (3, 2)


# 4 ---------------------------------------------------------------------------------


def test_late_event_splits_the_enclosing_version_and_coalesces(spark, tmp_path):
    path = str(tmp_path / "t")
    apply_scd2(spark, path, feed(spark, [("a", "x", None, "U", 1), ("a", "z", None, "U", 5)]), SPEC)
    res = apply_scd2(spark, path, feed(spark, [("a", "y", None, "U", 3)]), SPEC)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", "x", None, 1, 3, False),
                ("a", "y", None, 3, 5, False),
                ("a", "z", None, 5, None, True),
            ],
        ),
    )
    assert (res.metrics["late"], res.metrics["inserted"], res.metrics["updated"]) == (1, 1, 1)
    # A late event equal to its successor absorbs it: [4, 5) z and [5, ...) z coalesce.
    res = apply_scd2(spark, path, feed(spark, [("a", "z", None, "U", 4)]), SPEC)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", "x", None, 1, 3, False),
                ("a", "y", None, 3, 4, False),
                ("a", "z", None, 4, None, True),
            ],
        ),
    )
    assert (res.metrics["removed"], res.metrics["inserted"], res.metrics["updated"]) == (1, 1, 1)
    assert check_scd2_invariants(spark, path, SPEC).ok


# 5 ---------------------------------------------------------------------------------


@pytest.mark.slow  # a long scenario (the Databricks SCD2 example test checks deletes in any batch order in the fast loop): in the full gate
def test_delete_closes_the_version_in_effect_and_a_later_event_reopens(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [
        ("a", "x", None, "U", 1),
        ("a", None, None, "D", 3),
        ("a", "y", None, "U", 5),
        ("b", None, None, "D", 2),  # delete of an unknown key: nothing to close
    ]
    res = apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(
        table(spark, path),
        expect(spark, [("a", "x", None, 1, 3, False), ("a", "y", None, 5, None, True)]),
    )
    assert "op" not in table(spark, path).columns
    assert res.metrics["deleted"] == 1
    # a late delete inside [1, 3) moves the end of that version forward
    res = apply_scd2(spark, path, feed(spark, [("a", None, None, "D", 2)]), SPEC)
    same(
        table(spark, path),
        expect(spark, [("a", "x", None, 1, 2, False), ("a", "y", None, 5, None, True)]),
    )
    assert (res.metrics["deleted"], res.metrics["late"]) == (1, 1)
    # deleting the current version closes it
    apply_scd2(spark, path, feed(spark, [("a", None, None, "D", 9)]), SPEC)
    same(
        table(spark, path),
        expect(spark, [("a", "x", None, 1, 2, False), ("a", "y", None, 5, 9, False)]),
    )
    assert check_scd2_invariants(spark, path, SPEC).ok


# 6 ---------------------------------------------------------------------------------


def test_exact_duplicates_are_dropped(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [("a", "x", None, "U", 1), ("a", "x", None, "U", 1), ("a", "y", None, "D", 2)]
    rows.append(("a", "other payload", None, "D", 2))  # deletes are equal whatever the payload
    res = apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(table(spark, path), expect(spark, [("a", "x", None, 1, 2, False)]))
    assert res.metrics["duplicates"] == 2


def test_conflicting_events_fail_and_leave_the_table_unchanged(spark, tmp_path):
    path = str(tmp_path / "t")
    apply_scd2(spark, path, feed(spark, [("a", "x", None, "U", 1)]), SPEC)
    before = version(spark, path)
    rows = [("b", "x", None, "U", 1), ("b", "y", None, "U", 1), ("c", "q", None, "U", 1)]
    with pytest.raises(SCD2ConflictError) as err:
        apply_scd2(spark, path, feed(spark, rows), SPEC)
    assert str(err.value) == (
        "1 (key, sequence) pair(s) carry different events: (id='b', seq=1); the table was "
        "not changed (pass on_conflict='quarantine' to set them aside)"
    )
    assert err.value.conflicts == (("b", 1),)
    assert version(spark, path) == before
    # an event that contradicts the stored version at the same (key, sequence) conflicts too
    with pytest.raises(SCD2ConflictError, match=r"\(id='a', seq=1\)"):
        apply_scd2(spark, path, feed(spark, [("a", "other", None, "U", 1)]), SPEC)
    assert version(spark, path) == before


def test_conflict_policy_quarantine_applies_the_rest(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [("b", "x", None, "U", 1), ("b", "y", None, "U", 1), ("c", "q", None, "U", 1)]
    res = apply_scd2(spark, path, feed(spark, rows), SPEC, on_conflict="quarantine")
    same(table(spark, path), expect(spark, [("c", "q", None, 1, None, True)]))
    reason = "conflict: different events share key and sequence"
    assert_df_equality(
        res.quarantine,
        spark.createDataFrame(
            [("b", "x", None, "U", 1, reason), ("b", "y", None, "U", 1, reason)],
            FEED + ", reason string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert (res.metrics["conflicts"], res.metrics["quarantined"]) == (2, 2)


# 7 ---------------------------------------------------------------------------------


def test_null_key_or_sequence_goes_to_quarantine(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [(None, "x", None, "U", 1), ("a", "x", None, "U", None), ("b", "y", None, "U", 2)]
    res = apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(table(spark, path), expect(spark, [("b", "y", None, 2, None, True)]))
    assert_df_equality(
        res.quarantine,
        spark.createDataFrame(
            [
                (None, "x", None, "U", 1, "null key: id"),
                ("a", "x", None, "U", None, "null sequence: seq"),
            ],
            FEED + ", reason string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert res.metrics["quarantined"] == 2


def test_composite_keys_keep_chains_apart(spark, tmp_path):
    """Keys of several columns: one id under two tenants is two chains; a NULL in any key
    column quarantines the row; a late event splits only its own chain."""
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["tenant", "id"], sequence_by="seq")
    schema = "tenant string, id string, v string, seq int"
    first = apply_scd2(
        spark,
        path,
        feed(spark, [("t1", "a", "x", 1), ("t2", "a", "y", 1), ("t1", None, "z", 1)], schema),
        spec,
    )
    assert [r["reason"] for r in first.quarantine.collect()] == ["null key: id"]
    assert (first.metrics["inserted"], first.metrics["touched_keys"]) == (2, 2)
    apply_scd2(spark, path, feed(spark, [("t1", "a", "x3", 3), ("t2", "a", "y", 2)], schema), spec)
    late = apply_scd2(spark, path, feed(spark, [("t1", "a", "x2", 2)], schema), spec)
    assert (late.metrics["late"], late.metrics["touched_keys"]) == (1, 1)
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("t1", "a", "x", 1, 2, False),
                ("t1", "a", "x2", 2, 3, False),
                ("t1", "a", "x3", 3, None, True),
                ("t2", "a", "y", 1, None, True),
            ],
            "tenant string, id string, v string, valid_from int, valid_to int, is_current boolean",
        ),
    )
    assert check_scd2_invariants(spark, path, spec).ok


# 8 ---------------------------------------------------------------------------------


def test_replaying_a_batch_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    batch = feed(
        spark,
        [("a", "x", "p", "U", 1), ("a", "y", "p", "U", 2), ("a", None, None, "D", 3)],
    )
    first = apply_scd2(spark, path, batch, SPEC)
    snapshot = table(spark, path).collect()
    again = apply_scd2(spark, path, batch, SPEC)
    assert again.table_version == first.table_version == version(spark, path)
    assert again.committed is False
    assert sorted(table(spark, path).collect()) == sorted(snapshot)
    assert (again.metrics["inserted"], again.metrics["updated"], again.metrics["removed"]) == (
        0,
        0,
        0,
    )


# 9 ---------------------------------------------------------------------------------


def test_new_column_is_added_without_opening_versions(spark, tmp_path):
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="seq")
    apply_scd2(
        spark,
        path,
        feed(spark, [("a", "x", 1), ("b", "y", 1)], "id string, v string, seq int"),
        spec,
    )
    res = apply_scd2(
        spark,
        path,
        feed(
            spark,
            [("a", "x", "new", 2), ("b", "y", None, 2)],
            "id string, v string, w string, seq int",
        ),
        spec,
    )
    same(
        table(spark, path),
        expect(
            spark,
            [
                ("a", "x", None, 1, 2, False),
                ("a", "x", "new", 2, None, True),
                ("b", "y", None, 1, None, True),
            ],
            "id string, v string, w string, valid_from int, valid_to int, is_current boolean",
        ),
    )
    assert res.new_columns == ("w",)
    assert res.metrics["inserted"] == 1


def test_narrowing_type_change_is_a_clear_error_and_widening_casts(spark, tmp_path):
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="seq")
    apply_scd2(spark, path, feed(spark, [("a", 1, 1)], "id string, n bigint, seq int"), spec)
    with pytest.raises(SCD2SchemaError) as err:
        apply_scd2(spark, path, feed(spark, [("a", "1", 2)], "id string, n string, seq int"), spec)
    assert str(err.value) == (
        "column 'n': change feed type string cannot be stored in target column 'n' of type "
        "bigint (not a widening the table allows); cast the change feed or widen the target "
        "column (Delta type widening: delta.enableTypeWidening)"
    )
    apply_scd2(spark, path, feed(spark, [("a", 2, 2)], "id string, n int, seq int"), spec)
    same(
        table(spark, path),
        expect(
            spark,
            [("a", 1, 1, 2, False), ("a", 2, 2, None, True)],
            "id string, n bigint, valid_from int, valid_to int, is_current boolean",
        ),
    )


def test_a_table_with_type_widening_takes_a_wider_feed_type(spark, tmp_path):
    # With delta.enableTypeWidening the int column becomes bigint in the MERGE itself
    # (Delta widens only with schema evolution on); without it this is SCD2SchemaError.
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="seq")
    schema = "id string, n {}, seq int"
    apply_scd2(spark, path, feed(spark, [("a", 1, 1), ("b", 1, 1)], schema.format("int")), spec)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    big = 2**40
    res = apply_scd2(
        spark, path, feed(spark, [("a", big, 2), ("b", 1, 2)], schema.format("bigint")), spec
    )
    same(
        table(spark, path),
        expect(
            spark,
            [("a", 1, 1, 2, False), ("a", big, 2, None, True), ("b", 1, 1, None, True)],
            "id string, n bigint, valid_from int, valid_to int, is_current boolean",
        ),
    )
    assert (res.metrics["inserted"], res.metrics["unchanged"]) == (1, 1)


def test_type_widening_on_a_delta_that_cannot_widen_in_a_merge_is_a_clear_error(
    spark, tmp_path, monkeypatch
):
    # Delta 3.x (Spark 3.5, EMR 7) fails such a MERGE deep in the write with a cast
    # overflow; the engine says what to do before anything is written.
    monkeypatch.setattr(schema_mod, "merge_widens_types", lambda df: False)
    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="seq")
    apply_scd2(spark, path, feed(spark, [("a", 1, 1)], "id string, n int, seq int"), spec)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    before = version(spark, path)
    with pytest.raises(SCD2SchemaError) as err:
        apply_scd2(spark, path, feed(spark, [("a", 2, 2)], "id string, n bigint, seq int"), spec)
    assert str(err.value) == (
        "column 'n': change feed type bigint is wider than target column 'n' of type int; "
        "the table allows type widening, but Delta before 4.0 does not widen a column in a "
        "MERGE: widen it first (ALTER TABLE ... ALTER COLUMN ... TYPE) or cast the change feed"
    )
    assert version(spark, path) == before


# 10 --------------------------------------------------------------------------------


def test_invariant_checker_reports_each_violation(spark, tmp_path):
    path = str(tmp_path / "bad")
    rows = [
        ("a", "x", 1, 5, False),
        ("a", "y", 3, None, True),  # overlaps [1, 5)
        ("b", "x", 1, None, False),  # is_current false but valid_to NULL
        ("c", "x", 4, 4, False),  # zero width
        ("d", "x", 1, 2, False),
        ("d", "x", 2, None, True),  # same tracked value as its predecessor: not coalesced
        ("e", "x", 1, None, True),
        ("e", "y", 2, None, True),  # two current rows, and an overlap
    ]
    spark.createDataFrame(
        rows, "id string, v string, valid_from int, valid_to int, is_current boolean"
    ).write.format("delta").save(path)
    report = check_scd2_invariants(spark, path, SCD2Spec(keys=["id"], sequence_by="seq"))
    assert dict(report.violations) == {
        "null_key_or_valid_from": 0,
        "duplicate_valid_from": 0,
        "current_flag_mismatch": 1,
        "empty_or_inverted_interval": 1,
        "overlap": 2,
        "multiple_current": 2,
        "uncoalesced": 1,
    }
    assert not report.ok
    with pytest.raises(SCD2InvariantError, match="overlap"):
        check_scd2_invariants(spark, path, SCD2Spec(keys=["id"], sequence_by="seq"), raise_=True)


# 11 --------------------------------------------------------------------------------


def test_one_commit_that_names_the_touched_keys(spark, tmp_path):
    path = str(tmp_path / "t")
    apply_scd2(spark, path, feed(spark, [("a", "x", None, "U", 1), ("b", "x", None, "U", 1)]), SPEC)
    before = version(spark, path)
    res = apply_scd2(
        spark, path, feed(spark, [("a", "y", None, "U", 2), ("a", "z", None, "U", 3)]), SPEC
    )
    assert res.table_version == before + 1
    last = DeltaTable.forPath(spark, path).history(1).first()
    assert last["operation"] == "MERGE"
    predicate = last["operationParameters"]["predicate"]
    # the touched key bounds are literals in the condition (an IN of one key folds to =)
    assert re.search(r"\(id#\d+ >= a\) AND \(id#\d+ <= a\)\) AND \(id#\d+ = a\)", predicate)
    assert int(last["operationMetrics"]["numTargetRowsUpdated"]) == 1
    assert int(last["operationMetrics"]["numTargetRowsInserted"]) == 2


@pytest.mark.slow  # a long scenario (the full gate cross-checks the fast path against the chain path): in the full gate
def test_fast_path_takes_only_keys_with_one_event_after_their_history(spark, tmp_path):
    # a: one newer event (changes v); b: one newer no-op; d: a delete after its history was
    # already closed; e: a change of w; f: a new key -- all five on the fast path. c's
    # event is late, g has two events and h's event falls inside its closed history (no
    # open version, but before the delete): those three keys go through the window chain.
    first = [
        ("a", "x", None, "U", 1),
        ("b", "x", None, "U", 1),
        ("c", "x", None, "U", 5),
        ("d", "x", None, "U", 1),
        ("d", None, None, "D", 3),
        ("e", "x", "p", "U", 1),
        ("h", "x", None, "U", 1),
        ("h", None, None, "D", 4),
    ]
    second = [
        ("a", "y", None, "U", 2),
        ("a", "y", None, "U", 2),
        ("b", "x", None, "U", 2),
        ("c", "y", None, "U", 3),
        ("d", None, None, "D", 4),
        ("e", "x", "q", "U", 2),
        ("f", "x", None, "U", 1),
        ("g", "x", None, "U", 1),
        ("g", "y", None, "U", 2),
        ("h", "y", None, "U", 2),
    ]
    fast, chain = str(tmp_path / "fast"), str(tmp_path / "chain")
    for path, on in ((fast, True), (chain, False)):
        apply_scd2(spark, path, feed(spark, first), SPEC, fast_path=on)
    res = apply_scd2(spark, fast, feed(spark, second), SPEC)
    ref = apply_scd2(spark, chain, feed(spark, second), SPEC, fast_path=False)
    expected = expect(
        spark,
        [
            ("a", "x", None, 1, 2, False),
            ("a", "y", None, 2, None, True),
            ("b", "x", None, 1, None, True),
            ("c", "y", None, 3, 5, False),
            ("c", "x", None, 5, None, True),
            ("d", "x", None, 1, 3, False),
            ("e", "x", "p", 1, 2, False),
            ("e", "x", "q", 2, None, True),
            ("f", "x", None, 1, None, True),
            ("g", "x", None, 1, 2, False),
            ("g", "y", None, 2, None, True),
            ("h", "x", None, 1, 2, False),
            ("h", "y", None, 2, 4, False),
        ],
    )
    same(table(spark, fast), expected)
    same(table(spark, chain), expected)
    want = {
        "events": 9,
        "duplicates": 1,
        "inserted": 7,
        "closed": 5,
        "updated": 3,
        "removed": 0,
        "unchanged": 2,
        "deleted": 0,
        "late": 2,
        "touched_keys": 8,
    }
    assert {k: res.metrics[k] for k in want} == want
    assert (res.metrics["fast_path_keys"], ref.metrics["fast_path_keys"]) == (5, 0)
    assert {k: v for k, v in res.metrics.items() if k != "fast_path_keys"} == {
        k: v for k, v in ref.metrics.items() if k != "fast_path_keys"
    }


def test_table_version_follows_commits_of_other_writers(spark, tmp_path):
    # The version is read from the snapshot Delta loads when the table is opened; a commit
    # by another writer in between must show, not a snapshot cached from an earlier call.
    path = str(tmp_path / "t")
    batch = feed(spark, [("a", "x", "p", "U", 1)])
    first = apply_scd2(spark, path, batch, SPEC)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('owner.note' = 'other writer')")
    again = apply_scd2(spark, path, batch, SPEC)
    assert again.committed is False
    assert again.table_version == first.table_version + 1 == version(spark, path)
    moved = apply_scd2(spark, path, feed(spark, [("a", "y", "p", "U", 2)]), SPEC)
    assert moved.table_version == first.table_version + 2 == version(spark, path)


def test_merge_runs_with_its_settings_and_gives_the_session_back(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    key = SHJ_THRESHOLD_KEY
    apply_scd2(spark, path, feed(spark, [("a", "x", None, "U", 1)]), SPEC)
    before = spark.conf.get(key)
    seen = []
    real = apply_mod.merge_difference

    def spy(*args, **kwargs):
        seen.append(spark.conf.get(key))
        return real(*args, **kwargs)

    monkeypatch.setattr(apply_mod, "merge_difference", spy)
    apply_scd2(spark, path, feed(spark, [("a", "y", None, "U", 2)]), SPEC)
    advisory = spark.conf.get(ADVISORY_SIZE_KEY)
    assert seen == [advisory] and advisory != before
    assert spark.conf.get(key) == before
    apply_scd2(spark, path, feed(spark, [("a", "z", None, "U", 3)]), SPEC, merge_conf={})
    assert seen[-1] == before
    spark.conf.set(key, "128m")  # a session's own choice is kept
    try:
        assert default_merge_conf(spark) == {}
    finally:
        spark.conf.unset(key)
    assert table(spark, path).where("is_current").select("v").first()["v"] == "z"


def test_concurrent_modification_is_retried_then_surfaced(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    real = apply_mod._apply_once
    calls = {"n": 0}
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay_s=1.0, max_delay_s=1.5, sleep=sleeps.append)

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConcurrentAppendException(message="simulated concurrent append")
        return real(*args, **kwargs)

    monkeypatch.setattr(apply_mod, "_apply_once", flaky)
    res = apply_scd2(spark, path, feed(spark, [("a", "x", None, "U", 1)]), SPEC, retry=policy)
    assert (res.metrics["retries"], calls["n"]) == (1, 2)
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 1.0  # jittered, within base * 2**0

    def always(*args, **kwargs):
        calls["n"] += 1
        raise ConcurrentAppendException(message="simulated concurrent append")

    calls["n"] = 0
    sleeps.clear()
    monkeypatch.setattr(apply_mod, "_apply_once", always)
    with pytest.raises(RetryExhaustedError) as err:
        apply_scd2(spark, path, feed(spark, [("a", "y", None, "U", 2)]), SPEC, retry=policy)
    assert str(err.value) == (
        f"apply_scd2 into {path}: gave up after 3 attempts, each hit a Delta commit "
        "conflict; last: ConcurrentAppendException: simulated concurrent append"
    )
    assert isinstance(err.value.__cause__, ConcurrentAppendException)
    assert calls["n"] == 3
    assert len(sleeps) == 2 and 0.0 <= sleeps[1] <= 1.5  # capped at max_delay_s


def test_other_errors_are_not_retried(spark, tmp_path, monkeypatch):
    calls = {"n": 0}

    def broken(*args, **kwargs):
        calls["n"] += 1
        raise RuntimeError("not a conflict")

    monkeypatch.setattr(apply_mod, "_apply_once", broken)
    with pytest.raises(RuntimeError, match=r"^not a conflict$"):
        apply_scd2(spark, str(tmp_path / "t"), feed(spark, [("a", "x", None, "U", 1)]), SPEC)
    assert calls["n"] == 1


# reader and spec -------------------------------------------------------------------


def test_read_as_of_returns_the_versions_in_effect(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [
        ("a", "x", None, "U", 1),
        ("a", "y", None, "U", 5),
        ("b", "q", None, "U", 2),
        ("b", None, None, "D", 4),
    ]
    apply_scd2(spark, path, feed(spark, rows), SPEC)
    same(read_as_of(spark, path, SPEC, 4), expect(spark, [("a", "x", None, 1, 5, False)]))
    same(
        read_as_of(spark, path, SPEC, 3),
        expect(spark, [("a", "x", None, 1, 5, False), ("b", "q", None, 2, 4, False)]),
    )


def test_spec_and_feed_errors_name_what_is_wrong(spark, tmp_path):
    with pytest.raises(SCD2SpecError) as err:
        SCD2Spec(keys=["id"], sequence_by="seq", track=["seq"])
    assert str(err.value) == (
        "SCD2Spec.track: key and sequence columns cannot be tracked, found ['seq']"
    )
    bad_feed = spark.createDataFrame([("a", 1)], "id string, ts int")
    with pytest.raises(SCD2SpecError) as err:
        apply_scd2(spark, str(tmp_path / "t"), bad_feed, SPEC)
    assert str(err.value) == "change feed lacks key/sequence column(s) ['seq']; it has ['id', 'ts']"
