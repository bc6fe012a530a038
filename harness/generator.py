"""Deterministic sample landing data for the e-commerce domain.

Writes, under ``<landing>/``:

- ``customers/customers_NNN.json``: a change feed (JSON lines) with inserts, updates,
  deletes, several changes per customer, late-arriving events (an event lands in a later
  file than events newer than it), exact duplicates, a few NULL keys, and a small share of
  truncated JSON lines.
- ``products/products.csv``: the catalogue, with a few malformed lines (wrong column count).
- ``orders/orders_YYYY-MM.csv`` and ``.json`` (months alternate between the two formats),
  ~a year of orders, with exact duplicates, negative quantities, NULL keys, unparseable
  dates, wrong column counts and truncated JSON.

The same seed and scale always give byte-identical files.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> stats = generate_landing(d, orders=200, seed=7)
>>> stats["orders"] >= 200 and (d / "products" / "products.csv").exists()
True
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from jobs.bronze_ingest import CUSTOMER_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS

__all__ = ["CUSTOMER_COLUMNS", "ORDER_COLUMNS", "PRODUCT_COLUMNS", "generate_landing"]

# The landing layout is the bronze job's contract; the generator writes to it.

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_CITIES = ("Lisbon", "Berlin", "Austin", "Osaka", "Nairobi", "Lima", "Oslo", "Pune", "Quebec")
_TIERS = ("bronze", "silver", "gold", "platinum")
_CATEGORIES = ("books", "garden", "kitchen", "toys", "sports", "music", "tools")


@dataclass
class _Counts:
    customer_events: int = 0
    products: int = 0
    orders: int = 0
    malformed: int = 0


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _json_line(record: Mapping[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=False)


def _truncate(line: str, rng: random.Random) -> str:
    return line[: max(1, rng.randrange(len(line) // 3, len(line) - 1))]


@dataclass
class _Run:
    """What every step of one :func:`generate_landing` call shares. ``rng`` is drawn from
    in one fixed order (products, customers, orders), which keeps the output byte-identical
    for the same arguments."""

    root: Path
    rng: random.Random
    start: datetime
    span: timedelta
    malformed_fraction: float
    counts: _Counts

    def malformed(self, share: float) -> bool:
        """Draw whether the next line is broken (``share`` of lines are); count it."""
        if self.rng.random() < share:
            self.counts.malformed += 1
            return True
        return False


def _clear(root: Path) -> None:
    for sub in ("customers", "products", "orders"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for old in (root / sub).glob("*"):
            if old.is_file():
                old.unlink()


# ---------------------------------------------------------------------- products (CSV)


def _product_row(run: _Run, i: int, price: float) -> list[str]:
    prow = [
        f"P{i:06d}",
        f"{run.rng.choice(_CATEGORIES)} item {i}",
        _CATEGORIES[i % len(_CATEGORIES)],
        f"{price:.2f}",
        _ts(run.start - timedelta(days=30)),
    ]
    if run.malformed(run.malformed_fraction * 5):
        prow = prow[:3]  # wrong column count
    return prow


def _write_products(run: _Run, n_products: int) -> list[float]:
    """Write the catalogue; return each product's price (orders use them)."""
    prices: list[float] = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PRODUCT_COLUMNS)
    for i in range(n_products):
        price = round(run.rng.uniform(2, 500), 2)
        prices.append(price)
        writer.writerow(_product_row(run, i, price))
        run.counts.products += 1
    (run.root / "products" / "products.csv").write_text(buf.getvalue(), encoding="utf-8")
    return prices


# ---------------------------------------------------------- customers change feed (JSON)

_CUSTOMER_FILES = 4


