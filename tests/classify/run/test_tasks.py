"""Many tasks in one experiment: each task's own rows, saved plan and cell keys; shared store reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import load_benchmark, run_benchmark
from classify.run.tasks import run_tasks, task_experiment
from pipeline.errors import ConfigError
from pipeline.manifest import load_manifest, save_manifest

#: rows of task "b" whose label is unknown: left out of "b" only
MISSING_B = 12


@pytest.fixture
def tasks_project(toy_project):
    """The toy project's manifest with two task columns: ``label:a`` (the toy labels) and
    ``label:b`` (another finding, unknown on the first MISSING_B rows)."""
    m = load_manifest(toy_project["manifest"])
    b = np.where(np.random.default_rng(7).random(len(m.frame)) < 0.3, "1", "0").astype(object)
    b[:MISSING_B] = ""
    frame = m.frame.assign(**{"label:a": np.where(toy_project["y"], "1", "0"), "label:b": b})
    save_manifest(type(m)(m.name, frame, m.image_root, m.meta), toy_project["manifest"])
    toy_project["tasks_config"] = lambda **over: toy_project["config"](
        **{"tasks": ["a", "b"], "positive_label": None, "samplers": ["none"],
           "cv": {"folds": 3, "repeats": 1, "seed": 0}, **over})
    return toy_project


def _exp(project, **over):
    cfg = {k: v for k, v in project["tasks_config"](**over).items() if v is not None}
    return experiment_from_dict(cfg)


def test_each_task_has_its_rows_plan_and_cell_keys(tasks_project):
    exp = _exp(tasks_project)
    run = run_tasks(exp)
    a, b = run.benchmark("a"), run.benchmark("b")
    n = len(tasks_project["ids"])
    assert a.data.n_samples == n
    assert b.data.n_samples == n - MISSING_B  # missing for b only
    assert len(b.data.dropped["label:b: missing"]) == MISSING_B
    assert a.data.positive_label == "a" and b.data.positive_label == "b"
    assert a.data.class_counts["a"] == int(tasks_project["y"].sum())
    # one saved, stratified patient-grouped plan per task
    plans = sorted(p.name for p in (exp.results_dir / "splits").glob("*.csv"))
    assert len(plans) == 2 and plans[0].startswith("task-a") and plans[1].startswith("task-b")
    assert a.split.hash != b.split.hash and a.split.n_samples == n
    # cells keyed by task: same grid, disjoint keys
    assert [c.label for c in a.cells] == [c.label for c in b.cells]
    assert not {c.key for c in a.cells} & {c.key for c in b.cells}
    assert a.label_rule.startswith("task:a|") and b.label_rule.startswith("task:b|")


def test_a_rerun_reuses_every_cell_of_every_task(tasks_project):
    exp = _exp(tasks_project)
    first = run_tasks(exp)
    again = run_tasks(exp)
    assert all(t.benchmark.n_computed == 0 for t in again.tasks)
    assert all(t.benchmark.n_reused == len(t.benchmark.cells) for t in again.tasks)
    for t1, t2 in zip(first.tasks, again.tasks, strict=True):
        assert [c.key for c in t1.benchmark.cells] == [c.key for c in t2.benchmark.cells]
        assert t1.benchmark.split.hash == t2.benchmark.split.hash
    loaded = run_tasks(exp, compute=False)
    assert loaded.benchmark("b").n_computed == 0


def test_a_task_equals_its_single_task_experiment(tasks_project):
    """The per-task loop is the single-task machinery: the same cell keys and scores as the
    task's own experiment run alone."""
    exp = _exp(tasks_project)
    run = run_tasks(exp)
    alone = run_benchmark(task_experiment(exp, "b"))
    assert [c.key for c in alone.cells] == [c.key for c in run.benchmark("b").cells]
    assert alone.n_computed == 0  # found the multi-task run's cells
    fitted = load_benchmark(task_experiment(exp, "b"))
    pd.testing.assert_frame_equal(fitted.cells[0].scores, run.benchmark("b").cells[0].scores)


def test_stores_are_opened_and_read_once_for_all_tasks(tasks_project, monkeypatch):
    from pipeline.store import feature_store

    calls = {"open": 0, "read": 0}
    real_init, real_read = feature_store.FeatureStore.__init__, feature_store.FeatureStore.read

    def counting_init(self, *args, **kwargs):
        calls["open"] += 1
        real_init(self, *args, **kwargs)

    def counting_read(self, *args, **kwargs):
        calls["read"] += 1
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(feature_store.FeatureStore, "__init__", counting_init)
    monkeypatch.setattr(feature_store.FeatureStore, "read", counting_read)
    run_tasks(_exp(tasks_project))
    assert calls == {"open": 2, "read": 2}  # two stores, two tasks


def test_single_task_path_refuses_a_multi_task_experiment(tasks_project):
    with pytest.raises(ConfigError, match="lists tasks"):
        run_benchmark(_exp(tasks_project))


def test_unknown_task_names_the_tasks(tasks_project):
    with pytest.raises(ConfigError, match="did you mean 'b'|Did you mean 'b'"):
        task_experiment(_exp(tasks_project), "bb")


def test_all_takes_every_label_column(tasks_project):
    run = run_tasks(_exp(tasks_project, tasks="all"), dry_run=True)
    assert run.names == ("a", "b")


def test_tasks_from_tags(toy_project):
    """Without label:<task> columns a task is its finding read off the tags."""
    cfg = toy_project["config"](tasks=["cardiomegaly"], samplers=["none"],
                                cv={"folds": 3, "repeats": 1, "seed": 0})
    cfg.pop("positive_label")
    bench = run_tasks(experiment_from_dict(cfg)).benchmark("cardiomegaly")
    assert bench.data.class_counts == {"cardiomegaly": int(toy_project["y"].sum()),
                                       "other": int((1 - toy_project["y"]).sum())}
