"""Roll a run back: every table it wrote returns to its state before the run, or none does.

The commits of a run are found from Delta's history: every write of the suite records
``{"batch_id": ...}`` in the commit's ``userMetadata`` (see :mod:`lakehouse.writes.idempotency`).

:func:`rollback_batch` works in two phases, so a rollback never half-applies:

1. **Check every table** (:func:`plan_rollback`): read its history, find the run's commits,
   and decide what undoing them takes. Any table that cannot be rolled back safely (later
   runs committed after it, an unreadable or damaged ``_delta_log``) refuses the whole
   rollback with one :class:`RollbackError` listing every such table, *before anything
   changes*.
2. **Apply** the plans, table by table.

Undoing a run on one table is one new commit whose ``userMetadata`` says
``{"rollback_of": <batch id>}``, so rolling back the same run twice does nothing the second
time, and a rollback interrupted between tables is finished by running it again:

* a table the run *appended to or changed* is restored with
  ``DeltaTable.restoreToVersion(first_commit_of_run - 1)`` (Delta ``RESTORE``);
* a table the run *created* has no earlier version to restore. It is **emptied** with a
  ``DELETE`` of every row, not dropped: the table (schema, properties, constraints) stays
  where readers expect it, downstream jobs see "no rows" instead of ``PATH_NOT_FOUND``,
  and the rollback itself can be undone with ``RESTORE TABLE ... TO VERSION AS OF`` the
  run's last version until ``VACUUM`` removes the deleted files. Deleting the directory
  could not be undone.

The command line is ``lakehouse rollback`` (:mod:`lakehouse.cli.rollback`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException

from lakehouse.errors import LakehouseError
from lakehouse.spark.delta import event_log_location, is_delta_table
from lakehouse.spark.fs import path_exists
from lakehouse.spark.session import session_conf
from lakehouse.spark.sql import delta_path_identifier
from lakehouse.writes.idempotency import SESSION_USER_METADATA, batch_commits

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import Row, SparkSession

    from lakehouse.config import Settings

__all__ = [
    "RollbackError",
    "RollbackResult",
    "apply_rollback",
    "plan_rollback",
    "rollback_batch",
    "rollback_table",
]


class RollbackError(LakehouseError, RuntimeError):
    """A rollback cannot be done safely (later runs committed, a damaged Delta log); the
    message names every table concerned. Nothing was changed."""


#: Actions of a plan that still has work to do.
_PENDING = ("restore", "empty")


@dataclass
class RollbackResult:
    """What a rollback did, will do (a plan) or would do (``dry_run``) to one table.

    ``action`` is ``"restore"`` / ``"empty"`` for a plan, ``"restored"`` / ``"emptied"``
    once applied, ``"dry-run"``, ``"already rolled back"`` or ``"nothing to do"``.
    ``restored_to`` is the version restored to (None when the run created the table).
    """

    table: str
    path: str
    batch_id: str
    run_versions: list[int]
    version_before: int
    restored_to: int | None
    new_version: int | None
    action: str
    metrics: dict[str, Any] = field(default_factory=dict)
    #: For a dry run: what would be done (``"restore"`` or ``"empty"``).
    planned: str = ""

    def describe(self) -> str:
        runs = ", ".join(f"v{v}" for v in self.run_versions)
        undo = f"batch {self.batch_id}: commits {runs}"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.metrics.items()))
        if self.action == "nothing to do":
            return f"{self.table}: no commit of batch {self.batch_id}; nothing to do"
        if self.action == "already rolled back":
            return (
                f"{self.table}: batch {self.batch_id} (commits {runs}) was already rolled back "
                f"(latest commit v{self.version_before} undid it); nothing to do"
            )
        if self.action == "dry-run" and self.planned == "empty":
            return (
                f"{self.table}: would empty {self.path} with a DELETE at v{self.version_before} "
                f"(batch {self.batch_id} created it: commits {runs})"
            )
        if self.action == "dry-run":
            return (
                f"{self.table}: would RESTORE {self.path} from v{self.version_before} to "
                f"v{self.restored_to} (undoing {undo})"
            )
        if self.action == "emptied":
            return (
                f"{self.table}: emptied {self.path} with a DELETE as new version "
                f"v{self.new_version} (batch {self.batch_id} created it: commits {runs}; undo "
                f"with RESTORE TABLE {delta_path_identifier(self.path)} TO VERSION AS OF "
                f"{self.version_before}); {counts}"
            )
        return (
            f"{self.table}: restored {self.path} from v{self.version_before} to "
            f"v{self.restored_to} as new version v{self.new_version} (undid {undo}); {counts}"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def plan_rollback(
    spark: SparkSession,
    path: str,
    batch_id: str,
    *,
    table: str | None = None,
    force: bool = False,
) -> RollbackResult:
    """Decide what undoing ``batch_id`` takes on the Delta table at ``path``; change nothing.

    Raises
    ------
    RollbackError
        When other commits landed after the run's last commit and ``force`` is false, or
        when the table's history cannot be read (a damaged ``_delta_log``).
    """
    from delta.tables import DeltaTable

    name = table or path
    try:
        dt_ = DeltaTable.forPath(spark, path)
        history = dt_.history().select("version", "operation", "userMetadata").collect()
        versions = [c["version"] for c in batch_commits(spark, path, batch_id)]
    except (PySparkException, Py4JError) as exc:
        raise RollbackError(
            f"{name}: cannot read the Delta table at {path} (is its _delta_log damaged?): "
            f"{_first_line(exc)}"
        ) from exc
    latest_row = max(history, key=lambda r: int(r["version"]), default=None)
    latest = int(latest_row["version"]) if latest_row else -1
    plan = RollbackResult(name, path, batch_id, versions, latest, None, None, "nothing to do")
    if not versions:
        return plan
    if _is_rollback_of(latest_row, batch_id):
        return replace(plan, action="already rolled back")
    later = _later_commits(history, versions[-1])
    if later and not force:
        raise RollbackError(
            f"{name}: commits {later} landed after batch {batch_id} (last commit "
            f"v{versions[-1]}); undoing the batch would undo them too. Pass force=True "
            "(--force) to do it anyway"
        )
    if versions[0] == 0:
        return replace(plan, action="empty")
    return replace(plan, restored_to=versions[0] - 1, action="restore")


def _later_commits(history: list[Row], last: int) -> list[int]:
    """Versions after ``last`` that a rollback to before ``last`` would undo.

    Commits that a later rollback already undid do not count: a RESTORE of this module
    back to version ``t >= last`` cancels every commit in ``(t, RESTORE]`` (rolling back
    batch B2 and then the earlier B1 is allowed without ``force``)."""
    effective: list[int] = []
    for row in sorted(history, key=lambda r: int(r["version"])):
        version = int(row["version"])
        if version <= last:
            continue
        meta = _meta(row["userMetadata"])
        target = meta.get("restored_to")
        if (
            row["operation"] == "RESTORE"
            and "rollback_of" in meta
            and isinstance(target, int)
            and target >= last
        ):
            effective = [v for v in effective if v <= target]
        else:
            effective.append(version)
    return effective


def apply_rollback(spark: SparkSession, plan: RollbackResult) -> RollbackResult:
    """Carry out a plan from :func:`plan_rollback` (plans with nothing to do pass through)."""
    from delta.tables import DeltaTable

    if plan.action not in _PENDING:
        return plan
    dt_ = DeltaTable.forPath(spark, plan.path)
    metadata: dict[str, Any] = {"job": "rollback", "rollback_of": plan.batch_id}
    if plan.action == "empty" or plan.restored_to is None:
        with session_conf(spark, {SESSION_USER_METADATA: json.dumps(metadata)}):
            dt_.delete()
        new_version, metrics = _latest(dt_)
        return replace(plan, new_version=new_version, action="emptied", metrics=metrics)
    target = plan.restored_to
    metadata["restored_to"] = target
    with session_conf(spark, {SESSION_USER_METADATA: json.dumps(metadata)}):
        row = dt_.restoreToVersion(target).first()
    metrics = {k: int(v) for k, v in (row.asDict() if row else {}).items()}
    new_version, _ = _latest(dt_)
    return replace(plan, new_version=new_version, action="restored", metrics=metrics)


def _latest(dt_: DeltaTable) -> tuple[int | None, dict[str, int]]:
    """The table's latest version and that commit's numeric operation metrics."""
    row = dt_.history(1).select("version", "operationMetrics").first()
    if row is None:
        return None, {}
    metrics = {}
    for key, value in (row["operationMetrics"] or {}).items():
        try:
            metrics[key] = int(value)
        except (TypeError, ValueError):
            continue
    return int(row["version"]), metrics


def rollback_table(
    spark: SparkSession,
    path: str,
    batch_id: str,
    *,
    table: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    out: Callable[[str], None] | None = print,
) -> RollbackResult:
    """Undo batch ``batch_id`` on the one Delta table at ``path`` (see the module docstring).

    Raises
    ------
    RollbackError
        As :func:`plan_rollback`.
    """
    plan = plan_rollback(spark, path, batch_id, table=table, force=force)
    if dry_run and plan.action in _PENDING:
        return _report(replace(plan, action="dry-run", planned=plan.action), out)
    return _report(apply_rollback(spark, plan), out)


def _report(result: RollbackResult, out: Callable[[str], None] | None) -> RollbackResult:
    """Print ``result``'s description (when there is an ``out``) and return it."""
    if out:
        out(result.describe())
    return result


