"""SQL safety, the one home for it: identifiers are validated and quoted, string literals are
escaped, and expressions from configuration are checked before any SQL embeds them.

* identifiers: :func:`validate_identifier`, :func:`quote_identifier`, :func:`quote_qualified`,
  :func:`delta_path_identifier`;
* string literals: :func:`sql_string_literal` (any value, escaped) and
  :func:`property_literal` (table-property keys and values, a safe alphabet only);
* expressions: :func:`check_expression_text` (static: no statement separator or comment,
  bounded length; needs no Spark) and :func:`validate_expression` (Spark's own parser, a
  whitelist of node types and functions, and analysis against the table's schema).

Importing this module needs neither a SparkSession nor the configuration package.

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
>>> check_expression_text("qty > 0 -- and the rest")
Traceback (most recent call last):
...
lakehouse.spark.sql.UnsafeExpressionError: must be a single SQL boolean expression over the row; '--' is not allowed
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

__all__ = [
    "ALLOWED_FUNCTIONS",
    "FORBIDDEN_SQL_TOKENS",
    "MAX_AMPLIFICATION",
    "MAX_BUILT_STRING",
    "MAX_EXPRESSION_LENGTH",
    "IdentifierError",
    "SqlSafetyError",
    "UnsafeExpressionError",
    "check_expression_text",
    "delta_path_identifier",
    "property_literal",
    "quote_identifier",
    "quote_qualified",
    "sql_string_literal",
    "validate_expression",
    "validate_identifier",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_PROPERTY_VALUE = re.compile(r"[A-Za-z0-9_.,:-]*")

#: SQL text that must never appear in an expectation or constraint (comment markers would
#: let a fragment hide the rest of a generated statement; ``;`` would start another one).
FORBIDDEN_SQL_TOKENS = (";", "--", "/*", "*/")
#: The longest expression configuration may hold.
MAX_EXPRESSION_LENGTH = 2000


class SqlSafetyError(LakehouseError, ValueError):
    """Text from configuration cannot be embedded in SQL safely."""


class IdentifierError(SqlSafetyError):
    """A table or column name from configuration is not a plain identifier."""


class UnsafeExpressionError(SqlSafetyError):
    """An expectation or constraint is not a deterministic boolean expression over the row."""


# --------------------------------------------------------------------------- identifiers


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


# --------------------------------------------------------------------------- literals


def sql_string_literal(value: str) -> str:
    """A Spark SQL string literal for ``value``, escaped as Spark's own
    ``escapeSingleQuotedString`` does (backslash and single quote are backslash-escaped).

    Examples
    --------
    >>> print(sql_string_literal("it's"))
    'it\\'s'
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def property_literal(value: str) -> str:
    """A string literal for a table-property key or value from validated configuration
    (sizes, identifiers, booleans): anything outside ``[A-Za-z0-9_.,:-]`` is refused rather
    than escaped.

    Examples
    --------
    >>> property_literal("delta.enableDeletionVectors")
    "'delta.enableDeletionVectors'"
    >>> property_literal("x' = 'y")
    Traceback (most recent call last):
    ...
    lakehouse.spark.sql.SqlSafetyError: table property value "x' = 'y" must match [A-Za-z0-9_.,:-]*
    """
    if not _PROPERTY_VALUE.fullmatch(value):
        raise SqlSafetyError(f"table property value {value!r} must match [A-Za-z0-9_.,:-]*")
    return "'" + value + "'"


# --------------------------------------------------------------------------- expressions


