"""Property tests: the engine equals a small pure-Python model of SCD2 (DESIGN.md §5), and
its fast path equals its chain path.

Random events for a few keys are split into batches, each event into a random one of up to
three (late events and several events per key then occur inside a batch); applying the
batches one by one, in a random order, must give the model's table of all the events at
once, whatever the split and the order (deletes and unchanged upserts are remembered in the
table's event log, so an older event arriving later still lands where it belongs).

Hypothesis draws ``EXAMPLES`` examples per property. SCD2 keys are independent of each
other, so the examples are then applied side by side, each under its own key prefix: round
``j`` applies every example's ``j``-th batch in one call, and a table holds every
example's rows. Spark work then grows with the longest example, not with their number. A
failure names the first example whose rows differ, with its events or batches.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.scd2 import SCD2Spec, apply_scd2, check_scd2_invariants

SPEC = SCD2Spec(keys=["id"], sequence_by="seq", track=["v"], delete_when="op = 'D'")
FEED = "id string, v string, w string, op string, seq int"
_counter = itertools.count()
EXAMPLES = 50


def model(events):
    """Sort each key's events, drop duplicates and no-ops, chain the rest."""
    out = []
    for key in sorted({e[0] for e in events}):
        mine = sorted({e for e in events if e[0] == key}, key=lambda e: e[4])
        cur = None
        for _, v, w, op, seq in mine:
            if op == "D":
                if cur is not None:
                    out.append((*cur[:4], seq, False))
                    cur = None
            elif cur is None or cur[1] != v:  # Python's == on None is NULL-safe
                if cur is not None:
                    out.append((*cur[:4], seq, False))
                cur = [key, v, w, seq]
            else:
                cur[2] = w  # untracked column: updated in place
        if cur is not None:
            out.append((*cur[:4], None, True))
    return sorted(out, key=repr)


@st.composite
def scenario(draw):
    events = []
    for key in ("a", "b", "c"):
        seqs = draw(st.sets(st.integers(1, 12), max_size=5))
        for seq in seqs:
            op = draw(st.sampled_from(["U", "U", "U", "D"]))
            v = draw(st.sampled_from([None, "x", "y"]))
            w = draw(st.sampled_from([None, "p", "q"]))
            events.append((key, v, w, op, seq))
    events.sort(key=lambda e: (e[4], e[0]))
    # any partition into at most three batches: a batch may hold a key's events at 1 and 5
    # while another holds its event at 3
    n = draw(st.integers(1, 3))
    where = draw(st.lists(st.integers(0, n - 1), min_size=len(events), max_size=len(events)))
    batches = [[e for e, b in zip(events, where) if b == i] for i in range(n)]
    batches = [b for b in batches if b]
    # exact duplicates inside a batch and shuffled row order must not matter
    batches = [draw(st.permutations(b + b[:1])) for b in batches]
    return events, batches


def drawn(strategy: st.SearchStrategy[Any], n: int = EXAMPLES) -> list[Any]:
    """The examples hypothesis generates for ``strategy`` in a test of ``n`` examples."""
    out: list[Any] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(strategy)
    def collect(example: Any) -> None:
        out.append(example)

    collect()
    assert len(out) >= n
    return out


def side_by_side(examples: Sequence[Sequence[Sequence[tuple]]]) -> list[list[tuple]]:
    """Round ``j`` holds every example's ``j``-th batch, keys prefixed ``e<i>_``."""
    rounds: list[list[tuple]] = [[] for _ in range(max(map(len, examples), default=0))]
    for i, batches in enumerate(examples):
        for j, batch in enumerate(batches):
            rounds[j].extend((f"e{i}_{row[0]}", *row[1:]) for row in batch)
    return rounds


def by_example(table_rows: list[tuple]) -> dict[int, list[tuple]]:
    """A side-by-side table's rows per example, keys without their prefix, sorted."""
    out: dict[int, list[tuple]] = defaultdict(list)
    for row in table_rows:
        prefix, _, key = row[0].partition("_")
        out[int(prefix[1:])].append((key, *row[1:]))
    return {i: sorted(found, key=repr) for i, found in out.items()}


@st.composite
def any_order(draw):
    """A scenario with its batches in a random order."""
    events, batches = draw(scenario())
    return events, draw(st.permutations(batches))


