"""Data quality: expectations, table checks, Delta constraints, schema drift
(:mod:`.expectations`) and the quarantine row shape (:mod:`.quarantine`).
"""

from lakehouse.quality.expectations import (
    ALLOWED_FUNCTIONS,
    QUALITY_RESULTS_SCHEMA,
    RESULTS_TABLE,
    ExpectationFailedError,
    ExpectationResult,
    QualityOutcome,
    QualityReport,
    SchemaDriftError,
    UnsafeExpressionError,
    apply_constraints,
    apply_expectations,
    apply_table_quality,
    check_schema,
    check_table,
    existing_constraints,
    validate_expression,
    validate_quality,
    write_quality_results,
)
from lakehouse.quality.quarantine import (
    QUARANTINE_COLUMNS,
    to_quarantine,
    write_quarantine,
)

__all__ = [
    "ALLOWED_FUNCTIONS",
    "QUALITY_RESULTS_SCHEMA",
    "QUARANTINE_COLUMNS",
    "RESULTS_TABLE",
    "ExpectationFailedError",
    "ExpectationResult",
    "QualityOutcome",
    "QualityReport",
    "SchemaDriftError",
    "UnsafeExpressionError",
    "apply_constraints",
    "apply_expectations",
    "apply_table_quality",
    "check_schema",
    "check_table",
    "existing_constraints",
    "to_quarantine",
    "validate_expression",
    "validate_quality",
    "write_quality_results",
    "write_quarantine",
]
