"""The declared job graph: which jobs exist, and the order their tables make them run in.

Jobs are declared in configuration (``conf/jobs/<job>.yaml``: ``module``, ``inputs``,
``outputs``), never named by the library. A job runs after every job that writes one of
its inputs; jobs that become ready at the same time run in name order. An input
that no job writes must be declared ``external: true`` under ``tables:``.

Examples
--------
>>> from lakehouse.config import load_config
>>> registry = JobRegistry.from_settings(load_config("local"))
>>> registry.order()
['bronze_ingest', 'silver_customers', 'silver_orders', 'gold_daily_sales', 'maintain']
>>> registry.order(["gold_daily_sales", "bronze_ingest"])
['bronze_ingest', 'gold_daily_sales']
>>> registry.downstream("silver_customers")
['silver_customers', 'gold_daily_sales', 'maintain']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from types import ModuleType

from lakehouse.config import JobSettings, Settings
from lakehouse.errors import LakehouseError

__all__ = ["JobGraphError", "JobRegistry", "UnknownJobError"]


class JobGraphError(LakehouseError, ValueError):
    """The declared jobs do not form a graph that can run: a cycle or a missing input."""


class UnknownJobError(LakehouseError, KeyError):
    """A job name that no configuration file declares."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class JobRegistry:
    """The declared jobs of one configuration and the dependencies between them."""

    jobs: Mapping[str, JobSettings]
    #: job -> the jobs that write one of its inputs.
    upstream: Mapping[str, frozenset[str]]

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRegistry:
        """Build and check the graph of ``settings.jobs``.

        Raises
        ------
        JobGraphError
            An input no job writes (and not ``external``), or a cycle; the message names
            the jobs and tables involved.
        """
        writers: dict[str, set[str]] = {}
        for name, job in settings.jobs.items():
            for table in job.outputs:
                writers.setdefault(table, set()).add(name)
        upstream: dict[str, frozenset[str]] = {}
        missing: list[str] = []
        for name, job in settings.jobs.items():
            deps: set[str] = set()
            for table in job.inputs:
                found = writers.get(table, set()) - {name}
                if not found and not settings.tables[table].external:
                    missing.append(
                        f"job {name} reads {table!r}, which no job writes (declare it under "
                        f"outputs of the job that writes it, or mark tables.{table}.external: "
                        f"true if it is written outside this pipeline)"
                    )
                deps |= found
            upstream[name] = frozenset(deps)
        if missing:
            raise JobGraphError("invalid job graph:\n  " + "\n  ".join(missing))
        registry = cls(jobs=dict(settings.jobs), upstream=upstream)
        registry.order()  # a cycle is an error now, not when a run reaches it
        return registry

    def __contains__(self, name: object) -> bool:
        return name in self.jobs

    def names(self) -> list[str]:
        """Every declared job, sorted by name."""
        return sorted(self.jobs)

    def require(self, name: str) -> JobSettings:
        """The declaration of ``name`` (:class:`UnknownJobError` lists the known jobs)."""
        if name not in self.jobs:
            raise UnknownJobError(f"unknown job {name!r}; declared jobs: {self.names()}")
        return self.jobs[name]

    def order(self, selected: Iterable[str] | None = None) -> list[str]:
        """``selected`` (default: every job) in an order that respects the dependencies."""
        chosen = set(self.jobs) if selected is None else {*selected}
        for name in sorted(chosen):
            self.require(name)
        sorter: TopologicalSorter[str] = TopologicalSorter()
        for name in sorted(chosen):
            sorter.add(name, *sorted(self.upstream[name] & chosen))
        try:
            sorter.prepare()
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise JobGraphError(
                f"the jobs' inputs and outputs form a cycle: {cycle}; a job cannot read a "
                f"table that a job downstream of it writes"
            ) from exc
        ordered: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            ordered.extend(ready)
            sorter.done(*ready)
        return ordered

    def downstream(self, name: str) -> list[str]:
        """``name`` and every job that depends on it, directly or not, in run order."""
        self.require(name)
        found = {name}
        changed = True
        while changed:
            changed = False
            for job, deps in self.upstream.items():
                if job not in found and deps & found:
                    found.add(job)
                    changed = True
        return self.order(found)

    def module(self, name: str) -> ModuleType:
        """The imported module of job ``name`` (its ``run(ctx)`` is called by the runner)."""
        return importlib.import_module(self.require(name).module)
