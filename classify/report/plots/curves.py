"""Performance figures: pooled ROC / PR curves, confusion matrices, per-split box plots.

* ROC / PR curves are **pooled over repeats**: the out-of-fold predictions of all
  repeats are concatenated (each sample contributes once per repeat), one curve per
  cell. The AUC in the legend is that of the pooled curve; it can differ slightly from
  the mean per-split ``roc_auc``/``pr_auc`` of the tables. Binary problems use the
  positive class; multiclass problems the micro-average over one-vs-rest indicators.
* Confusion matrices are pooled over repeats and row-normalised (recall per true
  class); the annotation shows the share and the mean count per repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from classify.report.plots.base import (
    MAX_CURVES,
    PALETTE,
    binary_target,
    classes_of,
    empty,
    grid,
    group_by_feature_set,
    new_figure,
    rc,
    short_labels,
)
from classify.results.types import CellResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _curve_figure(cells: Sequence[CellResult], kind: str, positive: str | None) -> Figure:
    from sklearn import metrics as skm

    groups = group_by_feature_set([c for c in cells if len(c.oof)])
    if not groups:
        with rc():
            return empty(new_figure(6, 2), "no out-of-fold predictions")
    rows, cols = grid(len(groups))
    with rc():
        n_leg = min(max(len(v) for v in groups.values()), MAX_CURVES) + 1
        below = n_leg > 5  # long legends go under the panel, not over the curves
        fig = new_figure(max(4.6 * cols, 6.4),
                          (4.1 + (0.16 * n_leg if below else 0.0)) * rows + 0.3)
        what = ""
        for i, (fs, members) in enumerate(groups.items()):
            ax = fig.add_subplot(rows, cols, i + 1)
            names = short_labels(members)
            curves = []
            for c in members:
                y, s, what = binary_target(c, positive)
                if len(np.unique(y)) < 2:
                    continue
                if kind == "roc":
                    x_, y_, _ = skm.roc_curve(y, s)
                    auc = skm.auc(x_, y_)
                else:
                    prec, rec, _ = skm.precision_recall_curve(y, s)
                    x_, y_ = rec, prec
                    auc = skm.average_precision_score(y, s)
                curves.append((auc, names[c.label], x_, y_, float(y.mean())))
            curves.sort(key=lambda t: -t[0])
            for j, (auc, name, x_, y_, _) in enumerate(curves[:MAX_CURVES]):
                ax.plot(x_, y_, lw=1.6, color=PALETTE[j % len(PALETTE)],
                        drawstyle="steps-post" if kind == "pr" else "default",
                        label=f"{name} ({'AUC' if kind == 'roc' else 'AP'} {auc:.3f})")
            if kind == "roc":
                ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="#888", label="chance")
                ax.set_xlabel("False positive rate (1 - specificity)")
                ax.set_ylabel("True positive rate (sensitivity)")
            elif curves:
                ax.axhline(curves[0][4], ls="--", lw=0.8, color="#888",
                           label=f"prevalence {curves[0][4]:.2f}")
                ax.set_xlabel("Recall")
                ax.set_ylabel("Precision")
            ax.set_xlim(-0.01, 1.01)
            ax.set_ylim(-0.01, 1.01)
            ax.set_aspect("equal")
            extra = f" (top {MAX_CURVES} of {len(curves)})" if len(curves) > MAX_CURVES else ""
            ax.set_title(f"{fs}{extra}")
            if below:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
            else:
                ax.legend(loc="lower right" if kind == "roc" else "lower left", frameon=True,
                          framealpha=0.9)
        title = "ROC curves" if kind == "roc" else "Precision-recall curves"
        fig.suptitle(f"{title} (out-of-fold, pooled over repeats)\n{what}", fontsize=10.5)
    return fig


def plot_roc(cells: Sequence[CellResult], *, positive: str | None = None) -> Figure:
    """ROC curve per cell, one panel per feature set (OOF pooled over repeats)."""
    return _curve_figure(cells, "roc", positive)


def plot_pr(cells: Sequence[CellResult], *, positive: str | None = None) -> Figure:
    """Precision-recall curve per cell, one panel per feature set (OOF pooled over repeats)."""
    return _curve_figure(cells, "pr", positive)


# --------------------------------------------------------------------------- confusion

def plot_confusion(cells: Sequence[CellResult], *, classes: Sequence[str] | None = None) -> Figure:
    """Row-normalised confusion matrix per cell (OOF pooled over repeats)."""
    cells = [c for c in cells if len(c.oof)]
    if not cells:
        with rc():
            return empty(new_figure(6, 2), "no out-of-fold predictions")
    rows, cols = grid(len(cells), 4)
    with rc():
        fig = new_figure(3.3 * cols, 3.1 * rows + 0.4)
        for i, c in enumerate(cells):
            cls = list(classes) if classes else classes_of(c)
            n_rep = max(int(c.oof["repeat"].nunique()), 1)
            cm = pd.crosstab(pd.Categorical(c.oof["y_true"].astype(str), categories=cls),
                             pd.Categorical(c.oof["y_pred"].astype(str), categories=cls),
                             dropna=False).to_numpy(float)
            norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.grid(False)
            ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
            for (r, k), v in np.ndenumerate(norm):
                ax.text(k, r, f"{v:.2f}\n({cm[r, k] / n_rep:.0f})", ha="center", va="center",
                        fontsize=8, color="white" if v > 0.55 else "#222")
            ax.set_xticks(range(len(cls)), cls, rotation=30 if len(cls) > 2 else 0, ha="right"
                          if len(cls) > 2 else "center")
            ax.set_yticks(range(len(cls)), cls)
            ax.set_xlabel("Predicted")
            ax.set_ylabel("True")
            ax.set_title(c.label, fontsize=8.5)
        fig.suptitle("Confusion matrices (row-normalised; mean count per repeat in brackets)",
                     fontsize=11)
    return fig


# --------------------------------------------------------------------------- box plots

def plot_fold_boxplots(cells: Sequence[CellResult], metric: str) -> Figure:
    """Per-split scores of ``metric``: one box per cell, one panel per feature set."""
    groups = group_by_feature_set(cells)
    if not groups:
        with rc():
            return empty(new_figure(6, 2), "no cells")
    n_max = max(len(v) for v in groups.values())
    with rc():
        fig = new_figure(9.5, sum(0.45 * len(v) + 1.0 for v in groups.values()) + 0.5)
        axes = fig.subplots(len(groups), 1, squeeze=False,
                            height_ratios=[len(v) + 1.5 for v in groups.values()])[:, 0]
        for ax, (fs, members) in zip(axes, groups.items(), strict=True):
            names = short_labels(members)
            data = [c.metric_values(metric).dropna().to_numpy() for c in members]
            order = np.argsort([np.mean(d) if len(d) else -np.inf for d in data])
            data = [data[j] for j in order]
            labels = [names[members[j].label] for j in order]
            bp = ax.boxplot(data, orientation="horizontal", widths=0.55, patch_artist=True,
                            showmeans=True, meanprops={"marker": "D", "markerfacecolor": "white",
                                                       "markeredgecolor": "#222",
                                                       "markersize": 4})
            for patch in bp["boxes"]:
                patch.set_facecolor("#a0c4e8")
                patch.set_edgecolor("#2f5d8a")
            for j, d in enumerate(data):
                jitter = np.linspace(-0.12, 0.12, len(d)) if len(d) > 1 else np.zeros(len(d))
                ax.scatter(d, j + 1 + jitter, s=9, color="#2f5d8a", alpha=0.6, zorder=3)
            ax.set_yticks(range(1, len(labels) + 1), labels)
            ax.set_xlabel(f"{metric} per split (repeat x fold)")
            ax.set_title(fs)
            ax.set_ylim(0.4, max(n_max, len(labels)) + 0.6 if len(groups) == 1 else len(labels)
                        + 0.6)
        fig.suptitle(f"Per-split {metric} (box = IQR, line = median, diamond = mean)",
                     fontsize=11)
    return fig

