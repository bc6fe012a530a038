"""Incremental pipeline: what a run costs after 1% new data, against a full refresh.

One command (from the repo root)::

    .venv/bin/python benchmarks/bench_incremental.py --orders 1000000 --increments 10

A history of ``--orders`` orders is generated (``python -m harness generate``) into data
root A and its landing files are copied to data root A'. Both are loaded once (step 0),
then ``--increments`` daily increments of 1% of the history (``python -m harness
increment --index k``; the same new files land in A and A') are added one by one. At
each step, each contender runs the whole pipeline as a subprocess (``lakehouse run all``
with ``LAKEHOUSE_DATA_ROOT`` set), exactly as a scheduler would:

incremental    ``lakehouse run all`` on A, right after the increment landed
no-op          ``lakehouse run all`` on A again, with nothing new
full-refresh   ``lakehouse run all --full-refresh-all`` on A' (every step, or every
               ``--full-refresh-every`` M-th step and the last)

Printed per run: wall time, the sum of the jobs' own durations, rows read per job (each
job's ``rows_in`` from the JSON run report), parquet files added and Delta versions
created (from the new ``_delta_log`` commits of every table under the data root;
streaming checkpoints under ``_checkpoints/`` are not tables). After the last step every
Delta table of A is compared with the same table of A' (rows as JSON, data-root paths
and run metadata columns removed: count and an order-independent checksum, and on a
difference the rows only on one side). Then the ratios and the issue's targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.scd2.log import LOGGED_AT

REPO = Path(__file__).resolve().parents[1]
COMMIT_FILE = re.compile(r"\d{20}\.json")
#: Top-level folders of a data root that hold no tables.
NOT_TABLES = ("_checkpoints", "_reports", "landing")
#: Columns that legitimately differ between two runs over the same data: when and in
#: which batch/run a row was written, not what it says. Any column whose name contains
#: ``batch`` or ends in ``run_id`` is dropped as well.
#: ``LOGGED_AT`` is when the CDC event log (``<table>/_cdc_log``) logged an event.
RUN_COLUMNS = frozenset({"_ingest_time", "quarantined_at", "ingested_at", "checked_at", LOGGED_AT})
#: Columns computed from the absolute landing-file path, which differs between the two data
#: roots: the quarantine's ``row_hash`` hashes stage, source, reason and record, all of
#: which are compared themselves (``source`` with the data root removed).
PATH_COLUMNS = frozenset({"row_hash"})
#: Run logs: one row per run by design, so they differ with the number of runs.
RUN_LOG_TABLES = ("quality_results",)
INCREMENTAL, NOOP, FULL = "incremental", "no-op", "full-refresh"


@dataclass
class Run:
    """One ``lakehouse run`` subprocess and what it did."""

    step: int
    contender: str
    exit_code: int
    wall_s: float
    log: str
    report: str | None = None
    jobs_s: float = 0.0
    rows_in: dict[str, int] = field(default_factory=dict)
    failed_jobs: list[str] = field(default_factory=list)
    files_added: int = 0
    versions: dict[str, int] = field(default_factory=dict)  # table -> new Delta versions

    @property
    def versions_total(self) -> int:
        return sum(self.versions.values())

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failed_jobs


@dataclass
class TableCheck:
    """One table of A against the same table of A'."""

    table: str
    status: str  # equal | different | missing in A' | skipped (run log)
    rows_a: int = 0
    rows_b: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    only_a: int = 0
    only_b: int = 0
    example: str = ""


@dataclass
class Target:
    name: str
    value: str
    goal: str
    ok: bool | None  # None: not measured


# --------------------------------------------------------------------- subprocesses


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "LAKEHOUSE_DATA_ROOT": str(root)}


def _lakehouse() -> str:
    beside = Path(sys.executable).parent / "lakehouse"
    found = str(beside) if beside.exists() else shutil.which("lakehouse")
    if not found:
        raise SystemExit("bench_incremental: no `lakehouse` console script; pip install -e .")
    return found


