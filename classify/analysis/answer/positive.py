"""Positive-class headline metrics of binary tasks, from what every cell already stores.

Sensitivity, specificity, PPV and NPV come from each split's out-of-fold predictions
(``CellResult.oof``: ``y_true``/``y_pred`` per sample, repeat and fold; the prediction is the
most probable class, as for every stored metric); PR AUC, MCC and balanced accuracy are the
stored per-split scores. Nothing is refitted and no stored score changes. Each value is the
mean over splits with a 95 % t-interval over splits (optimistic: CV training sets overlap).
Weighted precision/recall/F1 stay in the full tables: with 9 % positives a weighted recall of
0.97 can hide a sensitivity of 0.64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classify.analysis.stats import t_interval
from classify.results.types import BenchmarkResult, CellResult

#: Positive-class metrics, in display order: from the predictions, then stored scores.
FROM_PREDICTIONS = ("sensitivity", "specificity", "ppv", "npv")
FROM_SCORES = ("pr_auc", "mcc", "balanced_accuracy")
POSITIVE_METRICS = (*FROM_PREDICTIONS, *FROM_SCORES)
TITLES = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV",
          "npv": "NPV", "pr_auc": "PR AUC", "mcc": "MCC", "balanced_accuracy": "Bal. acc"}


@dataclass(frozen=True)
class PositiveClassSummary:
    """Positive-class metrics of every cell of a binary task.

    Attributes:
        positive: the positive class label; prevalence: its share of the samples
            (``n_positive`` of ``n_samples``).
        table: one row per cell: ``cell`` and per metric of :data:`POSITIVE_METRICS`
            ``<m>_mean, <m>_ci_low, <m>_ci_high``.
    """

    positive: str
    prevalence: float
    n_positive: int
    n_samples: int
    table: pd.DataFrame = field(hash=False)

    def row(self, label: str) -> pd.Series:
        """The row of cell ``label``."""
        return self.table.set_index("cell").loc[label]


def split_rates(cell: CellResult, positive: str) -> pd.DataFrame:
    """Sensitivity, specificity, PPV and NPV of each (repeat, fold) split of ``cell``
    (NaN where a split has no positives / negatives / positive or negative predictions)."""
    oof = cell.oof
    rows = []
    for (rep, fold), g in oof.groupby(["repeat", "fold"], sort=True):
        t = g["y_true"].astype(str).to_numpy() == positive
        p = g["y_pred"].astype(str).to_numpy() == positive
        tp, fn = int((t & p).sum()), int((t & ~p).sum())
        tn, fp = int((~t & ~p).sum()), int((~t & p).sum())
        rows.append({"repeat": rep, "fold": fold, "sensitivity": _ratio(tp, tp + fn),
                     "specificity": _ratio(tn, tn + fp), "ppv": _ratio(tp, tp + fp),
                     "npv": _ratio(tn, tn + fn)})
    return pd.DataFrame(rows, columns=["repeat", "fold", *FROM_PREDICTIONS])


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def _mean_ci(values: Sequence[float], lo_bound: float = 0.0) -> tuple[float, float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    lo, hi = t_interval(v)
    if not np.isfinite(lo):
        lo = hi = float(v.mean())
    return float(v.mean()), max(lo, lo_bound), min(hi, 1.0)


def positive_class_summary(benchmark: BenchmarkResult) -> PositiveClassSummary | None:
    """The positive-class metrics of every cell; None unless the task is binary with a
    positive class."""
    d = benchmark.data
    pos = d.positive_label
    if pos is None or len(d.classes) != 2 or not benchmark.cells:
        return None
    rows = []
    for c in benchmark.cells:
        row: dict[str, object] = {"cell": c.label}
        rates = split_rates(c, pos) if c.oof is not None and len(c.oof) else pd.DataFrame()
        for m in FROM_PREDICTIONS:
            vals = rates[m].to_numpy(float) if m in rates else np.array([])
            row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = _mean_ci(vals)
        for m in FROM_SCORES:
            row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = _mean_ci(
                c.metric_values(m).to_numpy(float), -1.0 if m == "mcc" else 0.0)
        rows.append(row)
    n_pos = int(d.class_counts.get(pos, 0))
    return PositiveClassSummary(positive=pos, prevalence=n_pos / d.n_samples if d.n_samples else
                                float("nan"), n_positive=n_pos, n_samples=int(d.n_samples),
                                table=pd.DataFrame(rows))
