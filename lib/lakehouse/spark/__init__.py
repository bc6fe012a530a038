"""Spark and Delta plumbing: the session (:mod:`.session`), SQL safety for identifiers
and expressions (:mod:`.sql`) and the one Delta table handle (:mod:`.delta`).
"""

from lakehouse.spark.delta import (
    insert_new_rows,
    is_delta_table,
    last_operation_metrics,
    table_version,
)
from lakehouse.spark.session import (
    REDACTION_REGEX,
    build_spark_session,
    cache_dir,
    delta_maven_coordinate,
    restored_conf,
    session_conf,
)
from lakehouse.spark.sql import (
    IdentifierError,
    quote_identifier,
    quote_qualified,
    validate_identifier,
)

__all__ = [
    "REDACTION_REGEX",
    "IdentifierError",
    "build_spark_session",
    "cache_dir",
    "delta_maven_coordinate",
    "insert_new_rows",
    "is_delta_table",
    "last_operation_metrics",
    "quote_identifier",
    "quote_qualified",
    "restored_conf",
    "session_conf",
    "table_version",
    "validate_identifier",
]
