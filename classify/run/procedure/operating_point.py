"""A decision threshold (and optional calibration) chosen inside the training fold only.

For one outer split of a binary cell (see ``[operating_point]`` in
:mod:`classify.config.sections`):

1. the training fold is split again, grouped by patient (StratifiedGroupKFold,
   ``inner_folds``); the whole cell pipeline (fusion, scaling, sampler, classifier) is
   refitted on each inner training part and predicts its inner validation part, giving
   out-of-fold probabilities for every training row. Those rows were never resampled:
   the sampler only ever sees inner training rows;
2. optionally a calibrator (``sigmoid``: logistic on the logit; ``isotonic``) is fitted
   on those inner out-of-fold probabilities and applied to the outer test probabilities;
3. the threshold is chosen on the (calibrated) inner probabilities by a rule:
   ``max_f1``, ``youden`` (max sensitivity + specificity - 1) or ``sensitivity=0.90``
   (the highest threshold whose inner sensitivity reaches 0.90);
4. it is applied unchanged to the outer test fold: sensitivity, specificity, PPV, NPV and
   F1 at the threshold are stored as the metrics :data:`OPERATING_METRICS`.

Nothing here sees a test-fold row before step 4.

With nested tuning as well (:mod:`classify.run.procedure.tuning`), the operating point's inner folds
are drawn with another seed than the search's (:func:`operating_point_seed`), so the
threshold is not fitted on the very validation parts that picked the hyper-parameters.
What remains shared: the chosen hyper-parameters were searched on all training rows, so
each inner out-of-fold prediction comes from parameters that saw that row in the search
(never in the fit that predicts it). Re-tuning inside every operating-point fold would
remove that too at ``inner_folds`` times the search cost; it is not done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.model_selection import StratifiedGroupKFold

from classify.config.vocabulary import CALIBRATIONS, check_rule
from classify.models.calibration import ProbabilityCalibrator
from classify.results.metrics import OPERATING_METRICS as _OP_METRICS
from pipeline.errors import ConfigError, DataError

#: Metrics stored per split for a cell with an operating point.
OPERATING_METRICS = tuple(_OP_METRICS)


def choose_threshold(rule: str, p: np.ndarray, y: np.ndarray) -> float:
    """Threshold on scores ``p`` for 0/1 labels ``y`` by ``rule`` (predict positive: p >= t)."""
    p, y = np.asarray(p, float), np.asarray(y, int)
    if len(np.unique(y)) < 2:
        raise DataError("threshold selection needs both classes in the training fold")
    rule = check_rule(rule)
    if rule == "max_f1":
        prec, rec, thr = skm.precision_recall_curve(y, p)
        f1 = np.where(prec[:-1] + rec[:-1] > 0,
                      2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-300), 0.0)
        return float(thr[int(np.argmax(f1))])
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=False)
    thr = np.minimum(thr, 1.0)  # roc_curve's first threshold is +inf (predict nothing)
    if rule == "youden":
        return float(thr[int(np.argmax(tpr - fpr))])
    kind, target = rule.split("=")
    if kind == "sensitivity":  # highest threshold reaching the sensitivity
        return float(thr[int(np.flatnonzero(tpr >= float(target) - 1e-12)[0])])
    ok = np.flatnonzero(1 - fpr >= float(target) - 1e-12)  # lowest threshold keeping specificity
    return float(thr[int(ok[-1])])


def threshold_metrics(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and F1 of ``p >= t`` (NaN where undefined)."""
    y, pred = np.asarray(y, int), np.asarray(p, float) >= t
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn, tn = int((~pred & (y == 1)).sum()), int((~pred & (y == 0)).sum())

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {"op_threshold": float(t), "op_sensitivity": ratio(tp, tp + fn),
            "op_specificity": ratio(tn, tn + fp), "op_ppv": ratio(tp, tp + fp),
            "op_npv": ratio(tn, tn + fn), "op_f1": ratio(2 * tp, 2 * tp + fp + fn)}


