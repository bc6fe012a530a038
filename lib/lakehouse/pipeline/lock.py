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
without overwrite). On S3 (``s3a://`` and ``s3://`` data roots) the lock is an object
written with S3's conditional requests through boto3, safe across hosts: it is created
with ``If-None-Match: *`` (only one creator succeeds), and renewed or taken over from an
expired run with ``If-Match: <ETag>`` (only the writer that read the current version
succeeds), so two runs can never both hold it. Those calls use boto3's own credentials
(as on EMR and with IRSA) and the S3 API Spark's S3A connector is set to
(``fs.s3a.endpoint``, path-style access, region: ``spark.s3a`` in the configuration),
else boto3's own (``AWS_ENDPOINT_URL``, the region of the environment).
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

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "lock_path", "read_lock", "remove_lock"]

log = logging.getLogger(__name__)

LOCK_FILE = "_run.lock"


class RunLockedError(LakehouseError, RuntimeError):
    """Another run holds the data root's lock."""


def lock_path(settings: Settings) -> str:
    """``<data_root>/_run.lock``."""
    root = settings.paths.data_root
    return f"{root.rstrip('/')}/{LOCK_FILE}" if "://" in root else settings._resolve(LOCK_FILE)


def _parse(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_lock(spark: SparkSession, path: str) -> dict[str, Any] | None:
    """The lock's content, None if there is no lock (or it is unreadable)."""
    return _store(spark, path).read()[0]


def remove_lock(spark: SparkSession, path: str) -> None:
    """Remove the lock at ``path`` whoever holds it (``lakehouse unlock``)."""
    _store(spark, path).delete()


def _is_s3(path: str) -> bool:
    return path.startswith(("s3a://", "s3://"))


class _FileLock:
    """The lock as a file through Hadoop's FileSystem (local disk, HDFS)."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark, self.path = spark, path

    def create(self, text: str) -> str | None:
        """Create the lock if there is none; a version token (here "") or None."""
        return "" if create_new(self.spark, self.path, text) else None

    def read(self) -> tuple[dict[str, Any] | None, str]:
        return _parse(read_text(self.spark, self.path)), ""

    def replace(self, text: str, token: str) -> str | None:
        """Write ``text`` over the lock (the caller checked it is the holder's)."""
        _replace(self.spark, self.path, text)
        return token

    def take_over(self, text: str, token: str) -> str | None:
        """Replace an expired lock: delete, then create (one of two breakers wins)."""
        delete_path(self.spark, self.path)
        return self.create(text)

    def delete(self) -> None:
        delete_path(self.spark, self.path)


class _S3Lock:
    """The lock as an S3 object written with conditional requests (boto3)."""

    _CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def __init__(self, path: str, client: Any = None) -> None:
        bucket, _, key = path.split("://", 1)[1].partition("/")
        self.bucket, self.key = bucket, key
        if client is None:
            import boto3  # only S3 data roots need it

            client = boto3.client("s3")
        self.client = client

    def _put(self, text: str, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=text.encode("utf-8"), **condition
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in self._CONFLICT:
                return None
            raise
        return str(response["ETag"])

    def create(self, text: str) -> str | None:
        return self._put(text, IfNoneMatch="*")

    def read(self) -> tuple[dict[str, Any] | None, str]:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, ""
            raise
        return _parse(obj["Body"].read().decode("utf-8")), str(obj["ETag"])

    def replace(self, text: str, token: str) -> str | None:
        return self._put(text, IfMatch=token)

    def take_over(self, text: str, token: str) -> str | None:
        return self._put(text, IfMatch=token)

    def delete(self) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key)


def _s3_client(spark: SparkSession) -> Any:
    """A boto3 S3 client for the S3 API the session's S3A connector uses."""
    import boto3  # only S3 data roots need it
    from botocore.config import Config

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    endpoint = str(hadoop.get("fs.s3a.endpoint") or "")
    path_style = str(hadoop.get("fs.s3a.path.style.access") or "").lower() == "true"
    region = str(hadoop.get("fs.s3a.endpoint.region") or "")
    kwargs: dict[str, Any] = {}
    if endpoint.startswith(("http://", "https://")):
        kwargs["endpoint_url"] = endpoint
    if region:
        kwargs["region_name"] = region
    if path_style:
        kwargs["config"] = Config(s3={"addressing_style": "path"})
    return boto3.client("s3", **kwargs)


def _store(spark: SparkSession, path: str) -> _FileLock | _S3Lock:
    return _S3Lock(path, _s3_client(spark)) if _is_s3(path) else _FileLock(spark, path)


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
    #: The version of the lock this run last wrote (an S3 ETag; "" for a file).
    _token: str = field(default="", repr=False)
    _lock: _FileLock | _S3Lock | None = field(default=None, repr=False)

    @property
    def store(self) -> _FileLock | _S3Lock:
        if self._lock is None:
            self._lock = _store(self.spark, self.path)
        return self._lock

    def _ours(self, held: dict[str, Any] | None) -> bool:
        held = held or {}
        return held.get("batch_id") == self.batch_id and held.get("owner") == self.owner

    def _content(self, acquired_at: float) -> str:
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "owner": self.owner,
                "acquired_at": acquired_at,
                "expires_at": time.time() + self.lease_s,
            }
        )

    def _create(self, now: float) -> tuple[str | None, dict[str, Any] | None, str]:
        """Create the lock: ``(token, None, "")``, or ``(None, content, version)`` of the
        lock that is there."""
        for _ in range(2):
            token = self.store.create(self._content(now))
            if token is not None:
                return token, None, ""
            held, current = self.store.read()
            if held is not None:
                return None, held, current
            # S3 answers simultaneous creates with 409 ConditionalRequestConflict, to all
            # of them: no lock came of it, so create once more
        return None, None, ""

    def acquire(self) -> RunLock:
        """Take the lock, breaking an expired one.

        Raises
        ------
        RunLockedError
            If another run holds a lease that has not expired.
        """
        now = time.time()
        token, held, current = self._create(now)
        if token is None:
            held = held or {}
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
            token = self.store.take_over(self._content(now), current)
            if token is None:
                raise RunLockedError(
                    f"{self.path}: another run took the lock while an expired one was broken"
                )
        self._acquired_at, self._token = now, token
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            held, _ = self.store.read()
            token = None
            if self._ours(held):  # on S3 the write also fails if the lock changed since
                token = self.store.replace(self._content(self._acquired_at), self._token)
            if token is None:
                log.error("%s: the run lock is no longer ours (%s)", self.path, held)
                return
            self._token = token

    def release(self) -> None:
        """Stop renewing and remove the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._ours(self.store.read()[0]):
            self.store.delete()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
