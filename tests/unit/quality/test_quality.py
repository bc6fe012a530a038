"""Data-quality expectations, table checks, results table and Delta constraints."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pydantic import ValidationError
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config import ConfigError, TableQuality, load_config
from lakehouse.errors import LakehouseError
from lakehouse.quality.expectations import (
    ExpectationFailedError,
    SchemaDriftError,
    UnsafeExpressionError,
    apply_constraints,
    apply_expectations,
    check_schema,
    check_table,
    existing_constraints,
    validate_expression,
    validate_quality,
    write_quality_results,
)
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import check_expression_text

SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.LongType()),
        T.StructField("qty", T.IntegerType()),
        T.StructField("email", T.StringType()),
        T.StructField("ts", T.TimestampType()),
    ]
)


def _orders(spark: SparkSession):
    ts = dt.datetime(2026, 1, 1, 12)
    rows = [
        (1, 2, "a@x.org", ts),
        (2, 0, "b@x.org", ts),
        (3, 5, None, ts),
        (4, None, "d@x.org", ts),
    ]
    return spark.createDataFrame(rows, SCHEMA)


# --------------------------------------------------------------------- expression checks


def test_valid_expression_is_rendered_canonically(spark: SparkSession) -> None:
    assert validate_expression(spark, "qty > 0 AND email LIKE '%@%'", SCHEMA) == (
        "((qty > 0) AND email LIKE '%@%')"
    )


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        (
            "qty > 0; DROP TABLE orders",
            "must be a single SQL boolean expression over the row; ';' is not allowed",
        ),
        (
            "qty > 0 -- tail",
            "must be a single SQL boolean expression over the row; '--' is not allowed",
        ),
        (
            "qty IN (SELECT 1)",
            "subqueries are not allowed; allowed: a boolean over the row's columns",
        ),
        (
            "(SELECT max(qty) FROM orders) > 1",
            "subqueries are not allowed; allowed: a boolean over the row's columns",
        ),
        (
            "rand() > 0.5",
            "function 'rand' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
        ),
        (
            "reflect('java.lang.System', 'exit', '0') IS NULL",
            "function 'reflect' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
        ),
        (
            "count(*) > 0",
            "function 'count' is not allowed (only deterministic row-level functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)",
        ),
        ("qty + 1", "must be BOOLEAN; found INT"),
        (
            "`qty'x` > 1",
            'column reference "qty\'x": invalid identifier "qty\'x": must match [A-Za-z_][A-Za-z0-9_]* (at most 128 characters)',
        ),
    ],
)
def test_unsafe_expressions_are_rejected(spark: SparkSession, expr: str, reason: str) -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        validate_expression(spark, expr, SCHEMA, what="expectation x")
    assert str(info.value) == f"expectation x {expr!r}: {reason}"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        (
            "length(lpad(email, 2000000000, 'x')) > 0",
            "may build strings of up to 2000000000 characters per row (in "
            "lpad(email, 2000000000, 'x')); at most 100000 are allowed",
        ),
        (
            "rpad(email, qty * 1000, 'x') <> ''",
            "rpad's length must be an integer literal of at most 100000, so the string it "
            "builds is bounded; found (qty * 1000)",
        ),
        (
            "length(concat(lpad(email, 60000, 'x'), lpad(email, 60000, 'y'))) > 0",
            "may build strings of up to 120064 characters per row (in "
            "concat(lpad(email, 60000, 'x'), lpad(email, 60000, 'y'))); at most 100000 are allowed",
        ),
        (
            "length(replace(replace(replace(email, 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), "
            "'a', 'aaaaaaaaaa')) > 0",
            "may repeat a row's values up to 1000 times (in replace(replace(replace(email, 'a', "
            "'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa')); at most 100 are allowed",
        ),
        (
            "replace(email, 'a', email) <> ''",
            "replace's replacement must be a string literal, so the string it builds is "
            "bounded; found email",
        ),
    ],
)
def test_expressions_that_build_huge_strings_are_rejected(
    spark: SparkSession, expr: str, reason: str
) -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        validate_expression(spark, expr, SCHEMA, what="expectation x")
    assert str(info.value) == f"expectation x {expr!r}: {reason}"


@pytest.mark.parametrize(
    "expr",
    [
        "length(lpad(email, 10, '0')) = 10",
        "rpad(email, -1, 'x') = ''",
        "replace(email, '@', ' at ') LIKE '% at %'",
        "concat(email, email, email) <> ''",
        "qty > 0 AND " + " AND ".join(f"order_id <> {i}" for i in range(150)),
    ],
)
def test_bounded_string_building_is_allowed(spark: SparkSession, expr: str) -> None:
    validate_expression(spark, expr, SCHEMA, what="expectation x")


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("   ", "must be a non-empty SQL boolean expression"),
        (
            "qty > 0 /* x */",
            "must be a single SQL boolean expression over the row; '/*' is not allowed",
        ),
        ("qty > 0 " + "AND qty > 0 " * 200, "must be at most 2000 characters"),
    ],
)
def test_config_and_validation_share_the_static_checks(expr: str, reason: str) -> None:
    """One rule (lakehouse.spark.sql) for configuration and for validate_expression."""
    with pytest.raises(UnsafeExpressionError) as info:
        check_expression_text(expr)
    assert str(info.value) == reason
    assert isinstance(info.value, LakehouseError) and isinstance(info.value, ValueError)
    with pytest.raises(ValidationError) as config:
        TableQuality.model_validate({"checks": {"c": expr}})
    assert config.value.errors()[0]["msg"] == f"Value error, {reason}"


def test_ddl_is_not_an_expression(spark: SparkSession) -> None:
    with pytest.raises(
        UnsafeExpressionError,
        match=r"^expectation x 'DROP TABLE orders': not a valid SQL expression: \[PARSE_SYNTAX_ERROR\]",
    ):
        validate_expression(spark, "DROP TABLE orders", SCHEMA, what="expectation x")


def test_unknown_column_is_rejected(spark: SparkSession) -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        validate_expression(spark, "nope > 1", SCHEMA, what="expectation x")
    assert str(info.value) == (
        "expectation x 'nope > 1': 'nope' is not a column of the table; "
        "columns: ['email', 'order_id', 'qty', 'ts']"
    )


def test_validate_quality_checks_key_columns(spark: SparkSession) -> None:
    q = TableQuality.model_validate({"unique_keys": ["order_id", "missing_col"]})
    with pytest.raises(UnsafeExpressionError) as info:
        validate_quality(spark, q, SCHEMA, table="orders")
    assert str(info.value) == (
        "tables.orders.quality.unique_keys: unknown columns ['missing_col']; "
        "table columns: ['email', 'order_id', 'qty', 'ts']"
    )


# --------------------------------------------------------------------- row expectations


def test_warn_drop_and_counts(spark: SparkSession) -> None:
    q = TableQuality.model_validate(
        {
            "expectations": [
                {"name": "qty_positive", "expr": "qty > 0", "action": "drop"},
                {"name": "has_email", "expr": "email IS NOT NULL", "action": "warn"},
            ]
        }
    )
    df = _orders(spark)
    validate_quality(spark, q, df.schema, table="orders")
    out = apply_expectations(df, q, table="orders", stage="silver_orders", batch_id="b1")
    expected = spark.createDataFrame(
        [(1, 2, "a@x.org", dt.datetime(2026, 1, 1, 12)), (3, 5, None, dt.datetime(2026, 1, 1, 12))],
        SCHEMA,
    )
    assert_df_equality(out.accepted, expected, ignore_row_order=True)
    got = {(r.name, r.action, r.passed, r.failed, r.status) for r in out.report.results}
    assert got == {("qty_positive", "drop", 2, 2, "dropped"), ("has_email", "warn", 3, 1, "warned")}
    q_rows = sorted((r["reason"], r["stage"], r["batch_id"]) for r in out.quarantined.collect())
    assert q_rows == [
        ("expectation qty_positive failed: qty > 0", "silver_orders", "b1"),
        ("expectation qty_positive failed: qty > 0", "silver_orders", "b1"),
    ]


def test_fail_expectation_stops_before_write(spark: SparkSession) -> None:
    q = TableQuality.model_validate(
        {"expectations": [{"name": "qty_known", "expr": "qty IS NOT NULL", "action": "fail"}]}
    )
    with pytest.raises(ExpectationFailedError) as info:
        apply_expectations(_orders(spark), q, table="orders", stage="s", batch_id="b1")
    assert str(info.value) == (
        "table orders: data-quality expectations failed, nothing written:\n"
        "  qty_known (row): 1 failing, 3 passing; qty IS NOT NULL"
    )


def test_a_row_that_raises_under_ansi_fails_the_expectation(spark: SparkSession) -> None:
    """CAST_INVALID_INPUT and DIVIDE_BY_ZERO fail the row (try semantics), not the job.
    ANSI mode is Spark 4's default and set here for Spark 3.5, where it is off."""
    with session_conf(spark, {"spark.sql.ansi.enabled": "true"}):
        _raising_rows_fail(spark)