def fit_calibrator(method: str, p: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
    """A monotone map of positive-class scores to calibrated probabilities, fitted on ``p, y``
    (:class:`~classify.models.calibration.ProbabilityCalibrator`; apply it with ``transform``)."""
    if method not in CALIBRATIONS or method == "none":
        raise ConfigError(f"operating_point.calibration {method!r}: use one of {CALIBRATIONS}")
    return ProbabilityCalibrator(method).fit(p, y)


#: Added to the cell's seed for the operating point's inner folds of a tuned cell.
TUNED_SEED_OFFSET = 7919


def operating_point_seed(seed: int, tuned: bool) -> int:
    """Seed of the operating point's inner folds: the cell's own seed, or for a tuned cell a
    different one, so its folds are not the tuning search's folds."""
    return int(seed) + (TUNED_SEED_OFFSET if tuned else 0)


def inner_oof_proba(build: Callable[[], Any], X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                    *, n_folds: int, seed: int, n_classes: int) -> np.ndarray:
    """Out-of-fold probabilities ``[n, n_classes]`` of the training rows ``X, y``.

    ``build()`` returns a fresh unfitted cell pipeline; inner folds are grouped by patient
    (``groups``) and stratified. Every row is predicted by a model that never saw it.
    """
    n_groups = len(np.unique(groups))
    k = min(int(n_folds), n_groups)
    if k < 2:
        raise DataError(f"inner CV needs >= 2 patient groups in a training fold, got {n_groups}")
    out = np.full((len(y), n_classes), np.nan)
    for tr, va in operating_point_splits(y, groups, k, seed):
        pipe = build()
        pipe.fit(X[tr], y[tr])
        out[np.ix_(va, np.asarray(pipe.classes_, dtype=int))] = pipe.predict_proba(X[va])
    return np.nan_to_num(out, nan=0.0)


def operating_point_splits(y: np.ndarray, groups: np.ndarray, k: int, seed: int
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The grouped, stratified inner folds the operating point is chosen on."""
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros((len(y), 1)), y, groups))


@dataclass(frozen=True)
class FoldOperatingPoint:
    """What one training fold decided: the calibrator (None = uncalibrated) and the threshold,
    with the rule's sensitivity/specificity on the inner out-of-fold predictions it was
    chosen on and the number of inner folds."""

    threshold: float
    calibrator: ProbabilityCalibrator | None = field(default=None, compare=False)
    inner_sensitivity: float = float("nan")
    inner_specificity: float = float("nan")
    inner_folds: int = 0


def fit_operating_point(build: Callable[[], Any], X_train: np.ndarray, y_train: np.ndarray,
                        groups_train: np.ndarray, config: Mapping[str, Any], *, positive: int,
                        seed: int, n_classes: int) -> FoldOperatingPoint:
    """Calibrator and threshold from the training rows only (``config``: ``rule``,
    ``inner_folds``, ``calibration``); call it before the test fold is predicted."""
    inner = inner_oof_proba(build, X_train, y_train, groups_train,
                            n_folds=int(config.get("inner_folds", 3)), seed=seed,
                            n_classes=n_classes)
    y_in = (np.asarray(y_train) == positive).astype(int)
    p_in = inner[:, positive]
    method = str(config.get("calibration", "none"))
    cal = None
    if method != "none":
        cal = fit_calibrator(method, p_in, y_in)
        p_in = cal.transform(p_in)
    t = choose_threshold(str(config["rule"]), p_in, y_in)
    m = threshold_metrics(y_in, p_in, t)
    k = min(int(config.get("inner_folds", 3)), len(np.unique(groups_train)))
    return FoldOperatingPoint(t, cal, m["op_sensitivity"], m["op_specificity"], k)


def apply_operating_point(fold: FoldOperatingPoint, proba_test: np.ndarray, y_test: np.ndarray,
                          *, positive: int) -> tuple[np.ndarray, dict[str, float]]:
    """Calibrated test probabilities (unchanged without a calibrator) and the metrics at the
    fold's threshold."""
    p_test = proba_test[:, positive]
    if fold.calibrator is not None:
        p_test = fold.calibrator.transform(p_test)
        proba_test = np.zeros_like(proba_test)
        proba_test[:, positive], proba_test[:, 1 - positive] = p_test, 1.0 - p_test  # binary
    y = (np.asarray(y_test) == positive).astype(int)
    return proba_test, threshold_metrics(y, p_test, fold.threshold)
