"""Roll a table back to the version before a given run (Delta ``RESTORE``).

The commits of a run are found from Delta's history: every write of the suite records
``{"batch_id": ...}`` in the commit's ``userMetadata`` (see :mod:`lakehouse.writes.idempotency`).
The table is restored with ``DeltaTable.restoreToVersion(first_commit_of_run - 1)``, in a
commit whose ``userMetadata`` says ``{"rollback_of": <batch id>}``; rolling back the same
run twice does nothing the second time. If other runs committed after the run, the
rollback would undo them too and is refused unless ``force=True``.

The command line is ``lakehouse rollback`` (:mod:`lakehouse.cli.rollback`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.spark.delta import is_delta_table
from lakehouse.spark.session import session_conf
from lakehouse.writes.idempotency import SESSION_USER_METADATA, batch_commits

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import Row, SparkSession

    from lakehouse.config import Settings

__all__ = [
    "RollbackError",
    "RollbackResult",
    "rollback_batch",
    "rollback_table",
]


class RollbackError(LakehouseError, RuntimeError):
    """A rollback cannot be done safely (no commits of the run, later runs, new table)."""


@dataclass
class RollbackResult:
    """What a rollback did (or, with ``dry_run``, would do) to one table."""

    table: str
    path: str
    batch_id: str
    run_versions: list[int]
    version_before: int
    restored_to: int | None
    new_version: int | None
    action: str  # "restored", "dry-run", "already rolled back", "nothing to do"
    metrics: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.action == "nothing to do":
            return f"{self.table}: no commit of batch {self.batch_id}; nothing to do"
        runs = ", ".join(f"v{v}" for v in self.run_versions)
        if self.action == "already rolled back":
            return (
                f"{self.table}: batch {self.batch_id} (commits {runs}) was already rolled back "
                f"(latest commit v{self.version_before} is its RESTORE); nothing to do"
            )
        if self.action == "dry-run":
            return (
                f"{self.table}: would RESTORE {self.path} from v{self.version_before} to "
                f"v{self.restored_to} (undoing batch {self.batch_id}: commits {runs})"
            )
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.metrics.items()))
        return (
            f"{self.table}: restored {self.path} from v{self.version_before} to "
            f"v{self.restored_to} as new version v{self.new_version} (undid batch "
            f"{self.batch_id}: commits {runs}); {counts}"
        )


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
    """Restore the Delta table at ``path`` to the version before batch ``batch_id``.

    Raises
    ------
    RollbackError
        When the run created the table (there is no earlier version), or when other
        commits landed after the run's last commit and ``force`` is false.
    """
    from delta.tables import DeltaTable

    name = table or path
    dt_ = DeltaTable.forPath(spark, path)
    latest_row = dt_.history(1).select("version", "operation", "userMetadata").first()
    latest = int(latest_row["version"]) if latest_row else -1
    versions = [c["version"] for c in batch_commits(spark, path, batch_id)]
    plan = RollbackResult(name, path, batch_id, versions, latest, None, None, "nothing to do")
    if not versions:
        return _report(plan, out)
    if _is_rollback_of(latest_row, batch_id):
        return _report(replace(plan, action="already rolled back"), out)
    target = _restore_target(dt_, name, batch_id, versions, force=force)
    if dry_run:
        return _report(replace(plan, restored_to=target, action="dry-run"), out)
    metrics, new_version = _restore(spark, dt_, batch_id, target)
    done = replace(
        plan, restored_to=target, new_version=new_version, action="restored", metrics=metrics
    )
    return _report(done, out)


def _report(result: RollbackResult, out: Callable[[str], None] | None) -> RollbackResult:
    """Print ``result``'s description (when there is an ``out``) and return it."""
    if out:
        out(result.describe())
    return result


def _is_rollback_of(latest_row: Row | None, batch_id: str) -> bool:
    """Whether the table's latest commit is the RESTORE that rolled back ``batch_id``."""
    return (
        latest_row is not None
        and latest_row["operation"] == "RESTORE"
        and _meta(latest_row["userMetadata"]).get("rollback_of") == batch_id
    )


def _restore_target(
    dt_: DeltaTable, name: str, batch_id: str, versions: list[int], *, force: bool
) -> int:
    """The version to restore to (the one before the run's first commit), if that is safe.

    Raises :class:`RollbackError` when the run created the table, or when later commits
    would be undone too and ``force`` is false.
    """
    target = versions[0] - 1
    if target < 0:
        raise RollbackError(
            f"{name}: batch {batch_id} created the table at v{versions[0]}; there is no "
            "earlier version to restore (drop the table instead)"
        )
    later = [
        int(r["version"])
        for r in dt_.history().select("version").collect()
        if int(r["version"]) > versions[-1]
    ]
    if later and not force:
        raise RollbackError(
            f"{name}: commits {sorted(later)} landed after batch {batch_id} (last commit "
            f"v{versions[-1]}); restoring to v{target} would undo them too. Pass force=True "
            "(--force) to do it anyway"
        )
    return target


def _restore(
    spark: SparkSession, dt_: DeltaTable, batch_id: str, target: int
) -> tuple[dict[str, int], int | None]:
    """RESTORE the table to ``target`` in a commit marked ``rollback_of``.

    Returns the RESTORE's metrics and the table's new version.
    """
    metadata = json.dumps({"job": "rollback", "rollback_of": batch_id, "restored_to": target})
    with session_conf(spark, {SESSION_USER_METADATA: metadata}):
        metrics_row = dt_.restoreToVersion(target).first()
    metrics = {k: int(v) for k, v in (metrics_row.asDict() if metrics_row else {}).items()}
    new_row = dt_.history(1).select("version").first()
    new_version = int(new_row["version"]) if new_row else None
    return metrics, new_version


def _meta(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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
    """Roll back every configured table (or ``tables``) that has commits of ``batch_id``.

    Tables that are not Delta tables yet are skipped. Unknown table names raise
    ``KeyError`` listing the known ones.
    """
    names = list(tables) or sorted(settings.tables)
    results = []
    for name in names:
        path = settings.table_path(name)
        if not is_delta_table(spark, path):
            continue
        results.append(
            rollback_table(spark, path, batch_id, table=name, dry_run=dry_run, force=force, out=out)
        )
    return results
