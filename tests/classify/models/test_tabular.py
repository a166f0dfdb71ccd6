"""Tabular blocks in classify: fold-safe imputation/encoding/scaling before fusion (canary), layout, contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from classify.config.experiment import experiment_from_dict
from classify.models.tabular_blocks import BlockPreprocessor
from classify.run.benchmark import run_benchmark
from classify.run.split_plan import make_split_plan
from pipeline.errors import DataError
from pipeline.store.feature_store import store_path
from pipeline.store.tabular_writer import table_from_frame, tabular_provenance, write_store
from tests.classify.conftest import DATASET

TABLES = (("ctx", (("age", "numeric", 0), ("sex", "categorical", 2))),)
BLOCKS = (("img", 0, 3), ("ctx", 3, 5))


@parametrize_with_checks([BlockPreprocessor()])
def test_sklearn_common_checks(estimator, check):  # noqa: ANN001
    check(estimator)


def _toy() -> np.ndarray:
    return np.array([
        [0.1, 0.2, 0.3, 50.0, 0.0],
        [0.4, 0.5, 0.6, np.nan, 1.0],
        [0.7, 0.8, 0.9, 70.0, np.nan],
        [1.0, 1.1, 1.2, 90.0, 1.0],
    ])


def test_layout_imputation_one_hot_and_indicators() -> None:
    prep = BlockPreprocessor(BLOCKS, TABLES)
    # age -> value + missing; sex -> 2 one-hot + missing
    assert prep.output_blocks() == (("img", 0, 3), ("ctx", 3, 8))
    X = _toy()
    out = prep.fit(X).transform(X)
    assert out.shape == (4, 8)
    np.testing.assert_array_equal(out[:, :3], X[:, :3])  # embedding block untouched
    assert prep.medians_["ctx"][0] == 70.0
    age = np.array([50.0, 70.0, 70.0, 90.0])
    np.testing.assert_allclose(out[:, 3], (age - age.mean()) / age.std())
    np.testing.assert_array_equal(out[:, 4], [0, 1, 0, 0])  # age missing
    np.testing.assert_array_equal(out[:, 5:7], [[1, 0], [0, 1], [0, 0], [0, 1]])  # sex one-hot
    np.testing.assert_array_equal(out[:, 7], [0, 0, 1, 0])  # sex missing
    names = list(prep.get_feature_names_out())
    assert names[3:] == ["ctx__age", "ctx__age__missing", "ctx__sex=0", "ctx__sex=1",
                         "ctx__sex__missing"]


def test_statistics_come_from_the_fitted_rows_only() -> None:
    X = _toy()
    test_row = np.array([[9.0, 9.0, 9.0, 1e9, 1.0]])  # a canary value a test row carries
    prep = BlockPreprocessor(BLOCKS, TABLES).fit(X)
    before = (prep.medians_["ctx"].copy(), prep.means_["ctx"].copy(), prep.scales_["ctx"].copy())
    prep.transform(np.vstack([X, test_row]))  # predicting never refits
    for a, b in zip(before, (prep.medians_["ctx"], prep.means_["ctx"], prep.scales_["ctx"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.nanmax(prep.medians_["ctx"]) < 1e3 and np.nanmax(prep.means_["ctx"]) < 1e3


def test_nan_is_refused_in_embedding_blocks_and_bad_codes_in_categoricals() -> None:
    X = _toy()
    X[0, 1] = np.nan
    with pytest.raises(DataError, match="embedding block 'img'"):
        BlockPreprocessor(BLOCKS, TABLES).fit(X)
    X = _toy()
    prep = BlockPreprocessor(BLOCKS, TABLES).fit(X)
    X[0, 4] = 5.0
    with pytest.raises(DataError, match="category code"):
        prep.transform(X)


def _tabular_store(project: dict) -> np.ndarray:
    """Store ``ctx``: ``rowid`` = the row number (the canary), ``score`` informative with
    missing values, ``group`` categorical."""
    ids, y = project["ids"], project["y"]
    n = len(ids)
    rng = np.random.default_rng(5)
    score = np.where(rng.random(n) < 0.2, np.nan, y + rng.normal(0, 0.5, n))
    frame = pd.DataFrame({"sample_id": ids, "rowid": np.arange(n, dtype=float),
                          "score": score,
                          "group": np.where(rng.random(n) < 0.1, None,
                                            np.where(y == 1, "b", "a"))})
    table = table_from_frame(frame, source="toy table")
    prov = tabular_provenance("ctx", table, dataset=DATASET, modality="tabular",
                              architecture="toy", weights_name="toy", preprocessing={})
    write_store(store_path(project["features"], DATASET, "ctx"), prov, list(table.ids),
                table.values)
    return np.arange(n)


def test_preprocessor_never_sees_test_rows_in_a_benchmark(toy_project, monkeypatch) -> None:
    _tabular_store(toy_project)
    seen: list[tuple[set[int], float]] = []
    original = BlockPreprocessor.fit

    def spy(self, X, y=None):  # noqa: ANN001, ANN202
        rows = np.asarray(X)[:, 0]  # 'rowid' is column 0 of the ctx block (first in the set)
        fitted = original(self, X, y)
        seen.append((set(rows.astype(int).tolist()), float(fitted.medians_["ctx"][1])))
        return fitted

    monkeypatch.setattr(BlockPreprocessor, "fit", spy)
    exp = experiment_from_dict(toy_project["config"](
        stores=["img", "ctx"], feature_sets={"ctx": ["ctx"], "fused": ["ctx", "img"]},
        fusions=["single", "concat"], samplers=["none"]))
    result = run_benchmark(exp, n_jobs=1)
    assert result.n_computed == 2
    plan = make_split_plan(np.array(toy_project["ids"], dtype=object),
                           np.where(toy_project["y"], "abnormal", "normal"),
                           [f"p{i // 2:03d}" for i in range(len(toy_project["ids"]))],
                           n_folds=3, n_repeats=2, seed=0)
    assert plan.hash == result.split.hash
    assert len(seen) == 2 * plan.n_splits
    from pipeline.store.feature_store import FeatureStore

    score = FeatureStore(store_path(toy_project["features"], DATASET, "ctx")).read(
        toy_project["ids"])[:, 1]
    trains = {(r, f): set(train.tolist()) for r, f, train, _ in plan.splits()}
    for rows, median in seen:
        match = [k for k, train in trains.items() if rows == train]
        assert match, "the preprocessor was fitted on rows that are not exactly a training fold"
        train = np.array(sorted(rows))
        assert median == pytest.approx(float(np.nanmedian(score[train])))
    for cell in result.cells:
        assert np.isfinite(cell.summary("roc_auc")[0])


def test_shared_prefix_runner_equals_cell_by_cell_with_a_tabular_block() -> None:
    from classify.results.types import CellSpec
    from classify.run.cell_task import run_split
    from classify.run.split_runner import run_split_group

    rng = np.random.default_rng(3)
    n = 80
    y = (rng.random(n) < 0.4).astype(np.int64)
    img = rng.normal(size=(n, 3)) + y[:, None]
    age = np.where(rng.random(n) < 0.2, np.nan, 50 + 10 * y + rng.normal(0, 5, n))
    sex = np.where(rng.random(n) < 0.2, np.nan, (rng.random(n) < 0.5).astype(float))
    X = np.column_stack([img, age, sex])
    train, test = np.arange(n)[np.arange(n) % 4 != 0], np.arange(n)[np.arange(n) % 4 == 0]
    specs = [CellSpec("f", ("img", "ctx"), ("image", "tabular"), "concat", "smote", c, {})
             for c in ("logistic", "knn")]
    args = (np.arange(5), BLOCKS, X, y, train, test)
    kw = dict(n_classes=2, positive=1, seed=0, tables=TABLES)
    shared = run_split_group(specs, *args, **kw)
    for spec, out in zip(specs, shared, strict=True):
        alone = run_split(spec, *args, **kw)
        np.testing.assert_array_equal(out["proba"], alone["proba"])


def test_fit_final_refuses_a_cell_on_a_tabular_store(toy_project, tmp_path) -> None:
    from classify.bundle import fit_final
    from pipeline.errors import ConfigError

    _tabular_store(toy_project)
    exp = experiment_from_dict(toy_project["config"](
        stores=["img", "ctx"], feature_sets={"ctx": ["ctx"], "image": ["img"]},
        fusions=["single"], samplers=["none"]))
    run_benchmark(exp)
    with pytest.raises(ConfigError, match="'ctx' is a tabular store"):
        fit_final(exp, cell="ctx/single/none/logistic", models_root=tmp_path / "models")
    bundle = fit_final(exp, cell="image/single/none/logistic", models_root=tmp_path / "models")
    assert bundle is not None
