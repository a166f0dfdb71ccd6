"""The answer: planned comparisons per question (Holm within the question), names for readers,
positive-class metrics from the stored predictions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from classify.analysis.answer import (
    ANSWER_COLUMNS,
    answer_questions,
    positive_class_summary,
    reader_names,
)
from classify.analysis.answer.positive import split_rates
from classify.analysis.stats import holm
from tests.classify.conftest import make_benchmark, make_cell

IMG, TXT = ("densenet",), ("minilm",)


def cell(fs: str, fusion: str, clf: str, auc: list[float], sampler: str = "smote", seed: int = 0):
    stores = {"image": IMG, "text": TXT}.get(fs, IMG + TXT)
    mods = {"image": ("image",), "text": ("text",)}.get(fs, ("image", "text"))
    c = make_cell(clf, fusion=fusion, sampler=sampler, feature_set=fs, stores=stores,
                  modalities=mods, seed=seed)
    s = c.scores[c.scores["metric"] != "roc_auc"]
    splits = [(0, 0), (0, 1), (1, 0), (1, 1)]
    extra = pd.DataFrame([(c.key, r, f, "roc_auc", v) for (r, f), v in zip(splits, auc, strict=True)],
                         columns=s.columns)
    return dataclasses.replace(c, scores=pd.concat([s, extra], ignore_index=True))


@pytest.fixture
def bench():
    cells = [
        cell("image", "single", "logistic", [0.70, 0.72, 0.69, 0.71]),
        cell("text", "single", "logistic", [0.900, 0.905, 0.898, 0.902]),
        cell("fused", "concat", "logistic", [0.901, 0.904, 0.899, 0.902]),
        cell("image", "single", "knn", [0.60, 0.63, 0.61, 0.62]),
        cell("text", "single", "knn", [0.80, 0.82, 0.79, 0.81]),
        cell("fused", "concat", "knn", [0.81, 0.84, 0.80, 0.83]),
        cell("fused", "concat", "logistic", [0.85, 0.86, 0.84, 0.85], sampler="none"),
    ]
    return make_benchmark(cells=tuple(cells))


def test_answer_csv_has_the_promised_columns_and_one_family_per_question(bench):
    a = answer_questions(bench, "roc_auc", rope=0.01)
    assert tuple(a.csv_frame().columns) == ANSWER_COLUMNS
    assert set(a.table["question"]) == {"a", "b", "c", "d"}
    for _q, t in a.table.groupby("question"):  # Holm within the question only
        np.testing.assert_allclose(t["p_holm"], holm(t["p"].to_numpy()))
    assert [q for q, _ in a.sentences] == ["a", "b", "c", "d"]


def test_fusion_beats_image_and_is_equivalent_to_report(bench):
    a = answer_questions(bench, "roc_auc", rope=0.01)
    t = a.table[(a.table["question"] == "a") & (a.table["scope"] == "best cells")]
    by_b = dict(zip(t["b"], t["verdict"], strict=True))
    assert by_b == {"image/single/smote/logistic": "better",
                    "text/single/smote/logistic": "equivalent"}
    row = t[t["b"] == "image/single/smote/logistic"].iloc[0]
    assert row["ci_low"] < row["difference"] < row["ci_high"]
    assert row["difference"] == pytest.approx(0.90150 - 0.705)
    # two samplers in this run, so the sampler is part of the name
    assert row["comparison"] == ("image + report, concatenated, SMOTE, logistic regression vs "
                                 "image, SMOTE, logistic regression")
    sentence = dict(a.sentences)["a"]
    assert "beats image alone" in sentence and "practically equivalent to report alone" in sentence


def test_blocks_and_resampling_questions(bench):
    a = answer_questions(bench, "roc_auc", rope=0.01)
    c = a.table[a.table["question"] == "c"]
    assert set(c["b"]) == {"image/single/smote/logistic", "text/single/smote/logistic"}
    d = a.table[a.table["question"] == "d"]
    assert list(d["a"]) == ["fused/concat/smote/logistic"]
    assert list(d["b"]) == ["fused/concat/none/logistic"]
    assert d["difference"].iloc[0] > 0


def test_resampling_unanswerable_without_twins_says_so():
    cells = (cell("image", "single", "logistic", [0.7, 0.72, 0.69, 0.71]),
             cell("image", "single", "knn", [0.6, 0.62, 0.61, 0.6]))
    a = answer_questions(make_benchmark(cells=cells), "roc_auc")
    sentences = dict(a.sentences)
    assert sentences["d"].startswith("Not asked")
    assert sentences["a"].startswith("Not asked")
    assert set(a.table["question"]) == {"b"}


def test_reader_names_leave_out_what_every_cell_shares():
    cells = [make_cell("mlp", fusion="concat", feature_set="fused"),
             make_cell("logistic", fusion="single", feature_set="image", stores=IMG,
                       modalities=("image",))]
    names = reader_names(cells)
    assert names == {"fused/concat/smote/mlp": "image + report, concatenated, MLP",
                     "image/single/smote/logistic": "image, logistic regression"}
    names = reader_names(cells + [make_cell("mlp", fusion="concat", sampler="none")])
    assert names["fused/concat/none/mlp"] == "image + report, concatenated, no resampling, MLP"


def test_positive_class_metrics_come_from_the_stored_predictions(bench):
    c = bench.cells[0]
    rates = split_rates(c, "abnormal")
    g = c.oof[(c.oof["repeat"] == 0) & (c.oof["fold"] == 0)]
    t, p = g["y_true"] == "abnormal", g["y_pred"] == "abnormal"
    assert rates.iloc[0]["sensitivity"] == pytest.approx((t & p).sum() / t.sum())
    assert rates.iloc[0]["specificity"] == pytest.approx((~t & ~p).sum() / (~t).sum())
    assert rates.iloc[0]["npv"] == pytest.approx((~t & ~p).sum() / (~p).sum())
    s = positive_class_summary(bench)
    assert s.prevalence == pytest.approx(26 / 40)
    assert s.row(c.label)["sensitivity_mean"] == pytest.approx(rates["sensitivity"].mean())
    multiclass = dataclasses.replace(bench, data=dataclasses.replace(bench.data, positive_label=None))
    assert positive_class_summary(multiclass) is None
