"""One pipeline run per data root: a lock file with a lease.

``lakehouse run`` takes the lock before any job starts and releases it at the end. The lock
is a small JSON file, ``<data_root>/_run.lock``, that an operator can read and remove:

    {"batch_id": "...", "owner": "host:pid", "acquired_at": 1733480000.0,
     "expires_at": 1733480600.0}

While the run is alive a background thread renews the lease (every third of it). A second
run finds the lock and is refused with an error naming the running batch, its owner and
when the lease expires. A run killed without releasing leaves a lock that expires: the next
run after ``expires_at`` breaks it (and logs that it did). ``lakehouse unlock`` removes a
lock by hand.

Creating the file is atomic on local disk (``O_CREAT | O_EXCL``) and on HDFS (``create``
without overwrite). Object stores need a conditional put for that guarantee, which this
module does not claim for ``s3a://`` data roots.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.spark.fs import create_new, delete_path, read_text, write_text

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config import Settings

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "lock_path", "read_lock"]

log = logging.getLogger(__name__)

LOCK_FILE = "_run.lock"


class RunLockedError(LakehouseError, RuntimeError):
    """Another run holds the data root's lock."""


def lock_path(settings: Settings) -> str:
    """``<data_root>/_run.lock``."""
    root = settings.paths.data_root
    return f"{root.rstrip('/')}/{LOCK_FILE}" if "://" in root else settings._resolve(LOCK_FILE)


def read_lock(spark: SparkSession, path: str) -> dict[str, Any] | None:
    """The lock's content, None if there is no lock (or it is unreadable)."""
    text = read_text(spark, path)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _replace(spark: SparkSession, path: str, text: str) -> None:
    """Replace the file's content so a reader never sees it half written."""
    if "://" not in path or path.startswith("file:"):
        local = path.removeprefix("file:")
        tmp = f"{local}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, local)
    else:  # an object store's PUT replaces an object whole
        write_text(spark, path, text)


@dataclass
class RunLock:
    """The data root's run lock, held by one run (use as a context manager)."""

    spark: SparkSession
    path: str
    batch_id: str
    lease_s: float = 600.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _acquired_at: float = field(default=0.0, repr=False)

    def _content(self, acquired_at: float) -> str:
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "owner": self.owner,
                "acquired_at": acquired_at,
                "expires_at": time.time() + self.lease_s,
            }
        )

    def acquire(self) -> RunLock:
        """Take the lock, breaking an expired one.

        Raises
        ------
        RunLockedError
            If another run holds a lease that has not expired.
        """
        now = time.time()
        for _ in range(2):
            if create_new(self.spark, self.path, self._content(now)):
                self._acquired_at = now
                self._thread = threading.Thread(target=self._renew, daemon=True)
                self._thread.start()
                return self
            held = read_lock(self.spark, self.path) or {}
            expires = float(held.get("expires_at", 0))
            if expires > time.time():
                raise RunLockedError(
                    f"{self.path}: the data root is locked by run {held.get('batch_id')!r} "
                    f"({held.get('owner')}) until "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(expires))}. "
                    "Wait for it to finish; if that run is dead, `lakehouse unlock` removes "
                    "the lock (or it expires by itself)."
                )
            log.warning(
                "%s: breaking the expired lock of run %r (%s)",
                self.path,
                held.get("batch_id"),
                held.get("owner"),
            )
            delete_path(self.spark, self.path)
        raise RunLockedError(
            f"{self.path}: another run took the lock while an expired one was broken"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            held = read_lock(self.spark, self.path) or {}
            if held.get("batch_id") != self.batch_id or held.get("owner") != self.owner:
                log.error("%s: the run lock is no longer ours (%s)", self.path, held)
                return
            _replace(self.spark, self.path, self._content(self._acquired_at))

    def release(self) -> None:
        """Stop renewing and remove the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        held = read_lock(self.spark, self.path) or {}
        if held.get("batch_id") == self.batch_id and held.get("owner") == self.owner:
            delete_path(self.spark, self.path)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
