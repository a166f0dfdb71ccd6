"""Nested tuning: search spaces, keys, stored choices, tuned vs default, and a leak canary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from classify.analysis.analyse import tuning_of
from classify.config.experiment import experiment_from_dict
from classify.config.search_spaces import DEFAULT_SPACES, resolve_space
from classify.models.cell_pipeline import build_pipeline
from classify.results.types import CellSpec
from classify.run.benchmark import run_benchmark
from classify.run.procedure.tuning import pipeline_names, tune_split
from classify.run.split_plan import make_split_plan
from pipeline.errors import ConfigError
from tests.classify import _canary
from tests.classify.conftest import render_report

TUNING = {"enabled": True, "search": "random", "budget": 3, "inner_folds": 2}


def test_default_spaces_cover_every_classifier_and_resolve_to_pipeline_names():
    for clf in (*DEFAULT_SPACES, "voting_soft", "voting_hard"):
        space = resolve_space(clf, {})
        for sampler in ("smote", "class_weight"):  # class_weight wraps xgboost / mlp
            spec = CellSpec("f", ("a",), ("image",), "single", sampler, clf, {})
            names = pipeline_names(build_pipeline(spec, (("a", 0, 4),)), space)
            assert set(names) == set(space)
    assert set(resolve_space("voting_soft", {}, ["logistic", "knn"])) == {
        "knn__n_neighbors", "knn__weights", "logistic__C"}
    over = resolve_space("logistic", {"logistic": {"C": [0.1, 1.0]}})
    assert over == {"C": [0.1, 1.0]}
    assert resolve_space("knn", {})["n_neighbors"] == {"low": 3, "high": 50, "log": False,
                                                        "type": "int"}


def test_tuning_section_validation(toy_project):
    cfg = toy_project["config"]
    with pytest.raises(ConfigError, match="tuning.search 'grid'"):
        experiment_from_dict(cfg(tuning={"search": "grid"}))
    with pytest.raises(ConfigError, match="tuning.budget must be an integer >= 1"):
        experiment_from_dict(cfg(tuning={"budget": 0}))
    with pytest.raises(ConfigError, match="tuning.space.logistic.C: needs numbers low < high"):
        experiment_from_dict(cfg(tuning={"space": {"logistic": {"C": {"low": 1, "high": 0.1}}}}))
    with pytest.raises(ConfigError, match="unknown key tuning.budgt"):
        experiment_from_dict(cfg(tuning={"budgt": 3}))
    assert experiment_from_dict(cfg(tuning={"enabled": False})).tuning is None


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_tuned_cells_sit_next_to_unchanged_default_cells(toy_project, tmp_path):
    base = dict(feature_sets={"image": ["img"]}, fusions=["single"], classifiers=["logistic"])
    plain = run_benchmark(experiment_from_dict(toy_project["config"](**base)))
    exp = experiment_from_dict(toy_project["config"](**base, tuning=TUNING))
    tuned = run_benchmark(exp)
    assert [c.label for c in tuned.cells] == ["image/single/smote/logistic",
                                              "image/single/smote/logistic+tuned"]
    assert tuned.cells[0].key == plain.cells[0].key and tuned.cells[0].status == "reused"
    cell = tuned.cells[1]
    chosen = [json.loads(p) for p in cell.folds["tuned_params"]]
    assert len(chosen) == 6 and all(set(c) == {"C"} and 1e-3 <= c["C"] <= 10 for c in chosen)
    assert (cell.folds["tuning_seconds"] > 0).all()
    # stored and reused as they are; another budget is another cell
    again = run_benchmark(exp)
    assert again.n_computed == 0
    pd.testing.assert_frame_equal(again.cells[1].folds, cell.folds, check_dtype=False)
    other = experiment_from_dict(toy_project["config"](**base, tuning={**TUNING, "budget": 4}))
    from classify.run.benchmark import expand_grid, load_feature_set

    fs, _ = load_feature_set(other)
    assert expand_grid(other, fs)[1].params["tuning"]["budget"] == 4
    # tuned vs default, with the tuning cost, in the report
    summary = tuning_of(tuned, "roc_auc")
    row = summary.table.iloc[0]
    assert row["default"] == "image/single/smote/logistic" and row["tuning_seconds"] > 0
    assert np.isfinite(row["nb_p"]) and row["decision"] in (
        "tuned better", "default better", "equivalent", "undecided")
    assert list(summary.spread["param"]) == ["C"]
    paths = render_report(tuned, tmp_path, comparisons=(), ablation=None)
    section = paths["html"].read_text().split('id="tuning"')[1].split("</section>")[0]
    assert "Tuned vs default on roc_auc" in section and "image/single/smote/logistic+tuned" in section
    assert len(pd.read_csv(paths["csv_dir"] / "tuned-params.csv")) == 6


def test_tuning_never_sees_a_test_row(toy_project):
    _canary.RECORDS.clear()
    exp = experiment_from_dict(toy_project["config"](
        feature_sets={"image": ["img"]}, fusions=["leak_canary"], samplers=["smote"],
        tuning={**TUNING, "budget": 2}, operating_point={"rule": "youden", "inner_folds": 2}))
    res = run_benchmark(exp, n_jobs=1)
    assert [c.label for c in res.cells] == ["image/leak_canary/smote/logistic",
                                            "image/leak_canary/smote/logistic+tuned"]
    plan = make_split_plan(np.asarray(toy_project["ids"]),
                           np.where(toy_project["y"], "abnormal", "normal"),
                           [f"p{i // 2:03d}" for i in range(len(toy_project["ids"]))],
                           n_folds=3, n_repeats=2, seed=0)
    splits = [(train, test) for _, _, train, test in plan.splits()]
    n = _canary.check_records(_canary.RECORDS, splits + splits)  # default cell, then tuned
    # tuned cell: 2 candidates x 2 inner folds (fit + predict) before the outer fit
    assert n >= 2 * len(splits) * 2 + len(splits) * 2 * 2 * 2


@pytest.mark.parametrize("search", ["halving", "optuna"])
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_other_search_methods(search):
    if search == "optuna":
        pytest.importorskip("optuna")
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=120) < 0.4).astype(int)
    X = rng.normal(size=(120, 6)) + y[:, None]
    spec = CellSpec("f", ("a",), ("image",), "single", "smote", "logistic", {})
    cfg = {"search": search, "budget": 3, "inner_folds": 3, "metric": "roc_auc",
           "space": resolve_space("logistic", {})}
    best, chosen, score = tune_split(lambda: build_pipeline(spec, (("a", 0, 6),)), X, y,
                                     np.arange(120) // 2, cfg, positive=1, n_classes=2, seed=0)
    assert set(best) == {"classifier__C"} and 1e-3 <= chosen["C"] <= 10 and score > 0.7


def test_random_search_honours_log_for_integer_ranges() -> None:
    """Issue 21.6: `log = true` on an int range must sample log-uniformly (random/halving
    search ignored it: n_neighbors in [1, 1000] had a median near 500)."""
    from sklearn.model_selection import ParameterSampler

    from classify.run.procedure.tuning import search_distributions

    space = {"n_neighbors": {"low": 1, "high": 1000, "type": "int", "log": True}}
    draws = [p["n_neighbors"] for p in ParameterSampler(search_distributions(space), 2000,
                                                        random_state=0)]
    assert all(isinstance(v, int) and 1 <= v <= 1000 for v in draws)
    assert 15 < np.median(draws) < 65  # log-uniform: about sqrt(1000) = 32, uniform: 500
    assert min(draws) <= 2 and max(draws) >= 800
    linear = {"n_neighbors": {"low": 1, "high": 1000, "type": "int", "log": False}}
    draws = [p["n_neighbors"] for p in ParameterSampler(search_distributions(linear), 2000,
                                                        random_state=0)]
    assert 400 < np.median(draws) < 600


def test_stored_tuning_score_of_brier_is_the_brier_score() -> None:
    """Issue 21.6: the inner score of a Brier-tuned search is reported as a Brier score (>= 0),
    not its negative (the search maximises -Brier internally)."""
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=120) < 0.4).astype(int)
    X = rng.normal(size=(120, 6)) + y[:, None]
    spec = CellSpec("f", ("a",), ("image",), "single", "none", "logistic", {})
    cfg = {"search": "random", "budget": 2, "inner_folds": 3, "metric": "brier",
           "space": resolve_space("logistic", {})}
    _, _, score = tune_split(lambda: build_pipeline(spec, (("a", 0, 6),)), X, y,
                             np.arange(120) // 2, cfg, positive=1, n_classes=2, seed=0)
    assert 0 < score < 0.25


def test_a_classifier_only_search_fits_the_prefix_once_per_inner_training_part(monkeypatch):
    """Issue 25: every candidate refitted the same fusion/scaler/SMOTE on the same inner rows;
    with the prefix cached it is fitted once per inner fold, and the search chooses the same."""
    from classify.models.fusion.simple import SingleFusion

    rng = np.random.default_rng(0)
    y = (rng.uniform(size=120) < 0.4).astype(int)
    X = rng.normal(size=(120, 6)) + y[:, None]
    spec = CellSpec("f", ("a",), ("image",), "single", "smote", "logistic", {})
    cfg = {"search": "random", "budget": 5, "inner_folds": 3, "metric": "roc_auc",
           "space": resolve_space("logistic", {})}
    fits = []
    original = SingleFusion.fit

    def counting_fit(self, X, y=None):
        fits.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(SingleFusion, "fit", counting_fit)

    def search():
        fits.clear()
        out = tune_split(lambda: build_pipeline(spec, (("a", 0, 6),)), X, y,
                         np.arange(120) // 2, cfg, positive=1, n_classes=2, seed=0)
        return out, len(fits)

    cached, n_cached = search()
    assert n_cached == 3  # one per inner training part, not 5 candidates x 3
    monkeypatch.setattr("joblib.Memory.cache", lambda self, func, **kw: func)  # no cache
    uncached, n_uncached = search()
    assert n_uncached == 15
    assert cached == uncached  # same choice, same inner score
