"""Safe SQL building blocks: identifiers are validated and quoted, never interpolated raw.

Examples
--------
>>> quote_identifier("order date")
'`order date`'
>>> quote_identifier("we`ird")
'`we``ird`'
>>> validate_identifier("customer_id")
'customer_id'
>>> validate_identifier("x; DROP TABLE t")
Traceback (most recent call last):
...
lakehouse.spark.sql.IdentifierError: invalid identifier 'x; DROP TABLE t': must match [A-Za-z_][A-Za-z0-9_]* (at most 128 characters)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["IdentifierError", "quote_identifier", "quote_qualified", "validate_identifier"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class IdentifierError(ValueError):
    """A table or column name from configuration is not a plain identifier."""


def validate_identifier(name: str) -> str:
    """Return ``name`` if it is a plain identifier, else raise :class:`IdentifierError`."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise IdentifierError(
            f"invalid identifier {name!r}: must match [A-Za-z_][A-Za-z0-9_]* "
            "(at most 128 characters)"
        )
    return name


def quote_identifier(name: str) -> str:
    """Quote ``name`` with backticks, doubling embedded backticks."""
    return "`" + name.replace("`", "``") + "`"


def quote_qualified(parts: Iterable[str]) -> str:
    """Quote a dotted name part by part: ``db``.``table``."""
    return ".".join(quote_identifier(p) for p in parts)


def delta_path_identifier(path: str) -> str:
    """The SQL identifier of a path-based Delta table: ``delta.`/some/path```."""
    return "delta." + quote_identifier(path)
