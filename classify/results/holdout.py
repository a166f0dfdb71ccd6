"""Typed, frozen results of the held-out test set (``[holdout]``, :mod:`classify.run.holdout`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: Columns of :attr:`HoldoutScore.metrics`.
HOLDOUT_COLUMNS = ("metric", "value", "ci95_low", "ci95_high", "cv_mean")


@dataclass(frozen=True)
class HoldoutScore:
    """One cell scored once on the held-out test set.

    Attributes:
        cell, key: the cell's label and key.
        metrics: one row per metric (:data:`HOLDOUT_COLUMNS`): the held-out value, its 95%
            percentile interval by patient bootstrap and the cell's CV mean; threshold-free
            and argmax metrics as in CV, plus ``op_*`` at the operating point re-fitted on the
            development set (cells with ``[operating_point]``).
        threshold: that operating point's threshold (None without one).
        chosen: the parameters the search chose on the development set (tuned cells; else {}).
    """

    cell: str
    key: str
    metrics: pd.DataFrame = field(hash=False)
    threshold: float | None = None
    chosen: dict[str, Any] = field(default_factory=dict, hash=False)

    def value(self, metric: str) -> float:
        row = self.metrics[self.metrics["metric"] == metric]
        return float(row["value"].iloc[0]) if len(row) else float("nan")


@dataclass(frozen=True)
class HoldoutEvaluation:
    """The held-out test set and the scores of the selected cells on it.

    Attributes:
        how: how the set was drawn (fraction and seed, or the manifest).
        path: the saved list of held-out samples (next to the split plans).
        hash: digest of the held-out sample ids.
        n_samples, n_patients, class_counts: the held-out set.
        n_development: samples left for CV, tuning, calibration, selection and the final fit.
        scores: the selected cells' scores (empty until ``pipeline evaluate`` ran).
        missing: selected cells not scored yet.
        n_boot: bootstrap resamples (by patient) behind the intervals.
    """

    how: str
    path: str
    hash: str
    n_samples: int
    n_patients: int
    class_counts: dict[str, int] = field(hash=False)
    n_development: int = 0
    scores: tuple[HoldoutScore, ...] = ()
    missing: tuple[str, ...] = ()
    n_boot: int = 0
