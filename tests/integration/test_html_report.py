"""``lakehouse report --html``: the page of a sample pipeline run, loaded in headless
Chromium (Debian's package, installed by ``scripts/install-browser.sh``).

The browser test checks that the charts rendered (their SVG elements are there and have
a size), that the page logged no console error and made no network request, and that a
screenshot is not blank. With ``LAKEHOUSE_REPORT_SCREENSHOT=docs/img/run-report.png`` it
also writes the README's screenshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.generator import generate_increment, generate_landing
from lakehouse.cli import main
from lakehouse.pipeline.history import load_runs
from lakehouse.pipeline.html_report import TrendPoint, render_html
from lakehouse.pipeline.report import JobResult, RunReport

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def two_runs(spark, restore_test_conf, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sample pipeline run twice through the CLI (the history, then one new day) on a
    data root of its own; yields the data root, with LAKEHOUSE_DATA_ROOT pointing to it."""
    root = tmp_path_factory.mktemp("two_runs") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_DATA_ROOT", str(root))
        try:
            generate_landing(root / "landing", orders=300, days=7, seed=3, malformed_fraction=0.03)
            assert main(["run", "all", "--batch-id", "20261207T090000Z-first"]) == 0
            generate_increment(
                root / "landing", index=0, orders=20, customer_updates=5, seed=3, days=7
            )
            assert main(["run", "all", "--batch-id", "20261207T100000Z-second"]) == 0
            yield root
        finally:
            restore_test_conf()


@pytest.mark.slow
def test_the_report_renders_in_a_browser(
    two_runs: Path, tmp_path: Path, restore_test_conf: Callable[[], None]
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (test.sh --all does)")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out = tmp_path / "run.html"
    try:
        assert main(["report", "--html", str(out), "--runs", "5"]) == 0
    finally:
        restore_test_conf()
    page_html = out.read_text(encoding="utf-8")
    assert "20261207T100000Z-second" in page_html  # the latest run by default
    assert "http://" not in page_html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    errors: list[str] = []
    requests: list[str] = []
    shot = Path(os.environ.get("LAKEHOUSE_REPORT_SCREENSHOT") or tmp_path / "run.png")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1040, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            counts = {
                sel: page.locator(sel).count()
                for sel in (
                    "#timeline rect.job",
                    "#timeline rect.stage",
                    "#funnel rect.funnel",
                    "#expectations tr",
                    "#trend polyline.trend",
                    "#tables tr",
                    "#cost tr",
                )
            }
            box = page.locator("#timeline").bounding_box()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [out.as_uri()]  # the page itself, nothing from the network
    assert counts["#timeline rect.job"] == 5  # one bar per job
    assert counts["#timeline rect.stage"] > 5
    assert counts["#funnel rect.funnel"] == 15  # in, accepted, quarantined per job
    assert counts["#expectations tr"] > 1 and counts["#tables tr"] > 5
    assert counts["#trend polyline.trend"] >= 2  # one line per expectation
    assert counts["#cost tr"] == 1 + 5 + 1  # header, one row per job, the run
    assert box is not None and box["width"] > 500 and box["height"] > 100
    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20, "the screenshot is (nearly) blank"
    background = max(colors)[0] / sum(n for n, _ in colors)
    assert background < 0.97, f"{background:.1%} of the screenshot is one color"


@pytest.mark.slow
def test_the_page_has_what_the_run_reported(two_runs: Path) -> None:
    records = load_runs(two_runs / "_reports")
    assert [r.run_id for r in records] == ["20261207T100000Z-second", "20261207T090000Z-first"]
    latest = records[0]
    for job in latest.jobs:  # the runner recorded when each job ran and its stages
        assert job.started_at is not None
        assert job.details["executor_run_s"] >= 0
    assert any(job.details["stages"] for job in latest.jobs)
    # the cost: core-seconds of each job's stages; the run's window holds every job's
    job_core_s = [job.details["cost"]["core_s"] for job in latest.jobs]
    assert all(c >= 0 for c in job_core_s) and sum(job_core_s) > 0
    assert latest.cost["core_s"] >= sum(job_core_s) - 0.01
    assert "usd" not in latest.cost  # local run without cost.local_core_hour: no price
    page = render_html(
        latest,
        trend=[TrendPoint(latest.run_id, "orders.positive_quantity", 10, 2)],
        trend_runs=[latest.run_id],
        reasons={"quarantine_bronze": {"malformed csv record": 3}},
    )
    assert page.count('class="job"') == len(latest.jobs)
    assert "malformed csv record" in page and "orders.positive_quantity" in page
    for job in latest.jobs:
        for table, version in job.tables.items():
            if version is not None:
                assert f"<td>{table}</td><td>v{version}</td>" in page


def test_a_report_of_an_unknown_run_names_it_and_an_old_report_renders(
    spark,
    restore_test_conf: Callable[[], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    out = tmp_path / "x.html"
    before = spark.conf.get("spark.sql.shuffle.partitions")
    assert main(["report", "--html", str(out)]) == 2
    assert "no runs in" in capsys.readouterr().err
    # a report from before jobs had start times and stages: laid out one after the other
    job = JobResult(job="bronze_ingest", rows_in=3, rows_written=2, rows_quarantined=1)
    RunReport("r1", "local", "2026-12-01T00:00:00+00:00", [job]).write(str(tmp_path / "_reports"))
    assert main(["report", "nope", "--html", str(out)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert not out.exists()
    try:
        assert main(["report", "r1", "--html", str(out)]) == 0
        leaked = spark.conf.get("spark.sql.shuffle.partitions")
    finally:
        restore_test_conf()
    # the command's session settings reached the shared test session; they are put back
    assert leaked == "8" != before
    assert spark.conf.get("spark.sql.shuffle.partitions") == before
    page = out.read_text(encoding="utf-8")
    assert "<h1>Run r1</h1>" in page and page.count('class="job"') == 1
    assert "No quality results recorded" in page
