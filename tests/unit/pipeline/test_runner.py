"""Full refresh: what a job remembers is deleted, so its next run rebuilds from its sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse.pipeline import JobRegistry, full_refresh, job_context, reset_file_streams
from lakehouse.pipeline.incremental import checkpoint_path


def test_full_refresh_deletes_outputs_and_checkpoints_of_the_jobs_only(spark, tmp_path: Path):
    settings = load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path)},
            "tables": {"products": {"external": True}},  # never deleted
        },
    )
    made = []
    for table in ("dim_customer", "quarantine_silver_customers", "fact_sales", "bronze_customers",
                  "products", "orders"):  # fmt: skip
        path = Path(settings.table_path(table))
        path.mkdir(parents=True)
        made.append(path)
    ckpts = [Path(checkpoint_path(settings, job, "src")) for job in ("silver_customers",
             "gold_daily_sales", "bronze_ingest")]  # fmt: skip
    for ckpt in ckpts:
        ckpt.mkdir(parents=True)

    downstream = JobRegistry.from_settings(settings).downstream("silver_customers")
    jobs = ["silver_customers", *downstream, "silver_orders"]
    deleted = full_refresh(spark, settings, jobs)

    assert {Path(p.removeprefix("file:")).name for p in deleted} >= {
        "dim_customer", "silver_customers", "fact_sales", "gold_daily_sales",
    }  # fmt: skip
    assert not Path(settings.table_path("dim_customer")).exists()
    assert not Path(settings.table_path("quarantine_silver_customers")).exists()
    assert not Path(settings.table_path("fact_sales")).exists()  # downstream
    assert not Path(settings.table_path("orders")).exists()
    assert not ckpts[0].exists() and not ckpts[1].exists()
    # upstream tables, an external output (products here) and upstream checkpoints stay
    assert Path(settings.table_path("bronze_customers")).exists()
    assert Path(settings.table_path("products")).exists()
    assert ckpts[2].exists()


def test_reset_file_streams_deletes_only_the_file_stream_checkpoints_of_the_writers(
    spark, tmp_path: Path
):
    """After a rollback of bronze_orders: bronze_ingest's file streams (streaming checkpoints
    not named after a table) are reset; its table streams, other folders and other jobs'
    streams are not."""
    settings = load_config("local", overrides={"paths": {"data_root": str(tmp_path)}})
    files = [Path(checkpoint_path(settings, "bronze_ingest", s)) for s in ("orders_csv", "x_json")]
    kept = [
        Path(checkpoint_path(settings, "bronze_ingest", "bronze_orders")),  # a table stream
        Path(checkpoint_path(settings, "silver_orders", "orders_csv")),  # not a writer
    ]
    bookkeeping = Path(checkpoint_path(settings, "bronze_ingest", "notes"))  # no "metadata"
    bookkeeping.mkdir(parents=True)
    for ckpt in files + kept:
        ckpt.mkdir(parents=True)
        (ckpt / "metadata").write_text('{"id":"q"}')

    planned = reset_file_streams(spark, settings, ["bronze_orders"], dry_run=True)
    assert sorted(Path(p.removeprefix("file:")).name for p in planned) == ["orders_csv", "x_json"]
    assert all(p.exists() for p in files + kept)  # a dry run deletes nothing

    assert reset_file_streams(spark, settings, ["bronze_orders"]) == planned
    assert not any(p.exists() for p in files)
    assert all(p.exists() for p in kept) and bookkeeping.exists()
    assert reset_file_streams(spark, settings, ["daily_revenue"]) == []  # gold has no files


def test_a_file_stream_may_not_take_a_table_name(spark, settings):
    """The rule reset_file_streams relies on: file streams are named apart from tables."""
    refused = pytest.raises(ValueError, match="file stream 'bronze_orders' has a table's name")
    with job_context(spark, settings, "bronze_ingest", batch_id="b") as ctx, refused:
        ctx.stream_files("bronze_orders", "/nowhere/*.csv", lambda inc: None)
