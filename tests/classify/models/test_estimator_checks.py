"""Fusions and the fold sampler honour scikit-learn's estimator contract (its common checks).

No check is skipped: every fusion (with ``blocks=None``; attention then treats each column
as a modality) and :class:`FoldSampler` for ``none``, ``smote`` and ``class_weight`` pass
all of ``parametrize_with_checks`` (scikit-learn itself skips its array-API checks unless
``SCIPY_ARRAY_API=1`` is set).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from classify.models.fusion import (
    AttentionFusion,
    ConcatFusion,
    SingleFusion,
    WeightedSumFusion,
    build_fusion,
)
from classify.models.samplers import FoldSampler
from pipeline.errors import ConfigError

ESTIMATORS = [
    SingleFusion(),
    SingleFusion(reduce="pca", n_components=2),
    ConcatFusion(),
    ConcatFusion(reduce="pca", n_components=2),
    ConcatFusion(reduce="ica", n_components=2),
    WeightedSumFusion(dim=2),
    AttentionFusion(dim=2, epochs=2),
    FoldSampler("none"),
    FoldSampler("smote"),
    FoldSampler("class_weight"),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # FastICA on noise
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_common_checks(estimator, check):  # noqa: ANN001
    check(estimator)


BLOCKS = (("efficientnet_lite0", 0, 6), ("minilm", 6, 10))


def _xy(n: int = 60, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(size=(n, d)) + y[:, None], y


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("single", {"block": "minilm"}, ["minilm__dim0", "minilm__dim3"]),
    ("single", {"block": "minilm", "reduce": "pca", "n_components": 2}, ["minilm__pc0",
                                                                        "minilm__pc1"]),
    ("concat", {}, ["efficientnet_lite0__dim0", "minilm__dim3"]),
    ("concat", {"reduce": "pca", "n_components": 3}, ["efficientnet_lite0__pc0",
                                                       "efficientnet_lite0__pc2", "minilm__pc2"]),
    ("concat", {"reduce": "ica", "n_components": 2}, ["efficientnet_lite0__ic1", "minilm__ic0"]),
    ("weighted_sum", {"dim": 3}, ["weighted_sum__dim0", "weighted_sum__dim2"]),
    ("attention", {"dim": 12, "epochs": 2}, ["attention__dim0", "attention__dim11"]),
])
def test_feature_names_say_the_block(name, params, expected):  # noqa: ANN001
    X, y = _xy()
    f = build_fusion(name, BLOCKS, **params).fit(X, y)
    names = list(f.get_feature_names_out())
    assert len(names) == f.transform(X).shape[1]
    assert set(expected) <= set(names)


def test_refit_on_another_width_and_random_states():
    X, y = _xy(d=10)
    for est in (ConcatFusion(reduce="pca", n_components=2), WeightedSumFusion(dim=2),
                AttentionFusion(dim=2, epochs=2)):
        est.fit(X, y)
        est.fit(X[:, :6], y)  # refit on a narrower matrix resets the fitted width
        assert est.n_features_in_ == 6 and est.transform(X[:, :6]).shape[0] == len(X)
        with pytest.raises(ValueError, match="features"):
            est.transform(X)
        for rs in (None, 7, np.random.RandomState(7)):
            est.set_params(random_state=rs).fit(X, y)
    a = AttentionFusion(BLOCKS, dim=2, epochs=3, random_state=np.random.RandomState(3))
    b = AttentionFusion(BLOCKS, dim=2, epochs=3, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(a.fit(X, y).transform(X), b.fit(X, y).transform(X))


def test_fold_sampler_records_width_and_refuses_unknown_parameters():
    X, y = _xy()
    s = FoldSampler("none")
    s.fit_resample(X, y)
    assert s.n_features_in_ == X.shape[1]
    for method in ("none", "class_weight"):
        with pytest.raises(ConfigError, match="k_neighbours"):
            FoldSampler(method, {"k_neighbours": 3}).fit_resample(X, y)
