"""The report's figures: each drawn once from an :class:`~classify.analysis.analyse.Analysis`, as PNG."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from classify.analysis.analyse import Analysis
from classify.report import plots
from classify.report.modalities import prevalence_figures
from classify.report.model import RenderedFigure

#: Cells shown in the confusion-matrix figure before falling back to the best per feature set.
MAX_CONFUSION = 12

#: Cells of a p-value heat map (the best by average rank); all pairs are in the tables' CSV.
MAX_HEATMAP_CELLS = 10

#: Stable element id -> description of every report figure.
FIGURE_IDS: Mapping[str, str] = {
    "fig-roc": "ROC curves",
    "fig-pr": "Precision-recall curves",
    "fig-confusion": "Confusion matrices",
    "fig-boxplot": "Per-split score box plots",
    "fig-cd": "Critical-difference diagram",
    "fig-pvalues": "Pairwise p-value heat maps",
    "fig-attention": "Attention weights per modality",
    "fig-class-balance": "Class balance before/after resampling",
    "fig-ablation": "Modality ablation",
    "fig-shuffle": "Modality shuffle drops",
    "fig-reliability": "Reliability diagrams of the best cells",
    "fig-decision-curve": "Decision curves of the best cells",
}

POOLED = ("Out-of-fold predictions of all repeats pooled into one curve per cell (each "
          "sample counted once per repeat); the AUC in the legend is of the pooled curve "
          "and can differ slightly from the mean per-split value in the tables.")


def render_figures(analysis: Analysis) -> dict[str, list[RenderedFigure]]:
    """Section key (``curves``, ``cmp<i>``, ``modality``, ``resampling``) -> its figures."""
    benchmark = analysis.benchmark
    cells = list(benchmark.cells)
    pos = benchmark.data.positive_label
    primary = analysis.primary
    ablation, shuffles = analysis.ablation, analysis.shuffles
    out: dict[str, list[RenderedFigure]] = {}

    def add(section: str, fid: str, title: str, caption: str, fig: Any) -> None:
        out.setdefault(section, []).append(RenderedFigure(fid, title, caption,
                                                          plots.figure_to_png(fig)))

    add("curves", "fig-roc", "ROC curves", POOLED, plots.plot_roc(cells, positive=pos))
    add("curves", "fig-pr", "Precision-recall curves", POOLED + " AP = average precision.",
        plots.plot_pr(cells, positive=pos))
    shown, note = cells, "every cell"
    if len(cells) > MAX_CONFUSION:
        shown = [benchmark.cell(label) for label in analysis.best_by_feature_set]
        note = f"the best cell per feature set by mean {primary}"
    add("curves", "fig-confusion", "Confusion matrices",
        f"Confusion matrices of {note}, out-of-fold predictions pooled over repeats, "
        "row-normalised (recall per true class); mean count per repeat in brackets.",
        plots.plot_confusion(shown, classes=benchmark.data.classes))
    add("curves", "fig-boxplot", f"Per-split {primary}",
        f"Distribution of {primary} over the {len(cells[0].metric_values(primary))} splits of "
        "each cell (every cell is scored on the same splits).",
        plots.plot_fold_boxplots(cells, primary))
    if analysis.calibration:
        add("calibration", "fig-reliability", "Reliability diagrams",
            "Best cell of each feature set: fraction of positives against the mean predicted "
            "probability in 10 equal-width bins (out-of-fold predictions pooled over repeats); "
            "the diagonal is perfect calibration, ECE = weighted mean gap.",
            plots.plot_reliability(analysis.calibration))
        add("calibration", "fig-decision-curve", "Decision curves",
            "Net benefit (TP/N − FP/N · pt/(1 − pt)) of acting when the predicted probability "
            "is at least the threshold pt, against treating everyone and no one.",
            plots.plot_decision_curves(analysis.calibration))
    for i, cmp in enumerate(analysis.comparisons):
        sfx = "" if i == 0 else f"-{i + 1}"
        add(f"cmp{i}", f"fig-cd{sfx}", "Critical-difference diagram",
            "Average rank over splits (1 = best). Cells joined by a red bar are not "
            "significantly different by the Nemenyi test (rank difference < CD). Friedman/"
            "Nemenyi treat CV splits as independent, so they are optimistic.",
            plots.plot_critical_difference(cmp))
        add(f"cmp{i}", f"fig-pvalues{sfx}", "Pairwise p-values",
            "Nadeau-Bengio corrected t-test (headline; raw and Holm-adjusted) and Holm-adjusted "
            "Wilcoxon signed-rank p-values. Grey = not computed.",
            plots.plot_pvalue_heatmaps(cmp, max_cells=MAX_HEATMAP_CELLS))
    if ablation is not None and not ablation.table.empty:
        add("modality", "fig-ablation", "Modality ablation",
            "Single-modality vs fused cells per classifier (mean ± std over splits).",
            plots.plot_ablation(ablation, ablation.metrics[0]))
    if shuffles:
        add("modality", "fig-shuffle", "Modality shuffle",
            "Score drop when one store's features are permuted across test rows.",
            plots.plot_shuffle_drops(shuffles))
    att_cells = [c for c in cells if c.attention is not None and len(c.attention)]
    if att_cells or (ablation is not None and len(ablation.attention_weights)):
        add("modality", "fig-attention", "Attention weights per modality",
            "Mean learned attention weight of each store over splits (error bar = std over "
            "splits); the dashed line is the uniform weight.",
            plots.plot_attention(att_cells if att_cells else ablation))
    if any(c.class_counts is not None and len(c.class_counts) for c in cells):
        add("resampling", "fig-class-balance", "Class balance before/after resampling",
            "Class counts of one training fold (repeat 0, fold 0) before and after each "
            "sampler; the sampler runs on training rows only, never on the test fold.",
            plots.plot_class_balance(cells))
    out.update(prevalence_figures(analysis))
    return out
