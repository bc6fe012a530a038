"""Drive a local Spark standalone cluster (``scripts/standalone-cluster.sh``) from Python.

Used by the cluster tests and ``benchmarks/bench_decommission.py``: start a master and
workers on 127.0.0.1, submit through ``spark-submit.sh standalone``, find which worker hosts
which executor from the logs, and interrupt a worker the way a spot notice does
(``SIGPWR``: graceful decommission) or the way a lost node does (``SIGKILL``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lakehouse.errors import LakehouseError

__all__ = ["ClusterError", "StandaloneCluster", "SubmittedJob"]

REPO = Path(__file__).resolve().parents[1]
_FINISHED = re.compile(r"Finished task \S+ in stage (\d+)\.\d+ .*\(executor (\d+)\)")
_GRANTED = re.compile(r"Granted executor ID \S+/(\d+) on hostPort (\S+) ")
_WORKER_START = re.compile(r"Starting Spark worker (\S+) with")


class ClusterError(LakehouseError, RuntimeError):
    """The cluster did not start, or a job did not behave as the caller required."""


@dataclass
class SubmittedJob:
    """A running ``spark-submit.sh`` process and its log files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    def __enter__(self) -> SubmittedJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> None:
        """Stop the driver if it is still running (never leave a JVM behind)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def driver_log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            self.process.wait()
            raise ClusterError(f"job did not finish within {timeout}s; see {self.stderr}") from exc

    def finished_tasks(self, stage: int | None = None) -> dict[str, int]:
        """Finished task count per executor id (optionally for one stage)."""
        counts: dict[str, int] = {}
        for st, executor in _FINISHED.findall(self.driver_log()):
            if stage is None or int(st) == stage:
                counts[executor] = counts.get(executor, 0) + 1
        return counts


class StandaloneCluster:
    """A master + workers on 127.0.0.1; a context manager that always stops them.

    Examples
    --------
    >>> with StandaloneCluster(tmp_dir, workers=2) as cluster:  # doctest: +SKIP
    ...     job = cluster.submit(["--app", "job.py", "--", "--out", "/tmp/t"], env={})
    ...     job.wait(600)
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1g",
        decommission: bool = True,
        python: str | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.decommission = decommission
        self.python = python or os.environ.get("LAKEHOUSE_PYTHON") or _default_python()
        self.url = ""

    def _script(self, *args: str) -> str:
        env = {**os.environ, "LAKEHOUSE_PYTHON": self.python}
        result = subprocess.run(
            [str(REPO / "scripts" / "standalone-cluster.sh"), *args, "--dir", str(self.dir)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"standalone-cluster.sh {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def start(self) -> str:
        args = ["start", "--workers", str(self.workers), "--cores", str(self.cores)]
        args += ["--memory", self.memory]
        if not self.decommission:
            args.append("--no-decommission")
        out = self._script(*args)
        self.url = out.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        self._script("stop")

    def __enter__(self) -> StandaloneCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def worker_pid(self, index: int) -> int:
        return int((self.dir / f"worker-{index}.pid").read_text().strip())

    def worker_log(self, index: int) -> str:
        return (self.dir / "logs" / f"worker-{index}.log").read_text(errors="replace")

    def worker_of_executor(self, job: SubmittedJob, executor: str) -> int:
        """Which worker (1-based) hosts ``executor`` of ``job``."""
        hosts = dict(_GRANTED.findall(job.driver_log()))
        if executor not in hosts:
            raise ClusterError(f"executor {executor} not granted in {job.stderr}")
        for index in range(1, self.workers + 1):
            match = _WORKER_START.search(self.worker_log(index))
            if match and match.group(1) == hosts[executor]:
                return index
        raise ClusterError(f"no worker at {hosts[executor]} hosts executor {executor}")

    def interrupt_worker(self, index: int, *, graceful: bool) -> None:
        """``SIGPWR`` (spot notice: graceful decommission) or ``SIGKILL`` (node lost)."""
        os.kill(self.worker_pid(index), signal.SIGPWR if graceful else signal.SIGKILL)

    def submit(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        log_dir: str | os.PathLike[str],
        name: str = "job",
    ) -> SubmittedJob:
        """Run ``spark-submit.sh standalone <args>`` against this cluster, in the background."""
        log = Path(log_dir)
        log.mkdir(parents=True, exist_ok=True)
        stdout, stderr = log / f"{name}.out", log / f"{name}.err"
        full_env = {
            **os.environ,
            "LAKEHOUSE_PYTHON": self.python,
            "LAKEHOUSE_SPARK_MASTER": self.url,
            **env,
        }
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [str(REPO / "spark-submit.sh"), "standalone", *args],
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=REPO,
            )
        return SubmittedJob(process=process, stdout=stdout, stderr=stderr)


def _default_python() -> str:
    import sys

    return sys.executable
