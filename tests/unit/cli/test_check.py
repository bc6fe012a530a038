"""``lakehouse check``: the subcommand's arguments, its report and its exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import SparkSession

from lakehouse.cli.check import add_parser, run_check
from lakehouse.config import Settings


def test_parser_takes_table_names() -> None:
    parser = argparse.ArgumentParser(prog="lakehouse")
    add_parser(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["check"]).tables == []
    assert parser.parse_args(["check", "orders", "fact_sales"]).tables == ["orders", "fact_sales"]


def test_unknown_table_exits_2(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(settings, ["nope"]) == 2
    assert capsys.readouterr().err.startswith(
        "lakehouse check: unknown tables ['nope']; known: ['bronze_customers',"
    )


def test_report_and_exit_codes(
    spark: SparkSession, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    orders, fact = settings.table_path("orders"), settings.table_path("fact_sales")
    spark.range(0, 4).repartition(2).write.format("delta").save(orders)
    spark.range(0, 2).coalesce(1).write.format("delta").save(fact)
    assert run_check(settings, ["orders", "fact_sales", "products"], spark=spark) == 0
    assert capsys.readouterr().out.splitlines() == [
        "orders: ok (v0, 2 live files)",
        "fact_sales: ok (v0, 1 live files)",
        f"products: no Delta table yet at {settings.table_path('products')}; skipped",
    ]

    lost = sorted(spark.read.format("delta").load(orders).inputFiles())[0]
    Path(urlparse(lost).path).unlink()
    assert run_check(settings, ["orders", "fact_sales"], spark=spark) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == (
        f"orders: 1 of 2 live files of v0 are missing ({orders}); readers fail with FILE_NOT_EXIST:"
    )
    assert out[1] == f"    missing: {lost}"
    assert out[-1] == "fact_sales: ok (v0, 1 live files)"
    assert captured.err == "lakehouse check: 1 of 2 tables need repair\n"
