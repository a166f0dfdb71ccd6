"""Fusion transformers: sklearn contract, pipelines, attention behaviour, no eager torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from classify.models.fusion import FUSIONS, AttentionFusion, ConcatFusion, build_fusion
from classify.models.samplers import FoldSampler
from pipeline.errors import ConfigError

BLOCKS = (("sig", 0, 8), ("noise", 8, 20))


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sig = rng.normal(size=(n, 8)) + 1.5 * y[:, None] * (np.arange(8) < 3)
    noise = rng.normal(size=(n, 12)) * 3.0
    return np.hstack([sig, noise]), y


@pytest.mark.parametrize("name", ["concat", "weighted_sum", "attention"])
def test_clone_and_pipeline(name):
    X, y = _data()
    params = {"epochs": 3} if name == "attention" else {}
    f = build_fusion(name, BLOCKS, random_state=0, **params)
    c = clone(f)
    assert c.get_params() == f.get_params()
    pipe = Pipeline([("fusion", c), ("sampler", FoldSampler("smote")),
                     ("clf", LogisticRegression())])
    pipe.fit(X[:200], y[:200])
    assert pipe.predict_proba(X[200:]).shape == (100, 2)
    assert not hasattr(f, "n_features_in_")  # clone left the original unfitted


def test_single_and_concat_shapes():
    X, y = _data()
    assert build_fusion("single", (("a", 0, 20),)).fit_transform(X).shape == (300, 20)
    with pytest.raises(ConfigError, match="use a feature set with one store"):
        build_fusion("single", BLOCKS).fit(X)
    assert build_fusion("single", BLOCKS, block="noise").fit_transform(X).shape == (300, 12)
    Z = ConcatFusion(BLOCKS, reduce="pca", n_components=4).fit_transform(X)
    assert Z.shape == (300, 8)
    Z = ConcatFusion(BLOCKS, reduce="ica", n_components=3).fit_transform(X)
    assert Z.shape == (300, 6)
    np.testing.assert_allclose(ConcatFusion(BLOCKS, standardize=False).fit_transform(X), X)


@pytest.mark.parametrize("reduce", ["pca", "ica"])
@pytest.mark.parametrize("standardize", [True, False])
def test_single_reduces_its_block_exactly_as_concat_reduces_each_block(reduce, standardize):
    """'image alone' with the concat fusion's per-block setting sees the same image columns
    as 'image + text' does (the demo compares modalities this way)."""
    X, y = _data()
    kw = {"reduce": reduce, "n_components": 4, "standardize": standardize, "random_state": 0}
    single = build_fusion("single", BLOCKS, block="noise", **kw).fit(X[:200], y[:200])
    concat = ConcatFusion(BLOCKS, **kw).fit(X[:200], y[:200])
    np.testing.assert_array_equal(single.transform(X[200:]), concat.transform(X[200:])[:, 4:])
    assert single.transform(X).shape == (300, 4)
    # no reduce: the block itself, whatever `standardize` says
    np.testing.assert_array_equal(
        build_fusion("single", BLOCKS, block="sig", standardize=True).fit_transform(X), X[:, :8])
    with pytest.raises(ConfigError, match="unknown reduce 'svd' for fusion 'single'"):
        build_fusion("single", BLOCKS, block="sig", reduce="svd").fit(X)


def test_attention_prefers_informative_modality_and_is_deterministic():
    X, y = _data(n=400)
    f = AttentionFusion(BLOCKS, dim=8, epochs=60, random_state=0).fit(X, y)
    assert list(f.modality_names_) == ["sig", "noise"]
    w = f.modality_weights_
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > 0.6 > w[1], w
    Z = f.transform(X)
    assert Z.shape == (400, 8)
    g = AttentionFusion(BLOCKS, dim=8, epochs=60, random_state=0).fit(X, y)
    np.testing.assert_array_equal(Z, g.transform(X))
    att = f.attention_weights(X[:5])
    np.testing.assert_allclose(att.sum(1), 1.0)


def test_unknown_fusion_and_param():
    with pytest.raises(KeyError, match="Did you mean 'concat'"):
        FUSIONS.get("concatt")
    with pytest.raises(ConfigError, match="Valid parameters: .*n_components"):
        build_fusion("concat", BLOCKS, n_comp=3)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_classify_does_not_import_torch_eagerly():
    code = ("import sys; import classify.run.benchmark, classify.models.fusion, classify.analysis.stats, "
            "classify.report.console, classify.analysis.ablation.modalities, classify.config.experiment; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_weighted_sum_weights_select_and_mix_the_blocks():
    """Weight 1/0 reproduces one block's projection; weights are shares (scale-free)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from classify.models.fusion import WeightedSumFusion

    X, y = _data(n=200)
    only_sig = WeightedSumFusion(BLOCKS, weights=[1.0, 0.0], dim=4).fit(X)
    Z = only_sig.transform(X)
    # the same as standardising + PCA of the first block alone, divided by its overall std
    S = StandardScaler().fit_transform(X[:, :8])
    P = PCA(n_components=4, random_state=0).fit(S).transform(S)
    np.testing.assert_allclose(Z, P / P.std(), atol=1e-10)
    # the noise block does not move the output when its weight is 0
    X2 = X.copy()
    X2[:, 8:] = np.random.default_rng(5).normal(size=(200, 12))
    np.testing.assert_allclose(only_sig.transform(X2), Z, atol=1e-10)
    # weights are normalised: (2, 2) == (1, 1); the equal mix is the mean of the two projections
    eq = WeightedSumFusion(BLOCKS, weights=[1, 1], dim=4).fit(X).transform(X)
    np.testing.assert_allclose(WeightedSumFusion(BLOCKS, weights=[2, 2], dim=4).fit(X)
                               .transform(X), eq)
    only_noise = WeightedSumFusion(BLOCKS, weights=[0.0, 1.0], dim=4).fit(X).transform(X)
    np.testing.assert_allclose(eq, 0.5 * Z + 0.5 * only_noise, atol=1e-10)
    # the informative block carries the class signal, the noise block does not
    gap = lambda Z: np.linalg.norm(Z[y == 1].mean(0) - Z[y == 0].mean(0))  # noqa: E731
    assert gap(Z) > 1.0 and gap(Z) > 3 * gap(only_noise)
    with pytest.raises(ConfigError, match="2 non-negative numbers"):
        WeightedSumFusion(BLOCKS, weights=[1.0, -1.0]).fit(X)
