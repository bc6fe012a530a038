"""Spark and Delta plumbing: the session (:mod:`.session`), SQL safety for identifiers
and expressions (:mod:`.sql`) and the one Delta table handle (:mod:`.delta`).
"""

from lakehouse.spark.delta import (
    DeltaTableRef,
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
    SqlSafetyError,
    UnsafeExpressionError,
    check_expression_text,
    delta_path_identifier,
    quote_identifier,
    quote_qualified,
    sql_string_literal,
    validate_expression,
    validate_identifier,
)

__all__ = [
    "REDACTION_REGEX",
    "DeltaTableRef",
    "IdentifierError",
    "SqlSafetyError",
    "UnsafeExpressionError",
    "build_spark_session",
    "cache_dir",
    "check_expression_text",
    "delta_maven_coordinate",
    "delta_path_identifier",
    "insert_new_rows",
    "is_delta_table",
    "last_operation_metrics",
    "quote_identifier",
    "quote_qualified",
    "restored_conf",
    "session_conf",
    "sql_string_literal",
    "table_version",
    "validate_expression",
    "validate_identifier",
]
