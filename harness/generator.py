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
    rng = random.Random(seed)
    root = Path(landing)
    n_customers = customers or max(10, orders // 10)
    n_products = products or max(10, orders // 200)
    start = datetime.combine(date.fromisoformat(start_date), datetime.min.time(), tzinfo=UTC)
    counts = _Counts()

    for sub in ("customers", "products", "orders"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for old in (root / sub).glob("*"):
            if old.is_file():
                old.unlink()

    # ------------------------------------------------------------------ products (CSV)
    prices: list[float] = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PRODUCT_COLUMNS)
    for i in range(n_products):
        price = round(rng.uniform(2, 500), 2)
        prices.append(price)
        prow = [
            f"P{i:06d}",
            f"{rng.choice(_CATEGORIES)} item {i}",
            _CATEGORIES[i % len(_CATEGORIES)],
            f"{price:.2f}",
            _ts(start - timedelta(days=30)),
        ]
        if rng.random() < malformed_fraction * 5:
            prow = prow[:3]  # wrong column count
            counts.malformed += 1
        writer.writerow(prow)
        counts.products += 1
    (root / "products" / "products.csv").write_text(buf.getvalue(), encoding="utf-8")

    # ------------------------------------------------------ customers change feed (JSON)
    span = timedelta(days=days)
    n_files = 4
    files: list[list[str]] = [[] for _ in range(n_files)]
    for c in range(n_customers):
        cid = f"C{c:07d}"
        n_events = rng.choice((1, 1, 2, 2, 3, 4))
        moments = sorted(start + span * rng.random() for _ in range(n_events))
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
                field = rng.choice(("city", "tier", "email", "city"))
                if field == "email" and rng.random() < 0.3:
                    state["email"] = None  # value -> NULL is a change too
                elif field == "email":
                    state["email"] = f"{cid.lower()}+{k}@example.com"
                elif field == "city":
                    state["city"] = rng.choice(_CITIES)
                else:
                    state["tier"] = rng.choice(_TIERS)
            if k == n_events - 1 and n_events > 1 and rng.random() < 0.05:
                op = "D"
            event = {**state, "op": op, "updated_at": _ts(moment)}
            # events land in the file of their time; ~3% arrive late (a later file)
            slot = min(n_files - 1, int((moment - start) / span * n_files))
            if rng.random() < 0.03:
                slot = min(n_files - 1, slot + 1 + rng.randrange(2))
            line = _json_line(event)
            files[slot].append(line)
            counts.customer_events += 1
            if rng.random() < 0.01:  # exact duplicate delivery
                files[slot].append(line)
                counts.customer_events += 1
    for _ in range(max(1, n_customers // 500)):  # NULL keys
        orphan: dict[str, str | None] = {
            "customer_id": None,
            "name": "nobody",
            "email": None,
            "city": rng.choice(_CITIES),
            "tier": "bronze",
            "op": "I",
            "updated_at": _ts(start + span * rng.random()),
        }
        files[rng.randrange(n_files)].append(_json_line(orphan))
        counts.customer_events += 1
    for idx, lines in enumerate(files):
        out = []
        for line in lines:
            if rng.random() < malformed_fraction:
                line = _truncate(line, rng)
                counts.malformed += 1
            out.append(line)
        (root / "customers" / f"customers_{idx + 1:03d}.json").write_text(
            "\n".join(out) + "\n", encoding="utf-8"
        )

    # ------------------------------------------------------------- orders (CSV / JSON)
    by_month: dict[str, list[list[str | None]]] = {}
    seconds = int(span.total_seconds())
    for o in range(orders):
        moment = start + timedelta(seconds=rng.randrange(seconds))
        pidx = rng.randrange(n_products)
        qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
        row: list[str | None] = [
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
        month = moment.strftime("%Y-%m")
        by_month.setdefault(month, []).append(row)
        counts.orders += 1
        if rng.random() < 0.005:  # exact duplicate delivery
            by_month[month].append(list(row))
            counts.orders += 1
    for i, month in enumerate(sorted(by_month)):
        rows = by_month[month]
        if i % 2 == 0:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(ORDER_COLUMNS)
            for row in rows:
                cells: list[str] = ["" if v is None else v for v in row]
                if rng.random() < malformed_fraction:
                    cells = [*cells, "extra"] if rng.random() < 0.5 else cells[:4]
                    counts.malformed += 1
                writer.writerow(cells)
            (root / "orders" / f"orders_{month}.csv").write_text(buf.getvalue(), encoding="utf-8")
        else:
            lines = []
            for row in rows:
                record: dict[str, object] = dict(zip(ORDER_COLUMNS, row, strict=True))
                line = _json_line(record)
                if rng.random() < malformed_fraction:
                    line = _truncate(line, rng)
                    counts.malformed += 1
                lines.append(line)
            (root / "orders" / f"orders_{month}.json").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )

    return {
        "customer_events": counts.customer_events,
        "products": counts.products,
        "orders": counts.orders,
        "malformed": counts.malformed,
    }
