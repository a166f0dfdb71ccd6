"""The cross-task answer of a multi-task experiment: per task and feature set, the best cell's
headline metric with its CI, and per task whether fusion beats the best single modality.

For each task (:class:`classify.run.tasks.TasksRun`):

* one :class:`TaskRow` per feature set: the best cell of that feature set on ``metric`` (mean
  over the task's splits, t-interval as everywhere in the report, clipped to the metric's
  range), with the task's n, positives and prevalence;
* one :class:`TaskVerdict`: the best cell of the fused feature sets (more than one modality)
  against the best cell of the single-modality feature sets, paired on the task's own saved
  splits, with the Nadeau-Bengio corrected resampled t-test
  (:func:`classify.analysis.stats.nadeau_bengio`, valid for repeated K-fold, with the task's
  test/train ratio). The p-values of all tasks form one family, adjusted with Holm
  (:func:`classify.analysis.stats.holm`): "better" / "worse" when the adjusted p is below
  ``alpha``, else "no difference shown".

Choosing the best cell on the same splits it is tested on favours the chosen cells a little
(both sides are chosen that way, so the bias mostly cancels); the verdict says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from classify.analysis.cell_summary import by_feature_set, metric_bounds, summarise_values
from classify.analysis.stats import holm, nadeau_bengio
from classify.results.metrics import METRICS, higher_is_better
from classify.results.types import BenchmarkResult, CellResult
from classify.run.tasks import TasksRun
from pipeline.errors import ConfigError
from pipeline.helpers import did_you_mean

#: Columns of ``tables/tasks.csv`` (one row per task x feature set).
TASK_COLUMNS = ("task", "n", "positives", "prevalence", "feature_set", "best_cell", "metric",
                "mean", "ci_low", "ci_high", "verdict_vs_single")
#: Columns of ``tables/tasks_verdicts.csv`` (one row per task).
VERDICT_COLUMNS = ("task", "prevalence", "fused_cell", "fused_mean", "single_cell",
                   "single_mean", "difference", "t", "df", "p", "p_holm", "verdict")
BETTER, WORSE, UNDECIDED = "better", "worse", "no difference shown"


@dataclass(frozen=True)
class TaskRow:
    """One task x feature set: the best cell of the feature set on the metric."""

    task: str
    n: int
    positives: int
    prevalence: float
    feature_set: str
    modalities: tuple[str, ...]
    best_cell: str
    metric: str
    mean: float
    ci_low: float
    ci_high: float
    verdict_vs_single: str  # fused sets: the task's verdict; single: "best single" or ""


@dataclass(frozen=True)
class TaskVerdict:
    """Fusion vs the best single modality on one task (``p_holm``: Holm over the tasks)."""

    task: str
    prevalence: float
    fused_cell: str
    fused_mean: float
    single_cell: str
    single_mean: float
    difference: float
    t: float
    df: int
    p: float
    p_holm: float
    verdict: str


@dataclass(frozen=True)
class TasksAnswer:
    """Everything the cross-task section shows (renderers take only this)."""

    experiment: str
    metric: str
    alpha: float
    rows: tuple[TaskRow, ...]
    verdicts: tuple[TaskVerdict, ...]
    notes: tuple[str, ...] = ()

    def table(self) -> pd.DataFrame:
        """``tables/tasks.csv``: columns :data:`TASK_COLUMNS`."""
        return pd.DataFrame([{c: getattr(r, c) for c in TASK_COLUMNS} for r in self.rows],
                            columns=list(TASK_COLUMNS))

    def verdict_table(self) -> pd.DataFrame:
        """``tables/tasks_verdicts.csv``: columns :data:`VERDICT_COLUMNS`."""
        return pd.DataFrame([{c: getattr(v, c) for c in VERDICT_COLUMNS} for v in self.verdicts],
                            columns=list(VERDICT_COLUMNS))

    def heat(self) -> pd.DataFrame:
        """Task x feature set matrix of the best cell's mean (tasks in run order)."""
        t = self.table()
        return t.pivot(index="task", columns="feature_set", values="mean").reindex(
            index=list(dict.fromkeys(t["task"])), columns=list(dict.fromkeys(t["feature_set"])))


