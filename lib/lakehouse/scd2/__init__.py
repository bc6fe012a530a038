"""SCD Type 2 merges into Delta with AUTO CDC semantics."""

from lakehouse.scd2.engine import (
    SCD2ConflictError,
    SCD2Error,
    SCD2InvariantError,
    SCD2InvariantReport,
    SCD2Result,
    SCD2SchemaError,
    SCD2Spec,
    SCD2SpecError,
    apply_scd2,
    check_scd2_invariants,
    default_merge_conf,
    read_as_of,
)

__all__ = [
    "SCD2ConflictError",
    "SCD2Error",
    "SCD2InvariantError",
    "SCD2InvariantReport",
    "SCD2Result",
    "SCD2SchemaError",
    "SCD2Spec",
    "SCD2SpecError",
    "apply_scd2",
    "check_scd2_invariants",
    "default_merge_conf",
    "read_as_of",
]