def _change(run: _Run, state: dict[str, str | None], cid: str, k: int) -> None:
    """Apply customer ``cid``'s ``k``-th change (k >= 1) to ``state``."""
    field = run.rng.choice(("city", "tier", "email", "city"))
    if field == "email" and run.rng.random() < 0.3:
        state["email"] = None  # value -> NULL is a change too
    elif field == "email":
        state["email"] = f"{cid.lower()}+{k}@example.com"
    elif field == "city":
        state["city"] = run.rng.choice(_CITIES)
    else:
        state["tier"] = run.rng.choice(_TIERS)


def _slot(run: _Run, moment: datetime) -> int:
    """The file an event lands in: the one of its time; ~3% arrive late (a later file)."""
    slot = min(_CUSTOMER_FILES - 1, int((moment - run.start) / run.span * _CUSTOMER_FILES))
    if run.rng.random() < 0.03:
        slot = min(_CUSTOMER_FILES - 1, slot + 1 + run.rng.randrange(2))
    return slot


def _deliver(run: _Run, files: list[list[str]], slot: int, line: str) -> None:
    """Add ``line`` to file ``slot``; ~1% are delivered twice (exact duplicates)."""
    files[slot].append(line)
    run.counts.customer_events += 1
    if run.rng.random() < 0.01:
        files[slot].append(line)
        run.counts.customer_events += 1


def _customer_events(run: _Run, c: int, files: list[list[str]]) -> None:
    """Customer ``c``'s insert, updates and maybe a delete, each into its file."""
    rng = run.rng
    cid = f"C{c:07d}"
    n_events = rng.choice((1, 1, 2, 2, 3, 4))
    moments = sorted(run.start + run.span * rng.random() for _ in range(n_events))
    state: dict[str, str | None] = {
        "customer_id": cid,
        "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        "email": f"{cid.lower()}@example.com",
        "city": rng.choice(_CITIES),
        "tier": rng.choice(_TIERS),
    }
    for k, moment in enumerate(moments):
        op = "I" if k == 0 else "U"
        if k > 0:
            _change(run, state, cid, k)
        if k == n_events - 1 and n_events > 1 and rng.random() < 0.05:
            op = "D"
        event = {**state, "op": op, "updated_at": _ts(moment)}
        slot = _slot(run, moment)
        _deliver(run, files, slot, _json_line(event))


