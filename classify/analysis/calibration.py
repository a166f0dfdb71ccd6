"""Calibration and operating-point summaries of a binary cell, from its stored results only.

* **Reliability diagram + ECE** from the out-of-fold predictions pooled over repeats:
  equal-width bins of the positive-class probability; ECE = sum over bins of
  (n_bin / N) * |fraction positive - mean predicted|; Brier = mean (p - y)^2.
* **Decision curve** (Vickers & Elkin 2006): net benefit TP/N - FP/N * pt / (1 - pt) of
  treating when p >= pt, against treat-all and treat-none (0), OOF pooled over repeats.
* **Operating point**: sensitivity, specificity, PPV, NPV and F1 at the threshold chosen
  inside each training fold (stored ``op_*`` metrics, see :mod:`classify.run.procedure.operating_point`)
  next to the same quantities at argmax (recomputed per split from the OOF predictions),
  each as mean with a Nadeau-Bengio corrected 95% interval over splits (the splits share
  training rows; :func:`classify.analysis.stats.corrected_interval`). A split where a
  quantity is undefined (PPV with no predicted positive, NPV with no predicted negative)
  is counted in ``undefined`` and left out of the mean, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classify.analysis.stats import corrected_interval
from classify.results.types import CellResult
from classify.run.procedure.operating_point import threshold_metrics

#: Quantities compared at the chosen threshold and at argmax.
OP_QUANTITIES = ("sensitivity", "specificity", "ppv", "npv", "f1")


@dataclass(frozen=True)
class CalibrationSummary:
    """Reliability, decision curve and operating point of one binary cell.

    Attributes:
        cell: cell label; positive: positive class; n_bins: reliability bins.
        ece: expected calibration error; brier: Brier score of the pooled OOF predictions.
        bins: columns ``bin, lower, upper, mean_predicted, fraction_positive, count``.
        decision_curve: columns ``threshold, net_benefit, treat_all, treat_none``.
        rule, calibration: the cell's ``[operating_point]`` settings (``""`` without one).
        operating: one row per quantity (:data:`OP_QUANTITIES`): ``quantity, at_threshold_mean,
            at_threshold_ci_low, at_threshold_ci_high, at_threshold_undefined, argmax_mean,
            argmax_ci_low, argmax_ci_high, argmax_undefined, n`` (``at_threshold_*`` NaN
            without an operating point; ``*_undefined``: splits where the quantity has no
            value, e.g. PPV when nothing was predicted positive; ``n``: splits).
        thresholds: chosen threshold per split, columns ``repeat, fold, threshold`` (empty
            without an operating point).
    """

    cell: str
    positive: str
    n_bins: int
    ece: float
    brier: float
    bins: pd.DataFrame = field(hash=False)
    decision_curve: pd.DataFrame = field(hash=False)
    rule: str = ""
    calibration: str = ""
    operating: pd.DataFrame = field(default_factory=pd.DataFrame, hash=False)
    thresholds: pd.DataFrame = field(default_factory=pd.DataFrame, hash=False)


def _binary(cell: CellResult, positive: str) -> tuple[np.ndarray, np.ndarray]:
    oof = cell.oof
    return ((oof["y_true"].astype(str) == positive).to_numpy(int),
            oof[f"proba:{positive}"].to_numpy(float))


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Equal-width reliability bins and the expected calibration error."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    rows, ece = [], 0.0
    for b in range(n_bins):
        sel = idx == b
        n = int(sel.sum())
        mp = float(p[sel].mean()) if n else float("nan")
        fp = float(y[sel].mean()) if n else float("nan")
        if n:
            ece += n / len(p) * abs(fp - mp)
        rows.append({"bin": b, "lower": edges[b], "upper": edges[b + 1], "mean_predicted": mp,
                     "fraction_positive": fp, "count": n})
    return pd.DataFrame(rows), float(ece)


def decision_curve(y: np.ndarray, p: np.ndarray,
                   thresholds: Sequence[float] = tuple(np.round(np.arange(0.01, 1.0, 0.01), 2))
                   ) -> pd.DataFrame:
    """Net benefit of the model, of treating everyone and of treating no one."""
    n, prev = len(y), float(np.mean(y))
    rows = []
    for t in thresholds:
        w = t / (1.0 - t)
        pred = p >= t
        tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
        rows.append({"threshold": float(t), "net_benefit": tp / n - fp / n * w,
                     "treat_all": prev - (1.0 - prev) * w, "treat_none": 0.0})
    return pd.DataFrame(rows)


def _argmax_per_split(cell: CellResult, positive: str) -> pd.DataFrame:
    """Sensitivity ... F1 of the argmax predictions, per (repeat, fold), from the OOF table."""
    rows = []
    for (r, f), g in cell.oof.groupby(["repeat", "fold"], sort=True):
        y = (g["y_true"].astype(str) == positive).to_numpy(int)
        pred = (g["y_pred"].astype(str) == positive).to_numpy(float)
        m = threshold_metrics(y, pred, 0.5)
        rows.append({"repeat": r, "fold": f, **{q: m[f"op_{q}"] for q in OP_QUANTITIES}})
    return pd.DataFrame(rows)


def split_summary(values: np.ndarray, test_train_ratio: float
                  ) -> tuple[float, float, float, int, int]:
    """``(mean, ci_low, ci_high, n_defined, n_undefined)`` of per-split values: the mean of
    the defined splits with a Nadeau-Bengio corrected 95% interval clipped to [0, 1]."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if not ok.any():
        return float("nan"), float("nan"), float("nan"), 0, int(len(v))
    lo, hi = corrected_interval(v[ok], test_train_ratio)
    return (float(v[ok].mean()), max(lo, 0.0), min(hi, 1.0), int(ok.sum()),
            int((~ok).sum()))


def summarise_calibration(cell: CellResult, positive: str, *, n_bins: int = 10,
                          test_train_ratio: float = 0.0) -> CalibrationSummary:
    """Everything of :class:`CalibrationSummary` for ``cell`` (binary, ``positive`` class);
    ``test_train_ratio``: the split plan's n2/n1 for the corrected intervals."""
    y, p = _binary(cell, positive)
    bins, ece = reliability(y, p, n_bins)
    op = dict(cell.spec.params.get("operating_point", {}))
    argmax = _argmax_per_split(cell, positive)
    has_op = "op_threshold" in set(cell.scores["metric"])
    rows = []
    for q in OP_QUANTITIES:
        at = (split_summary(cell.metric_values(f"op_{q}").to_numpy(float), test_train_ratio)
              if has_op else (float("nan"),) * 3 + (0, 0))
        am = split_summary(argmax[q].to_numpy(float), test_train_ratio)
        rows.append({"quantity": q, "at_threshold_mean": at[0], "at_threshold_ci_low": at[1],
                     "at_threshold_ci_high": at[2], "at_threshold_undefined": at[4],
                     "argmax_mean": am[0], "argmax_ci_low": am[1], "argmax_ci_high": am[2],
                     "argmax_undefined": am[4], "n": len(argmax)})
    thresholds = pd.DataFrame(columns=["repeat", "fold", "threshold"])
    if has_op:
        thresholds = (cell.metric_values("op_threshold").rename("threshold").reset_index())
    return CalibrationSummary(
        cell=cell.label, positive=positive, n_bins=n_bins, ece=ece,
        brier=float(np.mean((p - y) ** 2)), bins=bins, decision_curve=decision_curve(y, p),
        rule=str(op.get("rule", "")), calibration=str(op.get("calibration", "")) if op else "",
        operating=pd.DataFrame(rows), thresholds=thresholds)

