"""Re-run a cell's in-fold procedure on a whole training set (the final fit, the held-out test).

What the cross-validation scored for a cell is a *procedure*, not one set of weights: for
each outer training fold, an optional nested search picked the hyper-parameters
(:mod:`classify.run.procedure.tuning`), and an optional operating point fitted a calibrator and a
threshold on inner out-of-fold predictions (:mod:`classify.run.procedure.operating_point`). A model
fitted on more data must be that same procedure, or the CV scores do not describe it.
:func:`reproduce_procedure` does exactly that, with the same functions, space, budget,
metric, inner folds (grouped by patient) and seed as each CV fold
(:func:`classify.run.cell_task.run_split`). A cell whose parameters name a step this
module does not know is refused (exit 2), never fitted without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classify.results.types import CellSpec
from classify.run.procedure.operating_point import (
    FoldOperatingPoint,
    fit_operating_point,
    operating_point_seed,
)
from classify.run.procedure.tuning import tune_split
from pipeline.errors import BundleError

log = logging.getLogger(__name__)

#: Keys of a cell's ``params`` that can be reproduced on a new training set.
REPRODUCIBLE_STEPS = ("fusion", "sampler", "classifier", "tuning", "operating_point")


@dataclass(frozen=True)
class FinalProcedure:
    """What :func:`reproduce_procedure` chose on the training set.

    Attributes:
        params: pipeline parameters set on the cell pipeline (the search's choice; {} untuned).
        tuning: the search settings, the chosen values by space name and the inner score
            (None for an untuned cell).
        fold: the operating point (threshold, calibrator, inner estimates); None without
            ``[operating_point]``.
        operating_point: the fold's JSON-able record (rule, inner folds, calibration,
            threshold, inner sensitivity/specificity, the calibrator's numbers).
        n_rows: training rows the procedure ran on.
    """

    params: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    fold: FoldOperatingPoint | None = field(default=None, compare=False)
    operating_point: dict[str, Any] | None = None
    n_rows: int = 0

    def record(self) -> dict[str, Any]:
        """The JSON-able record of the procedure (a model card's ``procedure``)."""
        out: dict[str, Any] = {}
        if self.tuning is not None:
            out["tuning"] = self.tuning
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point
        return out

    def positive_proba(self, proba: np.ndarray, positive: int | None) -> np.ndarray:
        """``proba`` on the procedure's output scale: the positive class calibrated when the
        operating point calibrates (binary), unchanged otherwise."""
        if self.fold is None or self.fold.calibrator is None or positive is None:
            return proba
        p = self.fold.calibrator.transform(proba[:, positive])
        out = np.empty_like(proba)
        out[:, positive], out[:, 1 - positive] = p, 1.0 - p
        return out


def check_reproducible_spec(spec: CellSpec) -> None:
    """BundleError (exit 2) naming any step of ``spec.params`` that cannot be reproduced."""
    unknown = sorted(set(spec.params) - set(REPRODUCIBLE_STEPS))
    if unknown:
        raise BundleError(
            f"cell {spec.label} uses {', '.join(unknown)}, which fit-final cannot reproduce on "
            f"the final training set (it knows {', '.join(REPRODUCIBLE_STEPS)}); a bundle "
            "without it would not be the model the CV scored. Choose another cell")


def reproduce_procedure(spec: CellSpec, build: Callable[[], Any], X: np.ndarray, y: np.ndarray,
                        groups: np.ndarray, *, positive: int | None, n_classes: int, seed: int
                        ) -> FinalProcedure:
    """Search and operating point of ``spec`` on the training rows ``X, y`` (grouped by
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
        return FinalProcedure(params, tuning, n_rows=len(y))
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
    log.info("final fit: operating point %s -> threshold %.4f (inner sensitivity %.3f, "
             "specificity %.3f)", op_cfg["rule"], fold.threshold, fold.inner_sensitivity,
             fold.inner_specificity)
    return FinalProcedure(params, tuning, fold, op, len(y))
