"""Ablation table, modality-shuffle test and text renderers on a tiny benchmark."""

from __future__ import annotations

import pytest

from classify import tables
from classify.ablation import ablation_table, run_shuffle
from classify.benchmark import run_benchmark
from classify.experiment import experiment_from_dict
from classify.stats import compare_benchmark


@pytest.fixture
def toy_run(toy_project):
    exp = experiment_from_dict(toy_project["config"](
        fusions=["single", "concat", "attention"], classifiers=["logistic"],
        params={"fusion": {"attention": {"epochs": 20, "dim": 4}}},
    ))
    return exp, run_benchmark(exp)


def test_ablation_shuffle_and_tables(toy_run):
    exp, res = toy_run
    abl = ablation_table(res, metrics=("roc_auc",))
    variants = set(abl.table["variant"])
    assert variants == {"image-only", "text-only", "concat", "attention"}
    img = abl.table[(abl.table["variant"] == "image-only")]["mean"].iloc[0]
    txt = abl.table[(abl.table["variant"] == "text-only")]["mean"].iloc[0]
    assert img > 0.8 and txt < 0.7  # img is informative, txt is noise
    w = abl.attention_weights.set_index("store")["weight"]
    assert set(w.index) == {"img", "txt"} and w.sum() == pytest.approx(1.0)

    sh = run_shuffle(exp, "fused/concat/smote/logistic", n_permutations=2, repeats=1)
    drop = sh.summary.set_index("store")["drop_mean"]
    assert drop["img"] > 0.1 > abs(drop["txt"])
    assert len(sh.per_split) == 3 * 2 * 2  # folds x stores x permutations

    head = tables.headline_table(res)
    for title in ("Algorithm", "Accuracy", "Precision", "Recall", "F1", "ROC AUC", "PR AUC",
                  "MCC", "Bal. acc", "WEIGHTED"):
        assert title in head
    assert "image/single/smote/logistic" in head
    cmp = compare_benchmark(res, "roc_auc")
    text = tables.comparison_table(cmp)
    assert "Nadeau-Bengio" in text and "Average ranks" in text
    assert "image-only" in tables.ablation_table(abl)
    assert "img" in tables.shuffle_table(sh)
    assert "compute" not in tables.plan_table(res) or res.n_computed
    assert "dropped" not in tables.data_notes(res)
    assert len(tables.resampling_frame(res)) == 2 * len(res.cells)
