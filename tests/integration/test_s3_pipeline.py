"""The pipeline end to end on ``s3a://``: data root and landing on a local S3 API (moto on
127.0.0.1), through hadoop-aws, and the same tables as a run on local disk.

The S3 runs are ``lakehouse run all`` in a process of their own: its session resolves
hadoop-aws (``spark.s3a.package: auto``) and reaches the S3 API through ``spark.s3a``
(``LAKEHOUSE_S3_ENDPOINT`` / ``LAKEHOUSE_S3_PATH_STYLE``), with credentials only in the
environment, as a user runs it. ``AWS_ENDPOINT_URL`` is not passed on, so the run lock on the
``s3a://`` data root finds the S3 API through the same settings. The local-disk runs use the
test session on the same landing files. Both do: the history (B1), a re-run with nothing
new (B2), one new day (B3).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from harness.generator import generate_increment, generate_landing
from lakehouse.config import Settings, load_config
from lakehouse.pipeline import run_pipeline

REPO = Path(__file__).resolve().parents[2]
BUCKET, ROOT = "lake", "lakehouse"
TABLES = (
    "bronze_orders",
    "bronze_customers",
    "bronze_products",
    "quarantine_bronze",
    "landing_ledger",
    "orders",
    "products",
    "dim_customer",
    "fact_sales",
    "daily_revenue",
)
#: Columns that differ between two runs over the same files by design (batch ids, times),
#: the files' modification times (the upload's on S3, the generator's on disk) and the
#: quarantine's row_hash (a hash of stage, source path and record: compared unhashed).
RUN_COLUMNS = (
    "_ingest_time",
    "_batch_id",
    "batch_id",
    "quarantined_at",
    "modified_ms",
    "row_hash",
)
GENERATED = {"orders": 240, "days": 5, "seed": 28, "malformed_fraction": 0.03}


def _upload_new(s3, landing: Path) -> list[str]:
    """Put the landing files that are not on S3 yet under ``<root>/landing/``."""
    there = {o["Key"] for o in _objects(s3, f"{ROOT}/landing/")}
    put = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        key = f"{ROOT}/landing/{path.relative_to(landing).as_posix()}"
        if key not in there:
            s3.upload_file(str(path), BUCKET, key)
            put.append(key)
    return put


def _objects(s3, prefix: str) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def _commits(s3, settings: Settings) -> dict[str, int]:
    """Delta commits per table on S3 (a re-run with nothing new must add none)."""
    out = {}
    for table in TABLES:
        log = f"{ROOT}/{settings.tables[table].path}/_delta_log/"
        out[table] = sum(o["Key"].endswith(".json") for o in _objects(s3, log))
    return out


def _run_on_s3(endpoint: str, batch_id: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        LAKEHOUSE_DATA_ROOT=f"s3a://{BUCKET}/{ROOT}",
        LAKEHOUSE_S3_ENDPOINT=endpoint,
        LAKEHOUSE_S3_PATH_STYLE="true",
        LAKEHOUSE_S3_REGION="us-east-1",
    )
    cmd = [sys.executable, "-m", "lakehouse.cli", "--env", "local", "run", "all"]
    done = subprocess.run(
        [*cmd, "--batch-id", batch_id],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{batch_id} on S3 failed:\n{done.stdout}\n{done.stderr[-6000:]}"
    return done.stdout


def _download(s3, settings: Settings, table: str, into: Path) -> str:
    """The table's objects copied to local disk, to read it with the test session."""
    prefix = f"{ROOT}/{settings.tables[table].path}/"
    for obj in _objects(s3, prefix):
        target = into / table / obj["Key"][len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, obj["Key"], str(target))
    return str(into / table)


def _comparable(df: DataFrame) -> DataFrame:
    """Run columns out; landing paths (``s3a://.../landing/x`` vs ``file:/.../landing/x``)
    cut to the part under the landing directory."""
    df = df.drop(*RUN_COLUMNS)
    for field in df.schema.fields:
        if field.dataType.simpleString() == "string":
            df = df.withColumn(
                field.name, F.regexp_replace(field.name, r"^\S*/landing/", "landing/")
            )
    return df


@pytest.mark.slow
def test_the_pipeline_on_s3a_equals_the_run_on_local_disk(
    spark: SparkSession, aws_endpoint: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    landing = tmp_path / "landing"
    local = load_config(
        "local",
        conf_dir=REPO / "conf",
        overrides={"paths": {"data_root": str(tmp_path / "local"), "landing": str(landing)}},
    )

    generate_landing(landing, **GENERATED)
    assert _upload_new(s3, landing)
    assert run_pipeline(spark, local, batch_id="B1").ok
    assert "reconciliation ok" in _run_on_s3(aws_endpoint, "B1")
    after_b1 = _commits(s3, local)
    assert all(after_b1[t] > 0 for t in ("bronze_orders", "orders", "fact_sales")), after_b1
    # the run lock was taken and released on S3 through the S3A settings
    assert not _objects(s3, f"{ROOT}/_run.lock")

    assert run_pipeline(spark, local, batch_id="B2").ok
    _run_on_s3(aws_endpoint, "B2")
    assert _commits(s3, local) == after_b1, "a re-run with nothing new wrote to S3"

    generate_increment(landing, index=0, orders=15, customer_updates=5, seed=28, days=5)
    assert len(_upload_new(s3, landing)) == 2  # one orders file, one customers file
    assert run_pipeline(spark, local, batch_id="B3").ok
    _run_on_s3(aws_endpoint, "B3")
    assert _commits(s3, local)["orders"] > after_b1["orders"]

    copies = tmp_path / "from_s3"
    for table in TABLES:
        on_s3 = spark.read.format("delta").load(_download(s3, local, table, copies))
        on_disk = spark.read.format("delta").load(local.table_path(table))
        assert on_disk.count() > 0, table
        assert_df_equality(
            _comparable(on_s3),
            _comparable(on_disk),
            ignore_row_order=True,
            ignore_column_order=True,
            ignore_nullable=True,
        )
