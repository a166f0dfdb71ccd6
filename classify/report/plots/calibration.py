"""Calibration figures: reliability diagrams and decision curves of the best cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from classify.analysis.calibration import CalibrationSummary
from classify.report.plots.base import PALETTE, empty, grid, new_figure, rc

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def plot_reliability(summaries: Sequence[CalibrationSummary]) -> Figure:
    """Fraction positive vs mean predicted probability per bin, one panel per cell."""
    with rc():
        if not summaries:
            return empty(new_figure(6, 2), "no binary cells to calibrate")
        rows, cols = grid(len(summaries))
        fig = new_figure(4.2 * cols, 4.0 * rows + 0.4)
        for i, s in enumerate(summaries):
            ax = fig.add_subplot(rows, cols, i + 1)
            b = s.bins[s.bins["count"] > 0]
            ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="#888", label="perfect calibration")
            ax.plot(b["mean_predicted"], b["fraction_positive"], "o-", color=PALETTE[0], lw=1.6,
                    label=f"ECE {s.ece:.3f}, Brier {s.brier:.3f}")
            ax2 = ax.twinx()
            ax2.bar((s.bins["lower"] + s.bins["upper"]) / 2, s.bins["count"],
                    width=1.0 / s.n_bins * 0.9, color="#bab0ac", alpha=0.35)
            ax2.set_yticks([])
            ax2.grid(False)
            ax.set_zorder(ax2.get_zorder() + 1)
            ax.patch.set_visible(False)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel(f"mean predicted P({s.positive})")
            ax.set_ylabel("fraction positive")
            extra = f"\ncalibration: {s.calibration}" if s.calibration not in ("", "none") else ""
            ax.set_title(f"{s.cell}{extra}", fontsize=8.5)
            ax.legend(loc="upper left", frameon=True, framealpha=0.9)
        fig.suptitle("Reliability diagrams (out-of-fold, pooled over repeats; bars = samples "
                     "per bin)", fontsize=10.5)
    return fig


def plot_decision_curves(summaries: Sequence[CalibrationSummary]) -> Figure:
    """Net benefit vs threshold probability, with treat-all and treat-none."""
    with rc():
        if not summaries:
            return empty(new_figure(6, 2), "no binary cells")
        rows, cols = grid(len(summaries))
        fig = new_figure(4.4 * cols, 3.8 * rows + 0.4)
        for i, s in enumerate(summaries):
            ax = fig.add_subplot(rows, cols, i + 1)
            d = s.decision_curve
            top = float(np.nanmax(d[["net_benefit", "treat_all"]].to_numpy()))
            ax.plot(d["threshold"], d["net_benefit"], color=PALETTE[0], lw=1.6, label="model")
            ax.plot(d["threshold"], d["treat_all"], color=PALETTE[1], lw=1.0, ls="--",
                    label="treat all")
            ax.plot(d["threshold"], d["treat_none"], color="#222", lw=0.8, label="treat none")
            ax.set_ylim(-0.05 * max(top, 0.05), max(top, 0.05) * 1.1)
            ax.set_xlim(0, 1)
            ax.set_xlabel("threshold probability")
            ax.set_ylabel("net benefit")
            ax.set_title(s.cell, fontsize=8.5)
            ax.legend(loc="upper right", frameon=True, framealpha=0.9)
        fig.suptitle("Decision curves (out-of-fold, pooled over repeats)", fontsize=10.5)
    return fig
