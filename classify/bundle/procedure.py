"""Re-run a cell's in-fold procedure on the final training set, and state its CV evidence at the shipped rule.

What the cross-validation scored for a cell is a *procedure*, not one set of weights: for
each outer training fold, an optional nested search picked the hyper-parameters
(:mod:`classify.run.tuning`), and an optional operating point fitted a calibrator and a
threshold on inner out-of-fold predictions (:mod:`classify.run.operating_point`). The
final model must be that same procedure applied to the final training set, or its CV
scores do not describe it. :func:`reproduce_procedure` does exactly that, with the same
functions, space, budget, metric, inner folds (grouped by patient) and seed as the CV,
and returns what it chose for the model card. A cell whose parameters name a step this
module does not know is refused (exit 2), never fitted without it.

:func:`cv_at_rule` states the CV evidence of sensitivity, specificity, PPV and NPV at the
decision rule the bundle ships (the in-fold operating point, a fixed or out-of-fold
threshold, or argmax), per split, as a mean with a Nadeau-Bengio corrected 95% interval and
the number of splits where the quantity is undefined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classify.analysis.calibration import split_summary
from classify.bundle.threshold import ThresholdChoice
from classify.models.calibration import ProbabilityCalibrator
from classify.results.types import CellResult, CellSpec
from classify.run.operating_point import (
    fit_operating_point,
    operating_point_seed,
    threshold_metrics,
)
from classify.run.tuning import tune_split
from pipeline.errors import BundleError

log = logging.getLogger(__name__)

#: Keys of a cell's ``params`` that fit-final knows how to reproduce.
REPRODUCIBLE_STEPS = ("fusion", "sampler", "classifier", "tuning", "operating_point")
#: Quantities of :func:`cv_at_rule` (decision-rule dependent; the rest of the card's CV table
#: is threshold-free or argmax, as the benchmark stores it).
RULE_QUANTITIES = ("sensitivity", "specificity", "ppv", "npv")


@dataclass(frozen=True)
class FinalProcedure:
    """What :func:`reproduce_procedure` chose on the final training set.

    Attributes:
        params: pipeline parameters set on the cell pipeline (the search's choice; {} untuned).
        tuning: the search settings, the chosen values by space name and the inner score
            (None for an untuned cell).
        threshold: the operating point's decision rule (None without ``[operating_point]``).
        calibrator: the fitted calibrator (None when uncalibrated).
        operating_point: the rule, inner folds, calibration, threshold and inner
            sensitivity/specificity (None without ``[operating_point]``).
    """

    params: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    threshold: ThresholdChoice | None = None
    calibrator: ProbabilityCalibrator | None = field(default=None, compare=False)
    operating_point: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The model card's ``procedure`` entry (JSON-able)."""
        out: dict[str, Any] = {}
        if self.tuning is not None:
            out["tuning"] = self.tuning
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point
        return out


def check_reproducible_spec(spec: CellSpec) -> None:
    """BundleError (exit 2) naming any step of ``spec.params`` fit-final cannot reproduce."""
    unknown = sorted(set(spec.params) - set(REPRODUCIBLE_STEPS))
    if unknown:
        raise BundleError(
            f"cell {spec.label} uses {', '.join(unknown)}, which fit-final cannot reproduce on "
            f"the final training set (it knows {', '.join(REPRODUCIBLE_STEPS)}); a bundle "
            "without it would not be the model the CV scored. Choose another cell")


def reproduce_procedure(spec: CellSpec, build: Callable[[], Any], X: np.ndarray, y: np.ndarray,
                        groups: np.ndarray, *, positive: int | None, n_classes: int, seed: int
                        ) -> FinalProcedure:
    """Search and operating point of ``spec`` on the final training rows ``X, y`` (grouped by
    ``groups``), exactly as :func:`classify.run.cell_task.run_split` does in each CV fold."""
    check_reproducible_spec(spec)
    tuning_cfg = spec.params.get("tuning")
    op_cfg = spec.params.get("operating_point")
    params: dict[str, Any] = {}
    tuning = None
    if tuning_cfg:
        params, chosen, score = tune_split(build, X, y, groups, tuning_cfg, positive=positive,
                                           n_classes=n_classes, seed=seed)
        tuning = {"search": tuning_cfg["search"], "budget": tuning_cfg["budget"],
                  "inner_folds": tuning_cfg["inner_folds"], "metric": tuning_cfg["metric"],
                  "chosen": chosen, "inner_score": score}
        log.info("final fit: %s search chose %s (inner %s %.4f)", tuning_cfg["search"], chosen,
                 tuning_cfg["metric"], score)
    if not op_cfg:
        return FinalProcedure(params, tuning)
    if positive is None or n_classes != 2:
        raise BundleError(f"cell {spec.label} has an operating point but the task is not binary; "
                          "it cannot be reproduced")

    def tuned() -> Any:
        return build().set_params(**params)

    fold = fit_operating_point(tuned, X, y, groups, op_cfg, positive=int(positive),
                               seed=operating_point_seed(seed, bool(tuning_cfg)),
                               n_classes=n_classes)
    method = str(op_cfg.get("calibration", "none"))
    op = {"rule": str(op_cfg["rule"]), "inner_folds": fold.inner_folds, "calibration": method,
          "threshold": fold.threshold, "inner_sensitivity": fold.inner_sensitivity,
          "inner_specificity": fold.inner_specificity}
    if fold.calibrator is not None:
        op["calibrator"] = fold.calibrator.to_record()
    scale = "calibrated" if fold.calibrator is not None else "uncalibrated"
    choice = ThresholdChoice(
        str(op_cfg["rule"]), float(fold.threshold), "the cell's operating point",
        f"{fold.inner_folds}-fold inner out-of-fold {scale} predictions of the final training "
        f"set ({len(y)} rows, grouped by patient), as in every CV fold",
        float(fold.inner_sensitivity), float(fold.inner_specificity))
    log.info("final fit: operating point %s -> threshold %.4f (inner sensitivity %.3f, "
             "specificity %.3f)", op_cfg["rule"], fold.threshold, fold.inner_sensitivity,
             fold.inner_specificity)
    return FinalProcedure(params, tuning, choice, fold.calibrator, op)


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
