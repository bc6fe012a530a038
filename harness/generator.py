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

:func:`generate_increment` then adds one day of new data next to that history without
touching an existing file (``orders/orders_inc_YYYY-MM-DD.csv``,
``customers/customers_inc_YYYY-MM-DD.json``): new orders of that day, customer updates,
and optionally late customer events timestamped inside the history.

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from jobs.bronze_ingest import CUSTOMER_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS

__all__ = [
    "CUSTOMER_COLUMNS",
    "ORDER_COLUMNS",
    "PRODUCT_COLUMNS",
    "generate_increment",
    "generate_landing",
    "increment_day",
]

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


def _order(
    run: _Run, o: int, n_customers: int, catalogue: Sequence[tuple[str, float]]
) -> tuple[str, _OrderRow]:
    """Order ``o``: its month and its row (see :func:`_order_row`)."""
    moment, row = _order_row(run, f"O{o:09d}", n_customers, catalogue)
    return moment.strftime("%Y-%m"), row


def _order_row(
    run: _Run, order_id: str, n_customers: int, catalogue: Sequence[tuple[str, float]]
) -> tuple[datetime, _OrderRow]:
    """One order inside ``[run.start, run.start + run.span)`` of a random customer and a
    random ``(product_id, price)`` of ``catalogue``; ~0.4% have a negative quantity, a NULL
    customer key or an unparseable date."""
    rng = run.rng
    moment = run.start + timedelta(seconds=rng.randrange(int(run.span.total_seconds())))
    product_id, price = catalogue[rng.randrange(len(catalogue))]
    qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
    row: _OrderRow = [
        order_id,
        f"C{rng.randrange(n_customers):07d}",
        product_id,
        str(qty),
        f"{price:.2f}",
        _ts(moment),
    ]
    roll = rng.random()
    if roll < 0.002:
        row[3] = str(-qty)  # negative quantity
    elif roll < 0.003:
        row[1] = None  # NULL customer key
    elif roll < 0.004:
        row[5] = rng.choice(("2025-13-45 10:00:00", "yesterday", "31/02/2025"))
    return moment, row


def _orders_by_month(
    run: _Run, orders: int, n_customers: int, prices: list[float]
) -> dict[str, list[_OrderRow]]:
    by_month: dict[str, list[_OrderRow]] = {}
    catalogue = [(f"P{i:06d}", price) for i, price in enumerate(prices)]
    for o in range(orders):
        month, row = _order(run, o, n_customers, catalogue)
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


# ------------------------------------------------------------------ daily increments

#: Order ids of an increment: ``O`` + the day as ``YYYYMMDD`` + a 7-digit sequence number.
#: History ids are ``O`` + 9 digits, so the two can never be equal.
_INCREMENT_ORDERS_MAX = 10_000_000
_CUSTOMER_ID = re.compile(r'"customer_id":"C(\d+)"')
_Event = tuple[str, dict[str, str | None]]  # (updated_at, the event)


@dataclass
class _History:
    """What an increment needs to know about the landing files already written."""

    events: dict[str, list[_Event]]  # per customer id, sorted by updated_at
    n_customers: int
    catalogue: list[tuple[str, float]]  # (product_id, price) of well-formed catalogue rows