def _is_rollback_of(latest_row: Row | None, batch_id: str) -> bool:
    """Whether the table's latest commit is the one that rolled back ``batch_id``."""
    return (
        latest_row is not None
        and latest_row["operation"] in ("RESTORE", "DELETE")
        and _meta(latest_row["userMetadata"]).get("rollback_of") == batch_id
    )


def _meta(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _table_exists(spark: SparkSession, name: str, path: str) -> bool:
    try:
        return is_delta_table(spark, path)
    except (PySparkException, Py4JError) as exc:
        raise RollbackError(
            f"{name}: cannot read the Delta table at {path} (is its _delta_log damaged?): "
            f"{_first_line(exc)}"
        ) from exc


def rollback_batch(
    spark: SparkSession,
    settings: Settings,
    batch_id: str,
    *,
    tables: Sequence[str] = (),
    dry_run: bool = False,
    force: bool = False,
    out: Callable[[str], None] | None = print,
) -> list[RollbackResult]:
    """Undo ``batch_id`` on every configured table (or ``tables``): all of them or none.
    A table's CDC event log (:mod:`lakehouse.scd2.log`) is rolled back with it.

    Every table is checked first (:func:`plan_rollback`); if any cannot be rolled back,
    one :class:`RollbackError` lists them all and nothing is changed. Tables that are not
    Delta tables yet are skipped. Unknown table names raise ``KeyError`` listing the known
    ones. A batch no table has commits of returns results whose ``run_versions`` are all
    empty (the CLI treats that as an unknown batch id).
    """
    names = list(tables) or sorted(settings.tables)
    paths = {name: settings.table_path(name) for name in names}
    # a CDC table's event log (lakehouse.scd2.log) goes back with its table
    for name in names:
        log = event_log_location(paths[name])
        if path_exists(spark, f"{log}/_delta_log"):
            paths[f"{name} (event log)"] = log
    plans: list[RollbackResult] = []
    problems: list[str] = []
    for name, path in paths.items():
        try:
            if _table_exists(spark, name, path):
                plans.append(plan_rollback(spark, path, batch_id, table=name, force=force))
        except RollbackError as exc:
            problems.append(str(exc))
    if problems:
        raise RollbackError(
            f"rollback of batch {batch_id} refused, nothing was changed:\n  "
            + "\n  ".join(problems)
        )
    if dry_run:
        return [
            _report(
                replace(p, action="dry-run", planned=p.action) if p.action in _PENDING else p,
                out,
            )
            for p in plans
        ]
    return [_report(apply_rollback(spark, p), out) for p in plans]
