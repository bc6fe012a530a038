"""The incremental pipeline: increments, a late customer event, no-op runs, full refresh.

Run, add an increment, run, add a late customer event that moves old orders to another
customer version, run. The result equals a full refresh over the same landing files; the
fact rows the late event touched changed, and no other fact row did. A run with nothing new
commits no Delta version on any table (counted from the ``_delta_log`` folders). Then
``--full-refresh silver_customers`` (its tables, and every job downstream, rebuilt from
their sources) gives the same tables again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from harness.generator import generate_increment, generate_landing
from lakehouse.config import Settings, load_config
from lakehouse.pipeline import JobRegistry, full_refresh, run_pipeline

JOBS = ("bronze_ingest", "silver_customers", "silver_orders", "gold_daily_sales")
#: Tables whose content is a function of the landing files alone (no run ids or times).
DERIVED = ("orders", "products", "dim_customer", "fact_sales", "daily_revenue")


def commits(settings: Settings) -> int:
    """Delta commits under the data root, from the ``_delta_log`` folders."""
    root = Path(settings.paths.data_root)
    return sum(1 for p in root.rglob("_delta_log/*.json") if "_checkpoints" not in p.parts)


def _table(spark: SparkSession, settings: Settings, name: str):
    return spark.read.format("delta").load(settings.table_path(name))


def _same_tables(
    spark: SparkSession, settings: Settings, other: Settings, names: tuple[str, ...]
) -> None:
    for name in names:
        assert_df_equality(
            _table(spark, settings, name),
            _table(spark, other, name),
            ignore_row_order=True,
            ignore_column_order=True,
            ignore_nullable=True,
        )


def _late_event(spark: SparkSession, settings: Settings) -> tuple[dict, set[str]]:
    """A customer event dated between a current version's start and a later order of that
    customer, with another city; and the orders it moves to the new version."""
    fact = _table(spark, settings, "fact_sales").where(F.col("customer_sk").isNotNull())
    dim = _table(spark, settings, "dim_customer").where("is_current")
    row = (
        fact.join(dim, "customer_id")
        .where(F.col("order_ts") > F.col("valid_from") + F.expr("INTERVAL 2 SECONDS"))
        .orderBy("order_id")
        .select("customer_id", "valid_from", "order_ts", "name", "email", "city", "tier")
        .first()
    )
    assert row is not None
    at = row["valid_from"] + (row["order_ts"] - row["valid_from"]) / 2
    at = at.replace(microsecond=0)
    event = {
        "customer_id": row["customer_id"],
        "name": row["name"],
        "email": row["email"],
        "city": f"{row['city']}-moved",
        "tier": row["tier"],
        "op": "U",
        "updated_at": at.strftime("%Y-%m-%d %H:%M:%S"),
    }
    moved = {
        r["order_id"]
        for r in _table(spark, settings, "orders")
        .where((F.col("customer_id") == row["customer_id"]) & (F.col("order_ts") >= at))
        .collect()
    }
    return event, moved


@pytest.mark.slow
def test_increments_and_a_late_event_equal_a_full_refresh(
    spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    generate_landing(settings.landing_path, orders=300, days=10, seed=11, malformed_fraction=0.02)
    first = run_pipeline(spark, settings, jobs=JOBS, batch_id="inc-1")
    assert first.ok

    # nothing new: no Delta version anywhere
    before = commits(settings)
    noop = run_pipeline(spark, settings, jobs=JOBS, batch_id="inc-noop")
    assert commits(settings) == before
    assert all(j.details.get("noop") is True for j in noop.jobs), [
        (j.job, j.details.get("increments")) for j in noop.jobs
    ]

    # one day of new data (~3% here), read alone
    generate_increment(
        settings.landing_path, index=0, orders=10, customer_updates=5, seed=11, days=10
    )
    second = run_pipeline(spark, settings, jobs=JOBS, batch_id="inc-2")
    by_job = {j.job: j for j in second.jobs}
    assert 10 <= by_job["bronze_ingest"].rows_in <= 20  # the two new files only
    assert by_job["silver_orders"].details["orders"]["input"] < 20

    # a late customer event moves already-loaded orders to another customer version
    event, moved = _late_event(spark, settings)
    assert moved
    late = Path(settings.landing_path) / "customers" / "customers_late.json"
    late.write_text(json.dumps(event) + "\n", encoding="utf-8")
    fact_before = {
        r["order_id"]: r.asDict() for r in _table(spark, settings, "fact_sales").collect()
    }
    third = run_pipeline(spark, settings, jobs=JOBS, batch_id="inc-3")
    gold = {j.job: j for j in third.jobs}["gold_daily_sales"]
    fact_after = {
        r["order_id"]: r.asDict() for r in _table(spark, settings, "fact_sales").collect()
    }
    changed = {k for k, v in fact_after.items() if fact_before.get(k) != v}
    assert changed == moved
    assert all(fact_after[k]["customer_city"] == event["city"] for k in moved)
    assert gold.details["corrected_by_customer_id"] == len(moved)
    dates = {fact_after[k]["order_date"] for k in moved}
    assert gold.details["dates_recomputed"] == len(dates)

    # a full refresh over the same landing files gives the same tables
    fresh = load_config(
        "local",
        conf_dir=settings.conf_dir,
        overrides={"paths": {"data_root": str(tmp_path / "fresh")}},
    )
    shutil.copytree(settings.landing_path, fresh.landing_path)
    assert run_pipeline(spark, fresh, jobs=JOBS, batch_id="full").ok
    _same_tables(spark, settings, fresh, DERIVED)
    for name in (
        "bronze_orders",
        "bronze_customers",
        "quarantine_bronze",
        "quarantine_silver_orders",
    ):
        assert _table(spark, settings, name).count() == _table(spark, fresh, name).count(), name

    # `lakehouse run silver_customers --full-refresh`: the job and everything downstream
    # rebuilt from their sources give the tables of the incremental history again
    downstream = JobRegistry.from_settings(settings).downstream("silver_customers")
    rebuilt = [j for j in downstream if j in JOBS]
    assert rebuilt == ["silver_customers", "gold_daily_sales"]
    assert full_refresh(spark, settings, rebuilt)
    assert run_pipeline(spark, settings, jobs=rebuilt, batch_id="refresh").ok
    _same_tables(spark, settings, fresh, ("dim_customer", "fact_sales", "daily_revenue"))
