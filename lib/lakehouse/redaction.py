"""Keep secrets out of logs, run reports and printed commands.

Spark redacts configuration values whose *key* matches ``spark.redaction.regex`` (set to
:data:`lakehouse.spark.session.REDACTION_REGEX` by the session builder) in its UI, event log and
logs. This module applies the same rule to what the suite prints or saves itself.

Examples
--------
>>> redact_mapping({"spark.hadoop.fs.s3a.secret.key": "abc", "spark.master": "local[2]"})
{'spark.hadoop.fs.s3a.secret.key': '*********(redacted)', 'spark.master': 'local[2]'}
>>> redact_args(["--conf", "spark.hadoop.fs.s3a.access.key=AKIA123", "--conf", "a=b"])
['--conf', 'spark.hadoop.fs.s3a.access.key=*********(redacted)', '--conf', 'a=b']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lakehouse.spark.session import REDACTION_REGEX

__all__ = ["REDACTED", "find_leaks", "redact_args", "redact_mapping"]

#: The replacement text Spark itself uses.
REDACTED = "*********(redacted)"
_KEY = re.compile(REDACTION_REGEX)


def redact_mapping(values: Mapping[str, Any], *, pattern: str = REDACTION_REGEX) -> dict[str, Any]:
    """A copy of ``values`` (nested mappings too) with secret-looking keys' values replaced."""
    key_re = re.compile(pattern)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key_re.search(str(key)) and not isinstance(value, Mapping):
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact_mapping(value, pattern=pattern)
        else:
            out[key] = value
    return out


def redact_args(args: Sequence[str], *, pattern: str = REDACTION_REGEX) -> list[str]:
    """Redact ``key=value`` arguments (``--conf k=v``, env ``K=V``) whose key looks secret."""
    key_re = re.compile(pattern)
    out = []
    for arg in args:
        key, sep, _value = arg.partition("=")
        out.append(f"{key}={REDACTED}" if sep and key_re.search(key) else arg)
    return out


def find_leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets (non-empty, at least 4 characters) that occur verbatim in ``text``."""
    return [s for s in secrets if len(s) >= 4 and s in text]
