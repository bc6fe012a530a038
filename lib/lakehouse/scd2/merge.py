"""The write: one MERGE of the difference, keyed on (keys, valid_from), and the settings it
runs with (:func:`default_merge_conf`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column

from lakehouse.config import parse_byte_string
from lakehouse.scd2.columns import all_of, qcol
from lakehouse.scd2.schema import Layout
from lakehouse.scd2.spec import SCD2Spec
from lakehouse.spark.delta import DeltaTableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["ADVISORY_SIZE_KEY", "SHJ_THRESHOLD_KEY", "default_merge_conf", "merge_difference"]

#: AQE's threshold for building a shuffled hash join's local map from a post-shuffle partition.
SHJ_THRESHOLD_KEY = "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold"
ADVISORY_SIZE_KEY = "spark.sql.adaptive.advisoryPartitionSizeInBytes"


def default_merge_conf(spark: SparkSession) -> dict[str, str]:
    """The settings :func:`apply_scd2` runs its MERGE with unless told otherwise.

    The MERGE rewrites the touched files with a full outer join of the (small) set of rows
    to write and the (large) rows of those files. Spark plans it as a sort-merge join and
    sorts every row of the touched files; with ``spark.sql.adaptive.maxShuffledHashJoin
    LocalMapThreshold`` at least the advisory partition size, adaptive execution turns it
    into a shuffled hash join when every post-shuffle partition of one side fits under the
    threshold (measured at run time, so a large batch keeps the sort-merge join). The
    threshold is set to the advisory size, the smallest value at which Spark applies it.
    A session that already sets the threshold keeps its own value (empty result).

    Examples
    --------
    >>> default_merge_conf(spark)  # doctest: +SKIP
    {'spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold': '67108864b'}
    """
    # both keys have SQL defaults, so get() without a default returns the effective value
    if parse_byte_string(spark.conf.get(SHJ_THRESHOLD_KEY) or "0") > 0:
        return {}
    return {SHJ_THRESHOLD_KEY: spark.conf.get(ADVISORY_SIZE_KEY) or "64m"}


def merge_difference(
    table: DeltaTableRef, source: DataFrame, lay: Layout, spec: SCD2Spec, prune: Column
) -> None:
    """MERGE the rows to write (:func:`~lakehouse.scd2.chain.chain_source`'s shape) into
    ``table``: a source row with NULL ``is_current`` deletes its match, any other updates
    its match or is inserted. ``prune`` (over alias ``t``) bounds the touched keys so Delta
    can skip files."""
    on = [*lay.keys, spec.valid_from]
    cond = all_of([qcol(c, "t") == qcol(c, "s") for c in on]) & prune
    builder = (
        table.delta_table()
        .alias("t")
        .merge(source.alias("s"), cond)
        .whenMatchedDelete(condition=qcol(spec.is_current, "s").isNull())
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll(condition=qcol(spec.is_current, "s").isNotNull())
    )
    if lay.new_columns or lay.widened:
        # Delta widens a column type in a MERGE only with schema evolution on
        builder = builder.withSchemaEvolution()
    builder.execute()
