"""CDC from full snapshots (issue 26, item 4)."""

from __future__ import annotations

import importlib

import pytest
from delta.tables import DeltaTable
from hypothesis import strategies as st

from lakehouse.cdc import SCD1Spec, SCD2Spec, SnapshotOrderError, apply_snapshot
from lakehouse.scd2 import SCD2SpecError, check_scd2_invariants

SNAP = "id string, v string"
SCD2 = SCD2Spec(keys=["id"], sequence_by="at")
SCD1 = SCD1Spec(keys=["id"], sequence_by="at")


def snap(spark, path, rows, at, spec=SCD2):
    return apply_snapshot(spark, path, spark.createDataFrame(rows, SNAP), spec, snapshot_at=at)


def table(spark, path, cols):
    got = spark.read.format("delta").load(path).select(*cols).collect()
    return sorted((tuple(r) for r in got), key=repr)


def commits(spark, path):
    return DeltaTable.forPath(spark, path).history().count()


def test_scd2_snapshots_open_close_and_delete_versions(spark, tmp_path):
    path = str(tmp_path / "t")
    first = snap(spark, path, [("a", "x"), ("b", "y"), ("c", "z")], 1)
    assert first.metrics["snapshot_changed"] == 3 and first.metrics["snapshot_deleted"] == 0
    second = snap(spark, path, [("a", "x"), ("b", "y2"), ("d", "w")], 2)
    assert second.metrics["snapshot_changed"] == 2  # b changed, d is new
    assert second.metrics["snapshot_deleted"] == 1  # c is gone
    cols = ("id", "v", "valid_from", "valid_to", "is_current")
    assert table(spark, path, cols) == [
        ("a", "x", 1, None, True),
        ("b", "y", 1, 2, False),
        ("b", "y2", 2, None, True),
        ("c", "z", 1, 2, False),
        ("d", "w", 2, None, True),
    ]
    # a deleted key that comes back opens a new version
    snap(spark, path, [("a", "x"), ("b", "y2"), ("c", "z"), ("d", "w")], 3)
    assert ("c", "z", 3, None, True) in table(spark, path, cols)
    assert check_scd2_invariants(spark, path, SCD2).ok


def test_scd1_snapshots_update_and_delete_rows(spark, tmp_path):
    path = str(tmp_path / "t")
    snap(spark, path, [("a", "x"), ("b", "y")], 10, SCD1)
    res = snap(spark, path, [("a", "x2"), ("c", "z")], 20, SCD1)
    assert res.metrics["snapshot_deleted"] == 1 and res.metrics["updated"] == 1
    assert table(spark, path, ("id", "v", "at")) == [("a", "x2", 20), ("c", "z", 20)]


def test_an_identical_snapshot_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    snap(spark, path, [("a", "x"), ("b", None)], 1)
    before = commits(spark, path)
    res = snap(spark, path, [("b", None), ("a", "x")], 2)
    assert not res.committed and res.metrics["snapshot_changed"] == 0
    assert commits(spark, path) == before


def test_an_older_snapshot_is_refused_and_changes_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    snap(spark, path, [("a", "x")], 5)
    snap(spark, path, [("a", "y")], 7)
    before = commits(spark, path)
    with pytest.raises(SnapshotOrderError, match="snapshot_at 6 is older than 7"):
        snap(spark, path, [("a", "z")], 6)
    assert commits(spark, path) == before


def test_a_snapshot_older_than_a_logged_delete_is_refused(spark, tmp_path):
    # SCD1 removes a deleted key's row: only the event log remembers the delete at 20
    path = str(tmp_path / "t")
    snap(spark, path, [("a", "x"), ("b", "y")], 10, SCD1)
    snap(spark, path, [("a", "x")], 20, SCD1)
    assert table(spark, path, ("id", "v", "at")) == [("a", "x", 10)]
    before = commits(spark, path)
    with pytest.raises(SnapshotOrderError, match="snapshot_at 15 is older than 20"):
        snap(spark, path, [("a", "z")], 15, SCD1)
    assert commits(spark, path) == before


