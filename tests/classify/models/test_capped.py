"""``knn_capped``: kNN on a capped, class-stratified subsample of the training rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from classify.models.classifiers import build_classifier, classifier_parameters
from pipeline.errors import ConfigError


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return rng.normal(size=(n, 5)) + y[:, None], y


def test_cap_keeps_each_class_share_and_is_seeded() -> None:
    X, y = _data()
    a = build_classifier("knn_capped", random_state=3, max_train_rows=100).fit(X, y)
    b = build_classifier("knn_capped", random_state=3, max_train_rows=100).fit(X, y)
    assert 95 <= a.n_rows_used_ <= 100
    used = a.estimator_._fit_X
    assert np.array_equal(used, b.estimator_._fit_X)  # same seed, same rows
    kept = a.estimator_._y
    assert abs(kept.mean() - y.mean()) < 0.02  # class shares kept
    c = build_classifier("knn_capped", random_state=4, max_train_rows=100).fit(X, y)
    assert not np.array_equal(used, c.estimator_._fit_X)


def test_under_the_cap_it_is_plain_knn() -> None:
    X, y = _data()
    X_test, _ = _data(seed=1)  # (X itself would take pairwise_distances' X-is-Y path)
    capped = build_classifier("knn_capped").fit(X, y)  # default cap 20,000 > 300 rows
    plain = build_classifier("knn").fit(X, y)
    assert capped.n_rows_used_ == len(y)
    np.testing.assert_array_equal(capped.predict_proba(X_test), plain.predict_proba(X_test))


def test_knn_parameters_pass_through_and_bad_ones_are_named() -> None:
    assert {"n_neighbors", "max_train_rows"} <= set(classifier_parameters("knn_capped"))
    est = build_classifier("knn_capped", n_neighbors=3, max_train_rows=50)
    assert clone(est).estimator.n_neighbors == 3 and est.max_rows == 50
    with pytest.raises(ConfigError, match="max_rows"):
        build_classifier("knn_capped", max_rows=5)
    with pytest.raises(ConfigError, match=">= 2"):
        build_classifier("knn_capped", max_train_rows=1).fit(*_data())
