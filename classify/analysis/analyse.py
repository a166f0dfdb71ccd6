"""Everything a report shows about a benchmark, computed once into one frozen :class:`Analysis`.

:func:`analyse_benchmark` runs the paired comparisons, the modality ablation, the
metric summaries, the leakage summary and the warning collection; the report
package (:mod:`classify.report`) only renders the result. The modality-shuffle
test refits models, so it is never run here: pass its results in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd

from classify.analysis.ablation.modalities import ablation_table
from classify.analysis.answer import (
    Answer,
    PositiveClassSummary,
    answer_questions,
    positive_class_summary,
)
from classify.analysis.calibration import CalibrationSummary, summarise_calibration
from classify.analysis.cell_summary import (
    FeatureSetSummary,
    by_feature_set,
    resampling_summary,
    summarise_benchmark,
)
from classify.analysis.equivalence import Equivalence, equivalent_to_best
from classify.analysis.prevalence_sweep import PrevalenceSweep
from classify.analysis.run_warnings import ReportWarning, collect_warnings
from classify.analysis.stats import compare_cells
from classify.analysis.tuning_summary import TuningSummary, summarise_tuning
from classify.config.sections import DEFAULT_EQUIVALENCE, EquivalenceConfig
from classify.results.holdout import HoldoutEvaluation
from classify.results.metrics import HEADLINE, METRICS, higher_is_better
from classify.results.types import (
    AblationResult,
    BenchmarkResult,
    CellResult,
    ComparisonResult,
    ShuffleResult,
)
from classify.run.leakage import LeakageSummary, leakage_summary
from pipeline.errors import ConfigError, PipelineError
from pipeline.labels.audit import TermAudit

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Metrics of the ablation tables computed for a report.
ABLATION_METRICS = ("roc_auc", "f1_weighted", "balanced_accuracy", "accuracy")


@dataclass(frozen=True)
class ReportInputs:
    """Statistics and ablation computed for a report by :func:`build_report_inputs`."""

    comparisons: tuple[ComparisonResult, ...]
    ablation: AblationResult | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis:
    """A benchmark and everything derived from it for the report.

    Attributes:
        benchmark: the finished run.
        comparisons, ablation, shuffles: statistics and modality results shown.
        summaries: one metric summary per feature set (the classifier tables).
        leakage: text-only ceiling vs the best cell of each feature set.
        warnings: every warning, categorised and de-duplicated.
        primary: the metric of the headline comparison and figures.
        label_source: where the labels come from (a provenance value wins over the run's).
        resampling: mean training-fold class counts before/after the sampler per cell.
        best_by_feature_set: label of the best cell of each feature set on ``primary``.
        equivalence: the best cell over all cells on ``primary`` and the cells practically
            equivalent to it (None with fewer than 2 cells or splits).
        calibration: reliability, ECE, decision curve and operating point of the best cell
            of each feature set (binary tasks only).
        tuning: tuned cells against their default twins, chosen parameters per outer fold
            and tuning cost (None without tuned cells).
        prevalence, indication_audit, holdout: set by :func:`classify.report.inputs.add_context`.
    """

    benchmark: BenchmarkResult
    comparisons: tuple[ComparisonResult, ...]
    ablation: AblationResult | None
    shuffles: tuple[ShuffleResult, ...]
    summaries: tuple[FeatureSetSummary, ...]
    leakage: LeakageSummary
    warnings: tuple[ReportWarning, ...]
    primary: str
    label_source: str = ""
    resampling: pd.DataFrame = field(default_factory=pd.DataFrame, hash=False)
    best_by_feature_set: tuple[str, ...] = ()
    equivalence: Equivalence | None = None
    calibration: tuple[CalibrationSummary, ...] = ()
    tuning: TuningSummary | None = None
    #: the experiment's prevalence sweep (:mod:`classify.analysis.prevalence_sweep`), None without one
    prevalence: PrevalenceSweep | None = None
    #: label-term audit of the manifest's indications when a pre-read text store is used
    indication_audit: TermAudit | None = None
    #: the planned comparisons answering the experiment's questions (report and console lead)
    answer: Answer | None = None
    #: positive-class headline metrics (binary tasks only)
    positive: PositiveClassSummary | None = None
    #: the held-out test set and the stored scores of the selected cells (``[holdout]``)
    holdout: HoldoutEvaluation | None = None


def build_report_inputs(benchmark: BenchmarkResult, *, metric: str = "roc_auc",
                        alpha: float = 0.05,
                        equivalence: EquivalenceConfig = DEFAULT_EQUIVALENCE) -> ReportInputs:
    """Compute the paired comparisons and the modality ablation of ``benchmark``.

    One comparison per feature set with at least two cells (classifiers compared on
    the same data, as in the reference study) plus, when there are several feature
    sets and at most 20 cells, one over all cells.
    """
    if benchmark.split is None or not benchmark.cells:
        return ReportInputs((), None, ("no computed cells: statistics skipped",))
    ratio = benchmark.split.test_train_ratio
    groups = by_feature_set(benchmark.cells)
    candidates: list[Sequence[CellResult]] = [cells for cells in groups.values() if len(cells) > 1]
    if len(groups) > 1 and 2 < len(benchmark.cells) <= 20:
        candidates.append(benchmark.cells)
    comparisons, notes = [], []
    for cells in candidates:
        try:
            comparisons.append(compare_cells(
                cells, metric, test_train_ratio=ratio, alpha=alpha,
                rope=equivalence.rope_for(metric),
                decision_probability=equivalence.decision_probability))
        except PipelineError as exc:
            notes.append(f"comparison of {len(cells)} cells skipped: {exc}")
            log.warning("comparison skipped: %s", exc)
    ablation = None
    try:
        ablation = ablation_table(benchmark, metrics=[m for m in ABLATION_METRICS if m in METRICS])
    except PipelineError as exc:
        notes.append(f"ablation skipped: {exc}")
        log.warning("ablation skipped: %s", exc)
    return ReportInputs(tuple(comparisons), ablation, tuple(notes))


def analyse_benchmark(
    benchmark: BenchmarkResult,
    *,
    comparisons: Sequence[ComparisonResult] | None = None,
    ablation: AblationResult | None = None,
    shuffles: Sequence[ShuffleResult] = (),
    label_source: str | None = None,
    metric: str = "roc_auc",
    alpha: float = 0.05,
    equivalence: EquivalenceConfig = DEFAULT_EQUIVALENCE,
) -> Analysis:
    """Everything the report of ``benchmark`` shows.

    Args:
        comparisons: paired comparisons to show; ``None`` computes them (see
            :func:`build_report_inputs`), ``()`` leaves the section empty.
        ablation: modality ablation; ``None`` computes it when ``comparisons`` is also
            computed, otherwise the section is left out.
        shuffles: modality-shuffle results (never computed here).
        label_source: where the labels come from; default the benchmark's.
        equivalence: ROPE and decision probability of the practical-equivalence test.
    """
    if benchmark.dry_run or not benchmark.cells:
        raise ConfigError(
            f"experiment {benchmark.experiment!r} has no computed cells (dry run?); run "
            "`pipeline classify` on it without --dry-run before `pipeline report`"
        )
    notes: tuple[str, ...] = ()
    if comparisons is None:
        inputs = build_report_inputs(benchmark, metric=metric, alpha=alpha,
                                     equivalence=equivalence)
        comparisons = inputs.comparisons
        ablation = inputs.ablation if ablation is None else ablation
        notes = inputs.notes
    comparisons = tuple(comparisons)
    shuffles = tuple(shuffles)
    primary = comparisons[0].metric if comparisons else (
        "roc_auc" if "roc_auc" in benchmark.metrics or not benchmark.metrics
        else benchmark.metrics[0])
    source = str(label_source or benchmark.label_source or "")
    metrics = [m for m in HEADLINE if m in benchmark.metrics] or list(HEADLINE)
    return Analysis(
        benchmark=benchmark, comparisons=comparisons, ablation=ablation, shuffles=shuffles,
        summaries=summarise_benchmark(benchmark, metrics),
        leakage=leakage_summary(benchmark.cells, source),
        warnings=collect_warnings(benchmark, comparisons=comparisons, ablation=ablation,
                                  shuffles=shuffles, label_source=source, notes=notes),
        primary=primary, label_source=source, resampling=resampling_summary(benchmark),
        best_by_feature_set=best_by_feature_set(benchmark.cells, primary),
        equivalence=best_and_equivalent(benchmark, primary, equivalence),
        calibration=calibration_of(benchmark, best_by_feature_set(benchmark.cells, primary)),
        tuning=tuning_of(benchmark, primary, equivalence),
        answer=answer_of(benchmark, primary, alpha, equivalence),
        positive=positive_class_summary(benchmark),
    )


def answer_of(benchmark: BenchmarkResult, metric: str, alpha: float = 0.05,
              config: EquivalenceConfig = DEFAULT_EQUIVALENCE) -> Answer | None:
    """The planned comparisons of ``benchmark`` on ``metric`` (None without computed cells)."""
    if benchmark.dry_run or not benchmark.cells:
        return None
    return answer_questions(benchmark, metric, rope=config.rope_for(metric), alpha=alpha,
                            decision_probability=config.decision_probability)


def tuning_of(benchmark: BenchmarkResult, metric: str,
              config: EquivalenceConfig = DEFAULT_EQUIVALENCE) -> TuningSummary | None:
    """Tuned vs default cells of ``benchmark`` on ``metric`` (None without tuned cells)."""
    if benchmark.split is None:
        return None
    return _bayesian_or_none(summarise_tuning, "tuned vs default comparison", benchmark, metric,
                             config)


def calibration_of(benchmark: BenchmarkResult, labels: Sequence[str]
                   ) -> tuple[CalibrationSummary, ...]:
    """Calibration summaries of the cells ``labels`` (empty unless the task is binary)."""
    pos = benchmark.data.positive_label
    if pos is None or len(benchmark.data.classes) != 2:
        return ()
    ratio = benchmark.split.test_train_ratio if benchmark.split is not None else 0.0
    return tuple(summarise_calibration(benchmark.cell(label), pos, test_train_ratio=ratio)
                 for label in labels)


def best_and_equivalent(benchmark: BenchmarkResult, metric: str,
                        config: EquivalenceConfig = DEFAULT_EQUIVALENCE) -> Equivalence | None:
    """The best cell over all cells and the cells practically equivalent to it, or None
    (fewer than 2 cells, no split plan, or too few splits with a defined ``metric``)."""
    if benchmark.split is None or len(benchmark.cells) < 2:
        return None
    return _bayesian_or_none(equivalent_to_best, "practical equivalence", benchmark, metric, config)


def _bayesian_or_none(compute: Callable[..., T], what: str, benchmark: BenchmarkResult,
                      metric: str, config: EquivalenceConfig) -> T | None:
    """``compute(cells, metric, ...)`` with the split's test/train ratio and ``config``'s ROPE
    and decision probability; None, with a warning, when the cells cannot be compared."""
    try:
        return compute(benchmark.cells, metric, test_train_ratio=benchmark.split.test_train_ratio,
                       rope=config.rope_for(metric),
                       decision_probability=config.decision_probability)
    except PipelineError as exc:
        log.warning("%s skipped: %s", what, exc)
        return None


def best_by_feature_set(cells: Sequence[CellResult], metric: str) -> tuple[str, ...]:
    """Label of the best cell (mean ``metric``; NaN last) of each feature set, in order."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    return tuple(max(members, key=lambda c: np.nan_to_num(sign * c.summary(metric)[0],
                                                          nan=-np.inf)).label
                 for members in by_feature_set(cells).values())
