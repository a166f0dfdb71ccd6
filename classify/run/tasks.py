"""Many binary tasks in one experiment: one single-task benchmark per task, label-free work shared.

An experiment with ``tasks = [...]`` (or ``"all"``) is split into one single-task experiment per
task (:func:`task_experiment`): the same grid, stores and CV settings, with the task's labels
(:mod:`pipeline.labels.tasks`; rows whose label is missing for that task are left out of that
task only, listed in its data report) and the task's finding as the positive class. Each runs
through the unchanged single-task machinery (:func:`classify.run.benchmark.run_benchmark`),
so each task gets its own saved stratified, patient-grouped split plan (named after the task's
rule id) and its own cell keys (the rule id ``task:<task>|...`` enters every key); a re-run
reuses every stored cell of every task. Single-task experiments are not touched by any of this.

Shared across tasks (label-free): opening and verifying each store (the SHA-256 content
digest is recomputed on open) and reading its rows, once (:class:`SharedStore`). Not shared:
what is fitted inside the folds (PCA of ``concat``, scaler, sampler, classifier), because each
task has its own folds; sharing a reduction across tasks' folds would let a test row of one
task's fold shape the features of its training rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from classify.config.experiment import Experiment
from classify.results.types import BenchmarkResult
from classify.run.benchmark import load_benchmark, open_stores, run_benchmark
from pipeline.errors import ConfigError, ManifestError
from pipeline.helpers import did_you_mean

log = logging.getLogger(__name__)


class SharedStore:
    """A feature store opened once and read once, shared by the tasks of an experiment.

    Has the read API :func:`classify.run.feature_sets.build_feature_set` uses (``read``,
    ``ids``, ``failed``, ``provenance``, ``identity``, ``kind``, ...): every attribute but
    ``read`` is the wrapped store's; ``read(ids)`` serves rows from one in-memory copy of the
    whole matrix, loaded on first use.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.matrix_: np.ndarray | None = None
        self.row_: dict[str, int] = {}
        self.read_seconds_ = 0.0

    def __getattr__(self, name: str) -> Any:
        if name == "store":  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.store, name)

    def read(self, ids: Sequence[str] | None = None, layer: str | None = None) -> np.ndarray:
        if layer is not None:
            return self.store.read(ids, layer)
        if self.matrix_ is None:
            t0 = time.perf_counter()
            self.matrix_ = self.store.read()
            self.row_ = {str(s): i for i, s in enumerate(self.store.ids)}
            self.read_seconds_ = time.perf_counter() - t0
        if ids is None:
            return self.matrix_
        missing = [i for i in ids if i not in self.row_]
        if missing:  # the store's own error, naming the file and the fix
            return self.store.read(ids)
        return self.matrix_[np.fromiter((self.row_[i] for i in ids), dtype=np.int64,
                                        count=len(ids))]


@dataclass(frozen=True)
class TaskResult:
    """One task of a multi-task run: its benchmark and the seconds it took on its own."""

    task: str
    benchmark: BenchmarkResult
    seconds: float


@dataclass(frozen=True)
class TasksRun:
    """A multi-task experiment run (or load): one :class:`TaskResult` per task, in order.

    ``shared_seconds``: opening (and verifying) the stores and reading their rows, paid once
    for all tasks; ``wall_seconds``: the whole run.
    """

    experiment: str
    tasks: tuple[TaskResult, ...]
    shared_seconds: float
    wall_seconds: float
    metrics: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.task for t in self.tasks)

    def benchmark(self, task: str) -> BenchmarkResult:
        for t in self.tasks:
            if t.task == task:
                return t.benchmark
        raise ConfigError(f"task {task!r} is not a task of {self.experiment!r}; tasks: "
                          f"{', '.join(self.names)}.{did_you_mean(task, list(self.names))}")


def experiment_tasks(exp: Experiment) -> tuple[str, ...]:
    """The tasks of ``exp`` (``"all"`` resolved against its manifest's ``label:`` columns)."""
    if exp.tasks is None:
        raise ConfigError(f"{exp.source or 'experiment'} has no `tasks`; it is a single-task "
                          "experiment")
    if exp.tasks != "all":
        return tuple(exp.tasks)
    from pipeline.labels.tasks import resolve_tasks
    from pipeline.manifest import load_manifest

    if not Path(exp.manifest).is_file():
        raise ManifestError(f"manifest {exp.manifest} does not exist; build it with "
                            "`pipeline data` or set `manifest` in the experiment")
    return resolve_tasks("all", load_manifest(exp.manifest).frame, str(exp.manifest))


def task_experiment(exp: Experiment, task: str) -> Experiment:
    """The single-task experiment of ``task``: same grid and stores, the task's labels, the
    task's finding as positive class, named ``<experiment>-<task>``."""
    tasks = experiment_tasks(exp)
    if task not in tasks:
        raise ConfigError(f"{exp.source or 'experiment'}: task {task!r} is not one of its tasks "
                          f"({', '.join(tasks)}).{did_you_mean(task, list(tasks))}")
    return replace(exp, tasks=None, task=task, positive_label=task, name=f"{exp.name}-{task}")


def run_tasks(exp: Experiment, *, n_jobs: int | None = None, dry_run: bool = False,
              scheduler: Any = None, compute: bool = True,
              only: Sequence[str] | None = None) -> TasksRun:
    """Run (``compute``) or load every task of ``exp`` (``only``: these tasks).

    Each task is :func:`~classify.run.benchmark.run_benchmark` (or ``load_benchmark``) of its
    :func:`task_experiment`, reading the same :class:`SharedStore` s.
    """
    t_start = time.perf_counter()
    names = experiment_tasks(exp)
    if only is not None:
        names = tuple(task_experiment(exp, t).task for t in only)
    t0 = time.perf_counter()
    stores = [SharedStore(s) for s in open_stores(exp)]
    shared = time.perf_counter() - t0
    results = []
    for task in names:
        t0 = time.perf_counter()
        read_before = sum(s.read_seconds_ for s in stores)
        one = task_experiment(exp, task)
        log.info("task %s (%d of %d)", task, len(results) + 1, len(names))
        if compute:
            bench = run_benchmark(one, n_jobs=n_jobs, dry_run=dry_run, scheduler=scheduler,
                                  stores=stores)
        else:
            bench = load_benchmark(one, stores=stores)
        read = sum(s.read_seconds_ for s in stores) - read_before  # first task reads the stores
        shared += read
        results.append(TaskResult(task, bench, time.perf_counter() - t0 - read))
    return TasksRun(experiment=exp.name, tasks=tuple(results), shared_seconds=shared,
                    wall_seconds=time.perf_counter() - t_start, metrics=exp.metrics)
