"""Partial updates, ``ignore_null_updates`` (issue 26, item 3): a NULL keeps the value in
effect, also for late events, in any batch order."""

from __future__ import annotations

import importlib

import pytest

from lakehouse.scd2 import SCD2Spec, apply_scd2, check_scd2_invariants

FEED = "id string, v string, w string, op string, seq int"
SPEC = SCD2Spec(keys=["id"], sequence_by="seq", delete_when="op = 'D'", ignore_null_updates=True)
# the property tests' feed: v tracked, w untracked
TRACKED = SCD2Spec(
    keys=["id"], sequence_by="seq", track=["v"], delete_when="op = 'D'", ignore_null_updates=True
)
prop = importlib.import_module("tests.unit.scd2.test_scd2_property")


def apply(spark, path, rows, spec=SPEC, **kw):
    return apply_scd2(spark, path, spark.createDataFrame(rows, FEED), spec, **kw)


def versions(spark, path, key):
    df = spark.read.format("delta").load(path).where(f"id = '{key}'")
    cols = ["v", "w", "valid_from", "valid_to"]
    return {tuple(r) for r in df.select(*cols).collect()}


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_a_null_keeps_the_value_in_effect_and_a_delete_resets_it(spark, tmp_path):
    path = str(tmp_path / "t")
    res = apply(
        spark,
        path,
        [
            ("a", "x", "p", "U", 1),
            ("a", "y", None, "U", 2),  # w stays p
            ("a", None, None, "D", 3),
            ("a", None, "q", "U", 4),  # after a delete nothing is carried: v is NULL
        ],
    )
    assert versions(spark, path, "a") == {
        (None, "q", 4, None),
        ("x", "p", 1, 2),
        ("y", "p", 2, 3),
    }
    assert res.metrics["ignored_null_updates"] == 2
    # the same events without ignore_null_updates store the NULLs
    plain = str(tmp_path / "plain")
    apply(spark, plain, [("a", "x", "p", "U", 1), ("a", "y", None, "U", 2)], SCD2Spec("id", "seq"))
    assert versions(spark, plain, "a") == {("x", "p", 1, 2), ("y", None, 2, None)}


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_a_late_partial_update_splices_in_and_recomputes_what_follows(spark, tmp_path):
    # b from 3 on is 9: the version opened at 5 carried b, so it changes too. Key f gets
    # the events in sequence order, key r the late one in a batch of its own.
    path = str(tmp_path / "t")
    apply(spark, path, [(k, "1", "1", "U", 1) for k in "fr"])
    apply(
        spark, path, [("f", None, "9", "U", 3), ("f", "2", None, "U", 5), ("r", "2", None, "U", 5)]
    )
    assert versions(spark, path, "r") == {("1", "1", 1, 5), ("2", "1", 5, None)}
    late = apply(spark, path, [("r", None, "9", "U", 3)])
    expected = {("1", "1", 1, 3), ("1", "9", 3, 5), ("2", "9", 5, None)}
    assert versions(spark, path, "f") == versions(spark, path, "r") == expected
    assert late.metrics["late"] == 1 and late.metrics["inserted"] == 1
    assert check_scd2_invariants(spark, path, SPEC).ok


def test_a_replay_of_partial_updates_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    batch = [("a", "x", "p", "U", 1), ("a", None, "q", "U", 2), ("a", "y", None, "U", 3)]
    apply(spark, path, batch)
    res = apply(spark, path, batch)
    assert not res.committed and res.metrics["inserted"] == 0


def partial_model(events):
    """SCD2 of the events with NULLs resolved from the events before them (since the key's
    latest delete); v tracked, w untracked."""
    out = []
    for key in sorted({e[0] for e in events}):
        mine = sorted({e for e in events if e[0] == key}, key=lambda e: e[4])
        cur, state = None, (None, None)
        for _, v, w, op, seq in mine:
            if op == "D":
                state = (None, None)
                if cur is not None:
                    out.append((*cur[:3], cur[3], seq, False))
                    cur = None
                continue
            state = (v if v is not None else state[0], w if w is not None else state[1])
            if cur is None or cur[1] != state[0]:
                if cur is not None:
                    out.append((*cur[:3], cur[3], seq, False))
                cur = [key, state[0], state[1], seq]
            else:
                cur[2] = state[1]
        if cur is not None:
            out.append((*cur[:3], cur[3], None, True))
    return sorted(out, key=repr)


@pytest.mark.slow  # a long scenario: in the full gate, not the fast loop
def test_partial_updates_match_the_model_in_any_batch_order(spark, tmp_path):
    spec = TRACKED
    examples = prop.drawn(prop.any_order())
    path = str(tmp_path / "model")
    rounds = prop.side_by_side([batches for _, batches in examples])
    for batch in rounds:
        apply(spark, path, batch, spec)
    got = prop.by_example(prop.rows(spark, path)) if rounds else {}
    for i, (events, batches) in enumerate(examples):
        assert got.get(i, []) == partial_model(events), f"example {i}: batches {batches}"


@pytest.mark.slow  # 8 calls per path; the model test above already runs both paths
def test_partial_fast_path_equals_the_chain_path(spark, tmp_path):
    spec = TRACKED
    fast, chain = str(tmp_path / "fast"), str(tmp_path / "chain")
    rounds = prop.side_by_side(prop.drawn(prop.reordered(), 30))
    for batch in rounds:
        df = spark.createDataFrame(batch, FEED)
        a = apply_scd2(spark, fast, df, spec, on_conflict="quarantine")
        b = apply_scd2(spark, chain, df, spec, on_conflict="quarantine", fast_path=False)
        assert {k: v for k, v in a.metrics.items() if k != "fast_path_keys"} == {
            k: v for k, v in b.metrics.items() if k != "fast_path_keys"
        }
    assert prop.rows(spark, fast) == prop.rows(spark, chain)