def _read_customer_history(landing: Path) -> tuple[dict[str, list[_Event]], int]:
    """Every parseable customer event in ``landing/customers/*.json`` per customer, and
    the number of customer ids (largest id + 1, also counting ids of truncated lines)."""
    events: dict[str, list[_Event]] = {}
    largest = -1
    for path in sorted((landing / "customers").glob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = _CUSTOMER_ID.search(line)
            if found:
                largest = max(largest, int(found.group(1)))
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("customer_id") and event.get("updated_at"):
                events.setdefault(event["customer_id"], []).append((event["updated_at"], event))
    for chain in events.values():
        chain.sort(key=lambda item: item[0])
    return events, largest + 1


def _read_catalogue(landing: Path) -> list[tuple[str, float]]:
    """``(product_id, price)`` of every well-formed row of ``products/products.csv``."""
    path = landing / "products" / "products.csv"
    if not path.exists():
        return []
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    return [(row[0], float(row[3])) for row in rows[1:] if len(row) == len(PRODUCT_COLUMNS)]


def _history(landing: Path, customers: int | None, products: int | None) -> _History:
    events, n_customers = _read_customer_history(landing)
    catalogue = _read_catalogue(landing)
    if products is not None:
        catalogue = [item for item in catalogue if int(item[0][1:]) < products]
    if not events or not catalogue:
        raise FileNotFoundError(
            f"no customer history or product catalogue under {landing}; "
            "write the history first (generate_landing / python -m harness generate)"
        )
    return _History(events, customers or n_customers, catalogue)


def increment_day(
    landing: str | Path,
    *,
    start_date: str = "2025-01-01",
    days: int = 365,
    index: int | None = None,
) -> date:
    """The day of increment ``index``: ``start_date + days + index`` (day 0 is the day
    after the history). ``index=None``: the first such day without increment files yet.

    >>> import tempfile
    >>> increment_day(tempfile.mkdtemp(), start_date="2025-01-01", days=365, index=2)
    datetime.date(2026, 1, 3)
    """
    first = date.fromisoformat(start_date) + timedelta(days=days)
    if index is not None:
        return first + timedelta(days=index)
    root, k = Path(landing), 0
    while any(p.exists() for p in _increment_paths(root, first + timedelta(days=k))):
        k += 1
    return first + timedelta(days=k)


def _increment_paths(root: Path, day: date) -> tuple[Path, Path]:
    return (
        root / "orders" / f"orders_inc_{day.isoformat()}.csv",
        root / "customers" / f"customers_inc_{day.isoformat()}.json",
    )


def _increment_orders(run: _Run, history: _History, day: date, orders: int) -> list[_OrderRow]:
    """``orders`` orders of ``day`` (``run`` spans that day) plus ~0.5% exact duplicates."""
    rows: list[_OrderRow] = []
    prefix = f"O{day:%Y%m%d}"
    for o in range(orders):
        _, row = _order_row(run, f"{prefix}{o:07d}", history.n_customers, history.catalogue)
        rows.append(row)
        run.counts.orders += 1
        if run.rng.random() < 0.005:  # exact duplicate delivery
            rows.append(list(row))
            run.counts.orders += 1
    return rows


def _changed(run: _Run, state: dict[str, str | None], cid: str, k: int) -> None:
    """Like :func:`_change`, but draw again until some attribute really differs."""
    before = dict(state)
    for _ in range(20):
        _change(run, state, cid, k)
        if state != before:
            return
    state["email"] = f"{cid.lower()}+{k}.changed@example.com"


def _updates_of_day(run: _Run, history: _History, n: int) -> list[_Event]:
    """Updates (op U) of ``n`` distinct live customers (last event not a delete) at random
    moments of the day, each one field changed from the customer's latest state."""
    live = sorted(cid for cid, chain in history.events.items() if chain[-1][1]["op"] != "D")
    out: list[_Event] = []
    for cid in run.rng.sample(live, min(n, len(live))):
        moment = run.start + timedelta(seconds=run.rng.randrange(int(run.span.total_seconds())))
        state = {c: history.events[cid][-1][1].get(c) for c in CUSTOMER_COLUMNS[:5]}
        _changed(run, state, cid, len(history.events[cid]))
        out.append((_ts(moment), {**state, "op": "U", "updated_at": _ts(moment)}))
    return sorted(out, key=lambda item: item[0])


def _late_events(run: _Run, history: _History, history_end: datetime, n: int) -> list[_Event]:
    """``n`` updates timestamped inside the history: each splits a (non-deleted) version
    of a distinct customer at a moment strictly between its start and the next event (or
    the end of the history), with one field changed, so orders of that customer after
    the moment now fall in a new version."""
    out: list[_Event] = []
    for cid in run.rng.sample(sorted(history.events), len(history.events)):
        if len(out) == n:
            break
        chain = history.events[cid]
        i = run.rng.randrange(len(chain))
        start = datetime.strptime(chain[i][0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        nxt = chain[i + 1][0] if i + 1 < len(chain) else _ts(history_end)
        end = min(datetime.strptime(nxt, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC), history_end)
        gap = int((end - start).total_seconds())
        if chain[i][1]["op"] == "D" or gap < 2:
            continue
        moment = _ts(start + timedelta(seconds=run.rng.randrange(1, gap)))
        state = {c: chain[i][1].get(c) for c in CUSTOMER_COLUMNS[:5]}
        _changed(run, state, cid, len(chain))
        out.append((moment, {**state, "op": "U", "updated_at": moment}))
    return out


def _customer_lines(run: _Run, events: list[_Event]) -> list[str]:
    """JSON lines of ``events``; ~1% are delivered twice (exact duplicates)."""
    files: list[list[str]] = [[]]
    for _, event in events:
        _deliver(run, files, 0, _json_line(event))
    return files[0]


def generate_increment(
    landing: str | Path,
    *,
    day: date | str | None = None,
    index: int | None = None,
    orders: int = 1000,
    customer_updates: int = 200,
    late_customer_events: int = 0,
    seed: int = 42,
    customers: int | None = None,
    products: int | None = None,
    days: int = 365,
    start_date: str = "2025-01-01",
    malformed_fraction: float = 0.002,
) -> dict[str, int | str]:
    """Write one day of new landing data next to the history; return what was written.

    Writes two new files and touches no existing one (``FileExistsError`` if either
    exists):

    - ``orders/orders_inc_<day>.csv``: ``orders`` orders timestamped on ``day``, with ids
      ``O<YYYYMMDD><7 digits>`` (history ids are ``O`` + 9 digits, so no increment
      collides with the history or with another day's increment), the history's columns
      and the same rare defects (exact duplicates, negative quantities, NULL customer keys,
      unparseable dates, and ``malformed_fraction`` of lines with a wrong column count);
    - ``customers/customers_inc_<day>.json``: ``customer_updates`` updates (op ``U``) of
      distinct existing, not deleted customers timestamped on ``day``, then
      ``late_customer_events`` updates timestamped inside the history span (late events:
      they change which customer version was in effect for orders already loaded); ~1%
      duplicated, ``malformed_fraction`` truncated; not written when there are no events
      (``customers_file`` is then ``""``).

    Customer states, the number of customers and the product catalogue are read from the
    landing files already there (history and earlier increments); ``customers`` and
    ``products`` restrict the ids used to ``C0000000..`` and ``P000000..`` below them.

    Parameters
    ----------
    day:
        The increment's day. ``None``: :func:`increment_day` of ``index`` (``index=None``:
        the first day after the history without increment files yet).
    seed:
        With the day, seeds the random draws: the same arguments over the same landing
        files give byte-identical files; different days differ.
    days, start_date:
        The history's span, as passed to :func:`generate_landing`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = generate_landing(d, orders=300, seed=1)
    >>> stats = generate_increment(d, orders=5, customer_updates=2, seed=1)
    >>> stats["day"], stats["orders_file"]
    ('2026-01-01', 'orders/orders_inc_2026-01-01.csv')
    >>> generate_increment(d, orders=5, customer_updates=2, seed=1)["day"]
    '2026-01-02'
    """
    if not 0 <= orders < _INCREMENT_ORDERS_MAX:
        raise ValueError(f"orders must be in [0, {_INCREMENT_ORDERS_MAX}); got {orders}")
    root = Path(landing)
    if day is None:
        day = increment_day(root, start_date=start_date, days=days, index=index)
    elif isinstance(day, str):
        day = date.fromisoformat(day)
    orders_path, customers_path = _increment_paths(root, day)
    for path in (orders_path, customers_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; an increment never replaces landing files")
    history = _history(root, customers, products)
    history_start = datetime.combine(
        date.fromisoformat(start_date), datetime.min.time(), tzinfo=UTC
    )
    run = _Run(
        root=root,
        rng=random.Random(f"{seed}:{day.isoformat()}"),
        start=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
        span=timedelta(days=1),
        malformed_fraction=malformed_fraction,
        counts=_Counts(),
    )
    order_text = _orders_csv(run, _increment_orders(run, history, day, orders))
    events = _updates_of_day(run, history, customer_updates)
    late = _late_events(run, history, history_start + timedelta(days=days), late_customer_events)
    lines = _customer_lines(run, events + late)
    customer_text = _json_lines(run, lines) if lines else ""
    with orders_path.open("x", encoding="utf-8") as out:
        out.write(order_text)
    if customer_text:  # no events, no (empty) landing file
        with customers_path.open("x", encoding="utf-8") as out:
            out.write(customer_text)
    return {
        "day": day.isoformat(),
        "orders_file": orders_path.relative_to(root).as_posix(),
        "customers_file": customers_path.relative_to(root).as_posix() if customer_text else "",
        "orders": run.counts.orders,
        "customer_events": run.counts.customer_events,
        "late_events": len(late),
        "malformed": run.counts.malformed,
    }