def _raising_rows_fail(spark: SparkSession) -> None:
    q = TableQuality.model_validate(
        {
            "expectations": [
                {"name": "numeric_code", "expr": "CAST(code AS INT) > 0", "action": "drop"},
                {"name": "ratio", "expr": "10 / qty > 1", "action": "warn"},
            ]
        }
    )
    df = spark.createDataFrame([("1", 2), ("x", 2), ("3", 0)], "code string, qty int")
    validate_quality(spark, q, df.schema, table="t")
    out = apply_expectations(df, q, table="t", stage="s", batch_id="b1")
    got = {(r.name, r.passed, r.failed) for r in out.report.results}
    assert got == {("numeric_code", 2, 1), ("ratio", 2, 1)}
    assert_df_equality(
        out.accepted,
        spark.createDataFrame([("1", 2), ("3", 0)], "code string, qty int"),
        ignore_row_order=True,
    )
    assert [r["reason"] for r in out.quarantined.collect()] == [
        "expectation numeric_code failed: CAST(code AS INT) > 0"
    ]


# --------------------------------------------------------------------- table checks


def test_table_checks(spark: SparkSession) -> None:
    q = TableQuality.model_validate(
        {
            "row_count": {"min": 1, "max": 3, "action": "warn"},
            "unique_keys": ["order_id"],
            "unique_action": "warn",
            "freshness": {"column": "ts", "max_age_hours": 24, "action": "warn"},
        }
    )
    df = _orders(spark).union(_orders(spark).filter("order_id = 1"))
    rep = check_table(df, q, table="orders", now=dt.datetime(2026, 1, 3))
    assert [(r.name, r.passed, r.failed, r.status) for r in rep.results] == [
        ("row_count", 0, 1, "warned"),
        ("unique_order_id", 3, 2, "warned"),
        ("freshness_ts", 0, 1, "warned"),
    ]
    fresh = check_table(df, q, table="orders", now=dt.datetime(2026, 1, 1, 13))
    assert fresh.results[2].status == "passed"


