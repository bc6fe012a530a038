"""The job context: AQE profile applied and restored, declared tables enforced, results."""

from __future__ import annotations

import pytest

from lakehouse.config import load_config
from lakehouse.pipeline import UndeclaredTableError, job_context, run_job


def _settings(tmp_path, **bronze):
    return load_config(
        "local",
        overrides={
            "paths": {"data_root": str(tmp_path / "data")},
            "jobs": {"bronze_ingest": bronze} if bronze else {},
        },
    )


def test_the_jobs_aqe_profile_is_applied_inside_and_restored_after(spark, tmp_path):
    settings = _settings(tmp_path, aqe_profile="skewed-joins")
    key = "spark.sql.adaptive.skewJoin.skewedPartitionFactor"
    before = spark.conf.get(key, None)
    with job_context(spark, settings, "bronze_ingest", batch_id="b1") as ctx:
        assert spark.conf.get(key) == "3.0"
        assert ctx.result.details["aqe"]["profile"] == "skewed-joins"
    assert spark.conf.get(key, None) == before


def test_reads_and_writes_are_held_to_the_declaration(spark, tmp_path):
    settings = _settings(tmp_path)
    with job_context(spark, settings, "silver_customers", batch_id="b1") as ctx:
        assert ctx.input_path("bronze_customers").endswith("bronze/customers")
        assert ctx.output_path("dim_customer").endswith("silver/dim_customer")
        with pytest.raises(
            UndeclaredTableError,
            match=r"job silver_customers: table 'orders' is not declared in its inputs "
            r"\(conf/jobs/silver_customers\.yaml\); declared: \['bronze_customers'\]",
        ):
            ctx.read("orders")
        with pytest.raises(UndeclaredTableError, match="not declared in its outputs"):
            ctx.output_path("bronze_customers")


def test_a_failing_job_becomes_a_failed_timed_result(spark, tmp_path):
    settings = _settings(tmp_path)
    # silver_customers reads bronze_customers, here a table without the feed's columns
    spark.createDataFrame([("a",)], "x string").write.format("delta").save(
        settings.table_path("bronze_customers")
    )
    result = run_job(spark, settings, "silver_customers", batch_id="b1")
    assert result.status == "failed"
    assert result.error is not None and "customer_id" in result.error
    assert result.duration_s > 0
