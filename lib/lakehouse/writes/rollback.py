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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.writes.idempotency import SESSION_USER_METADATA, batch_commits

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings

__all__ = [
    "RollbackError",
    "RollbackResult",
    "rollback_batch",
    "rollback_table",
]


class RollbackError(RuntimeError):
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
    commits = batch_commits(spark, path, batch_id)
    if not commits:
        result = RollbackResult(name, path, batch_id, [], latest, None, None, "nothing to do")
        if out:
            out(result.describe())
        return result
    versions = [c["version"] for c in commits]
    if latest_row is not None and latest_row["operation"] == "RESTORE":
        meta = _meta(latest_row["userMetadata"])
        if meta.get("rollback_of") == batch_id:
            result = RollbackResult(
                name, path, batch_id, versions, latest, None, None, "already rolled back"
            )
            if out:
                out(result.describe())
            return result
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
    if dry_run:
        result = RollbackResult(name, path, batch_id, versions, latest, target, None, "dry-run")
        if out:
            out(result.describe())
        return result
    previous = spark.conf.get(SESSION_USER_METADATA, None)
    spark.conf.set(
        SESSION_USER_METADATA,
        json.dumps({"job": "rollback", "rollback_of": batch_id, "restored_to": target}),
    )
    try:
        metrics_row = dt_.restoreToVersion(target).first()
    finally:
        if previous is None:
            spark.conf.unset(SESSION_USER_METADATA)
        else:
            spark.conf.set(SESSION_USER_METADATA, previous)
    metrics = {k: int(v) for k, v in (metrics_row.asDict() if metrics_row else {}).items()}
    new_row = dt_.history(1).select("version").first()
    new_version = int(new_row["version"]) if new_row else None
    result = RollbackResult(
        name, path, batch_id, versions, latest, target, new_version, "restored", metrics
    )
    if out:
        out(result.describe())
    return result


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
    from lakehouse.spark.delta import is_delta_table

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