def _null_key_events(run: _Run, n_customers: int, files: list[list[str]]) -> None:
    for _ in range(max(1, n_customers // 500)):
        orphan: dict[str, str | None] = {
            "customer_id": None,
            "name": "nobody",
            "email": None,
            "city": run.rng.choice(_CITIES),
            "tier": "bronze",
            "op": "I",
            "updated_at": _ts(run.start + run.span * run.rng.random()),
        }
        files[run.rng.randrange(_CUSTOMER_FILES)].append(_json_line(orphan))
        run.counts.customer_events += 1


def _json_lines(run: _Run, lines: list[str]) -> str:
    """``lines`` as one JSON-lines text, a ``malformed_fraction`` of them truncated."""
    out = [
        _truncate(line, run.rng) if run.malformed(run.malformed_fraction) else line
        for line in lines
    ]
    return "\n".join(out) + "\n"


def _write_customers(run: _Run, n_customers: int) -> None:
    files: list[list[str]] = [[] for _ in range(_CUSTOMER_FILES)]
    for c in range(n_customers):
        _customer_events(run, c, files)
    _null_key_events(run, n_customers, files)
    for idx, lines in enumerate(files):
        path = run.root / "customers" / f"customers_{idx + 1:03d}.json"
        path.write_text(_json_lines(run, lines), encoding="utf-8")


# ------------------------------------------------------------- orders (CSV / JSON)

_OrderRow = list[str | None]


def _order(run: _Run, o: int, n_customers: int, prices: list[float]) -> tuple[str, _OrderRow]:
    """Order ``o``: its month and its row, ~0.4% with a negative quantity, a NULL customer
    key or an unparseable date."""
    rng = run.rng
    moment = run.start + timedelta(seconds=rng.randrange(int(run.span.total_seconds())))
    pidx = rng.randrange(len(prices))
    qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
    row: _OrderRow = [
        f"O{o:09d}",
        f"C{rng.randrange(n_customers):07d}",
        f"P{pidx:06d}",
        str(qty),
        f"{prices[pidx]:.2f}",
        _ts(moment),
    ]
    roll = rng.random()
    if roll < 0.002:
        row[3] = str(-qty)  # negative quantity
    elif roll < 0.003:
        row[1] = None  # NULL customer key
    elif roll < 0.004:
        row[5] = rng.choice(("2025-13-45 10:00:00", "yesterday", "31/02/2025"))
    return moment.strftime("%Y-%m"), row


def _orders_by_month(
    run: _Run, orders: int, n_customers: int, prices: list[float]
) -> dict[str, list[_OrderRow]]:
    by_month: dict[str, list[_OrderRow]] = {}
    for o in range(orders):
        month, row = _order(run, o, n_customers, prices)
        by_month.setdefault(month, []).append(row)
        run.counts.orders += 1
        if run.rng.random() < 0.005:  # exact duplicate delivery
            by_month[month].append(list(row))
            run.counts.orders += 1
    return by_month


def _orders_csv(run: _Run, rows: list[_OrderRow]) -> str:
    """CSV text of ``rows``; a ``malformed_fraction`` get an extra or too few columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ORDER_COLUMNS)
    for row in rows:
        cells: list[str] = ["" if v is None else v for v in row]
        if run.malformed(run.malformed_fraction):
            cells = [*cells, "extra"] if run.rng.random() < 0.5 else cells[:4]
        writer.writerow(cells)
    return buf.getvalue()


def _orders_json(run: _Run, rows: list[_OrderRow]) -> str:
    records: list[dict[str, object]] = [dict(zip(ORDER_COLUMNS, row, strict=True)) for row in rows]
    return _json_lines(run, [_json_line(record) for record in records])


def _write_orders(run: _Run, orders: int, n_customers: int, prices: list[float]) -> None:
    """One file per month, CSV and JSON alternating."""
    by_month = _orders_by_month(run, orders, n_customers, prices)
    for i, month in enumerate(sorted(by_month)):
        if i % 2 == 0:
            text, suffix = _orders_csv(run, by_month[month]), "csv"
        else:
            text, suffix = _orders_json(run, by_month[month]), "json"
        (run.root / "orders" / f"orders_{month}.{suffix}").write_text(text, encoding="utf-8")


def generate_landing(
    landing: str | Path,
    *,
    orders: int = 100_000,
    customers: int | None = None,
    products: int | None = None,
    days: int = 365,
    start_date: str = "2025-01-01",
    seed: int = 42,
    malformed_fraction: float = 0.002,
) -> dict[str, int]:
    """Write the landing files and return counts of what was written.

    Parameters
    ----------
    landing:
        Directory to write into (created; existing generated files are replaced).
    orders:
        Number of order records (before duplicates and malformed lines are added).
    customers, products:
        Defaults scale with ``orders`` (1 customer per 10 orders, 1 product per 200).
    malformed_fraction:
        Share of lines written structurally broken (bronze quarantines them).
    """
    run = _Run(
        root=Path(landing),
        rng=random.Random(seed),
        start=datetime.combine(date.fromisoformat(start_date), datetime.min.time(), tzinfo=UTC),
        span=timedelta(days=days),
        malformed_fraction=malformed_fraction,
        counts=_Counts(),
    )
    n_customers = customers or max(10, orders // 10)
    n_products = products or max(10, orders // 200)
    _clear(run.root)
    prices = _write_products(run, n_products)
    _write_customers(run, n_customers)
    _write_orders(run, orders, n_customers, prices)
    return {
        "customer_events": run.counts.customer_events,
        "products": run.counts.products,
        "orders": run.counts.orders,
        "malformed": run.counts.malformed,
    }
