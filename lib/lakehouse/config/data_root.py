"""The up-front check of the data root: one clear error before a run reads or writes.

Without it a mistyped data root gives an "ok" ingest of 0 rows, then ``PATH_NOT_FOUND``
in the next job, and the first write creates the mistyped folder; a data root that is a
file ends in ``NotADirectoryError`` while the run report is written.

The rule (local paths only; ``s3a://`` and other object-store URIs are not checked, since
"folders" there exist only as key prefixes):

* the data root, if it exists, must be a directory;
* the landing folder must exist and be a directory (``require_landing``, the default:
  a run ingests from it). A data root that does not exist has no landing folder either,
  so a mistyped root is refused with a message that names both and says how to create
  them. A root without landing files is never an "empty but ok" run.

Commands that only read or repair tables (rollback, check) pass ``require_landing=False``:
they need the data root to be a directory if it exists, nothing more.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from lakehouse.config.loader import ConfigError
from lakehouse.config.models import Settings

__all__ = ["DataRootError", "check_data_root"]


class DataRootError(ConfigError):
    """The data root (or its landing folder) is missing or is not a directory."""


def _local(location: str) -> Path | None:
    """The local path of ``location`` (a path or a ``file:`` URI), or None for other URIs."""
    if "://" not in location and not location.startswith("file:"):
        return Path(location)
    parsed = urlparse(location)
    return Path(parsed.path) if parsed.scheme == "file" else None


def check_data_root(settings: Settings, *, require_landing: bool = True) -> None:
    """Refuse a data root that is a file, and (by default) a missing landing folder.

    Parameters
    ----------
    settings:
        The loaded configuration; ``paths.data_root`` and ``paths.landing`` are checked.
    require_landing:
        Also require the landing folder (commands that ingest); False for commands that
        only read or repair tables.

    Raises
    ------
    DataRootError
        Naming the path, what is wrong and how to fix it.

    Examples
    --------
    >>> from lakehouse.config import load_config
    >>> settings = load_config("local", overrides={"paths": {"data_root": "/no/such/root"}})
    >>> check_data_root(settings)
    Traceback (most recent call last):
    ...
    lakehouse.config.data_root.DataRootError: data root /no/such/root does not exist (paths.data_root; is it mistyped?); create it with its landing folder /no/such/root/landing, or generate sample data into it: python -m harness generate
    >>> check_data_root(settings, require_landing=False)
    """
    root = _local(settings.paths.data_root)
    if root is None:
        return
    if root.exists() and not root.is_dir():
        raise DataRootError(
            f"data root {root} is not a directory (paths.data_root); point "
            "LAKEHOUSE_DATA_ROOT (or paths.data_root) at a folder"
        )
    if not require_landing:
        return
    landing = _local(settings.landing_path)
    if landing is None:
        return
    if not root.exists():
        raise DataRootError(
            f"data root {root} does not exist (paths.data_root; is it mistyped?); create it "
            f"with its landing folder {landing}, or generate sample data into it: "
            "python -m harness generate"
        )
    if not landing.is_dir():
        state = "is not a directory" if landing.exists() else "does not exist"
        raise DataRootError(
            f"landing folder {landing} {state} (paths.landing under data root {root}); "
            "create it and put the landing files there, or generate sample data: "
            "python -m harness generate"
        )
