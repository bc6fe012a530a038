"""Full refresh: what a job remembers is deleted, so its next run rebuilds from its sources."""

from __future__ import annotations

from pathlib import Path

from lakehouse.config import load_config
from lakehouse.pipeline import JobRegistry, full_refresh
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
