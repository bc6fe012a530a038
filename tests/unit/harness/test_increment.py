"""harness.generator.generate_increment and ``python -m harness increment``."""

import csv
import io
import json
import re
from pathlib import Path

import pytest

from harness.__main__ import main
from harness.generator import ORDER_COLUMNS, generate_increment, generate_landing

HISTORY = {"orders": 3000, "seed": 11, "days": 365, "start_date": "2025-01-01"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.*"))}


def _history(root: Path) -> Path:
    generate_landing(root, malformed_fraction=0.01, **HISTORY)
    return root


def _order_rows(path: Path) -> list[dict[str, str]]:
    return [
        dict(zip(ORDER_COLUMNS, row, strict=True))
        for row in list(csv.reader(io.StringIO(path.read_text())))[1:]
        if len(row) == len(ORDER_COLUMNS)
    ]


def _history_order_ids(root: Path) -> set[str]:
    ids = set()
    for path in (root / "orders").glob("orders_20*.csv"):
        ids |= {r["order_id"] for r in _order_rows(path)}
    for path in (root / "orders").glob("orders_20*.json"):
        for line in path.read_text().splitlines():
            try:
                ids.add(json.loads(line)["order_id"])
            except json.JSONDecodeError:
                continue
    return ids


def _events(path: Path) -> list[dict[str, str | None]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _history_events(root: Path) -> dict[str, list[dict[str, str | None]]]:
    per_key: dict[str, list[dict[str, str | None]]] = {}
    for path in sorted((root / "customers").glob("customers_0*.json")):
        for e in _events(path):
            if e["customer_id"]:
                per_key.setdefault(str(e["customer_id"]), []).append(e)
    for chain in per_key.values():
        chain.sort(key=lambda e: str(e["updated_at"]))
    return per_key


def test_writes_only_two_new_files_and_never_replaces_one(tmp_path):
    root = _history(tmp_path / "landing")
    before = _files(root)
    stats = generate_increment(root, orders=100, customer_updates=20, seed=1)
    after = _files(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == [
        "customers/customers_inc_2026-01-01.json",
        "orders/orders_inc_2026-01-01.csv",
    ]
    assert stats["day"] == "2026-01-01"
    with pytest.raises(FileExistsError, match=re.escape("orders_inc_2026-01-01.csv exists")):
        generate_increment(root, day="2026-01-01", orders=5, customer_updates=1, seed=2)
    assert _files(root) == after


def test_same_arguments_same_bytes_other_days_differ(tmp_path):
    a, b = _history(tmp_path / "a"), _history(tmp_path / "b")
    args = {"orders": 300, "customer_updates": 40, "late_customer_events": 5, "seed": 3}
    for k in range(2):
        generate_increment(a, index=k, **args)
        generate_increment(b, index=k, **args)
    assert _files(a) == _files(b)
    day0 = (a / "orders" / "orders_inc_2026-01-01.csv").read_text().splitlines()[1:]
    day1 = (a / "orders" / "orders_inc_2026-01-02.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1:3] for r in day0] != [r.split(",")[1:3] for r in day1]


def test_default_days_are_consecutive_after_the_history(tmp_path):
    root = _history(tmp_path)
    days = [generate_increment(root, orders=5, customer_updates=1)["day"] for _ in range(3)]
    assert days == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert generate_increment(root, index=10, orders=5, customer_updates=1)["day"] == "2026-01-11"


def test_orders_are_new_ids_of_that_day_for_existing_customers_and_products(tmp_path):
    root = _history(tmp_path)
    history_ids = _history_order_ids(root)
    customers = {f"C{i:07d}" for i in range(300)}  # generate_landing: orders // 10
    products = {r[0] for r in csv.reader(io.StringIO((root / "products/products.csv").read_text()))}
    seen: set[str] = set()
    nulls = bad_dates = 0
    for k in range(3):
        stats = generate_increment(root, index=k, orders=2000, customer_updates=5, seed=4)
        rows = _order_rows(root / str(stats["orders_file"]))
        ids = {r["order_id"] for r in rows}
        assert len(rows) > 1900
        assert len(ids) < len(rows)  # the history's exact duplicate deliveries
        assert not ids & history_ids and not ids & seen
        seen |= ids
        day = str(stats["day"])
        on_day = [r for r in rows if r["order_ts"].startswith(day)]
        assert len(rows) - len(on_day) < 20  # the rare unparseable dates
        bad_dates += len(rows) - len(on_day)
        assert {r["customer_id"] for r in rows} <= customers | {""}  # "": rare NULL keys
        nulls += sum(1 for r in rows if not r["customer_id"])
        assert {r["product_id"] for r in rows} <= products
        assert any(int(r["quantity"]) < 0 for r in rows)
    assert nulls > 0 and bad_dates > 0


def test_updates_of_the_day_change_live_customers(tmp_path):
    root = _history(tmp_path)
    history = _history_events(root)
    stats = generate_increment(root, orders=1, customer_updates=50, seed=5, malformed_fraction=0.0)
    events = _events(root / str(stats["customers_file"]))
    assert stats["late_events"] == 0 and len(events) >= 50
    assert {e["op"] for e in events} == {"U"}
    assert len({e["customer_id"] for e in events}) == 50
    attrs = ("name", "email", "city", "tier")
    for e in events:
        assert str(e["updated_at"]).startswith("2026-01-01")
        latest = history[str(e["customer_id"])][-1]
        assert latest["op"] != "D"
        assert [e[a] for a in attrs] != [latest[a] for a in attrs]
        assert e["name"] == latest["name"]


def test_late_events_split_a_version_inside_the_history(tmp_path):
    root = _history(tmp_path)
    history = _history_events(root)
    stats = generate_increment(
        root,
        orders=1,
        customer_updates=0,
        late_customer_events=30,
        seed=6,
        malformed_fraction=0.0,
    )
    assert stats["late_events"] == 30
    late = _events(root / str(stats["customers_file"]))
    assert len({e["customer_id"] for e in late}) == 30
    for e in late:
        chain = history[str(e["customer_id"])]
        ts = str(e["updated_at"])
        assert "2025-01-01" <= ts < "2026-01-01"
        before = [h for h in chain if str(h["updated_at"]) < ts]
        assert before and before[-1]["op"] != "D"  # splits a live version ...
        in_effect = before[-1]
        assert any(e[a] != in_effect[a] for a in ("name", "email", "city", "tier"))
        assert e["op"] == "U"


def test_no_history_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="write the history first"):
        generate_increment(tmp_path, orders=5, customer_updates=1)
    assert not list(tmp_path.rglob("*.*"))


def test_cli_increment_defaults_and_day(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DATA_ROOT", str(tmp_path))
    assert main(["generate", "--orders", "2000"]) == 0
    assert main(["increment", "--index", "1", "--orders", "40", "--late-events", "2"]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    stats = json.loads(out.split(": ", 1)[1])
    assert stats["day"] == "2026-01-02" and stats["late_events"] == 2
    assert 40 <= stats["orders"] < 45
    assert main(["increment", "--day", "2026-01-02"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["increment"]) == 0  # the first free day, 1% of the configured orders
    stats = json.loads(capsys.readouterr().out.splitlines()[-1].split(": ", 1)[1])
    assert stats["day"] == "2026-01-01" and stats["orders"] >= 1000
