"""Fold metrics computed from class codes and predicted probabilities.

Predictions are ``argmax`` of the probability matrix (column k = class code k).
Binary metrics (``*_binary``) use the positive class; for multiclass they are NaN.
The headline table uses WEIGHTED precision/recall/F1, like the reference OpenI study.
``roc_auc`` and ``pr_auc`` (average precision) are on the positive class for binary
problems and one-vs-rest macro averages for multiclass. ``brier`` is the mean
squared error of the positive-class probability (binary) or the original
multi-class Brier score ``mean_i sum_k (p_ik - y_ik)^2`` (range 0..2); lower is better.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

# name -> higher is better
METRICS: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "precision_binary": True,
    "recall_binary": True,
    "f1_binary": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
    "roc_auc": True,
    "pr_auc": True,
    "mcc": True,
    "brier": False,
}
#: Metrics of the headline table (reference study shape + extras), in display order.
HEADLINE = ("accuracy", "precision_weighted", "recall_weighted", "f1_weighted",
            "roc_auc", "pr_auc", "mcc", "balanced_accuracy", "brier")

#: Display titles of the headline metrics (tables of every renderer).
COLUMN_TITLES = {
    "accuracy": "Accuracy",
    "precision_weighted": "Precision",
    "recall_weighted": "Recall",
    "f1_weighted": "F1",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "mcc": "MCC",
    "balanced_accuracy": "Bal. acc",
    "brier": "Brier",
}


#: Metrics at the threshold chosen inside the training fold (see classify.run.procedure.operating_point).
OPERATING_METRICS: dict[str, bool] = {
    "op_threshold": True, "op_sensitivity": True, "op_specificity": True, "op_ppv": True,
    "op_npv": True, "op_f1": True,
}


def higher_is_better(metric: str) -> bool:
    """True when a larger value of ``metric`` is better (False for ``brier``)."""
    return METRICS[metric] if metric in METRICS else OPERATING_METRICS[metric]


def _safe(fn: Callable[[], float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(fn())
        except ValueError:  # e.g. only one class present in y_true
            return float("nan")


def score_fold(y_true: np.ndarray, proba: np.ndarray, positive: int | None) -> dict[str, float]:
    """All :data:`METRICS` for one test fold.

    Args:
        y_true: int class codes ``[n]``.
        proba: ``[n, n_classes]`` probabilities (rows sum to 1).
        positive: code of the positive class (binary), None for multiclass.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    k = proba.shape[1]
    labels = np.arange(k)
    y_pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "accuracy": _safe(lambda: skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(lambda: skm.balanced_accuracy_score(y_true, y_pred)),
        "mcc": _safe(lambda: skm.matthews_corrcoef(y_true, y_pred)),
    }
    for avg in ("macro", "weighted"):
        p, r, f, _ = _prf(y_true, y_pred, labels, avg)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = p, r, f
    onehot = np.eye(k)[y_true]
    if k == 2 and positive is not None:
        p, r, f, _ = _prf(y_true, y_pred, labels, "binary", pos_label=positive)
        out["precision_binary"], out["recall_binary"], out["f1_binary"] = p, r, f
        pp = proba[:, positive]
        yt = (y_true == positive).astype(int)
        out["roc_auc"] = _safe(lambda: skm.roc_auc_score(yt, pp))
        out["pr_auc"] = _safe(lambda: skm.average_precision_score(yt, pp))
        out["brier"] = float(np.mean((pp - yt) ** 2))
    else:
        out["precision_binary"] = out["recall_binary"] = out["f1_binary"] = float("nan")
        out["roc_auc"] = _safe(lambda: skm.roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=labels))
        out["pr_auc"] = _safe(lambda: skm.average_precision_score(onehot, proba, average="macro"))
        out["brier"] = float(np.mean(((proba - onehot) ** 2).sum(axis=1)))
    return {m: out[m] for m in METRICS}


def _prf(y_true, y_pred, labels, average, pos_label=1):  # noqa: ANN001, ANN202
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels if average != "binary" else None,
            average=average, pos_label=pos_label, zero_division=0,
        )