@pytest.mark.slow  # three snapshots and scan metrics, 17 s: in the full gate (the fast loop is at its budget)
def test_the_order_check_reads_no_data_file_when_snapshots_come_in_order(spark, tmp_path):
    from datetime import datetime, timedelta

    from lakehouse.cdc.snapshot import _later_rows
    from lakehouse.tuning.pruning import scan_stats

    path = str(tmp_path / "t")
    spec = SCD2Spec(keys=["id"], sequence_by="at")
    days = [datetime(2025, 1, d, 6, 30, 15, 123456) for d in (1, 2, 3)]
    for rows, at in zip(([("a", "x"), ("b", "y")], [("a", "x2")], [("a", "x3")]), days):
        snap(spark, path, rows, at, spec)  # b deleted on day 2: a closed row's valid_to
    current = spark.read.format("delta").load(path)
    cols = ["valid_from", "valid_to"]
    in_order = _later_rows(current, cols, datetime(2025, 1, 4))
    assert scan_stats(in_order).files_read == 0 and in_order.count() == 0
    # exact at the boundary, though Delta keeps timestamp statistics in milliseconds
    assert _later_rows(current, cols, days[2]).count() == 0
    assert _later_rows(current, cols, days[2] - timedelta(microseconds=1)).count() == 2
    late = _later_rows(current, cols, days[1])
    assert scan_stats(late).files_read > 0 and late.count() == 2  # a's versions of days 2, 3


def test_the_snapshot_must_not_carry_the_sequence_column(spark, tmp_path):
    df = spark.createDataFrame([("a", "x", 1)], "id string, v string, at int")
    with pytest.raises(SCD2SpecError, match="must not have the sequence column 'at'"):
        apply_snapshot(spark, str(tmp_path / "t"), df, SCD2, snapshot_at=1)


# Databricks' two AUTO CDC FROM SNAPSHOT examples (docs.databricks.com/aws/en/ldp/cdc,
# "Example: Periodic snapshot processing" and "Example: Historical snapshot processing"),
# replayed with their documented inputs and outputs. Their __START_AT / __END_AT are our
# valid_from / valid_to; the snapshot version fills the spec's sequence column.


@pytest.mark.slow  # a long scenario (a documented-example replay, like the SCD1 one): in the full gate
def test_databricks_periodic_snapshot_example(spark, tmp_path):
    from datetime import datetime

    path = str(tmp_path / "target")
    spec = SCD2Spec(keys=["key"], sequence_by="snapshot_at")
    schema = "key int, value string"
    midnight, noon = datetime(2024, 1, 1, 0, 0), datetime(2024, 1, 1, 12, 0)
    for rows, at in (([(1, "a1"), (2, "a2")], midnight), ([(2, "b2"), (3, "a3")], noon)):
        apply_snapshot(spark, path, spark.createDataFrame(rows, schema), spec, snapshot_at=at)
    assert table(spark, path, ("key", "value", "valid_from", "valid_to")) == sorted(
        [
            (1, "a1", midnight, noon),
            (2, "a2", midnight, noon),
            (2, "b2", noon, None),
            (3, "a3", noon, None),
        ],
        key=repr,
    )
    assert check_scd2_invariants(spark, path, spec).ok


@pytest.mark.slow  # a long scenario (a documented-example replay, like the SCD1 one): in the full gate
def test_databricks_historical_snapshot_example(spark, tmp_path):
    """History is tracked on TrackingColumn only: key 4's change of NonTrackingColumn
    updates its version in place."""
    path = str(tmp_path / "target")
    spec = SCD2Spec(keys=["key"], sequence_by="version", track=["TrackingColumn"])
    schema = "key int, TrackingColumn string, NonTrackingColumn string"
    snapshots = [
        [(1, "a1", "b1"), (2, "a2", "b2"), (4, "a4", "b4")],  # filename1.csv, version 1
        [(2, "a2_new", "b2"), (3, "a3", "b3"), (4, "a4", "b4_new")],  # filename2.csv, 2
    ]
    for version, rows in enumerate(snapshots, start=1):
        snapshot = spark.createDataFrame(rows, schema)
        apply_snapshot(spark, path, snapshot, spec, snapshot_at=version)
    cols = ("key", "TrackingColumn", "NonTrackingColumn", "valid_from", "valid_to")
    assert table(spark, path, cols) == sorted(
        [
            (1, "a1", "b1", 1, 2),
            (2, "a2", "b2", 1, 2),
            (2, "a2_new", "b2", 2, None),
            (3, "a3", "b3", 2, None),
            (4, "a4", "b4_new", 1, None),
        ],
        key=repr,
    )
    assert check_scd2_invariants(spark, path, spec).ok


