"""The event log: deletes and the other events a table cannot show are remembered, so the
order batches arrive in never changes the table (issue 26, item 1)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from delta.tables import DeltaTable

from lakehouse.scd2 import SCD2Spec, apply_scd2, check_scd2_invariants, read_as_of
from lakehouse.scd2.log import log_location

FEED = "id string, v string, w string, op string, seq int"
SPEC = SCD2Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'")


def apply(spark, path, rows, spec=SPEC):
    return apply_scd2(spark, path, spark.createDataFrame(rows, FEED), spec)


def versions(spark, path):
    got = spark.read.format("delta").load(path)
    cols = ["id", "v", "valid_from", "valid_to", "is_current"]
    return sorted(tuple(r) for r in got.select(*cols).collect())


def commits(spark, path):
    return DeltaTable.forPath(spark, path).history().count()


def test_a_delete_that_arrives_before_the_upserts_it_follows_closes_them(spark, tmp_path):
    # Databricks' AUTO CDC example: batch 1 deletes 123 at 6, batch 2 brings 1 and 5.
    path = str(tmp_path / "t")
    first = apply(spark, path, [("124", "Oaxaca", None, "U", 1), ("123", None, None, "D", 6)])
    assert first.metrics["tombstoned"] == 1 and first.metrics["deleted"] == 0
    second = apply(
        spark, path, [("123", "Monterrey", None, "U", 1), ("123", "Chihuahua", None, "U", 5)]
    )
    assert versions(spark, path) == [
        ("123", "Chihuahua", 5, 6, False),
        ("123", "Monterrey", 1, 5, False),
        ("124", "Oaxaca", 1, None, True),
    ]
    assert second.metrics["late"] == 2 and second.metrics["tombstoned"] == 0
    # the tombstone is no row of the table, nor of what readers see
    assert spark.read.format("delta").load(path).where("id = '123' AND is_current").count() == 0
    assert read_as_of(spark, path, SPEC, 7).where("id = '123'").count() == 0
    assert check_scd2_invariants(spark, path, SPEC).ok


@pytest.mark.slow  # all 6 orders of 3 batches; the model test draws random orders
def test_every_order_of_the_batches_gives_the_table_of_their_union(spark, tmp_path):
    batches = [
        [("a", "x", None, "U", 1), ("b", None, None, "D", 4)],
        [("a", None, None, "D", 6), ("b", "y", None, "U", 2)],
        [("a", "x", None, "U", 8), ("a", "x", None, "U", 3), ("b", "y", None, "U", 5)],
        [("a", "z", None, "U", 2), ("b", "z", None, "U", 7), ("a", None, None, "D", 7)],
    ]
    orders = [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)]
    # Keys are independent: order n runs under the key prefix "n", all orders side by side
    # in one table, round j applying each order's j-th batch.
    # The union goes in with the first round, under the prefix "u".
    path = str(tmp_path / "t")
    union = [(f"u{r[0]}", *r[1:]) for batch in batches for r in batch]
    for j in range(len(batches)):
        rows = [(f"{n}{r[0]}", *r[1:]) for n, order in enumerate(orders) for r in batches[order[j]]]
        apply(spark, path, rows + (union if j == 0 else []))
    got = versions(spark, path)
    union = [r[1:] for r in got if r[0].startswith("u")]
    assert len(union) == 7
    for n, order in enumerate(orders):
        assert [r[1:] for r in got if r[0].startswith(str(n))] == union, f"order {order}"


def test_an_unchanged_upsert_is_remembered_for_a_later_late_event(spark, tmp_path):
    # x at 1 and 5: 5 changes nothing and opens no version. y at 3 arrives later: the
    # table of the union is x [1,3), y [3,5), x [5,-).
    path = str(tmp_path / "t")
    apply(spark, path, [("a", "x", None, "U", 1)])
    res = apply(spark, path, [("a", "x", None, "U", 5)])
    assert res.metrics["unchanged"] == 1 and not res.committed
    apply(spark, path, [("a", "y", None, "U", 3)])
    assert versions(spark, path) == [
        ("a", "x", 1, 3, False),
        ("a", "x", 5, None, True),
        ("a", "y", 3, 5, False),
    ]


@pytest.mark.slow  # 6 calls, both orders side by side
def test_untracked_values_are_those_of_the_latest_event_in_any_order(spark, tmp_path):
    spec = SCD2Spec(keys=["id"], sequence_by="seq", track=["v"], delete_when="op = 'D'")
    rows = [("x", "p", "U", 1), ("x", "q", "U", 4), ("x", "r", "U", 2)]
    path = str(tmp_path / "t")
    # key f gets the rows forwards, key b backwards, side by side
    for fwd, bwd in zip(rows, reversed(rows), strict=True):
        apply(spark, path, [("f", *fwd), ("b", *bwd)], spec)

    def got(key):
        df = spark.read.format("delta").load(path).where(f"id = '{key}'")
        return sorted(tuple(r) for r in df.select("v", "w", "valid_from", "valid_to").collect())

    assert got("f") == got("b") == [("x", "q", 1, None)]
    # a tracked change at 3 splits the version: 2's value ends the first part, 4's the second
    apply(spark, path, [("f", "y", "s", "U", 3), ("b", "y", "s", "U", 3)], spec)
    assert got("f") == got("b") == [("x", "q", 4, None), ("x", "r", 1, 3), ("y", "s", 3, 4)]


def test_a_replay_commits_nothing_to_the_table_or_the_log(spark, tmp_path):
    path = str(tmp_path / "t")
    batch = [("a", "x", None, "U", 1), ("a", "x", None, "U", 2), ("b", None, None, "D", 3)]
    apply(spark, path, batch)
    log = log_location(path)
    before = commits(spark, path), commits(spark, log)
    res = apply(spark, path, batch)
    assert not res.committed and res.metrics["tombstoned"] == 0
    assert (commits(spark, path), commits(spark, log)) == before


def test_the_log_is_hidden_from_readers_and_survives_vacuum(spark, tmp_path):
    path = str(tmp_path / "t")
    apply(spark, path, [("a", None, None, "D", 5)])
    apply(spark, path, [("b", "x", None, "U", 1)])
    assert os.path.isdir(log_location(path))
    assert spark.read.format("delta").load(path).count() == 1
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    try:
        DeltaTable.forPath(spark, path).vacuum(0)
    finally:
        spark.conf.unset(key)
    apply(spark, path, [("a", "x", None, "U", 1)])
    assert versions(spark, path)[0] == ("a", "x", 1, 5, False)


def test_tombstone_retention_expires_the_log(spark, tmp_path):
    # With no retention the delete is forgotten as soon as it is logged: the late upsert is
    # then current. The default (2 days) keeps it, as the first test shows.
    spec = SCD2Spec(
        keys=["id"], sequence_by="seq", delete_when="op = 'D'", tombstone_retention=timedelta(0)
    )
    path = str(tmp_path / "t")
    apply(spark, path, [("a", None, None, "D", 5)], spec)
    apply(spark, path, [("b", "x", None, "U", 1)], spec)
    assert spark.read.format("delta").load(log_location(path)).count() == 0
    apply(spark, path, [("a", "x", None, "U", 1)], spec)
    assert ("a", "x", 1, None, True) in versions(spark, path)
    # the same two batches with the default retention: the logged delete closes the version
    kept = str(tmp_path / "kept")
    apply(spark, kept, [("a", None, None, "D", 5)])
    apply(spark, kept, [("a", "x", None, "U", 1)])
    assert versions(spark, kept) == [("a", "x", 1, 5, False)]


def test_databricks_scd2_example_in_any_batch_order(spark, tmp_path):
    # The userId / name / city / operation / sequenceNum feed of the AUTO CDC docs, whole
    # (key prefix "u") and with its second half arriving first ("r").
    feed = "userId string, name string, city string, operation string, sequenceNum int"
    data = [
        ("124", "Raul", "Oaxaca", "INSERT", 1),
        ("123", "Isabel", "Monterrey", "INSERT", 1),
        ("125", "Mercedes", "Tijuana", "INSERT", 2),
        ("126", "Lily", "Cancun", "INSERT", 2),
        ("123", None, None, "DELETE", 6),
        ("125", "Mercedes", "Guadalajara", "UPDATE", 6),
        ("125", "Mercedes", "Mexicali", "UPDATE", 5),
        ("123", "Isabel", "Chihuahua", "UPDATE", 5),
    ]
    spec = SCD2Spec(keys=["userId"], sequence_by="sequenceNum", delete_when="operation = 'DELETE'")
    path = str(tmp_path / "t")
    for batch in ([("u", data), ("r", data[4:])], [("r", data[:4])]):
        rows = [(p + r[0], *r[1:]) for p, part in batch for r in part]
        apply_scd2(spark, path, spark.createDataFrame(rows, feed), spec)
    df = spark.read.format("delta").load(path)
    got = {
        tuple(r) for r in df.select("userId", "name", "city", "valid_from", "valid_to").collect()
    }
    documented = {
        ("123", "Isabel", "Monterrey", 1, 5),
        ("123", "Isabel", "Chihuahua", 5, 6),
        ("124", "Raul", "Oaxaca", 1, None),
        ("125", "Mercedes", "Tijuana", 2, 5),
        ("125", "Mercedes", "Mexicali", 5, 6),
        ("125", "Mercedes", "Guadalajara", 6, None),
        ("126", "Lily", "Cancun", 2, None),
    }
    for prefix in "ur":
        assert {(r[0][1:], *r[1:]) for r in got if r[0][0] == prefix} == documented
