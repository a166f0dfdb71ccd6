"""Probability calibration of a binary cell's positive-class scores (``[operating_point]``).

:class:`ProbabilityCalibrator` is a scikit-learn style estimator fitted on inner
out-of-fold probabilities (never on the rows it will calibrate):

* ``sigmoid``  Platt scaling on the logit: ``expit(a * logit(p) + b)`` (a logistic
  regression with a negligible penalty on ``logit(p)``);
* ``isotonic`` a monotone step-linear map (scikit-learn's ``IsotonicRegression``, clipped
  to the fitted range), kept as its breakpoints.

Its learned state is a few numbers (:meth:`ProbabilityCalibrator.to_record`), so a model
bundle stores it in the model card and ``pipeline predict`` applies exactly the map the
final fit learned (:meth:`ProbabilityCalibrator.from_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from pipeline.errors import ConfigError

#: Calibration methods (``none`` means no calibrator).
METHODS = ("sigmoid", "isotonic")


def _logit(q: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(q, float), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


class ProbabilityCalibrator(BaseEstimator):
    """A monotone map of positive-class probabilities to calibrated ones.

    Args:
        method: ``sigmoid`` or ``isotonic``.

    Attributes (after :meth:`fit`):
        coef_, intercept_: the sigmoid's ``a`` and ``b`` (sigmoid only).
        x_, y_: the isotonic breakpoints (isotonic only).
    """

    def __init__(self, method: str = "sigmoid") -> None:
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
        """Learn the map from scores ``p`` and 0/1 labels ``y``."""
        p, y = np.asarray(p, float).ravel(), np.asarray(y, int).ravel()
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            self.x_ = np.asarray(iso.X_thresholds_, float)
            self.y_ = np.asarray(iso.y_thresholds_, float)
        elif self.method == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
            self.coef_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        else:
            raise ConfigError(f"calibration {self.method!r}: use one of {', '.join(METHODS)}")
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of scores ``p`` (same shape)."""
        p = np.asarray(p, float)
        if self.method == "isotonic":
            return np.clip(np.interp(p, self.x_, self.y_), 0.0, 1.0)
        z = self.coef_ * _logit(p) + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))

    def to_record(self) -> dict[str, Any]:
        """The method and learned numbers, JSON-able (the model card's ``calibration``)."""
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}
        return {"method": "sigmoid", "coef": self.coef_, "intercept": self.intercept_}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ProbabilityCalibrator:
        """The fitted calibrator a :meth:`to_record` describes."""
        cal = cls(str(record["method"]))
        if cal.method == "isotonic":
            cal.x_ = np.asarray(record["x"], float)
            cal.y_ = np.asarray(record["y"], float)
        elif cal.method == "sigmoid":
            cal.coef_, cal.intercept_ = float(record["coef"]), float(record["intercept"])
        else:
            raise ConfigError(f"calibration {cal.method!r}: use one of {', '.join(METHODS)}")
        return cal