def _harness(args: argparse.Namespace, root: Path, *command: str) -> None:
    """``python -m harness <command>`` against data root ``root``; fail loudly."""
    argv = [sys.executable, "-m", "harness", *command, "--env", args.env]
    argv += ["--conf-dir", str(args.conf_dir)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    done = subprocess.run(argv, cwd=REPO, env=_env(root), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr}")
    print(f"  {done.stdout.strip().splitlines()[-1]}", flush=True)


def _delta_commits(root: Path) -> dict[str, set[tuple[str, int]]]:
    """Per table (path relative to ``root``): its Delta commit files, as (name, mtime in ns).

    A commit file is never rewritten in place, so a known name with another mtime is a new
    commit of a table that was deleted and created again (``--full-refresh-all`` does
    that: its commits start again at version 0, with the same names as before).
    """
    out: dict[str, set[tuple[str, int]]] = {}
    for log in sorted(root.rglob("_delta_log")):
        table = log.parent.relative_to(root)
        if table.parts and table.parts[0] in NOT_TABLES:
            continue
        out[table.as_posix()] = {
            (p.name, p.stat().st_mtime_ns) for p in log.iterdir() if COMMIT_FILE.fullmatch(p.name)
        }
    return out


def _files_added(root: Path, commits: dict[str, set[tuple[str, int]]]) -> int:
    """The ``add`` actions (data files written) in the given commit files."""
    added = 0
    for table, names in commits.items():
        for name, _ in names:
            text = (root / table / "_delta_log" / name).read_text(encoding="utf-8")
            added += sum(1 for line in text.splitlines() if line.startswith('{"add"'))
    return added


def _report_path(log: Path, root: Path, before: set[Path]) -> Path | None:
    """The run report: the CLI's last ``run report: <path>`` line, else a new report file."""
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("run report: "):
            return Path(line.removeprefix("run report: ").strip())
    new = sorted(set((root / "_reports").glob("run_*.json")) - before)
    return new[-1] if new else None


def _read_report(run: Run, path: Path | None) -> None:
    if path is None or not path.exists():
        return
    run.report = str(path)
    jobs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")).get("jobs", [])
    for job in jobs:
        run.rows_in[job["job"]] = int(job.get("rows_in") or 0)
        run.jobs_s += float(job.get("duration_s") or 0.0)
        if job.get("status") != "ok":
            run.failed_jobs.append(job["job"])


def run_pipeline(args: argparse.Namespace, root: Path, step: int, contender: str) -> Run:
    """``lakehouse run all`` (``--full-refresh-all`` for the full refresh) on ``root``."""
    argv = [_lakehouse(), "--env", args.env, "--conf-dir", str(args.conf_dir), "run", "all"]
    if contender == FULL:
        argv.append("--full-refresh-all")
    log = args.work / "logs" / f"step{step:03d}_{contender}.log"
    commits = _delta_commits(root)
    reports = set((root / "_reports").glob("run_*.json"))
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(argv, cwd=REPO, env=_env(root), stdout=out, stderr=out).returncode
    run = Run(step, contender, code, round(time.perf_counter() - start, 2), str(log))
    new = {t: names - commits.get(t, set()) for t, names in _delta_commits(root).items()}
    run.versions = {t: len(names) for t, names in new.items() if names}
    run.files_added = _files_added(root, new)
    _read_report(run, _report_path(log, root, reports))
    print(f"  {_run_line(run, [])}", flush=True)
    return run


# --------------------------------------------------------------------------- data


def _landing(args: argparse.Namespace, root: Path) -> Path:
    from lakehouse.config import load_config

    environ = _env(root)
    return Path(load_config(args.env, conf_dir=args.conf_dir, environ=environ).landing_path)


def _files_under(path: Path) -> set[Path]:
    return {p.relative_to(path) for p in path.rglob("*") if p.is_file()}


def _sync_landing(src: Path, dst: Path) -> None:
    """Copy the landing files of ``src`` that ``dst`` lacks (bytes and mtime kept)."""
    for rel in sorted(_files_under(src) - _files_under(dst)):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)


