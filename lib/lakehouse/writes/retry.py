"""Bounded retry with exponential backoff and jitter, for Delta commit conflicts only.

Delta uses optimistic concurrency: a writer whose commit conflicts with one that landed
first gets a concurrent-modification exception and has written nothing. Re-running the
*whole* operation (re-reading the table) is then safe for MERGE, OPTIMIZE, idempotent
appends and the like. Every other error fails fast: retrying a bad query or a missing
file only hides it.

Examples
--------
>>> policy = RetryPolicy(attempts=3, base_delay_s=0.0, max_delay_s=0.0)
>>> calls = []
>>> retry_on_conflict(lambda: calls.append(1) or "done", policy=policy)
'done'
>>> retry_on_conflict(lambda: 1 / 0, policy=policy)
Traceback (most recent call last):
...
ZeroDivisionError: division by zero
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lakehouse.errors import LakehouseError

__all__ = [
    "CONFLICT_CLASS_NAMES",
    "CONFLICT_CONDITION_PREFIXES",
    "RetryExhaustedError",
    "RetryPolicy",
    "is_conflict",
    "retry_on_conflict",
]

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Delta's commit-conflict exceptions (JVM simple class names); all mean "nothing written".
CONFLICT_CLASS_NAMES = frozenset(
    {
        "ConcurrentAppendException",
        "ConcurrentDeleteReadException",
        "ConcurrentDeleteDeleteException",
        "ConcurrentTransactionException",
        "ConcurrentWriteException",
        "MetadataChangedException",
        "ProtocolChangedException",
        "DeltaConcurrentModificationException",
    }
)
#: Delta 3+/4 error-condition prefixes of the same conflicts (``DELTA_CONCURRENT_APPEND``...).
CONFLICT_CONDITION_PREFIXES = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


class RetryExhaustedError(LakehouseError, RuntimeError):
    """Every attempt hit a Delta commit conflict (the last one is the ``__cause__``)."""


def _delta_conflict_types() -> tuple[type[BaseException], ...]:
    import delta.exceptions as dx  # importing it also makes PySpark raise these classes

    return (
        dx.DeltaConcurrentModificationException,
        dx.ConcurrentWriteException,
        dx.MetadataChangedException,
        dx.ProtocolChangedException,
        dx.ConcurrentAppendException,
        dx.ConcurrentDeleteReadException,
        dx.ConcurrentDeleteDeleteException,
        dx.ConcurrentTransactionException,
    )


def _call(obj: object, method: str) -> object:
    """``obj.method()``, or None when it has no such method or the call fails (a Py4J
    object answers every attribute, and the JVM then has no such method)."""
    accessor = getattr(obj, method, None)
    if not callable(accessor):
        return None
    try:
        return accessor()
    except Exception:  # noqa: BLE001 - a broken accessor just means "not a conflict"
        return None


def _names_a_conflict(obj: object) -> bool:
    """Whether the error condition of ``obj`` (Spark 4 ``getCondition``, Spark 3.5
    ``getErrorClass``) is one of Delta's commit conflicts."""
    for method in ("getCondition", "getErrorClass"):
        condition = _call(obj, method)
        if isinstance(condition, str):
            return condition.startswith(CONFLICT_CONDITION_PREFIXES)
    return False


def is_conflict(exc: BaseException) -> bool:
    """True for Delta's commit conflicts, and only those: the ``delta.exceptions`` classes,
    an exception or JVM exception (``Py4JJavaError.java_exception``) whose class is named
    in :data:`CONFLICT_CLASS_NAMES`, or whose error condition starts with one of
    :data:`CONFLICT_CONDITION_PREFIXES`. This is the project's one test for "conflict".

    Examples
    --------
    >>> is_conflict(RuntimeError("DELTA_CONCURRENT_APPEND in the text only"))
    False
    """
    if isinstance(exc, _delta_conflict_types()) or type(exc).__name__ in CONFLICT_CLASS_NAMES:
        return True
    if _names_a_conflict(exc):
        return True
    java = getattr(exc, "java_exception", None)
    if java is None:
        return False
    name = _call(_call(java, "getClass"), "getSimpleName")
    return str(name) in CONFLICT_CLASS_NAMES or _names_a_conflict(java)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` in total (>= 1), delays grow
    ``base_delay_s * 2**n`` capped at ``max_delay_s``, with full jitter (a uniform draw in
    ``[0, delay]``, so concurrent writers do not retry in lock step)."""

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1; found {self.attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError(
                f"delays must be >= 0; found base {self.base_delay_s}, max {self.max_delay_s}"
            )

    def delay(self, retry: int) -> float:
        """The jittered delay before retry number ``retry`` (0-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2**retry))
        return self.rng.uniform(0.0, cap)


def retry_on_conflict(
    operation: Callable[[], R],
    *,
    policy: RetryPolicy | None = None,
    describe: str = "operation",
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> R:
    """Run ``operation``; on a Delta commit conflict wait and run it again, up to the policy.

    ``operation`` must redo the whole read-modify-write (e.g. build and execute the MERGE
    inside it), never reuse a half-finished one. Non-conflict errors propagate at once.

    Raises
    ------
    RetryExhaustedError
        After ``policy.attempts`` conflicts, chained to the last one.
    """
    policy = policy or RetryPolicy()
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            if attempt + 1 >= policy.attempts:
                raise RetryExhaustedError(
                    f"{describe}: gave up after {policy.attempts} attempts, each hit a Delta "
                    f"commit conflict; last: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                ) from exc
            wait = policy.delay(attempt)
            log.warning(
                "%s: Delta commit conflict (%s), retry %d/%d in %.2fs",
                describe,
                type(exc).__name__,
                attempt + 1,
                policy.attempts - 1,
                wait,
            )
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            policy.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
