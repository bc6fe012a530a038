"""SCD type 1 (issue 26, items 2 and 5): the latest event wins, in any batch order."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from delta.tables import DeltaMergeBuilder, DeltaTable

from lakehouse.cdc import SCD1Spec, apply_scd1
from lakehouse.scd2 import SCD2ConflictError, SCD2SpecError
from lakehouse.scd2.merge import ADVISORY_SIZE_KEY, SHJ_THRESHOLD_KEY

FEED = "id string, v string, op string, seq int"
SPEC = SCD1Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'", truncate_when="op = 'T'")
prop = importlib.import_module("tests.unit.scd2.test_scd2_property")


def apply(spark, path, rows, **kw):
    return apply_scd1(spark, path, spark.createDataFrame(rows, FEED), SPEC, **kw)


def rows(spark, path):
    got = spark.read.format("delta").load(path).select("id", "v", "seq").collect()
    return sorted(tuple(r) for r in got)


def commits(spark, path):
    return DeltaTable.forPath(spark, path).history().count()


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_databricks_scd1_example(spark, tmp_path):
    # The userId / name / city / operation / sequenceNum feed of the AUTO CDC docs.
    feed = "userId int, name string, city string, operation string, sequenceNum int"
    data = [
        (124, "Raul", "Oaxaca", "INSERT", 1),
        (123, "Isabel", "Monterrey", "INSERT", 1),
        (125, "Mercedes", "Tijuana", "INSERT", 2),
        (126, "Lily", "Cancun", "INSERT", 2),
        (123, None, None, "DELETE", 6),
        (125, "Mercedes", "Guadalajara", "UPDATE", 6),
        (125, "Mercedes", "Mexicali", "UPDATE", 5),
        (123, "Isabel", "Chihuahua", "UPDATE", 5),
    ]
    spec = SCD1Spec(keys=["userId"], sequence_by="sequenceNum", delete_when="operation = 'DELETE'")
    # the whole feed in one batch (userId + 1000), and the same feed in two batches, the
    # later half first (the documented userIds)
    path = str(tmp_path / "t")
    whole = [(r[0] + 1000, *r[1:]) for r in data]
    first = apply_scd1(spark, path, spark.createDataFrame(whole + data[4:], feed), spec)
    apply_scd1(spark, path, spark.createDataFrame(data[:4], feed), spec)
    got = spark.read.format("delta").load(path).select("userId", "name", "city").collect()
    documented = [
        (124, "Raul", "Oaxaca"),
        (125, "Mercedes", "Guadalajara"),
        (126, "Lily", "Cancun"),
    ]
    assert sorted(tuple(r) for r in got if r[0] < 1000) == documented
    assert sorted((r[0] - 1000, *r[1:]) for r in got if r[0] > 1000) == documented
    assert "operation" not in spark.read.format("delta").load(path).columns
    assert first.metrics["tombstoned"] == 2  # 1123's delete, and 123's


@pytest.mark.slow  # a long scenario (the fast loop's model test checks the same order rule): in the full gate
def test_an_older_event_never_overwrites_a_newer_one(spark, tmp_path):
    path = str(tmp_path / "t")
    apply(spark, path, [("a", "new", "U", 5)])
    res = apply(spark, path, [("a", "old", "U", 3)])
    assert rows(spark, path) == [("a", "new", 5)]
    assert res.metrics["late"] == 1 and res.metrics["unchanged"] == 1 and not res.committed


@pytest.mark.slow  # two calls; the SCD2 test of the same settings runs in the fast loop
def test_the_merge_runs_with_scd2s_merge_settings(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    apply(spark, path, [("a", "x", "U", 1)])
    before = spark.conf.get(SHJ_THRESHOLD_KEY)
    seen = []
    real = DeltaMergeBuilder.execute

    def spy(self):
        seen.append(spark.conf.get(SHJ_THRESHOLD_KEY))
        return real(self)

    monkeypatch.setattr(DeltaMergeBuilder, "execute", spy)
    apply(spark, path, [("a", "y", "U", 2)])
    advisory = spark.conf.get(ADVISORY_SIZE_KEY)
    assert seen == [advisory] and advisory != before
    assert spark.conf.get(SHJ_THRESHOLD_KEY) == before
    assert rows(spark, path) == [("a", "y", 2)]


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_an_upsert_older_than_a_delete_stays_deleted(spark, tmp_path):
    path = str(tmp_path / "t")
    apply(spark, path, [("b", "x", "U", 1)])
    first = apply(spark, path, [("a", None, "D", 6)])
    assert first.metrics["tombstoned"] == 1 and not first.committed
    apply(spark, path, [("a", "x", "U", 5)])
    assert rows(spark, path) == [("b", "x", 1)]
    apply(spark, path, [("a", "y", "U", 7)])
    assert rows(spark, path) == [("a", "y", 7), ("b", "x", 1)]


@pytest.mark.slow  # a long scenario (SCD2's replay test covers the same commit-nothing rule in the fast loop): in the full gate
def test_a_replay_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    batch = [("a", "x", "U", 1), ("b", None, "D", 2), ("c", "z", "U", 3)]
    apply(spark, path, batch)
    before = commits(spark, path)
    res = apply(spark, path, batch)
    assert not res.committed and res.metrics["tombstoned"] == 0
    assert commits(spark, path) == before


@pytest.mark.slow  # a long scenario (SCD2's conflict tests share this code in the fast loop): in the full gate
def test_conflicts_fail_or_are_quarantined_and_duplicates_dropped(spark, tmp_path):
    path = str(tmp_path / "t")
    apply(spark, path, [("a", "x", "U", 1)])
    with pytest.raises(SCD2ConflictError, match="id='a', seq=1"):
        apply(spark, path, [("a", "y", "U", 1)])
    res = apply(
        spark,
        path,
        [("b", "p", "U", 2), ("b", "q", "U", 2), ("c", "r", "U", 2), ("c", "r", "U", 2)],
        on_conflict="quarantine",
    )
    assert res.metrics["conflicts"] == 2 and res.metrics["duplicates"] == 1
    assert res.quarantine.count() == 2
    assert rows(spark, path) == [("a", "x", 1), ("c", "r", 2)]


def test_a_truncate_deletes_every_key_in_effect_before_it(spark, tmp_path):
    path = str(tmp_path / "t")
    apply(spark, path, [("a", "x", "U", 1), ("b", "y", "U", 5)])
    res = apply(spark, path, [(None, None, "T", 3), ("c", "z", "U", 2)])
    assert res.metrics["truncated"] == 1
    assert rows(spark, path) == [("b", "y", 5)]
    # an upsert older than the truncate, arriving later, stays deleted
    apply(spark, path, [("d", "w", "U", 2)])
    assert rows(spark, path) == [("b", "y", 5)]
    replay = apply(spark, path, [(None, None, "T", 3)])
    assert not replay.committed and replay.metrics["truncated"] == 0


@pytest.mark.slow  # three short scenarios: in the full gate, with the other truncate test
def test_an_upsert_at_the_truncates_sequence_survives_it_in_any_order(spark, tmp_path):
    # A truncate at 3 deletes rows older than 3. The upsert at 3 survives whether it comes
    # before the truncate, after it or in its batch; the row at 1 goes in every order.
    upsert, old, truncate = ("k", "v", "U", 3), ("j", "w", "U", 1), (None, None, "T", 3)
    for name, batches in {
        "before": [[old, upsert], [truncate]],
        "after": [[old], [truncate], [upsert]],
        "together": [[old, upsert, truncate]],
    }.items():
        path = str(tmp_path / name)
        for batch in batches:
            apply(spark, path, batch)
        assert rows(spark, path) == [("k", "v", 3)], name


def test_the_sequence_column_cannot_be_excepted():
    with pytest.raises(SCD2SpecError, match="sequence column 'seq'"):
        SCD1Spec(keys=["id"], sequence_by="seq", except_columns=["seq"])


def scd1_model(events):
    """The latest upsert per key, unless a delete at a later sequence removed it."""
    out = []
    for key in sorted({e[0] for e in events}):
        mine = {e for e in events if e[0] == key}
        upserts = [e for e in mine if e[3] != "D"]
        deleted = max((e[4] for e in mine if e[3] == "D"), default=None)
        if upserts:
            last = max(upserts, key=lambda e: e[4])
            if deleted is None or last[4] > deleted:
                out.append((key, last[1], last[4]))
    return sorted(out, key=repr)


def test_scd1_matches_its_model_in_any_batch_order(spark, tmp_path):
    examples = prop.drawn(prop.any_order())
    # the SCD2 scenario's events; the untracked column w is dropped (no conflicts on it)
    trimmed = [
        [[(e[0], e[1], e[3], e[4]) for e in batch] for batch in batches] for _, batches in examples
    ]
    path = str(tmp_path / "model")
    for batch in prop.side_by_side(trimmed):
        apply(spark, path, batch)
    got = prop.by_example(rows(spark, path)) if any(trimmed) else {}
    for i, (events, _) in enumerate(examples):
        expected = scd1_model([(e[0], e[1], e[2], e[3], e[4]) for e in events])
        assert got.get(i, []) == expected, f"example {i}: batches {trimmed[i]}"


PARTIAL = SCD1Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'", ignore_null_updates=True)
WIDE = "id string, v string, w string, op string, seq int"


def wide_rows(spark, path):
    got = spark.read.format("delta").load(path).select("id", "v", "w", "seq").collect()
    return sorted((tuple(r) for r in got), key=repr)


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_partial_updates_keep_the_values_in_effect(spark, tmp_path):
    path = str(tmp_path / "t")
    # key l gets a late partial update; key g has its log expired after every write,
    # so its stored row stands for the events it no longer knows
    res = apply_scd1(
        spark,
        path,
        spark.createDataFrame([("l", "x", "p", "U", 1), ("l", "y", None, "U", 5)], WIDE),
        PARTIAL,
    )
    assert wide_rows(spark, path) == [("l", "y", "p", 5)]
    assert res.metrics["ignored_null_updates"] == 1
    res = apply_scd1(spark, path, spark.createDataFrame([("l", None, "q", "U", 3)], WIDE), PARTIAL)
    assert wide_rows(spark, path) == [("l", "y", "q", 5)]
    assert res.metrics["ignored_null_updates"] == 1
    gc = SCD1Spec(
        keys=["id"],
        sequence_by="seq",
        ignore_null_updates=True,
        tombstone_retention=timedelta(0),
    )
    other = str(tmp_path / "gc")
    for row in [("g", "x", "p", "U", 1), ("g", None, "q", "U", 2)]:
        apply_scd1(spark, other, spark.createDataFrame([row], WIDE), gc)
    assert wide_rows(spark, other) == [("g", "x", "q", 2)]


def partial_scd1_model(events):
    """Per key: each column's latest non-NULL value after the latest delete."""
    out = []
    for key in sorted({e[0] for e in events}):
        mine = sorted({e for e in events if e[0] == key}, key=lambda e: e[4])
        deleted = max((e[4] for e in mine if e[3] == "D"), default=None)
        after = [e for e in mine if e[3] != "D" and (deleted is None or e[4] > deleted)]
        if after:
            v = next((e[1] for e in reversed(after) if e[1] is not None), None)
            w = next((e[2] for e in reversed(after) if e[2] is not None), None)
            out.append((key, v, w, after[-1][4]))
    return sorted(out, key=repr)


def test_partial_scd1_matches_its_model_in_any_batch_order(spark, tmp_path):
    examples = prop.drawn(prop.any_order())
    path = str(tmp_path / "model")
    rounds = prop.side_by_side([batches for _, batches in examples])
    for batch in rounds:
        apply_scd1(spark, path, spark.createDataFrame(batch, WIDE), PARTIAL)
    got = prop.by_example(wide_rows(spark, path)) if rounds else {}
    for i, (events, batches) in enumerate(examples):
        assert got.get(i, []) == partial_scd1_model(events), f"example {i}: batches {batches}"
