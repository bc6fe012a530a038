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


def _restore_test_table(spark, path: str) -> None:
    """v0 rows a, b; v1 appends c; v2 RESTOREs v0 (c removed); v3 appends d."""
    from delta.tables import DeltaTable

    def append(ids: list[str]) -> None:
        df = spark.createDataFrame([(i,) for i in ids], "id string")
        df.write.format("delta").mode("append").save(path)

    append(["c"])
    DeltaTable.forPath(spark, path).restoreToVersion(0)
    append(["d"])


def test_streams_go_on_past_a_restore(spark, tmp_path):
    """A rollback's RESTORE does not stop the streams downstream: a plain stream skips it
    (skipChangeCommits) and takes what is appended after it; a change-feed stream reads
    it as the removed rows' deletes."""
    settings = _settings(tmp_path)
    plain, feed = settings.table_path("bronze_customers"), settings.table_path("dim_customer")
    seen: dict[str, list[tuple[str, str]]] = {"plain": [], "feed": []}

    def collect(kind: str):
        def handler(inc) -> None:
            change = "_change_type" in inc.df.columns
            cols = ["id", "_change_type"] if change else ["id"]
            seen[kind] += [
                (r[0], r[1] if change else "append") for r in inc.df.select(*cols).collect()
            ]

        return handler

    def run_streams() -> None:
        with job_context(spark, settings, "gold_daily_sales", batch_id="b") as gold:
            gold.stream_table("dim_customer", collect("feed"), change_feed=True)
        with job_context(spark, settings, "silver_customers", batch_id="b") as silver:
            silver.stream_table("bronze_customers", collect("plain"))

    rows = spark.createDataFrame([("a",), ("b",)], "id string")
    rows.write.format("delta").save(plain)
    rows.write.format("delta").option("delta.enableChangeDataFeed", "true").save(feed)
    run_streams()  # both at v0
    for path in (plain, feed):
        _restore_test_table(spark, path)
    seen = {"plain": [], "feed": []}
    run_streams()
    assert sorted(seen["plain"]) == [("c", "append"), ("d", "append")]
    assert sorted(seen["feed"]) == [("c", "delete"), ("c", "insert"), ("d", "insert")]


def test_a_batch_run_does_not_start_a_stream_that_has_read_every_version(spark, tmp_path):
    """A Delta stream whose checkpoint has read up to the table's version is recorded as
    "nothing new" without starting its query; a new commit starts it again. The check
    declines (the query runs) for another table id and for an uncommitted last batch."""
    from lakehouse.pipeline.incremental import delta_stream_caught_up
    from lakehouse.spark.delta import DeltaTableRef

    settings = _settings(tmp_path)
    path = settings.table_path("bronze_customers")
    seen: list[str] = []

    def run_stream():
        with job_context(spark, settings, "silver_customers", batch_id="b") as ctx:
            ctx.stream_table("bronze_customers", lambda inc: seen.extend(
                r[0] for r in inc.df.collect()
            ))  # fmt: skip
        return ctx.streams[0]

    spark.createDataFrame([("a",), ("b",)], "id string").write.format("delta").save(path)
    first = run_stream()
    assert first.skipped is None and first.query is not None and sorted(seen) == ["a", "b"]
    again = run_stream()
    assert again.query is None and again.skipped == "nothing new (v0 read)"
    assert again.summary()["increments"] == [] and sorted(seen) == ["a", "b"]

    spark.createDataFrame([("c",)], "id string").write.format("delta").mode("append").save(path)
    third = run_stream()
    assert third.query is not None and sorted(seen) == ["a", "b", "c"]

    checkpoint = third.checkpoint
    version, table_id = DeltaTableRef.for_path(spark, path).version_and_id()
    assert version == 1 and delta_stream_caught_up(spark, checkpoint, 1, table_id)
    assert not delta_stream_caught_up(spark, checkpoint, 2, table_id)  # a newer commit
    assert not delta_stream_caught_up(spark, checkpoint, 1, "another-table-id")
    commits = sorted((tmp_path / "data").glob("_checkpoints/silver_customers/*/commits/*"))
    commits[-1].unlink()  # the last batch ran but its commit is not logged: run it again
    assert not delta_stream_caught_up(spark, checkpoint, 1, table_id)


def test_a_jobs_handlers_run_one_at_a_time(spark, tmp_path):
    # In a continuous run each stream calls its handler from its own thread.
    import threading
    import time

    with job_context(spark, _settings(tmp_path), "gold_daily_sales", batch_id="b") as ctx:
        inside, overlaps = [], []

        def handler(inc):
            inside.append(inc)
            if len(inside) > 1:
                overlaps.append(len(inside))
            time.sleep(0.05)
            inside.remove(inc)

        wrapped = ctx.one_at_a_time(handler)
        threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert overlaps == [] and inside == []
