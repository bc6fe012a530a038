"""Files through Hadoop's FileSystem, so local paths, ``s3a://`` and ``hdfs://`` behave alike.

Everything here goes through the session's JVM (``org.apache.hadoop.fs``): the same
connector, credentials and configuration Spark itself uses for the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "FileInfo",
    "create_new",
    "delete_path",
    "glob_files",
    "list_dirs",
    "path_exists",
    "read_head",
    "read_text",
    "write_text",
]


class _NoJvmError(LakehouseError, RuntimeError):
    """The session has no JVM gateway (it was stopped)."""


@dataclass(frozen=True)
class FileInfo:
    """One file: its URI, size in bytes and modification time (milliseconds since the epoch)."""

    path: str
    size: int
    modified_ms: int


def _jvm(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise _NoJvmError("the SparkSession has no JVM gateway (was it stopped?)")
    return jvm


def _fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = _jvm(spark)
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def glob_files(spark: SparkSession, pattern: str) -> list[FileInfo]:
    """Files (not directories) matching the Hadoop glob ``pattern``, sorted by path."""
    fs, hpath = _fs(spark, pattern)
    statuses = fs.globStatus(hpath) or []
    out = [
        FileInfo(
            path=str(s.getPath().toUri().toString()),
            size=int(s.getLen()),
            modified_ms=int(s.getModificationTime()),
        )
        for s in statuses
        if s.isFile()
    ]
    return sorted(out, key=lambda f: f.path)


def list_dirs(spark: SparkSession, path: str) -> dict[str, str]:
    """The directories directly under ``path``: name -> URI (empty if ``path`` is missing)."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return {}
    return {
        str(s.getPath().getName()): str(s.getPath().toUri().toString())
        for s in fs.listStatus(hpath)
        if s.isDirectory()
    }


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` (a file or a directory) exists."""
    fs, hpath = _fs(spark, path)
    return bool(fs.exists(hpath))


def delete_path(spark: SparkSession, path: str) -> bool:
    """Delete ``path`` recursively; False if there was nothing there."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return False
    return bool(fs.delete(hpath, True))


def read_text(spark: SparkSession, path: str, *, limit: int = 1 << 20) -> str | None:
    """The first ``limit`` bytes of the file at ``path`` decoded as UTF-8, None if missing."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return None
    jvm = _jvm(spark)
    stream = fs.open(hpath)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        chunks: list[str] = []
        size = 0
        while size < limit:
            line = reader.readLine()
            if line is None:
                break
            chunks.append(line)
            size += len(line) + 1
        return "\n".join(chunks)
    finally:
        stream.close()


def read_head(spark: SparkSession, path: str, n: int = 512) -> bytes:
    """The first ``n`` bytes of the file at ``path`` (fewer if it is shorter)."""
    fs, hpath = _fs(spark, path)
    stream = fs.open(hpath)
    try:
        return bytes(stream.readNBytes(n))
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to the file at ``path``, replacing it; parents are created."""
    fs, hpath = _fs(spark, path)
    stream = fs.create(hpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def create_new(spark: SparkSession, path: str, text: str) -> bool:
    """Create the file ``path`` holding ``text`` only if nothing is there; False if a file
    is. Atomic on local disk (``O_CREAT | O_EXCL``) and on HDFS (``create`` without
    overwrite); object stores need a conditional put for the same guarantee."""
    if "://" not in path or path.startswith("file:"):
        local = path.removeprefix("file:")
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return True
    from py4j.protocol import Py4JJavaError

    fs, hpath = _fs(spark, path)
    try:
        stream = fs.create(hpath, False)
    except Py4JJavaError as exc:
        if "FileAlreadyExists" in str(exc.java_exception):
            return False
        raise
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return True