def test_engine_matches_the_model_in_any_batch_order(spark, tmp_path):
    examples = drawn(any_order())
    path = str(tmp_path / "model")
    rounds = side_by_side([batches for _, batches in examples])
    for batch in rounds:
        apply_scd2(spark, path, spark.createDataFrame(batch, FEED), SPEC)
    got = by_example(rows(spark, path)) if rounds else {}
    for i, (events, batches) in enumerate(examples):
        assert got.get(i, []) == model(events), f"example {i}: batches {batches}"
    if rounds:
        assert check_scd2_invariants(spark, path, SPEC).ok


@st.composite
def reordered(draw):
    """A scenario's batches in any order, with one batch replayed: late events, events at
    a stored sequence and keys with history before and after the batch all occur."""
    _, batches = draw(scenario())
    return draw(st.permutations(batches + batches[:1]))


def rows(spark, path):
    cols = ("id", "v", "w", "valid_from", "valid_to", "is_current")
    got = spark.read.format("delta").load(path).select(*cols).collect()
    return sorted((tuple(r) for r in got), key=repr)


def apply_both_ways(spark, tmp_path, batches):
    """Apply the batches with and without the fast path to two tables; every call must
    count the same and commit alike. Returns both tables' rows and how many key decisions
    each path made."""
    fast, chain = (str(tmp_path / f"{name}{next(_counter)}") for name in ("fast", "chain"))
    took_fast = took_chain = 0
    for batch in batches:
        df = spark.createDataFrame(list(batch), FEED)
        a = apply_scd2(spark, fast, df, SPEC, on_conflict="quarantine")
        b = apply_scd2(spark, chain, df, SPEC, on_conflict="quarantine", fast_path=False)
        assert b.metrics["fast_path_keys"] == 0
        assert {k: v for k, v in a.metrics.items() if k != "fast_path_keys"} == {
            k: v for k, v in b.metrics.items() if k != "fast_path_keys"
        }, f"batch {batch}"
        assert a.committed == b.committed
        took_fast += a.metrics["fast_path_keys"]
        took_chain += a.metrics["touched_keys"] - a.metrics["fast_path_keys"]
    if not batches:
        return [], [], took_fast, took_chain
    assert check_scd2_invariants(spark, fast, SPEC).ok
    return rows(spark, fast), rows(spark, chain), took_fast, took_chain


@pytest.mark.slow  # a cross-check of two code paths; the model test covers correctness
def test_fast_path_equals_the_chain_path(spark, tmp_path):
    # The fast path (one new event after all of a key's history: no windows) must write
    # exactly what the window chain writes for every key, and count the same.
    examples = drawn(reordered())
    fast, chain, took_fast, took_chain = apply_both_ways(spark, tmp_path, side_by_side(examples))
    fast_rows, chain_rows = by_example(fast), by_example(chain)
    for i, batches in enumerate(examples):
        assert fast_rows.get(i) == chain_rows.get(i), f"example {i}: batches {batches}"
    assert took_fast and took_chain  # both paths decided keys


@pytest.mark.slow  # a cross-check of two code paths on 120 keys
def test_fast_path_equals_the_chain_path_on_a_seeded_workload(spark, tmp_path):
    # One seeded workload of many keys, with every case side by side in each batch: late
    # events, replays, deletes, several events per key, keys with closed history, new keys.
    rng = random.Random(20261204)
    events = sorted(
        {
            (
                f"k{key:03d}",
                rng.choice([None, "x", "y"]),
                rng.choice([None, "p", "q"]),
                rng.choice(["U", "U", "U", "D"]),
                seq,
            )
            for key in range(120)
            for seq in rng.sample(range(1, 30), rng.randint(1, 6))
        },
        key=lambda e: (e[4], e[0]),
    )
    cuts = sorted(rng.sample(range(1, len(events)), 3))
    batches = [events[i:j] for i, j in itertools.pairwise([0, *cuts, len(events)])]
    batches = [batches[0], batches[2], batches[1], batches[0], batches[3]]
    fast, chain, took_fast, took_chain = apply_both_ways(spark, tmp_path, batches)
    assert fast == chain
    assert took_fast > 100 and took_chain > 100  # both paths did real work
