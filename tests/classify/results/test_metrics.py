"""Fold metrics against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from classify.results.metrics import METRICS, score_fold


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p1 = np.clip(y * 0.4 + rng.uniform(0, 0.6, 50), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    s = score_fold(y, proba, positive=1)
    pred = (p1 > 0.5).astype(int)
    assert set(s) == set(METRICS)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert s["f1_binary"] == pytest.approx(skm.f1_score(y, pred))
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert s["pr_auc"] == pytest.approx(skm.average_precision_score(y, p1))
    assert s["brier"] == pytest.approx(skm.brier_score_loss(y, p1))
    assert s["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    # positive = class 0 flips the binary metrics
    s0 = score_fold(y, proba, positive=0)
    assert s0["roc_auc"] == pytest.approx(skm.roc_auc_score(1 - y, 1 - p1))


def test_multiclass_metrics():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 10)
    proba = rng.dirichlet([1, 1, 1], 30)
    proba[np.arange(30), y] += 0.5
    proba /= proba.sum(1, keepdims=True)
    s = score_fold(y, proba, positive=None)
    assert np.isnan(s["f1_binary"])
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert s["brier"] == pytest.approx(np.mean(((proba - np.eye(3)[y]) ** 2).sum(1)))
