import json

from harness.generator import ORDER_COLUMNS, generate_landing


def _read_all(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.*"))}


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_landing(a, orders=500, seed=3)
    generate_landing(b, orders=500, seed=3)
    assert _read_all(a) == _read_all(b)
    generate_landing(b, orders=500, seed=4)
    assert _read_all(a) != _read_all(b)


def test_contents_cover_the_hard_cases(tmp_path):
    stats = generate_landing(tmp_path, orders=5000, seed=1, malformed_fraction=0.01)
    assert stats["orders"] >= 5000 and stats["malformed"] > 0
    events = []
    broken = 0
    for f in sorted((tmp_path / "customers").glob("*.json")):
        for line in f.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                broken += 1
    assert broken > 0
    ops = {e["op"] for e in events}
    assert ops == {"I", "U", "D"}
    assert any(e["customer_id"] is None for e in events)
    lines = [json.dumps(e, sort_keys=True) for e in events]
    assert len(lines) > len(set(lines))  # exact duplicates
    per_key: dict[str, int] = {}
    for e in events:
        if e["customer_id"]:
            per_key[e["customer_id"]] = per_key.get(e["customer_id"], 0) + 1
    assert max(per_key.values()) >= 3  # several changes per customer
    csv_files = sorted((tmp_path / "orders").glob("*.csv"))
    json_files = sorted((tmp_path / "orders").glob("*.json"))
    assert csv_files and json_files
    assert csv_files[0].read_text().splitlines()[0] == ",".join(ORDER_COLUMNS)
    months = {p.stem.split("_")[1] for p in [*csv_files, *json_files]}
    assert len(months) >= 12


def test_late_events_arrive_in_later_files(tmp_path):
    generate_landing(tmp_path, orders=5000, seed=2)
    files = sorted((tmp_path / "customers").glob("*.json"))
    newest_before = ""
    late = 0
    for f in files:
        stamps = []
        for line in f.read_text().splitlines():
            try:
                stamps.append(json.loads(line)["updated_at"])
            except json.JSONDecodeError:
                continue
        late += sum(1 for s in stamps if s < newest_before)
        newest_before = max([newest_before, *stamps])
    assert late > 0
