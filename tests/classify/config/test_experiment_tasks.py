"""The `tasks` and `uncertain` keys of an experiment: parsing and the combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.config.experiment import experiment_from_dict, load_experiment
from pipeline.errors import ConfigError
from tests.classify.config.test_experiment import _base

ROOT = Path(__file__).resolve().parents[3]


def test_tasks_toml_loads_five_findings():
    exp = load_experiment(ROOT / "experiments" / "tasks.toml")
    assert exp.tasks == ("opacity", "cardiomegaly", "atelectasis", "effusion", "nodule")
    assert exp.cv.folds == 5 and exp.cv.repeats == 2
    assert "minilm" not in exp.stores  # the full report would leak the labels


def test_without_tasks_nothing_changes():
    exp = experiment_from_dict(_base())
    assert exp.tasks is None and exp.task is None and exp.uncertain is None


def test_tasks_list_all_and_policy():
    assert experiment_from_dict(_base(tasks=["effusion", "nodule"])).tasks == ("effusion", "nodule")
    exp = experiment_from_dict(_base(tasks="all", uncertain="ones"))
    assert exp.tasks == "all" and exp.uncertain == "ones"
    per_task = experiment_from_dict(_base(tasks=["atelectasis", "effusion"],
                                          uncertain={"atelectasis": "ones"}))
    assert per_task.uncertain == (("atelectasis", "ones"),)


@pytest.mark.parametrize(("over", "match"), [
    ({"tasks": ["Effusion"]}, "not a valid task name"),
    ({"tasks": ["a", "a"]}, "lists a name twice"),
    ({"tasks": []}, "non-empty list"),
    ({"tasks": ["a"], "label_rule": "normal_vs_abnormal"}, "label_rule cannot be combined with tasks"),
    ({"tasks": ["a"], "positive_label": "a"}, "positive_label cannot be combined"),
    ({"tasks": ["a"], "uncertain": "maybe"}, "'uncertain' must be one of zeros, ones, ignore"),
    ({"uncertain": "ones"}, "add tasks"),
    ({"tasks": ["a"], "uncertain": {"a": "half"}}, "'uncertain.a' must be one of"),
    ({"tasks": ["a"], "uncertain": {"b": "ones"}}, r"uncertain names \['b'\], not tasks"),
])
def test_bad_tasks_are_config_errors(over, match):
    with pytest.raises(ConfigError, match=match):
        experiment_from_dict(_base(**over), "e.toml")


def test_holdout_with_tasks_is_refused_naming_both(tmp_path):
    from classify.config.experiment import experiment_from_dict
    from pipeline.errors import ConfigError

    cfg = {"name": "t", "dataset": "d", "manifest": str(tmp_path / "d.csv"),
           "tasks": ["effusion"], "holdout": {"fraction": 0.1}}
    with pytest.raises(ConfigError, match=r"\[holdout\].*cannot be combined with tasks"):
        experiment_from_dict(cfg, source="t")
