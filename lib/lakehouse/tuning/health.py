"""Table health: are the data files the Delta log says are live really there?

A live parquet file deleted (or lost) outside Delta makes every reader of the table fail
with ``FILE_NOT_EXIST``, while writers, OPTIMIZE and VACUUM carry on. :func:`check_table`
lists the live files of the table's latest snapshot
(``spark.read.format("delta").load(path).inputFiles()``, read from the log, nothing
listed) and checks that each exists through Hadoop's ``FileSystem`` (one listing per
folder, so it is cheap on object stores too). For a damaged table it names the missing
files and the fixes:

* put the files back (from a backup or the object store's versioning): nothing is lost;
* ``RESTORE TABLE delta.`path` TO VERSION AS OF n``, where ``n`` is the newest earlier
  version whose files all exist (found by walking back the history): the commits after
  ``n`` are undone, so re-run the jobs that made them;
* ``FSCK REPAIR TABLE`` removes the missing files from the log (their rows are lost) where
  it exists: Databricks only, open-source Delta (4.2) has no FSCK.

``lakehouse check`` (:mod:`lakehouse.cli.check`) runs it over the declared tables.

Examples
--------
>>> TableHealth("orders", "/d/orders", 3, 2, ("/d/orders/part-1.parquet",)).healthy
False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException

from lakehouse.spark.delta import is_delta_table, table_version
from lakehouse.spark.sql import delta_path_identifier

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["TableHealth", "check_table"]


@dataclass(frozen=True)
class TableHealth:
    """The outcome of :func:`check_table` for one table.

    ``missing`` lists live files (as the Delta log names them) that do not exist;
    ``restore_to`` is the newest earlier version whose files all exist (None when none
    was found within the versions searched); ``error`` says why the table could not be
    checked at all (no Delta table there, an unreadable log).
    """

    table: str
    path: str
    version: int | None
    live_files: int
    missing: tuple[str, ...] = ()
    restore_to: int | None = None
    error: str = ""
    fixes: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.error

    def describe(self) -> str:
        """One line when healthy; otherwise the problem, the missing files and the fixes."""
        if self.error:
            return f"{self.table}: cannot check {self.path}: {self.error}"
        if self.healthy:
            return f"{self.table}: ok (v{self.version}, {self.live_files} live files)"
        lines = [
            f"{self.table}: {len(self.missing)} of {self.live_files} live files of "
            f"v{self.version} are missing ({self.path}); readers fail with FILE_NOT_EXIST:",
            *[f"    missing: {f}" for f in self.missing],
            *[f"  fix: {f}" for f in self.fixes],
        ]
        return "\n".join(lines)


class _Files:
    """Existence of files through Hadoop's FileSystem, one listing per folder (cached)."""

    def __init__(self, spark: SparkSession) -> None:
        jvm = spark.sparkContext._jvm
        if jvm is None:  # pragma: no cover - a classic session always has a JVM
            raise RuntimeError("no JVM behind this SparkSession (Spark Connect is not supported)")
        self._jvm: Any = jvm
        self._conf = spark._jsparkSession.sessionState().newHadoopConf()
        self._listed: dict[str, set[str]] = {}

    def _names(self, folder: Any) -> set[str]:
        key = str(folder.toString())
        if key not in self._listed:
            fs = folder.getFileSystem(self._conf)
            names: set[str] = set()
            if fs.exists(folder):
                for status in fs.listStatus(folder):
                    names.add(str(status.getPath().getName()))
            self._listed[key] = names
        return self._listed[key]

    def missing(self, files: Iterable[str]) -> list[str]:
        out = []
        for name in files:
            path = self._jvm.org.apache.hadoop.fs.Path(name)
            if str(path.getName()) not in self._names(path.getParent()):
                out.append(name)
        return out


def _live_files(spark: SparkSession, path: str, version: int | None = None) -> list[str]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return sorted(reader.load(path).inputFiles())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _restore_target(
    spark: SparkSession, path: str, latest: int, files: _Files, search_back: int
) -> int | None:
    """The newest version before ``latest`` (at most ``search_back`` back) whose files all
    exist; None if there is none (or older snapshots cannot be read any more)."""
    for version in range(latest - 1, max(latest - 1 - search_back, -1), -1):
        try:
            if not files.missing(_live_files(spark, path, version)):
                return version
        except (PySparkException, Py4JError):
            return None  # log files cleaned up, or a damaged older commit: stop here
    return None


def check_table(
    spark: SparkSession, path: str, *, table: str | None = None, search_back: int = 20
) -> TableHealth:
    """Check that every live file of the Delta table at ``path`` exists.

    Parameters
    ----------
    spark:
        The session.
    path:
        The table's location (local path or URI).
    table:
        The name used in messages (defaults to ``path``).
    search_back:
        How many versions back to look for a version to ``RESTORE`` to when files are
        missing.

    Returns
    -------
    TableHealth
        Healthy, or naming the missing files and the fixes; ``error`` set when the table
        cannot be read at all (nothing is raised for a damaged table).
    """
    name = table or path
    files = _Files(spark)
    try:
        if not is_delta_table(spark, path):
            return TableHealth(name, path, None, 0, error="no Delta table there")
        version = table_version(spark, path)
        live = _live_files(spark, path)
        missing = files.missing(live)
    except (PySparkException, Py4JError) as exc:
        return TableHealth(
            name, path, None, 0, error=f"the Delta log cannot be read: {_first_line(exc)}"
        )
    if not missing or version is None:
        return TableHealth(name, path, version, len(live))
    target = _restore_target(spark, path, version, files, search_back)
    ident = delta_path_identifier(path)
    fixes = ["put the missing files back (from a backup or the store's versioning)"]
    if target is not None:
        fixes.append(
            f"RESTORE TABLE {ident} TO VERSION AS OF {target} (the newest version whose files "
            f"all exist; commits v{target + 1}..v{version} are undone: re-run their jobs)"
        )
    fixes.append(
        f"FSCK REPAIR TABLE {ident} where available (Databricks; open-source Delta has no FSCK): "
        "drops the missing files from the log, their rows are lost"
    )
    return TableHealth(name, path, version, len(live), tuple(missing), target, fixes=tuple(fixes))
