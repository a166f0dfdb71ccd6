"""Figures of the prevalence sweep: one metric against prevalence, one line per sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from classify.report.plots.base import PALETTE, empty, new_figure, rc

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def plot_prevalence(table: pd.DataFrame, metric: str) -> Figure:
    """``metric`` (mean ± std over splits) against prevalence (log axis), one panel per
    feature set/fusion/classifier, one line per sampler; a filled marker = significantly
    different from ``none`` at that prevalence (Nadeau-Bengio, Holm), open = not."""
    t = table[table["metric"] == metric]
    with rc():
        if t.empty:
            return empty(new_figure(6, 2), f"no prevalence-sweep results for {metric}")
        configs = list(dict.fromkeys(t["config"]))
        samplers = list(dict.fromkeys(["none", *t["sampler"]]))
        samplers = [s for s in samplers if s in set(t["sampler"])]
        n = len(configs)
        fig = new_figure(max(5.5, 4.2 * min(n, 3)), 3.4 * int(np.ceil(n / 3)))
        for i, cfg in enumerate(configs):
            ax = fig.add_subplot(int(np.ceil(n / 3)), min(n, 3), i + 1)
            sub = t[t["config"] == cfg]
            for j, s in enumerate(samplers):
                d = sub[sub["sampler"] == s].sort_values("prevalence")
                if d.empty:
                    continue
                color = PALETTE[j % len(PALETTE)]
                x, y, e = (d["prevalence"].to_numpy(float), d["mean"].to_numpy(float),
                           d["std"].to_numpy(float))
                ax.errorbar(x, y, yerr=np.nan_to_num(e), color=color, lw=1.4, capsize=2,
                            label=s)
                sig = d["significant"].fillna(False).to_numpy(bool)
                ax.scatter(x[sig], y[sig], color=color, s=28, zorder=3)
                ax.scatter(x[~sig], y[~sig], facecolors="white", edgecolors=color, s=28,
                           zorder=3)
            ax.set_xscale("log")
            ticks = sorted(set(sub["prevalence"]))
            if metric == "pr_auc":  # a random ranking's PR AUC is the prevalence itself
                ax.plot(ticks, ticks, ls="--", lw=0.8, color="#888", label="chance (= prevalence)")
            ax.set_xticks(ticks, [f"{p:g}" for p in ticks])
            ax.minorticks_off()
            ax.set_xlabel("prevalence of the positive class")
            ax.set_ylabel(metric)
            ax.set_title(cfg, fontsize=9)
            if i == 0:
                ax.legend(loc="best")
        return fig
