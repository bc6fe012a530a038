"""Drill 10: an expectation cannot exhaust the JVM, and a row it cannot evaluate fails it.

``length(lpad(order_id, 2000000000, 'x')) > 0`` passed the expression whitelist and ran
silver_orders for over 14 minutes at the 4 GB heap ceiling; ``CAST(... AS INT)`` over a
malformed value aborted the job with CAST_INVALID_INPUT (issue 29, item 7).

Pass criteria:

* ``apply_table_quality`` refuses the memory-hungry expectation with
  ``UnsafeExpressionError`` naming the table, the expectation and the bound, before any
  row is evaluated (the drill gives it an empty DataFrame, so before the fix it "passed");
* an expectation that raises for some rows under ANSI counts those rows as failed: with
  ``drop`` they are quarantined with the expectation's name, the other rows are accepted,
  and the job goes on.
"""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from lakehouse.config import Settings, load_config
from lakehouse.quality.expectations import UnsafeExpressionError, apply_table_quality

SCHEMA = "order_id string, quantity int"


def _settings(settings: Settings, expectation: dict[str, str]) -> Settings:
    return load_config(
        "local",
        overrides={
            "paths": {"data_root": settings.paths.data_root},
            "tables": {"orders": {"quality": {"expectations": [expectation]}}},
        },
    )


def test_memory_hungry_expectation_is_refused_before_it_runs(
    spark: SparkSession, settings: Settings
) -> None:
    expr = "length(lpad(order_id, 2000000000, 'x')) > 0"
    cfg = _settings(settings, {"name": "padded", "expr": expr, "action": "fail"})
    with pytest.raises(UnsafeExpressionError) as info:
        apply_table_quality(
            spark, cfg, "orders", spark.createDataFrame([], SCHEMA), job="drill10", batch_id="b1"
        )
    assert str(info.value) == (
        f"tables.orders.quality.expectations.padded {expr!r}: may build strings of up to "
        "2000000000 characters per row (in lpad(order_id, 2000000000, 'x')); at most 100000 "
        "are allowed"
    )


def test_rows_that_raise_under_ansi_fail_the_expectation(
    spark: SparkSession, settings: Settings
) -> None:
    expr = "CAST(substring(order_id, 3) AS INT) > 0 AND 100 / quantity > 1"
    cfg = _settings(settings, {"name": "numeric_id", "expr": expr, "action": "drop"})
    df = spark.createDataFrame([("O-1", 2), ("O-x", 2), ("O-3", 0), ("O-4", 5)], SCHEMA)
    out = apply_table_quality(spark, cfg, "orders", df, job="drill10", batch_id="b2")
    assert_df_equality(
        out.accepted,
        spark.createDataFrame([("O-1", 2), ("O-4", 5)], SCHEMA),
        ignore_row_order=True,
    )
    assert sorted(r["record"] for r in out.quarantined.collect()) == [
        '{"order_id":"O-3","quantity":0}',
        '{"order_id":"O-x","quantity":2}',
    ]
    assert {r["reason"] for r in out.quarantined.collect()} == {
        f"expectation numeric_id failed: {expr}"
    }
    rows = [(r.name, r.passed, r.failed) for r in out.report.results if r.kind == "row"]
    assert rows == [("numeric_id", 2, 2)]
