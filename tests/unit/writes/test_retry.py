"""Bounded retry on Delta commit conflicts only (lakehouse.writes.retry)."""

from __future__ import annotations

import random

import pytest
from delta.exceptions import ConcurrentAppendException, MetadataChangedException

from lakehouse.errors import LakehouseError
from lakehouse.writes.retry import RetryExhaustedError, RetryPolicy, is_conflict, retry_on_conflict


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts, base_delay_s=1.0, max_delay_s=3.0, sleep=sleeps.append,
        rng=random.Random(7),
    )  # fmt: skip


class _Flaky:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "committed"


def test_conflicts_are_retried_with_bounded_jittered_backoff() -> None:
    sleeps: list[float] = []
    op = _Flaky([ConcurrentAppendException("files were added"), MetadataChangedException("m")])
    assert retry_on_conflict(op, policy=_policy(sleeps)) == "committed"
    assert op.calls == 3
    assert len(sleeps) == 2
    # full jitter: each wait lies in [0, min(max, base * 2**n)]
    assert 0.0 <= sleeps[0] <= 1.0
    assert 0.0 <= sleeps[1] <= 2.0


def test_other_errors_fail_fast_without_retry() -> None:
    sleeps: list[float] = []
    op = _Flaky([ValueError("bad query")])
    with pytest.raises(ValueError, match=r"^bad query$"):
        retry_on_conflict(op, policy=_policy(sleeps))
    assert op.calls == 1
    assert sleeps == []


def test_gives_up_after_the_attempt_budget() -> None:
    sleeps: list[float] = []
    op = _Flaky([ConcurrentAppendException("conflict") for _ in range(5)])
    with pytest.raises(RetryExhaustedError) as info:
        retry_on_conflict(op, policy=_policy(sleeps, attempts=3), describe="merge orders")
    assert str(info.value) == (
        "merge orders: gave up after 3 attempts, each hit a Delta commit conflict; "
        "last: ConcurrentAppendException: conflict"
    )
    assert isinstance(info.value.__cause__, ConcurrentAppendException)
    assert op.calls == 3
    assert len(sleeps) == 2


def test_delay_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=1.0, max_delay_s=3.0, rng=random.Random(1))
    assert max(policy.delay(n) for n in range(10) for _ in range(20)) <= 3.0


def test_is_conflict_recognises_jvm_class_names_and_error_conditions() -> None:
    class FakeJava:
        def getClass(self) -> FakeJava:
            return self

        def getSimpleName(self) -> str:
            return "ConcurrentDeleteReadException"

    class Wrapped(Exception):
        java_exception = FakeJava()

    class WithCondition(Exception):
        def getCondition(self) -> str:
            return "DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT"

    assert is_conflict(Wrapped())
    assert is_conflict(WithCondition())
    assert not is_conflict(RuntimeError("DELTA_CONCURRENT_APPEND in text only"))


def test_is_conflict_reads_spark_3_5_error_classes_and_the_jvm_condition() -> None:
    class Spark35(Exception):
        def getErrorClass(self) -> str:
            return "DELTA_CONCURRENT_WRITE"

    class JavaWithCondition:
        def getClass(self) -> JavaWithCondition:
            raise RuntimeError("gateway closed")

        def getCondition(self) -> str:
            return "DELTA_METADATA_CHANGED"

    class Wrapped(Exception):
        java_exception = JavaWithCondition()

    class OtherCondition(Exception):
        def getCondition(self) -> str:
            return "DELTA_MERGE_UNRESOLVED_EXPRESSION"

    assert is_conflict(Spark35())
    assert is_conflict(Wrapped())
    assert not is_conflict(OtherCondition())


def test_exhaustion_is_a_project_runtime_error() -> None:
    assert issubclass(RetryExhaustedError, LakehouseError)
    assert issubclass(RetryExhaustedError, RuntimeError)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match=r"^attempts must be >= 1; found 0$"):
        RetryPolicy(attempts=0)