def _add_increment(args: argparse.Namespace, roots: tuple[Path, Path], k: int) -> None:
    """Increment ``k`` (1-based) into A's landing, and the same new files into A'."""
    orders = max(1, args.orders // 100)
    _harness(
        args,
        roots[0],
        "increment",
        *("--index", str(k - 1), "--orders", str(orders)),
        *("--customer-updates", str(max(1, args.orders // 500))),
        *("--late-events", str(args.late_events)),
    )
    _sync_landing(*args.landings)


# --------------------------------------------------------------------- correctness


def _ignored(column: str, extra: Iterable[str]) -> bool:
    name = column.lower()
    if name in RUN_COLUMNS or name in PATH_COLUMNS or name in extra:
        return True
    return "batch" in name or name.endswith("run_id")


def compare_tables(args: argparse.Namespace, a: Path, b: Path) -> list[TableCheck]:
    """Every Delta table of data root ``a`` against the same table of ``b``."""
    from lakehouse.spark.session import build_spark_session

    spark = build_spark_session(
        args.settings,
        app_name="bench-incremental-compare",
        extra_conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        tables_b = _delta_commits(b)
        return [
            _compare_table(spark, args, table, (a, b), table in tables_b)
            for table in sorted(_delta_commits(a))
        ]
    finally:
        spark.stop()


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _without_run_fields(column: str, extra: Sequence[str]) -> Any:
    """String column ``column`` with the run-metadata fields of any JSON it holds blanked.

    A quarantine's ``record`` is the rejected row as JSON, bronze's ``_ingest_time`` and
    ``_batch_id`` included: those say when the row was ingested, not what it says, so they
    are compared as ``"<run>"`` like the columns of the same name are dropped.
    """
    from pyspark.sql import functions as F

    names = [re.escape(n) for n in sorted(RUN_COLUMNS | set(extra))]
    names += [r"[A-Za-z0-9_]*batch[A-Za-z0-9_]*", r"[A-Za-z0-9_]*run_id"]
    field_re = r'(?i)"(' + "|".join(names) + r')":("(?:[^"\\]|\\.)*"|[^,}]*)'
    return F.regexp_replace(F.col(_quoted(column)), field_re, r'"$1":"<run>"').alias(column)


def _normalized(spark: Any, path: Path, root: Path, extra: Sequence[str]) -> tuple[Any, list[str]]:
    """The table's rows as one JSON string each, run columns dropped, ``root`` removed."""
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(str(path))
    dropped = [c for c in df.columns if _ignored(c, extra)]
    strings = {f.name for f in df.schema.fields if f.dataType.simpleString() == "string"}
    kept = [
        _without_run_fields(c, extra) if c in strings else F.col(_quoted(c))
        for c in df.columns
        if c not in dropped
    ]
    row = F.to_json(F.struct(*kept))
    for prefix in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
        row = F.replace(row, F.lit(prefix), F.lit("<data_root>"))
    return df.select(row.alias("row")), dropped


def _checksum(df: Any) -> tuple[int, int]:
    from pyspark.sql import functions as F

    got = df.agg(F.count("*"), F.sum(F.xxhash64("row").cast("decimal(38,0)"))).first()
    return int(got[0]), int(got[1] or 0)


def _compare_table(
    spark: Any, args: argparse.Namespace, table: str, roots: tuple[Path, Path], in_b: bool
) -> TableCheck:
    if Path(table).name in RUN_LOG_TABLES:
        return TableCheck(table, "skipped (run log)")
    if not in_b:
        return TableCheck(table, "missing in A'")
    extra = [c.lower() for c in args.ignore_column]
    df_a, dropped = _normalized(spark, roots[0] / table, roots[0], extra)
    df_b, _ = _normalized(spark, roots[1] / table, roots[1], extra)
    (rows_a, sum_a), (rows_b, sum_b) = _checksum(df_a), _checksum(df_b)
    check = TableCheck(table, "equal", rows_a, rows_b, dropped)
    if (rows_a, sum_a) != (rows_b, sum_b):
        check.status = "different"
        only_a = df_a.exceptAll(df_b)
        check.only_a, check.only_b = only_a.count(), df_b.exceptAll(df_a).count()
        first = only_a.first()
        check.example = str(first["row"])[:300] if first else ""
    return check


# ------------------------------------------------------------------------- printing


def _run_line(run: Run, jobs: Sequence[str]) -> str:
    state = "ok" if run.exit_code == 0 else f"EXIT {run.exit_code}"
    if run.failed_jobs:
        state += " failed: " + ",".join(run.failed_jobs)
    rows = "".join(f"{run.rows_in.get(j, 0):>16,}" for j in jobs) if jobs else ""
    if not jobs:
        rows = " rows in: " + " ".join(f"{j}={n:,}" for j, n in run.rows_in.items())
    return (
        f"{run.step:>4} {run.contender:<13}{run.wall_s:>9.1f}{run.jobs_s:>9.1f}"
        f"{run.files_added:>8}{run.versions_total:>7}{rows}  {state}"
    )


def print_runs(runs: Sequence[Run]) -> None:
    jobs = list(dict.fromkeys(j for r in runs for j in r.rows_in))
    header = f"{'step':>4} {'contender':<13}{'wall s':>9}{'jobs s':>9}{'files':>8}{'vers.':>7}"
    header += "".join(f"{j[:15]:>16}" for j in jobs)
    print(
        "\nPer run (files: parquet files added; vers.: Delta versions created; per job: rows read)"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        print(_run_line(run, jobs))


def print_checks(checks: Sequence[TableCheck]) -> None:
    print("\nCorrectness: every table of A (incremental) against A' (full refresh)")
    rows_b = "rows A'"
    header = f"{'table':<36}{'status':<20}{'rows A':>12}{rows_b:>12}  ignored columns"
    print(header)
    print("-" * len(header))
    for c in checks:
        print(
            f"{c.table:<36}{c.status:<20}{c.rows_a:>12,}{c.rows_b:>12,}  "
            f"{', '.join(c.ignored_columns) or '-'}"
        )
        if c.status == "different":
            print(f"{'':<36}only in A: {c.only_a:,}, only in A': {c.only_b:,}; e.g. {c.example}")


# -------------------------------------------------------------------------- summary


def _ok_runs(runs: Sequence[Run], contender: str) -> dict[int, Run]:
    return {r.step: r for r in runs if r.contender == contender and r.ok}


def step_ratios(runs: Sequence[Run]) -> dict[int, float]:
    """Per increment step: incremental wall time / full-refresh wall time."""
    incr, full = _ok_runs(runs, INCREMENTAL), _ok_runs(runs, FULL)
    return {k: incr[k].wall_s / full[k].wall_s for k in sorted(incr) if k > 0 and k in full}


def targets(runs: Sequence[Run], checks: Sequence[TableCheck], last: int) -> list[Target]:
    ratios = step_ratios(runs)
    incr = _ok_runs(runs, INCREMENTAL)
    noops = [r for r in runs if r.contender == NOOP]
    med = statistics.median(ratios.values()) if ratios else None
    growth = incr[last].wall_s / incr[1].wall_s if 1 in incr and last in incr else None
    noop_versions = sum(r.versions_total for r in noops)
    compared = [c for c in checks if not c.status.startswith("skipped")]
    equal = sum(c.status == "equal" for c in compared)
    return [
        Target(
            "1% increment / full refresh (median)",
            "-" if med is None else f"{med:.3f}",
            "<= 0.15",
            None if med is None else med <= 0.15,
        ),
        Target(
            f"incremental run {last} / run 1",
            "-" if growth is None else f"{growth:.2f}",
            "<= 1.20",
            None if growth is None else growth <= 1.2,
        ),
        Target(
            "versions committed by no-op runs",
            str(noop_versions),
            "0",
            bool(noops) and all(r.ok for r in noops) and noop_versions == 0,
        ),
        Target(
            "tables equal to a full refresh",
            f"{equal}/{len(compared)}",
            "all",
            bool(compared) and equal == len(compared),
        ),
    ]


def print_summary(runs: Sequence[Run], goals: Sequence[Target]) -> None:
    ratios = step_ratios(runs)
    incr = _ok_runs(runs, INCREMENTAL)
    first = incr.get(1)
    print("\nSummary")
    print(f"{'step':>4}{'incr s':>9}{'full s':>9}{'incr/full':>11}{'incr/run 1':>12}")
    full = _ok_runs(runs, FULL)
    for k in sorted(s for s in incr if s > 0):
        full_s = f"{full[k].wall_s:>9.1f}" if k in full else f"{'-':>9}"
        ratio = f"{ratios[k]:>11.3f}" if k in ratios else f"{'-':>11}"
        growth = f"{incr[k].wall_s / first.wall_s:>12.2f}" if first else f"{'-':>12}"
        print(f"{k:>4}{incr[k].wall_s:>9.1f}{full_s}{ratio}{growth}")
    committed: dict[str, int] = {}
    for run in (r for r in runs if r.contender == NOOP):
        for table, n in run.versions.items():
            committed[table] = committed.get(table, 0) + n
    print(f"no-op runs committed to: {committed or 'nothing'}")
    print(f"\n{'target':<40}{'value':>10}{'goal':>10}  result")
    for t in goals:
        result = "n/a" if t.ok is None else ("PASS" if t.ok else "FAIL")
        print(f"{t.name:<40}{t.value:>10}{t.goal:>10}  {result}")


# ----------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=1_000_000, help="orders of history")
    p.add_argument("--increments", type=int, default=10, help="daily 1%% increments (K)")
    p.add_argument(
        "--full-refresh-every",
        type=int,
        default=1,
        help="run the full-refresh contender only every M-th step (and the last)",
    )
    p.add_argument(
        "--late-events",
        type=int,
        default=0,
        help="customer events timestamped inside the history, per increment",
    )
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: config)")
    p.add_argument("--env", default="local", help="environment overlay for every run")
    p.add_argument("--conf-dir", type=Path, default=REPO / "conf")
    p.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        help="another run-metadata column left out of the comparison (repeatable)",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="keep the data roots here")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    return p


def _step(args: argparse.Namespace, roots: tuple[Path, Path], k: int) -> list[Run]:
    """Step ``k`` (0: the initial load): the incremental run, the no-op, the full refresh."""
    print(f"step {k}/{args.increments}", flush=True)
    if k > 0:
        _add_increment(args, roots, k)
    runs = [run_pipeline(args, roots[0], k, INCREMENTAL), run_pipeline(args, roots[0], k, NOOP)]
    if k in (0, args.increments) or k % args.full_refresh_every == 0:
        runs.append(run_pipeline(args, roots[1], k, FULL))
    return runs


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from lakehouse.config import load_config

    roots = (args.work / "incremental", args.work / "full_refresh")
    for root in roots:
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"bench_incremental: {root} is not empty; use an empty --work-dir")
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    # Resolved once: the configuration is not read again in this process while runs go on.
    args.landings = (_landing(args, roots[0]), _landing(args, roots[1]))
    args.settings = load_config(args.env, conf_dir=args.conf_dir)
    args.error = None
    print(f"history: {args.orders:,} orders into {roots[0]}", flush=True)
    _harness(args, roots[0], "generate", "--orders", str(args.orders))
    _sync_landing(*args.landings)
    runs: list[Run] = []
    try:
        for k in range(args.increments + 1):
            runs += _step(args, roots, k)
    except (RuntimeError, OSError, ValueError) as exc:  # keep what was measured so far
        print(f"bench_incremental: stopped early: {exc}", file=sys.stderr, flush=True)
        args.error = str(exc)
    checks = [] if args.error else compare_tables(args, *roots)
    goals = targets(runs, checks, args.increments)
    return {"runs": runs, "checks": checks, "targets": goals, "ratios": step_ratios(runs)}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.orders < 100 or args.increments < 1 or args.full_refresh_every < 1:
        raise SystemExit(
            "bench_incremental: need --orders >= 100, --increments and --full-refresh-every >= 1"
        )
    keep = args.work_dir is not None
    args.work = (args.work_dir or Path(tempfile.mkdtemp(prefix="bench_incremental_"))).resolve()
    started = datetime.now(UTC)
    try:
        result = benchmark(args)
    finally:
        if not keep:
            shutil.rmtree(args.work, ignore_errors=True)
    machine = (
        f"{platform.machine()} {platform.system()} cpus={os.cpu_count()} "
        f"python {platform.python_version()}"
    )
    print(
        f"\nIncremental pipeline: history {args.orders:,} orders, {args.increments} increments "
        f"of {max(1, args.orders // 100):,} orders + {max(1, args.orders // 500):,} customer "
        f"updates + {args.late_events} late events; full refresh every "
        f"{args.full_refresh_every} step(s)"
    )
    print(f"machine: {machine}; started {started:%Y-%m-%d %H:%M} UTC")
    print_runs(result["runs"])
    print_checks(result["checks"])
    print_summary(result["runs"], result["targets"])
    if args.json:
        payload = {
            "args": {k: v for k, v in vars(args).items() if k != "settings"},
            "machine": machine,
            "started": started.isoformat(),
            "runs": [{**asdict(r), "versions_total": r.versions_total} for r in result["runs"]],
            "checks": [asdict(c) for c in result["checks"]],
            "targets": [asdict(t) for t in result["targets"]],
            "ratios": result["ratios"],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"results: {args.json}")
    if args.error:
        print(f"\nSTOPPED EARLY (no correctness check): {args.error}")
    return 0 if not args.error and all(r.ok for r in result["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
