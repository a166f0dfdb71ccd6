"""What ``pipeline classify`` prints by default: the answer, a short leaderboard with the
positive class's sensitivity, each warning once; the attention weights once per sampler."""

from __future__ import annotations

import dataclasses

import pandas as pd

from classify.analysis.answer import answer_questions, positive_class_summary
from classify.report import console
from tests.classify.conftest import make_benchmark, make_cell


def big_benchmark(n_classifiers: int = 8):
    clfs = ["logistic", "knn", "random_forest", "mlp", "xgboost", "gbdt", "decision_tree",
            "voting_soft"][:n_classifiers]
    cells = []
    for i, clf in enumerate(clfs):
        cells.append(make_cell(clf, fusion="single", feature_set="image", stores=("densenet",),
                               modalities=("image",), seed=10 + i, accuracy=0.7))
        cells.append(make_cell(clf, fusion="single", feature_set="text", stores=("minilm",),
                               modalities=("text",), seed=20 + i, accuracy=0.7))
        for j, fusion in enumerate(("concat", "attention")):
            c = make_cell(clf, fusion=fusion, seed=30 + 2 * i + j, accuracy=0.7)
            cells.append(dataclasses.replace(
                c, warnings=("knn has no class weights: sampler 'class_weight' had no effect",)
                if clf == "knn" else ()))
    return make_benchmark(cells=tuple(cells))


def test_default_output_fits_a_screen_and_leads_with_the_positive_class():
    b = big_benchmark()
    assert len(b.cells) == 32
    text = console.render_classify_summary(b, answer_questions(b, "roc_auc"),
                                           positive_class_summary(b), metric="roc_auc")
    lines = text.splitlines()
    assert len(lines) <= 60, len(lines)
    assert "Sensitivity" in text and "Specificity" in text and "NPV" in text
    assert "prevalence 65.0%" in text
    assert "22 more cells" in text
    assert lines[-1].strip() and "ANSWER" in text  # the answer ends the output
    assert text.index("Leaderboard") < text.index("ANSWER")
    assert "(a) Does fusion beat each single modality?" in text
    # each warning once, with its count over cells
    assert text.count("knn has no class weights") == 1
    assert "[x2]" in text


def test_warning_digest_counts_repeats():
    b = big_benchmark(2)
    digest = console.warning_digest(b, extra=["same thing. more detail", "same thing. other"])
    assert digest.count("same thing.") == 1 and "same thing.  [x2]" in digest


def test_attention_weights_shown_once_per_sampler_with_a_sampler_column():
    rows = []
    for smp in ("smote", "none", "adasyn"):
        for clf in ("logistic", "knn", "mlp"):
            rows += [dict(classifier=clf, sampler=smp, cell=f"fused/attention/{smp}/{clf}",
                          store="img", modality="image", weight=0.378),
                     dict(classifier=clf, sampler=smp, cell=f"fused/attention/{smp}/{clf}",
                          store="txt", modality="text", weight=0.622)]
    text = console.attention_table(pd.DataFrame(rows))
    body = [ln for ln in text.splitlines() if ln.startswith(("smote", "none", "adasyn"))]
    assert len(body) == 6  # 3 samplers x 2 stores, not x 3 classifiers
    assert "sampler" in text.splitlines()[1] and "all 3" in text


def test_csv_label_column_reads_as_such():
    b = dataclasses.replace(big_benchmark(1), label_rule="manifest:None")
    assert "manifest:None" not in console.headline_table(b)
    assert "the manifest's label column" in console.data_notes(b)
