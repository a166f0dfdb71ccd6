"""Tests of classify.plots: figures drawn from synthetic result objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from classify.report import plots
from classify.report.plots.statistics import cliques, pmatrix
from classify.results.types import AblationResult
from tests.classify.conftest import (
    make_ablation,
    make_benchmark,
    make_cell,
    make_comparison,
    make_shuffle,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    return make_benchmark()


def _texts(fig) -> list[str]:  # noqa: ANN001
    out = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return [t for t in out if t]


def _legend(ax) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_roc_pooled_auc_in_legend(bench):  # noqa: ANN001
    fig = plots.plot_roc(bench.cells, positive="abnormal")
    ax = fig.axes[0]
    labels = _legend(ax)
    assert len(labels) == len(bench.cells) + 1 and labels[-1] == "chance"
    cell = bench.cells[0]
    y = (cell.oof["y_true"] == "abnormal").to_numpy(int)
    auc = skm.roc_auc_score(y, cell.oof["proba:abnormal"])  # pooled over both repeats
    assert f"logistic (AUC {auc:.3f})" in labels
    # sorted by AUC, best first
    aucs = [float(t.split("AUC ")[1].rstrip(")")) for t in labels[:-1]]
    assert aucs == sorted(aucs, reverse=True)
    assert "pooled over repeats" in fig._suptitle.get_text()
    assert plots.figure_to_png(fig).startswith(PNG_MAGIC)


def test_pr_curve_and_multiclass_micro_average():
    fig = plots.plot_pr([make_cell("logistic", seed=1)], positive="abnormal")
    assert "AP" in _legend(fig.axes[0])[0]
    cell = make_cell("knn", seed=2)
    oof = cell.oof.copy()
    oof["proba:other"] = 0.1
    oof[["proba:abnormal", "proba:normal"]] *= 0.9
    multi = type(cell)(**{**cell.__dict__, "oof": oof})
    fig = plots.plot_roc([multi])
    assert "micro-average" in fig._suptitle.get_text()


def test_one_panel_per_feature_set(bench):  # noqa: ANN001
    cells = list(bench.cells) + [make_cell("logistic", feature_set="image", fusion="single",
                                           stores=("densenet",), modalities=("image",), seed=9)]
    fig = plots.plot_roc(cells)
    assert [ax.get_title() for ax in fig.axes] == ["fused", "image"]
    box = plots.plot_fold_boxplots(cells, "accuracy")
    assert [ax.get_title() for ax in box.axes] == ["fused", "image"]


def test_confusion_matrix_values():
    cell = make_cell("logistic", seed=1)
    fig = plots.plot_confusion([cell])
    ax = fig.axes[0]
    img = ax.get_images()[0].get_array()
    cm = pd.crosstab(cell.oof["y_true"], cell.oof["y_pred"]).to_numpy(float)
    np.testing.assert_allclose(np.asarray(img), cm / cm.sum(axis=1, keepdims=True))
    assert ax.get_title() == cell.label


def test_boxplot_orders_by_mean(bench):  # noqa: ANN001
    fig = plots.plot_fold_boxplots(bench.cells, "accuracy")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["knn", "random_forest", "logistic"]  # ascending mean, best on top
    assert "accuracy" in fig.axes[0].get_xlabel()


def test_critical_difference_diagram(bench):  # noqa: ANN001
    cmp = make_comparison(bench)
    texts = _texts(plots.plot_critical_difference(cmp))
    assert "CD = 1.66" in texts
    assert "logistic  (1.25)" in texts and "(2.75)  knn" in texts
    assert any("Friedman chi2 = 6.50" in t for t in texts)
    no_cd = type(cmp)(**{**cmp.__dict__, "nemenyi_cd": None, "friedman_stat": None,
                         "friedman_p": None})
    texts = _texts(plots.plot_critical_difference(no_cd))
    assert not any(t.startswith("CD =") for t in texts)
    assert any("not available" in t for t in texts)


def test_cliques():
    assert cliques([1.0, 1.5, 2.0, 3.5], 1.1) == [(0, 2)]
    assert cliques([1.0, 3.0, 5.0], 1.0) == []


def test_pvalue_heatmaps(bench):  # noqa: ANN001
    cmp = make_comparison(bench)
    fig = plots.plot_pvalue_heatmaps(cmp)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("Nadeau-Bengio corrected") and "Wilcoxon" in titles[-1]
    texts = _texts(fig)
    assert "0.0200*" in texts  # significant NB p marked
    assert "n/a" in texts  # Wilcoxon not computed with 4 splits
    m = pmatrix(cmp.pairwise, cmp.cells, "nb_p")
    assert m[0, 1] == m[1, 0] == pytest.approx(0.01 * 2) and np.isnan(m[0, 0])


def test_attention_from_cells_and_ablation(bench):  # noqa: ANN001
    fig = plots.plot_attention(bench.cells)
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert len(bars) == 2 * len(bench.cells)
    cell = bench.cells[0]
    mean_img = cell.attention[cell.attention["store"] == "densenet"]["weight"].mean()
    assert bars[0].get_height() == pytest.approx(mean_img)
    fig = plots.plot_attention(make_ablation())
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == pytest.approx([0.35, 0.65])
    empty = AblationResult(metrics=(), table=pd.DataFrame(),
                           attention_weights=pd.DataFrame(columns=["classifier", "store",
                                                                   "modality", "weight"]))
    assert "no attention-fusion cells" in _texts(plots.plot_attention(empty))


def test_class_balance_bars():
    cells = [make_cell("logistic", seed=1),
             make_cell("knn", seed=2, sampler="none", key="f" * 16)]
    fig = plots.plot_class_balance(cells)
    assert [ax.get_title() for ax in fig.axes] == ["sampler: smote (repeat 0, fold 0)",
                                                   "sampler: none (repeat 0, fold 0)"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [14, 6, 14, 14]  # before (abnormal, normal), after (abnormal, normal)
    heights = [p.get_height() for p in fig.axes[1].patches]
    assert heights == [14, 6, 14, 6]


def test_ablation_and_shuffle(bench):  # noqa: ANN001
    fig = plots.plot_ablation(make_ablation(), "accuracy")
    assert len(fig.axes[0].patches) == 8
    assert "no ablation rows" in _texts(plots.plot_ablation(make_ablation(), "mcc"))[0]
    fig = plots.plot_shuffle_drops([make_shuffle(bench.cells[0])])
    widths = [p.get_width() for p in fig.axes[0].patches]
    assert widths == pytest.approx([0.03, 0.20])


def test_short_names():
    names = plots.short_names(["a/x/s/lr", "a/y/s/lr", "a/y/s/rf"])
    assert names == {"a/x/s/lr": "x/lr", "a/y/s/lr": "y/lr", "a/y/s/rf": "y/rf"}
    assert plots.short_names(["one/two"]) == {"one/two": "two"}


def test_no_pyplot_state(bench):  # noqa: ANN001
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.plot_roc(bench.cells)
    plots.plot_class_balance(bench.cells)
    assert plt.get_fignums() == before
