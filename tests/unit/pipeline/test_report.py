def test_render_shows_increments_and_noop():
    from lakehouse.pipeline.report import JobResult, RunReport

    busy = JobResult(job="silver_orders")
    busy.details["increments"] = [
        {"source": "bronze_orders", "increments": [{"increment": 3}, {"increment": 4}],
         "rows_read": 120},
        {"source": "bronze_products", "increments": [], "rows_read": 0},
        {"source": "gone", "increments": [], "skipped": "no table yet"},
    ]  # fmt: skip
    busy.details["noop"] = False
    idle = JobResult(job="gold_daily_sales")
    idle.details["increments"] = [{"source": "orders", "increments": [], "rows_read": 0}]
    idle.details["noop"] = True
    rested = JobResult(job="maintain")  # no streams: its own reason
    rested.details.update(noop=True, noop_reason="no table needed maintenance")
    jobs = [busy, idle, rested]
    text = RunReport(run_id="r", env="local", started_at="t", jobs=jobs).render()
    assert "no-op: no table needed maintenance" in text
    assert (
        "increments: bronze_orders #3,4 120 rows; bronze_products: nothing new; "
        "gone: no table yet" in text
    )
    assert "no-op: nothing new in any source" in text


def test_render_lists_landing_files_changed_after_ingestion():
    from lakehouse.pipeline.report import JobResult, RunReport

    bronze = JobResult(job="bronze_ingest")
    bronze.details["changed_files"] = [
        {"path": "file:/d/landing/orders/a.csv", "reason": "changed after ingestion"}
    ]
    text = RunReport(run_id="r", env="local", started_at="t", jobs=[bronze]).render()
    assert "quarantined file file:/d/landing/orders/a.csv: changed after ingestion" in text
