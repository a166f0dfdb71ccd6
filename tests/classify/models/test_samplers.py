"""Samplers: k adaptation, counts, class_weight, errors."""

from __future__ import annotations

import numpy as np
import pytest

from classify.models.cell_pipeline import build_pipeline, spec_notes
from classify.models.classifiers import CLASSIFIERS, build_classifier
from classify.models.samplers import SAMPLERS, FoldSampler
from classify.results.types import CellSpec
from pipeline.errors import DataError


def _xy(n_major=40, n_minor=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_major + n_minor, 5))
    y = np.array([0] * n_major + [1] * n_minor)
    return X, y


@pytest.mark.parametrize("name", ["smote", "borderline_smote", "smote_tomek", "adasyn"])
def test_k_neighbors_adapts_to_small_minority(name):
    X, y = _xy(n_minor=4)
    s = FoldSampler(name, {"k_neighbors": 5}, random_state=0)
    Xr, yr = s.fit_resample(X, y)
    assert s.k_neighbors_ == 3
    assert s.counts_before_ == {0: 40, 1: 4}
    assert s.counts_after_[1] > 4 and len(yr) == sum(s.counts_after_.values())
    assert any("k_neighbors reduced 5 -> 3" in n for n in s.notes_)


def test_single_minority_sample_raises():
    X, y = _xy(n_minor=1)
    with pytest.raises(DataError, match="only 1 sample"):
        FoldSampler("smote").fit_resample(X, y)


def test_none_under_and_class_weight():
    X, y = _xy()
    s = FoldSampler("none")
    Xr, yr = s.fit_resample(X, y)
    assert Xr is X and s.counts_after_ == s.counts_before_
    u = FoldSampler("random_under", random_state=0)
    u.fit_resample(X, y)
    assert u.counts_after_ == {0: 4, 1: 4}
    spec = CellSpec("f", ("a",), ("image",), "single", "class_weight", "logistic")
    pipe = build_pipeline(spec, (("a", 0, 5),))
    assert pipe.named_steps["classifier"].class_weight == "balanced"
    knn = CellSpec("f", ("a",), ("image",), "single", "class_weight", "knn")
    assert spec_notes(knn) and not spec_notes(spec)
    xgb = build_classifier("xgboost", balanced=True)
    xgb.fit(X, y)  # sample-weight wrapper
    assert xgb.predict_proba(X).shape == (44, 2)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_every_classifier_is_seeded_and_fits():
    X, y = _xy(n_major=30, n_minor=20)
    for entry in CLASSIFIERS:
        params = {"members": ["logistic", "knn"]} if entry.name.startswith("voting") else {}
        a = build_classifier(entry.name, random_state=3, **params).fit(X, y).predict_proba(X)
        b = build_classifier(entry.name, random_state=3, **params).fit(X, y).predict_proba(X)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a.sum(1), 1.0)
    assert set(SAMPLERS.names()) >= {"none", "smote", "borderline_smote", "adasyn",
                                     "smote_tomek", "random_under", "class_weight"}


def test_hard_vote_share_matches_predict():
    X, y = _xy(n_major=30, n_minor=20)
    v = build_classifier("voting_hard", members=["logistic", "knn", "decision_tree"]).fit(X, y)
    p = v.predict_proba(X)
    assert set(np.round(np.unique(p) * 3).astype(int)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(p.argmax(1), v.predict(X))
