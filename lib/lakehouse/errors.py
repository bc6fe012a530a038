"""The root of every error this library raises.

Each project error subclasses :class:`LakehouseError` *and* the built-in that fits it
(``ValueError`` for bad input or configuration, ``RuntimeError`` for a failed run,
``TimeoutError`` for waits), so callers can catch either.

Examples
--------
>>> from lakehouse.config import ConfigError
>>> issubclass(ConfigError, LakehouseError) and issubclass(ConfigError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["LakehouseError"]


class LakehouseError(Exception):
    """Base class of every error raised by the ``lakehouse`` library."""