def test_table_check_failure_raises(spark: SparkSession) -> None:
    q = TableQuality.model_validate({"unique_keys": ["order_id"]})
    df = _orders(spark).union(_orders(spark).filter("order_id = 1"))
    with pytest.raises(ExpectationFailedError) as info:
        check_table(df, q, table="orders")
    assert str(info.value) == (
        "table orders: data-quality expectations failed, nothing written:\n"
        "  unique_order_id (unique): 2 failing, 3 passing; 1 duplicated keys over ['order_id']"
    )


def test_results_table_is_idempotent_per_batch(spark: SparkSession, tmp_path: Path) -> None:
    q = TableQuality.model_validate(
        {"expectations": [{"name": "qty_positive", "expr": "qty > 0", "action": "warn"}]}
    )
    rep = apply_expectations(_orders(spark), q, table="orders", stage="s", batch_id="b1").report
    path = str(tmp_path / "quality_results")
    assert write_quality_results(spark, [rep], path, job="silver_orders", batch_id="b1") == 1
    write_quality_results(spark, [rep], path, job="silver_orders", batch_id="b1")  # re-run
    rows = (
        spark.read.format("delta")
        .load(path)
        .select("batch_id", "job", "table", "expectation", "status", "passed", "failed")
    )
    assert [tuple(r) for r in rows.collect()] == [
        ("b1", "silver_orders", "orders", "qty_positive", "warned", 2, 2)
    ]


# --------------------------------------------------------------------- constraints


def test_constraints_are_enforced_for_any_writer(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "dim")
    schema = "customer_id long, valid_from timestamp, valid_to timestamp"
    spark.createDataFrame([(1, dt.datetime(2026, 1, 1), None)], schema).write.format("delta").save(
        path
    )
    q = TableQuality.model_validate(
        {
            "not_null": ["customer_id"],
            "checks": {"valid_interval": "valid_to IS NULL OR valid_to > valid_from"},
        }
    )
    done = apply_constraints(spark, path, q, table="dim_customer")
    assert done == [
        "added constraint customer_id_not_null CHECK ((customer_id IS NOT NULL))",
        "added constraint valid_interval CHECK (((valid_to IS NULL) OR (valid_to > valid_from)))",
    ]
    assert apply_constraints(spark, path, q, table="dim_customer") == []  # idempotent
    assert sorted(existing_constraints(spark, path)) == ["customer_id_not_null", "valid_interval"]
    bad = spark.createDataFrame([(2, dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 1))], schema)
    with pytest.raises(Exception, match="DELTA_VIOLATE_CONSTRAINT_WITH_VALUES"):
        bad.write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).count() == 1


# --------------------------------------------------------------------- config + drift


def test_quality_config_errors_name_file_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            "local",
            overrides={"tables": {"orders": {"quality": {"expectations": [
                {"name": "x", "expr": "qty > 0; DROP TABLE t", "action": "drop", "colour": "red"}
            ]}}}},
        )  # fmt: skip
    assert str(info.value) == (
        "invalid configuration:\n"
        "  <overrides>: tables.orders.quality.expectations.0.expr: must be a single SQL boolean "
        "expression over the row; ';' is not allowed; found 'qty > 0; DROP TABLE t'\n"
        "  <overrides>: tables.orders.quality.expectations.0.colour: unknown key 'colour' "
        "under tables.orders.quality.expectations.0"
    )


def test_schema_drift() -> None:
    table = T.StructType([T.StructField("id", T.LongType()), T.StructField("name", T.StringType())])
    landing = T.StructType(
        [T.StructField("id", T.StringType()), T.StructField("extra", T.StringType())]
    )
    with pytest.raises(SchemaDriftError) as info:
        check_schema(landing, table, source="orders/*.csv", evolution=False)
    assert str(info.value) == (
        "orders/*.csv: schema drift rejected: column 'id' changed type bigint -> string; "
        "extra columns ['extra']; missing columns ['name']. Set schema_evolution: true on "
        "this source to accept it."
    )
    assert check_schema(landing, table, source="s", evolution=True) == [
        "extra columns ['extra']",
        "missing columns ['name']",
        "column 'id' changed type bigint -> string",
    ]
    assert check_schema(table, table, source="s", evolution=False) == []
