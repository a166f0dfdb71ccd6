"""End-to-end benchmark on tiny on-disk stores: leakage, determinism, caching, dry runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.config.experiment import experiment_from_dict
from classify.models.samplers import SAMPLERS
from classify.report.console import render_benchmark
from classify.run.benchmark import load_benchmark, run_benchmark
from classify.run.split_plan import make_split_plan
from pipeline.errors import ConfigError
from tests.classify.conftest import write_store


class _Canary:
    """Sampler that records (to files) the rows it is asked to resample."""

    def __init__(self, record_dir: str) -> None:
        self.record_dir = Path(record_dir)

    def fit_resample(self, X, y):
        rec = {"col0": np.asarray(X)[:, 0].tolist(), "n": int(len(y))}
        (self.record_dir / f"{uuid.uuid4().hex}.json").write_text(json.dumps(rec))
        return X, y


def _canary_factory(random_state: int, record_dir: str = "") -> _Canary:
    return _Canary(record_dir)


if "leak_canary" not in SAMPLERS:
    SAMPLERS.add("leak_canary", _canary_factory, uses_k=False)


def test_sampler_never_sees_test_rows(toy_project, tmp_path):
    rec = tmp_path / "canary"
    rec.mkdir()
    exp = experiment_from_dict(toy_project["config"](
        feature_sets={"image": ["img"]}, fusions=["single"], samplers=["leak_canary"],
        params={"sampler": {"leak_canary": {"record_dir": str(rec)}}},
    ))
    result = run_benchmark(exp, n_jobs=1)
    assert result.n_computed == 1
    plan = make_split_plan(result.cells[0].oof.sort_values("sample_id")["sample_id"].unique(),
                           np.where(toy_project["y"], "abnormal", "normal"),
                           [f"p{i // 2:03d}" for i in range(len(toy_project["ids"]))],
                           n_folds=3, n_repeats=2, seed=0)
    assert plan.hash == result.split.hash
    row_id = toy_project["img"][:, 0].astype(float)
    records = [json.loads(p.read_text()) for p in rec.glob("*.json")]
    assert len(records) == plan.n_splits
    matched = set()
    for record in records:
        seen = np.asarray(record["col0"])  # standardised row ids (scaler fitted on train rows)
        for r, f, train, test in plan.splits():
            mu, sd = row_id[train].mean(), row_id[train].std()
            recovered = np.rint(seen * sd + mu).astype(int)
            if len(recovered) == len(train) and set(recovered) == set(train.tolist()):
                assert not set(recovered) & set(test.tolist())
                matched.add((r, f))
                break
        else:
            raise AssertionError("the sampler saw rows that are not exactly a training fold")
    assert len(matched) == plan.n_splits


def test_patients_never_straddle_train_and_test(toy_project):
    exp = experiment_from_dict(toy_project["config"](feature_sets={"image": ["img"]},
                                                     fusions=["single"]))
    result = run_benchmark(exp)
    plan = pd.read_csv(result.split.path, dtype=str)
    for r in range(2):
        assert (plan.groupby("patient_id")[f"r{r}"].nunique() == 1).all()
    assert (plan["r0"] != plan["r1"]).any()  # repeats reshuffle


@pytest.mark.slow  # a full grid computed twice
def test_scores_identical_for_n_jobs_1_and_2(toy_project, tmp_path):
    base = toy_project["config"](feature_sets={"fused": ["img", "txt"]},
                                 fusions=["concat", "attention"],
                                 classifiers=["logistic", "random_forest"],
                                 params={"fusion": {"attention": {"epochs": 5, "dim": 4}},
                                         "classifier": {"random_forest": {"n_estimators": 20}}})
    r1 = run_benchmark(experiment_from_dict({**base, "results_root": str(tmp_path / "a")}), n_jobs=1)
    r2 = run_benchmark(experiment_from_dict({**base, "results_root": str(tmp_path / "b")}), n_jobs=2)
    assert [c.key for c in r1.cells] == [c.key for c in r2.cells]
    for c1, c2 in zip(r1.cells, r2.cells, strict=True):
        pd.testing.assert_frame_equal(c1.scores, c2.scores)
        pd.testing.assert_frame_equal(c1.oof, c2.oof)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_rerun_computes_nothing_and_reuses_identical_results(toy_project):
    exp = experiment_from_dict(toy_project["config"](classifiers=["logistic", "knn"]))
    first = run_benchmark(exp)
    assert first.n_computed == len(first.cells) == 6 and first.n_reused == 0
    again = run_benchmark(exp)
    assert again.n_computed == 0 and again.n_reused == 6
    loaded = load_benchmark(exp)
    assert [c.key for c in loaded.cells] == [c.key for c in first.cells]
    assert "image/single/smote/knn" in render_benchmark(loaded)
    for a, b in zip(first.cells, again.cells, strict=True):
        assert b.status == "reused"
        pd.testing.assert_frame_equal(a.scores, b.scores)
        pd.testing.assert_frame_equal(a.oof, b.oof, check_dtype=False)
        pd.testing.assert_frame_equal(a.class_counts, b.class_counts, check_dtype=False)
    # every sample predicted exactly once per repeat
    oof = first.cells[0].oof
    assert (oof.groupby(["repeat", "sample_id"]).size() == 1).all()
    assert oof.groupby("repeat")["sample_id"].nunique().eq(len(toy_project["ids"])).all()
    # class counts logged before/after SMOTE: balanced afterwards
    cc = first.cells[0].class_counts
    after = cc[cc["stage"] == "after"].groupby(["repeat", "fold"])["count"].nunique()
    assert (after == 1).all()


def test_dry_run_reasons(toy_project):
    cfg = toy_project["config"](feature_sets={"image": ["img"]}, fusions=["single"])
    dry = run_benchmark(experiment_from_dict(cfg), dry_run=True)
    assert [p.reason for p in dry.planned] == ["never run"] and not dry.cells
    assert "never run" in render_benchmark(dry)
    with pytest.raises(ConfigError, match="run `pipeline classify`"):
        load_benchmark(experiment_from_dict(cfg))
    assert not dry.split.path.exists()  # a dry run writes nothing
    run_benchmark(experiment_from_dict(cfg))
    # new store
    rng = np.random.default_rng(5)
    write_store(toy_project["features"], "txt2", "text", toy_project["ids"],
                rng.normal(size=(len(toy_project["ids"]), 3)).astype(np.float32))
    cfg2 = toy_project["config"](stores=["img", "txt2"],
                                 feature_sets={"image": ["img"], "t2": ["txt2"]}, fusions=["single"])
    plan2 = run_benchmark(experiment_from_dict(cfg2), dry_run=True)
    assert {p.spec.feature_set: (p.action, p.reason) for p in plan2.planned} == {
        "image": ("reuse", "stored result found"), "t2": ("compute", "new store txt2")}
    # store content changed: append rows for new samples to img -> identity changes
    write_store(toy_project["features"], "img", "image", ["zz1"],
                np.zeros((1, 12), dtype=np.float32))
    plan3 = run_benchmark(experiment_from_dict(cfg), dry_run=True)
    assert plan3.planned[0].reason == "store content changed: img"
    assert "not in manifest (store img)" in plan3.data.dropped


def test_missing_ids_are_reported(toy_project):
    from tests.classify.conftest import write_manifest

    write_manifest(toy_project["root"], toy_project["ids"], toy_project["y"], extra_ids=3)
    exp = experiment_from_dict(toy_project["config"](feature_sets={"image": ["img"]},
                                                     fusions=["single"]))
    res = run_benchmark(exp, dry_run=True)
    assert res.data.dropped["missing from store img"] == ("extra0", "extra1", "extra2")
    assert res.data.n_samples == len(toy_project["ids"])
