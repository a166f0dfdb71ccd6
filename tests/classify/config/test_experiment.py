"""Experiment TOML loading and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.config.experiment import default_feature_sets, experiment_from_dict, load_experiment
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _base(**over):
    cfg = {"dataset": "d", "stores": ["a", "b"], "feature_sets": {"x": ["a"], "y": ["a", "b"]},
           "fusions": ["single", "concat"], "classifiers": ["logistic"]}
    cfg.update(over)
    return cfg


def test_demo_toml_loads():
    exp = load_experiment(ROOT / "experiments" / "demo.toml")
    assert exp.dataset == "openi_demo"
    assert exp.stores == ("efficientnet_lite0", "minilm")
    assert exp.feature_sets["fused"] == ("efficientnet_lite0", "minilm")
    assert exp.results_dir == Path("artifacts/results/openi_demo")


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"classifer": ["knn"]}, r"unknown key 'classifer'. Did you mean 'classifiers'"),
        ({"classifiers": ["xgbost"]}, r"classifiers\[0\]: unknown classifier 'xgbost'. Did you mean 'xgboost'"),
        ({"fusions": ["atention"]}, r"Did you mean 'attention'"),
        ({"samplers": ["smot"]}, r"samplers\[0\].*Did you mean 'smote'"),
        ({"metrics": ["roc"]}, r"metrics\[0\]: unknown metric 'roc'"),
        ({"cv": {"folds": 1}}, r"cv.folds' must be an integer >= 2"),
        ({"cv": {"fold": 5}}, r"unknown key cv.'fold'. Did you mean 'folds'"),
        ({"feature_sets": {"x": ["c"]}}, r"feature_sets.x uses store 'c' which is not in stores"),
        ({"params": {"classifier": {"knn": {"n_neighbours": 3}}}}, r"params.classifier.knn"),
        ({"params": {"fusion": {"concat": {"reduce": "pca", "k": 3}}}}, r"params.fusion.concat"),
        ({"params": {"model": {}}}, r"unknown key params.'model'"),
        ({"label_rule": "nonsense_rule"}, r"label_rule"),
        ({"fusions": ["attention"], "feature_sets": {"x": ["a"]}}, r"no fusion .* applies"),
    ],
)
def test_bad_config_errors_name_the_key(over, match):
    with pytest.raises(ConfigError, match=match):
        experiment_from_dict(_base(**over), "exp.toml")


def test_defaults_and_toml_errors(tmp_path):
    exp = experiment_from_dict({"dataset": "d", "stores": ["a", "b"]})
    assert exp.feature_sets == default_feature_sets(["a", "b"]) == {
        "a": ("a",), "b": ("b",), "fused": ("a", "b")}
    assert exp.stores == ("a", "b")
    assert experiment_from_dict({"dataset": "d"}).stores is None  # "all"
    bad = tmp_path / "bad.toml"
    bad.write_text("dataset = ")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path / "missing.toml")


def test_equivalence_section():
    exp = experiment_from_dict(_base())
    assert exp.equivalence.rope_for("roc_auc") == 0.01
    assert exp.equivalence.decision_probability == 0.95
    exp = experiment_from_dict(_base(equivalence={"rope": {"brier": 0.005},
                                                  "decision_probability": 0.9}))
    assert exp.equivalence.rope_for("brier") == 0.005 and exp.equivalence.rope_for("mcc") == 0.01
    with pytest.raises(ConfigError, match="equivalence.rope must be a number"):
        experiment_from_dict(_base(equivalence={"rope": "small"}))
    with pytest.raises(ConfigError, match="unknown key equivalence.rop. Did you mean 'rope'"):
        experiment_from_dict(_base(equivalence={"rop": 0.01}))
    with pytest.raises(ConfigError, match="equivalence.rope.roc_acu: unknown metric"):
        experiment_from_dict(_base(equivalence={"rope": {"roc_acu": 0.01}}))


def test_tuning_toml_loads():
    exp = load_experiment(ROOT / "experiments" / "tuning.toml")
    assert exp.tuning is not None and exp.tuning.search == "random" and exp.tuning.budget == 10
    assert exp.operating_point.rule == "sensitivity=0.9"
    assert exp.equivalence.rope_for("roc_auc") == 0.01
