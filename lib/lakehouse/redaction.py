"""Keep secrets out of logs, run reports and printed commands: the suite's one redaction.

Spark redacts configuration values whose *key* matches ``spark.redaction.regex`` (set to
:data:`lakehouse.spark.session.REDACTION_REGEX` by the session builder and by every
submission) in its UI, event log and logs. This module applies the same rule to what the
suite prints or saves itself, and also hides credentials written into URLs
(``https://user:password@host/...``).

Examples
--------
>>> redact_value("spark.hadoop.fs.s3a.secret.key", "abc")
'*********(redacted)'
>>> redact_value("spark.archives", "s3://user:pw@host/env.tar.gz#environment")
's3://*********(redacted)@host/env.tar.gz#environment'
>>> redact_mapping({"spark.hadoop.fs.s3a.secret.key": "abc", "spark.master": "local[2]"})
{'spark.hadoop.fs.s3a.secret.key': '*********(redacted)', 'spark.master': 'local[2]'}
>>> redact_argv(["--conf", "spark.hadoop.fs.s3a.access.key=AKIA123", "--conf", "a=b"])
['--conf', 'spark.hadoop.fs.s3a.access.key=*********(redacted)', '--conf', 'a=b']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lakehouse.spark.session import REDACTION_REGEX

__all__ = ["REDACTED", "find_leaks", "redact_argv", "redact_mapping", "redact_value"]

#: The replacement text Spark itself uses.
REDACTED = "*********(redacted)"
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_value(key: str, value: str, *, pattern: str = REDACTION_REGEX) -> str:
    """``value`` with secrets hidden: all of it for a secret-looking ``key``, else URL credentials."""
    if key and re.search(pattern, key):
        return REDACTED
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)


def redact_argv(argv: Sequence[str], *, pattern: str = REDACTION_REGEX) -> list[str]:
    """A copy of a command line with secrets hidden.

    The value of a ``key=value`` argument (``--conf k=v``, ``--password=x``, environment
    ``K=V``) goes through :func:`redact_value` with its key; URL credentials are hidden
    anywhere.
    """
    out: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep:
            key = redact_value("", key, pattern=pattern)
            out.append(f"{key}={redact_value(key, value, pattern=pattern)}")
        else:
            out.append(redact_value("", arg, pattern=pattern))
    return out


def redact_mapping(values: Mapping[str, Any], *, pattern: str = REDACTION_REGEX) -> dict[str, Any]:
    """A copy of ``values`` (nested mappings too) with secrets hidden.

    A secret-looking key's value is replaced whatever its type; other string values have
    their URL credentials hidden.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out[key] = redact_mapping(value, pattern=pattern)
        elif re.search(pattern, str(key)):
            out[key] = REDACTED
        elif isinstance(value, str):
            out[key] = redact_value("", value, pattern=pattern)
        else:
            out[key] = value
    return out


def find_leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets (non-empty, at least 4 characters) that occur verbatim in ``text``."""
    return [s for s in secrets if len(s) >= 4 and s in text]