# The hypothesis reference model, extended to snapshots (issue 26). Snapshots are applied
# in ascending snapshot_at (an older one is refused), so the property is over sequences of
# snapshots: random keys present or missing, random values (NULLs included), rows in random
# order with an exact duplicate. The examples are applied side by side (as in
# test_scd2_property): round j applies every example's j-th snapshot at snapshot_at j, an
# example with fewer snapshots repeating its last one (which changes nothing).

prop = importlib.import_module("tests.unit.scd2.test_scd2_property")
WIDE = "id string, v string, w string"


@st.composite
def snapshot_runs(draw):
    """1 to 4 snapshots of keys a, b, c: each key present or not, with its values."""
    run = []
    for _ in range(draw(st.integers(1, 4))):
        rows = [
            (key, draw(st.sampled_from([None, "x", "y"])), draw(st.sampled_from([None, "p"])))
            for key in ("a", "b", "c")
            if draw(st.booleans())
        ]
        run.append(draw(st.permutations(rows + rows[:1])))
    return run


def snapshot_model(run):
    """SCD2 versions (id, v, w, valid_from, valid_to, is_current), SCD1 rows (id, v, w, at)
    and the time of the last change, for snapshots taken at 1, 2, ..."""
    versions, opened, live, last_change = [], {}, {}, 0
    for at, rows in enumerate(run, start=1):
        now = {r[0]: r[1:] for r in rows}
        for key in sorted(set(opened) | set(now)):
            if key in opened and opened[key][0] == now.get(key, ()):
                continue  # unchanged (NULL-safe: tuples of None compare equal)
            last_change = at
            if key in opened:
                values, since = opened.pop(key)
                versions.append((key, *values, since, at, False))
            if key in now:
                opened[key] = (now[key], at)
                live[key] = (*now[key], at)
            else:
                live.pop(key, None)
    versions += [(key, *values, since, None, True) for key, (values, since) in opened.items()]
    scd1 = [(key, *row) for key, row in live.items()]
    return sorted(versions, key=repr), sorted(scd1, key=repr), last_change


def apply_side_by_side(spark, path, runs, spec):
    """Apply the runs side by side (see above); the number of rounds."""
    n = max(map(len, runs))
    padded = [run + [run[-1]] * (n - len(run)) for run in runs]
    for at, rounds in enumerate(prop.side_by_side([[list(s) for s in p] for p in padded])):
        df = spark.createDataFrame(rounds, WIDE)
        apply_snapshot(spark, path, df, spec, snapshot_at=at + 1)
    return n


@pytest.mark.slow  # 17 to 30 s each: in the full gate (the fast loop is at its budget)
@pytest.mark.parametrize("kind", ["scd2", "scd1"])
def test_snapshots_match_the_model(spark, tmp_path, kind):
    runs = prop.drawn(snapshot_runs())
    spec = SCD2 if kind == "scd2" else SCD1
    cols = ("id", "v", "w", "valid_from", "valid_to", "is_current") if kind == "scd2" else None
    cols = cols or ("id", "v", "w", "at")
    path = str(tmp_path / kind)
    apply_side_by_side(spark, path, runs, spec)
    got = prop.by_example(table(spark, path, cols))
    models = [snapshot_model(run) for run in runs]
    for i, run in enumerate(runs):
        want = models[i][0] if kind == "scd2" else models[i][1]
        assert got.get(i, []) == want, f"example {i}: snapshots {run}"
    if kind == "scd2":
        assert check_scd2_invariants(spark, path, spec).ok
    # The first round again, at its own time: refused when any example changed something
    # later (a change or a delete, the latter remembered in the event log), else identical
    # to the table. Either way the table is unchanged.
    before = (commits(spark, path), table(spark, path, cols))
    first = [(f"e{i}_{r[0]}", *r[1:]) for i, run in enumerate(runs) for r in run[0]]
    replay = spark.createDataFrame(first, WIDE)
    if max(m[2] for m in models) > 1:
        with pytest.raises(SnapshotOrderError):
            apply_snapshot(spark, path, replay, spec, snapshot_at=1)
    else:
        assert not apply_snapshot(spark, path, replay, spec, snapshot_at=1).committed
    assert (commits(spark, path), table(spark, path, cols)) == before
