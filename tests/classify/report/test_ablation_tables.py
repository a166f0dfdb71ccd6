"""Ablation table, modality-shuffle test and text renderers on a tiny benchmark."""

from __future__ import annotations

import pytest

from classify.analysis.ablation.modalities import ablation_table, run_shuffle
from classify.analysis.stats import compare_benchmark
from classify.config.experiment import experiment_from_dict
from classify.report import console as tables
from classify.run.benchmark import run_benchmark


@pytest.fixture
def toy_run(toy_project):
    exp = experiment_from_dict(toy_project["config"](
        fusions=["single", "concat", "attention"], classifiers=["logistic"],
        params={"fusion": {"attention": {"epochs": 20, "dim": 4}}},
    ))
    return exp, run_benchmark(exp)


@pytest.mark.slow  # a grid with attention fusion + refits of the shuffle test
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
    from classify.analysis.cell_summary import resampling_summary

    assert len(resampling_summary(res)) == 2 * len(res.cells)


def _spec(feature_set, stores, modalities, fusion):
    from classify.results.types import CellSpec

    return CellSpec(feature_set, tuple(stores), tuple(modalities), fusion, "none", "logistic")


def test_variant_of_names_feature_sets_when_a_column_has_several():
    from classify.analysis.ablation.modalities import variant_of

    img = _spec("image", ["img"], ["image"], "single")
    txt = _spec("text", ["txt"], ["text"], "single")
    txt_m = _spec("text_masked", ["txt+m"], ["text"], "single")
    fused = _spec("fused", ["img", "txt"], ["image", "text"], "concat")
    fused_m = _spec("fused_masked", ["img", "txt+m"], ["image", "text"], "concat")
    att = _spec("fused", ["img", "txt"], ["image", "text"], "attention")
    specs = [img, txt, txt_m, fused, fused_m, att]
    assert [variant_of(s, specs) for s in specs] == [
        "image-only", "text-only (text)", "text-only (text_masked)",
        "concat (fused)", "concat (fused_masked)", "attention",
    ]
    # without the other cells (or with one feature set per column) the plain names stay
    assert variant_of(txt_m) == "text-only" and variant_of(txt, [img, txt, fused]) == "text-only"


def test_ablation_keeps_text_feature_sets_apart(toy_project):
    from ..conftest import write_store

    informative = toy_project["img"][:, 1:5] + 0.5  # a second, informative "text" store
    write_store(toy_project["features"], "txt2", "text", toy_project["ids"], informative)
    exp = experiment_from_dict(toy_project["config"](
        stores=["img", "txt", "txt2"],
        feature_sets={"image": ["img"], "text": ["txt"], "text_again": ["txt2"],
                      "fused": ["img", "txt"]},
        fusions=["single", "concat"], classifiers=["logistic"], samplers=["none"],
        cv={"folds": 3, "repeats": 1, "seed": 0},
    ))
    res = run_benchmark(exp)
    abl = ablation_table(res, metrics=("roc_auc",))
    assert list(dict.fromkeys(abl.table["variant"])) == [
        "image-only", "text-only (text)", "text-only (text_again)", "concat"]
    assert abl.table.groupby("variant")["cell"].nunique().max() == 1  # one cell per column
    mean = abl.table.set_index("variant")["mean"]
    assert mean["text-only (text_again)"] > 0.8 > 0.7 > mean["text-only (text)"]  # not averaged
    header = tables.ablation_table(abl).splitlines()[1]
    assert {"text-only (text)", "text-only (text_again)", "concat"} <= {h.strip() for h in header.split("  ")}
    from classify.report.tables import ablation_tables

    (tab,) = ablation_tables(abl)
    assert tab.columns == ("Classifier", "image-only", "text-only (text)",
                           "text-only (text_again)", "concat")