def _best(cells: Sequence[CellResult], metric: str) -> CellResult:
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(cells, key=lambda c: (np.nan_to_num(sign * c.summary(metric)[0], nan=-np.inf),
                                     c.label))


def _positives(bench: BenchmarkResult) -> int:
    pos = bench.data.positive_label
    return int(bench.data.class_counts.get(pos, 0)) if pos is not None else 0


def _verdict(task: str, bench: BenchmarkResult, metric: str, prevalence: float
             ) -> TaskVerdict | None:
    fused = [c for c in bench.cells if len(set(c.spec.modalities)) > 1]
    single = [c for c in bench.cells if len(set(c.spec.modalities)) == 1]
    if not fused or not single or bench.split is None:
        return None
    f, s = _best(fused, metric), _best(single, metric)
    a, b = f.metric_values(metric), s.metric_values(metric)
    both = a.index.intersection(b.index)
    a, b = a.loc[both].to_numpy(float), b.loc[both].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    t, df, p = nadeau_bengio(a[ok], b[ok], bench.split.test_train_ratio)
    diff = float(np.mean(a[ok] - b[ok])) if ok.any() else float("nan")
    if not higher_is_better(metric):
        t, diff = -t, -diff
    return TaskVerdict(task, prevalence, f.label, f.summary(metric)[0], s.label,
                       s.summary(metric)[0], diff, t, df, p, float("nan"), UNDECIDED)


def analyse_tasks(run: TasksRun, metric: str = "roc_auc", alpha: float = 0.05) -> TasksAnswer:
    """The cross-task answer of ``run`` on ``metric`` (see the module docstring)."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}.{did_you_mean(metric, list(METRICS))} "
                          f"Valid names: {', '.join(METRICS)}")
    verdicts: list[TaskVerdict] = []
    per_task: list[tuple[str, BenchmarkResult, int, float]] = []
    notes: list[str] = []
    for tr in run.tasks:
        bench = tr.benchmark
        n = int(bench.data.n_samples)
        pos = _positives(bench)
        prevalence = pos / n if n else float("nan")
        per_task.append((tr.task, bench, pos, prevalence))
        v = _verdict(tr.task, bench, metric, prevalence)
        if v is None:
            notes.append(f"task {tr.task}: no fused and single-modality cells to compare")
        else:
            verdicts.append(v)
    adjusted = holm([v.p for v in verdicts])
    done: dict[str, TaskVerdict] = {}
    for v, ph in zip(verdicts, adjusted, strict=True):
        word = UNDECIDED
        if np.isfinite(ph) and ph < alpha:
            word = BETTER if v.difference > 0 else WORSE
        done[v.task] = TaskVerdict(**{**v.__dict__, "p_holm": float(ph), "verdict": word})
    rows: list[TaskRow] = []
    for task, bench, pos, prevalence in per_task:
        bounds = metric_bounds(len(bench.data.classes)).get(metric, (0.0, 1.0))
        v = done.get(task)
        for fs, cells in by_feature_set(bench.cells).items():
            best = _best(cells, metric)
            mean, _, lo, hi, _ = summarise_values(best.metric_values(metric).to_numpy(float),
                                                  bounds)
            fused = len(set(best.spec.modalities)) > 1
            if v is None:
                word = ""
            elif fused:
                word = v.verdict if best.label == v.fused_cell else ""
            else:
                word = "best single" if best.label == v.single_cell else ""
            rows.append(TaskRow(task, int(bench.data.n_samples), pos, prevalence, fs,
                                tuple(best.spec.modalities), best.label, metric, mean, lo, hi,
                                word))
    notes.append(
        f"Verdict: best fused cell vs best single-modality cell of each task, paired on the "
        f"task's own splits, Nadeau-Bengio corrected t-test, Holm over the {len(done)} tasks "
        f"at alpha {alpha:g}. Both cells are chosen on the splits they are tested on.")
    return TasksAnswer(run.experiment, metric, alpha, tuple(rows),
                       tuple(done[v.task] for v in verdicts), tuple(notes))