def check_expression_text(value: str, *, max_length: int | None = MAX_EXPRESSION_LENGTH) -> str:
    """The static checks of an expression from configuration; returns it stripped.

    Non-empty, at most ``max_length`` characters (``None``: unbounded), and none of
    :data:`FORBIDDEN_SQL_TOKENS`. Raises :class:`UnsafeExpressionError` with the reason.

    Examples
    --------
    >>> check_expression_text("  qty > 0 ")
    'qty > 0'
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise UnsafeExpressionError("must be a non-empty SQL boolean expression")
    if max_length is not None and len(text) > max_length:
        raise UnsafeExpressionError(f"must be at most {max_length} characters")
    for token in FORBIDDEN_SQL_TOKENS:
        if token in text:
            raise UnsafeExpressionError(
                f"must be a single SQL boolean expression over the row; {token!r} is not allowed"
            )
    return text


#: Catalyst node classes an expectation may contain (besides whitelisted functions).
_ALLOWED_NODES = frozenset(
    {
        "And", "Or", "Not", "EqualTo", "EqualNullSafe", "GreaterThan", "GreaterThanOrEqual",
        "LessThan", "LessThanOrEqual", "In", "InSet", "IsNull", "IsNotNull", "IsNaN",
        "Literal", "UnresolvedAttribute", "UnresolvedFunction", "Cast", "Add", "Subtract",
        "Multiply", "Divide", "Remainder", "UnaryMinus", "UnaryPositive", "Abs", "CaseWhen",
        "If", "Like", "ILike", "RLike", "LikeAll", "LikeAny", "NotLikeAll", "NotLikeAny",
        "Coalesce", "Concat", "Between", "IntegralDivide",
    }
)  # fmt: skip

#: How a rejected node class is named in the error.
_NODE_LABELS = {
    "ScalarSubquery": "subqueries", "Exists": "subqueries", "ListQuery": "subqueries",
    "InSubquery": "subqueries", "LateralSubquery": "subqueries",
    "UnresolvedStar": "'*'", "LambdaFunction": "lambda functions",
}  # fmt: skip

#: Functions (lower-case) an expectation may call: deterministic, row-local, no side effects.
ALLOWED_FUNCTIONS = frozenset(
    {
        "abs", "between", "btrim", "ceil", "ceiling", "char_length", "character_length",
        "coalesce", "concat", "concat_ws", "contains", "date_add", "date_diff", "date_format",
        "date_sub", "datediff", "day", "dayofmonth", "dayofweek", "dayofyear", "endswith",
        "floor", "greatest", "hour", "if", "ifnull", "ilike", "in", "isnan", "isnotnull",
        "isnull", "least", "left", "len", "length", "like", "lower", "lcase", "ltrim",
        "make_date", "minute", "month", "nanvl", "nullif", "nvl", "nvl2", "octet_length",
        "quarter", "regexp", "regexp_extract", "regexp_like", "right", "rlike", "round",
        "rtrim", "second", "sign", "signum", "size", "startswith", "substr", "substring",
        "to_date", "to_timestamp", "trim", "try_cast", "try_to_timestamp", "ucase", "upper",
        "weekday", "year", "array_contains", "cardinality", "instr", "locate", "lpad", "rpad",
        "replace", "split_part", "bit_length", "sqrt", "pow", "power", "mod", "pmod",
        "try_divide", "try_add", "try_subtract", "try_multiply", "make_timestamp", "to_char",
        "equal_null", "typeof", "bround", "double", "int", "bigint", "string",
        "boolean", "date", "timestamp", "decimal",
    }
)  # fmt: skip


#: The longest string an expression may build per row out of literals and lengths
#: (``lpad(x, n, ...)``, ``rpad``, string literals); ``lpad(x, 2000000000, 'x')`` would
#: build 2 GB per row and exhaust the JVM.
MAX_BUILT_STRING = 100_000
#: How many times over an expression may repeat the row's own values (``concat(a, a)``
#: twice, ``replace(a, 'x', 'xxxx')`` four times; nested, the factors multiply).
MAX_AMPLIFICATION = 100

#: Node classes whose result is a boolean or a number: small whatever their inputs.
_SMALL_RESULT_NODES = frozenset(
    {
        "And", "Or", "Not", "EqualTo", "EqualNullSafe", "GreaterThan", "GreaterThanOrEqual",
        "LessThan", "LessThanOrEqual", "In", "InSet", "IsNull", "IsNotNull", "IsNaN", "Add",
        "Subtract", "Multiply", "Divide", "Remainder", "UnaryMinus", "UnaryPositive", "Abs",
        "Like", "ILike", "RLike", "LikeAll", "LikeAny", "NotLikeAll", "NotLikeAny", "Between",
        "IntegralDivide",
    }
)  # fmt: skip

#: Allowed functions whose result is a boolean, a number or a date/time: small whatever
#: their inputs. Every other allowed function returns at most the sum of its inputs (plus a
#: little), except ``lpad``/``rpad`` (their length) and ``replace`` (its replacement).
_SMALL_RESULT_FUNCTIONS = frozenset(
    {
        "abs", "between", "ceil", "ceiling", "char_length", "character_length", "contains",
        "date_add", "date_diff", "date_sub", "datediff", "day", "dayofmonth", "dayofweek",
        "dayofyear", "endswith", "floor", "hour", "ilike", "in", "isnan", "isnotnull", "isnull",
        "len", "length", "like", "make_date", "minute", "month", "octet_length", "quarter",
        "regexp", "regexp_like", "rlike", "round", "second", "sign", "signum", "size",
        "startswith", "to_date", "to_timestamp", "try_to_timestamp", "weekday", "year",
        "array_contains", "cardinality", "instr", "locate", "bit_length", "sqrt", "pow",
        "power", "mod", "pmod", "try_divide", "try_add", "try_subtract", "try_multiply",
        "make_timestamp", "equal_null", "bround", "double", "int", "bigint", "boolean", "date",
        "timestamp", "decimal",
    }
)  # fmt: skip

#: A scalar's size when it is not a string (numbers, booleans, dates as text).
_SCALAR = 64


@dataclass(frozen=True)
class _Size:
    """An upper bound of a node's result length: ``per_value`` times the longest value in
    the row (the row's own data, which the expression cannot grow) plus ``fixed``."""

    per_value: int
    fixed: int

    def __add__(self, other: _Size) -> _Size:
        return _Size(self.per_value + other.per_value, self.fixed + other.fixed)

    def times(self, factor: int) -> _Size:
        return _Size(self.per_value * factor, self.fixed * factor)


def _args(node: Any) -> list[Any]:
    return _scala_list(node.arguments())


def _literal(node: Any) -> Any | None:
    """The value of a literal node (a negated number included), else None."""
    kind = node.getClass().getSimpleName()
    if kind == "UnaryMinus":
        inner = _literal(node.child())
        return -inner if isinstance(inner, int) else None
    if kind != "Literal" or node.value() is None:
        return None
    type_name = str(node.dataType().typeName())
    if type_name in ("integer", "long", "short", "byte"):
        return int(str(node.value()))
    if type_name == "string":
        return str(node.value())
    return None


def _scala_list(seq: Any) -> list[Any]:
    out = []
    it = seq.iterator()
    while it.hasNext():
        out.append(it.next())
    return out


def _walk(node: Any) -> Iterable[Any]:
    yield node
    for child in _scala_list(node.children()):
        yield from _walk(child)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


@dataclass(frozen=True)
class _ExpressionCheck:
    """One run of :func:`validate_expression`: each step raises naming ``what`` and ``expr``."""

    spark: SparkSession
    expr: str
    schema: T.StructType
    what: str

    def error(self, reason: str) -> UnsafeExpressionError:
        return UnsafeExpressionError(f"{self.what} {self.expr!r}: {reason}")

    def check_text(self) -> None:
        try:
            check_expression_text(self.expr, max_length=None)
        except UnsafeExpressionError as exc:
            raise self.error(str(exc)) from exc

    def parse(self) -> Any:
        from pyspark.errors import ParseException

        parser = self.spark._jsparkSession.sessionState().sqlParser()
        try:
            return parser.parseExpression(self.expr)
        except ParseException as exc:
            raise self.error(f"not a valid SQL expression: {_first_line(exc)}") from exc

    def check_node(self, node: Any) -> None:
        kind = node.getClass().getSimpleName()
        if kind not in _ALLOWED_NODES:
            label = _NODE_LABELS.get(kind, kind)
            raise self.error(f"{label} are not allowed; allowed: a boolean over the row's columns")
        if kind == "UnresolvedFunction":
            self.check_function(node)
        elif kind == "UnresolvedAttribute":
            self.check_column(node)

    def check_function(self, node: Any) -> None:
        name = str(node.nameParts().last()).lower()
        if node.nameParts().size() != 1 or name not in ALLOWED_FUNCTIONS:
            raise self.error(
                f"function {name!r} is not allowed (only deterministic row-level "
                "functions are; see lakehouse.quality.expectations.ALLOWED_FUNCTIONS)"
            )
        if node.isDistinct() or node.filter().isDefined():
            raise self.error("aggregates are not allowed")

    def check_column(self, node: Any) -> None:
        parts = [str(p) for p in _scala_list(node.nameParts())]
        try:
            for part in parts:
                validate_identifier(part)
        except IdentifierError as exc:
            raise self.error(f"column reference {'.'.join(parts)!r}: {exc}") from exc
        # Only the row's own columns: this also keeps out bare-word functions such as
        # current_date / current_timestamp / current_user, which parse as names.
        if parts[0].lower() not in {f.name.lower() for f in self.schema.fields}:
            raise self.error(
                f"{'.'.join(parts)!r} is not a column of the table; columns: "
                f"{sorted(f.name for f in self.schema.fields)}"
            )

    def size(self, node: Any) -> _Size:
        """An upper bound of the length of ``node``'s result (see :class:`_Size`); raises
        when it passes :data:`MAX_BUILT_STRING` or :data:`MAX_AMPLIFICATION`."""
        kind = node.getClass().getSimpleName()
        children = [self.size(c) for c in _scala_list(node.children())]
        if kind == "UnresolvedAttribute":
            size = _Size(1, 0)
        elif kind == "Literal":
            value = _literal(node)
            size = _Size(0, len(value) if isinstance(value, str) else _SCALAR)
        elif kind == "UnresolvedFunction":
            size = self.function_size(node, children)
        elif kind in _SMALL_RESULT_NODES or (
            kind == "Cast" and str(node.dataType().typeName()) != "string"
        ):
            size = _Size(0, _SCALAR)
        else:  # CASE, IF, COALESCE, CONCAT, casts to string: at most what goes in
            size = sum(children, _Size(0, _SCALAR))
        self.check_size(node, size)
        return size

    def function_size(self, node: Any, children: list[_Size]) -> _Size:
        name = str(node.nameParts().last()).lower()
        args = _args(node)
        if name in _SMALL_RESULT_FUNCTIONS:
            return _Size(0, _SCALAR)
        if name in ("lpad", "rpad") and len(args) >= 2:
            length = _literal(args[1])
            if not isinstance(length, int):
                raise self.error(
                    f"{name}'s length must be an integer literal of at most "
                    f"{MAX_BUILT_STRING}, so the string it builds is bounded; found "
                    f"{args[1].sql()}"
                )
            return _Size(0, max(length, 0))
        if name == "replace" and len(args) >= 2:
            search = _literal(args[1])
            replacement = _literal(args[2]) if len(args) > 2 else ""
            if not isinstance(replacement, str):
                raise self.error(
                    "replace's replacement must be a string literal, so the string it "
                    f"builds is bounded; found {args[2].sql()}"
                )
            width = len(search) if isinstance(search, str) else 1
            factor = -(-len(replacement) // width) if width else 1  # ceil; '' replaces nothing
            return children[0].times(max(factor, 1)) + _Size(0, _SCALAR)
        return sum(children, _Size(0, _SCALAR))

    def check_size(self, node: Any, size: _Size) -> None:
        if size.fixed > MAX_BUILT_STRING:
            raise self.error(
                f"may build strings of up to {size.fixed} characters per row (in "
                f"{node.sql()}); at most {MAX_BUILT_STRING} are allowed"
            )
        if size.per_value > MAX_AMPLIFICATION:
            raise self.error(
                f"may repeat a row's values up to {size.per_value} times (in {node.sql()}); "
                f"at most {MAX_AMPLIFICATION} are allowed"
            )

    def check_type(self) -> None:
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        empty = self.spark.createDataFrame([], self.schema)
        try:
            analysed = empty.select(F.expr(self.expr).alias("_check"))
            data_type = analysed.schema["_check"].dataType
            deterministic = bool(
                analysed._jdf.queryExecution().analyzed().expressions().head().deterministic()
            )
        except AnalysisException as exc:
            raise self.error(
                f"does not analyse against the table schema: {_first_line(exc)}"
            ) from exc
        if not isinstance(data_type, T.BooleanType):
            raise self.error(f"must be BOOLEAN; found {data_type.simpleString().upper()}")
        if not deterministic:
            raise self.error("must be deterministic")


def validate_expression(
    spark: SparkSession, expr: str, schema: T.StructType, *, what: str = "expression"
) -> str:
    """Check that ``expr`` is a deterministic boolean expression over a row of ``schema``.

    Nothing is executed: the text gets the static checks (:func:`check_expression_text`),
    is parsed with Spark's SQL parser, the tree is checked against a whitelist (columns,
    literals, comparisons, boolean logic, arithmetic, CASE and :data:`ALLOWED_FUNCTIONS`),
    what it may allocate is bounded (strings built from literals and lengths at most
    :data:`MAX_BUILT_STRING` characters per row, a row's own values repeated at most
    :data:`MAX_AMPLIFICATION` times), and the expression is analysed over an *empty*
    DataFrame.

    Returns
    -------
    str
        The canonical SQL of the parsed expression (Spark re-renders it, so no comment or
        statement separator from the input survives); this is what constraints embed.

    Raises
    ------
    UnsafeExpressionError
        Naming ``what``, the expression and the offending construct.

    Examples
    --------
    With a SparkSession ``spark``:

    >>> from pyspark.sql import types as T
    >>> schema = T.StructType([T.StructField("a", T.LongType())])
    >>> validate_expression(spark, "a > 1", schema)  # doctest: +SKIP
    '(a > 1)'
    """
    check = _ExpressionCheck(spark, expr, schema, what)
    check.check_text()
    tree = check.parse()
    for node in _walk(tree):
        check.check_node(node)
    check.size(tree)
    rendered = str(tree.sql())
    check.check_type()
    return rendered
