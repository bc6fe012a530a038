"""Drill 6: hostile configuration is rejected with a clear error and nothing is executed.

Pass criterion: every hostile value (unknown key, wrong type, table/column names with
backticks, quotes, semicolons or SQL fragments, expectation expressions that do more than
a boolean over the row) raises ``ConfigError`` / ``UnsafeExpressionError`` naming the key
path and the offending value; the target table's Delta version is unchanged and no
expression with a side effect ran (a ``java_method`` that would set a JVM system property
leaves it unset).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import ConfigError, TableQuality, load_config
from lakehouse.quality.expectations import UnsafeExpressionError, validate_quality
from lakehouse.spark.delta import table_version

IDENT = "must match [A-Za-z_][A-Za-z0-9_]* (at most 128 characters)"

CONFIG_CASES = [
    (
        {"tables": {"orders": {"colour": "red"}}},
        "tables.orders.colour: unknown key 'colour' under tables.orders",
    ),
    (
        {"tables": {"orders": {"partition_by": "order_date"}}},
        "tables.orders.partition_by: Input should be a valid list; found 'order_date'",
    ),
    (
        {"tables": {"orders": {"quality": {"row_count": {"min": "ten"}}}}},
        "tables.orders.quality.row_count.min: Input should be a valid integer; found 'ten'",
    ),
    (
        {"tables": {"orders`; DROP TABLE x; --": {"layer": "silver", "path": "x"}}},
        f"tables.orders`; DROP TABLE x; --: invalid identifier 'orders`; DROP TABLE x; --': {IDENT}; found 'orders`; DROP TABLE x; --'",
    ),
    (
        {"tables": {"orders": {"partition_by": ["order_date; DROP TABLE t"]}}},
        f"tables.orders.partition_by.0: invalid identifier 'order_date; DROP TABLE t': {IDENT}; found 'order_date; DROP TABLE t'",
    ),
    (
        {"tables": {"orders": {"quality": {"unique_keys": ["id` OR 1=1"]}}}},
        f"tables.orders.quality.unique_keys.0: invalid identifier 'id` OR 1=1': {IDENT}; found 'id` OR 1=1'",
    ),
    (
        {"jobs": {"silver_orders": {"target_table": "orders' OR '1'='1"}}},
        f"jobs.silver_orders.target_table: invalid identifier \"orders' OR '1'='1\": {IDENT}; found \"orders' OR '1'='1\"",
    ),
    (
        {
            "tables": {
                "orders": {
                    "quality": {
                        "expectations": [{"name": "q", "expr": "qty > 0; DELETE FROM orders"}]
                    }
                }
            }
        },
        "tables.orders.quality.expectations.0.expr: must be a single SQL boolean expression over the row; ';' is not allowed; found 'qty > 0; DELETE FROM orders'",
    ),
    (
        {"tables": {"orders": {"quality": {"checks": {"c": "qty > 0 /* hidden */"}}}}},
        "tables.orders.quality.checks.c: must be a single SQL boolean expression over the row; '/*' is not allowed; found 'qty > 0 /* hidden */'",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), CONFIG_CASES)
def test_hostile_config_is_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("local", overrides=overrides)
    assert str(info.value) == f"invalid configuration:\n  <overrides>: {message}"


EXPRESSION_CASES = [
    (
        "qty IN (SELECT id FROM orders)",
        "subqueries are not allowed; allowed: a boolean over the row's columns",
    ),
    ("EXISTS (SELECT 1)", "subqueries are not allowed; allowed: a boolean over the row's columns"),
    ("DROP TABLE orders", None),
    (
        "java_method('java.lang.System', 'setProperty', 'lakehouse.drill6', 'executed') IS NOT NULL",
        "function 'java_method' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
    ),
    (
        "uuid() IS NOT NULL",
        "function 'uuid' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
    ),
    (
        "current_timestamp() > ts",
        "function 'current_timestamp' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
    ),
    (
        "current_date IS NOT NULL",
        "'current_date' is not a column of the table; columns: ['id', 'qty']",
    ),
    (
        "max(qty) > 0",
        "function 'max' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
    ),
    (
        "transform(array(qty), x -> x + 1) IS NOT NULL",
        "function 'transform' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
    ),
]


@pytest.mark.parametrize(("expr", "reason"), EXPRESSION_CASES)
def test_hostile_expressions_are_rejected_without_running(
    spark: SparkSession, tmp_path: Path, expr: str, reason: str | None
) -> None:
    path = str(tmp_path / "orders")
    if not (tmp_path / "orders").exists():
        spark.createDataFrame([(1, 2)], "id long, qty int").write.format("delta").save(path)
    schema = spark.read.format("delta").load(path).schema
    before = table_version(spark, path)
    q = TableQuality.model_validate(
        {"expectations": [{"name": "e", "expr": expr, "action": "drop"}]}
    )
    with pytest.raises(UnsafeExpressionError) as info:
        validate_quality(spark, q, schema, table="orders")
    prefix = f"tables.orders.quality.expectations.e {expr!r}: "
    if reason is None:
        assert str(info.value).startswith(
            prefix + "not a valid SQL expression: [PARSE_SYNTAX_ERROR]"
        )
    else:
        assert str(info.value) == prefix + reason
    assert table_version(spark, path) == before
    assert spark._jvm.java.lang.System.getProperty("lakehouse.drill6") is None
