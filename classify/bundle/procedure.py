"""The decision rule a bundle ships and the CV evidence at that rule.

:func:`threshold_choice` turns the operating point that
:func:`classify.run.procedure.final_procedure.reproduce_procedure` re-fitted on the final training
set into the bundle's :class:`~classify.bundle.threshold.ThresholdChoice`.
:func:`cv_at_rule` states the CV evidence of sensitivity, specificity, PPV and NPV at the
decision rule the bundle ships (the in-fold operating point, a fixed or out-of-fold
threshold, or argmax), per split, as a mean with a Nadeau-Bengio corrected 95% interval and
the number of splits where the quantity is undefined.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classify.analysis.calibration import split_summary
from classify.bundle.threshold import ThresholdChoice
from classify.results.types import CellResult
from classify.run.procedure.final_procedure import FinalProcedure
from classify.run.procedure.operating_point import threshold_metrics

#: Quantities of :func:`cv_at_rule` (decision-rule dependent; the rest of the card's CV table
#: is threshold-free or argmax, as the benchmark stores it).
RULE_QUANTITIES = ("sensitivity", "specificity", "ppv", "npv")


def threshold_choice(procedure: FinalProcedure) -> ThresholdChoice | None:
    """The bundle's decision rule from the re-fitted operating point (None without one)."""
    fold, op = procedure.fold, procedure.operating_point
    if fold is None or op is None:
        return None
    scale = "calibrated" if fold.calibrator is not None else "uncalibrated"
    return ThresholdChoice(
        str(op["rule"]), float(fold.threshold), "the cell's operating point",
        f"{fold.inner_folds}-fold inner out-of-fold {scale} predictions of the final training "
        f"set ({procedure.n_rows} rows, grouped by patient), as in every CV fold",
        float(fold.inner_sensitivity), float(fold.inner_specificity))


def _per_split_at_rule(cell: CellResult, positive: str, choice: ThresholdChoice,
                       in_fold: bool) -> dict[str, np.ndarray]:
    if in_fold:
        return {q: cell.metric_values(f"op_{q}").to_numpy(float) for q in RULE_QUANTITIES}
    out: dict[str, list[float]] = {q: [] for q in RULE_QUANTITIES}
    for _, g in cell.oof.groupby(["repeat", "fold"], sort=True):
        y = (g["y_true"].astype(str) == positive).to_numpy(int)
        if choice.value is None:  # argmax: the stored prediction
            m = threshold_metrics(y, (g["y_pred"].astype(str) == positive).to_numpy(float), 0.5)
        else:
            m = threshold_metrics(y, g[f"proba:{positive}"].to_numpy(float), choice.value)
        for q in RULE_QUANTITIES:
            out[q].append(m[f"op_{q}"])
    return {q: np.asarray(v, float) for q, v in out.items()}


def cv_at_rule(cell: CellResult, positive: str | None, choice: ThresholdChoice, *,
               in_fold: bool, test_train_ratio: float) -> dict[str, Any]:
    """Sensitivity, specificity, PPV and NPV of the CV at the shipped decision rule.

    ``in_fold``: the rule is the cell's own operating point, so each split's stored ``op_*``
    value (threshold chosen inside that training fold) is the evidence; otherwise the rule's
    fixed threshold (or argmax) is applied to each split's out-of-fold predictions. Returns
    ``{"rule", "how", "metrics": {q: {mean, ci95_low, ci95_high, n_splits, n_undefined}}}``
    ({} for a multiclass model).
    """
    if positive is None or cell.oof is None:
        return {}
    values = _per_split_at_rule(cell, positive, choice, in_fold)
    metrics = {}
    for q in RULE_QUANTITIES:
        mean, lo, hi, n, undefined = split_summary(values[q], test_train_ratio)
        metrics[q] = {"mean": mean, "ci95_low": lo, "ci95_high": hi, "n_splits": n,
                      "n_undefined": undefined}
    how = ("threshold chosen inside each CV training fold, scored on its test fold" if in_fold
           else "argmax of each split's out-of-fold predictions" if choice.value is None
           else f"P >= {choice.value:.4f} applied to each split's out-of-fold predictions")
    return {"rule": choice.rule, "how": how, "metrics": metrics}
