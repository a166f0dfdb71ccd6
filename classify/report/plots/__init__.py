"""Figures of the analyst report, drawn from frozen result objects only (matplotlib, Agg).

Every function takes result objects of :mod:`classify.results.types` (nothing is
recomputed from features) and returns a :class:`matplotlib.figure.Figure`;
:func:`figure_to_png` turns it into PNG bytes. Importing this package does not
import matplotlib.
"""

from classify.report.plots.base import figure_to_png, short_labels, short_names
from classify.report.plots.calibration import plot_decision_curves, plot_reliability
from classify.report.plots.curves import plot_confusion, plot_fold_boxplots, plot_pr, plot_roc
from classify.report.plots.modality import (
    plot_ablation,
    plot_attention,
    plot_class_balance,
    plot_shuffle_drops,
)
from classify.report.plots.statistics import plot_critical_difference, plot_pvalue_heatmaps

__all__ = [
    "figure_to_png", "short_labels", "short_names", "plot_confusion", "plot_fold_boxplots",
    "plot_pr", "plot_roc", "plot_ablation", "plot_attention", "plot_class_balance",
    "plot_shuffle_drops", "plot_critical_difference", "plot_pvalue_heatmaps",
    "plot_decision_curves", "plot_reliability",
]
