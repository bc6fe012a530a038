"""SCD Type 2 merges into Delta with AUTO CDC semantics, on any Spark + Delta.

A change feed is a set of events ``(key, sequence, attributes, [delete marker])``. For
every key the table holds the chain of versions obtained by sorting the key's events by
sequence, dropping events that change no tracked column (compared NULL-safely) and giving
each remaining event the half-open interval ``[valid_from, valid_to)`` that ends where the
next version or a delete begins. The current version has ``valid_to`` NULL and
``is_current`` true.

Modules, in the order a call uses them: :mod:`.spec` (the spec, the result, the errors),
:mod:`.schema` (which columns play which part), :mod:`.batch` (the prepared batch and the
stored versions of its keys), :mod:`.fast` (keys decided without windows), :mod:`.chain`
(the window rebuild of every other key), :mod:`.merge` (the one MERGE), :mod:`.apply`
(:func:`apply_scd2`, which runs them and retries conflicts) and :mod:`.invariants`
(:func:`read_as_of`, :func:`check_scd2_invariants`). :mod:`.columns` holds the internal
column names and Column helpers they share.
"""

from lakehouse.scd2.apply import DEFAULT_RETRY, apply_scd2
from lakehouse.scd2.invariants import SCD2InvariantReport, check_scd2_invariants, read_as_of
from lakehouse.scd2.merge import default_merge_conf
from lakehouse.scd2.spec import (
    SCD2ConflictError,
    SCD2Error,
    SCD2InvariantError,
    SCD2Result,
    SCD2SchemaError,
    SCD2Spec,
    SCD2SpecError,
)

__all__ = [
    "DEFAULT_RETRY",
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
