"""Modality and resampling figures: attention weights, class balance, ablation, shuffle drops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from classify.report.plots.base import PALETTE, empty, grid, new_figure, rc, short_labels
from classify.results.types import AblationResult, CellResult, ShuffleResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def plot_attention(source: AblationResult | Sequence[CellResult]) -> Figure:
    """Learned attention weight per modality (store), per attention cell or classifier.

    With cells, bars are the mean over splits with the standard deviation as error
    bar; with an :class:`AblationResult` its mean weights per classifier are used.
    """
    if isinstance(source, AblationResult):
        df = source.attention_weights.rename(columns={"classifier": "who"}).copy()
        df["std"] = np.nan
        table = df.groupby(["who", "store", "modality"], sort=False)[["weight", "std"]].mean()
        table = table.reset_index()
    else:
        att_cells = [c for c in source if c.attention is not None and len(c.attention)]
        names = short_labels(att_cells)
        frames = [c.attention.assign(who=names[c.label]) for c in att_cells]
        if frames:
            att = pd.concat(frames, ignore_index=True)
            table = (att.groupby(["who", "store", "modality"], sort=False)["weight"]
                     .agg(weight="mean", std="std").reset_index())
        else:
            table = pd.DataFrame(columns=["who", "store", "modality", "weight", "std"])
    with rc():
        if table.empty:
            return empty(new_figure(6, 2), "no attention-fusion cells")
        whos = list(dict.fromkeys(table["who"]))
        stores = list(dict.fromkeys(table["store"]))
        fig = new_figure(max(7.5, 0.8 * len(whos) * max(len(stores), 1) + 3.0), 3.8)
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / len(stores)
        x = np.arange(len(whos))
        for j, st in enumerate(stores):
            sub = table[table["store"] == st].set_index("who").reindex(whos)
            mod = sub["modality"].dropna().iloc[0] if sub["modality"].notna().any() else ""
            err = sub["std"].to_numpy(float)
            ax.bar(x + (j - (len(stores) - 1) / 2) * width, sub["weight"].to_numpy(float),
                   width * 0.92, yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err),
                   capsize=3, color=PALETTE[j % len(PALETTE)], label=f"{st} ({mod})")
        ax.axhline(1 / max(len(stores), 1), ls="--", lw=0.8, color="#888",
                   label="uniform weight")
        ax.set_xticks(x, whos, rotation=20 if len(whos) > 3 else 0, ha="right"
                      if len(whos) > 3 else "center")
        ax.set_ylabel("mean attention weight")
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="store")
        fig.suptitle("Attention weight per modality (mean over splits; error bar = std)",
                     fontsize=11)
    return fig


# --------------------------------------------------------------------------- class balance

def plot_class_balance(cells: Sequence[CellResult], *, repeat: int = 0, fold: int = 0) -> Figure:
    """Training-fold class counts before/after the sampler, one panel per sampler.

    The first cell of each distinct sampler is shown (every cell of one sampler
    sees the same training rows of the same split).
    """
    chosen: dict[str, CellResult] = {}
    for c in cells:
        if c.class_counts is not None and len(c.class_counts):
            chosen.setdefault(c.spec.sampler, c)
    with rc():
        if not chosen:
            return empty(new_figure(6, 2), "no class counts recorded")
        rows, cols = grid(len(chosen), 4)
        fig = new_figure(max(3.6 * cols + 0.4, 6.4), 3.3 * rows + 0.5)
        for i, (sampler, c) in enumerate(chosen.items()):
            cc = c.class_counts
            sel = cc[(cc["repeat"] == repeat) & (cc["fold"] == fold)]
            if sel.empty:
                first = cc.sort_values(["repeat", "fold"]).iloc[0]
                sel = cc[(cc["repeat"] == first["repeat"]) & (cc["fold"] == first["fold"])]
            r_, f_ = int(sel["repeat"].iloc[0]), int(sel["fold"].iloc[0])
            piv = sel.pivot_table(index="class", columns="stage", values="count", aggfunc="sum")
            piv.index = piv.index.astype(str)
            ax = fig.add_subplot(rows, cols, i + 1)
            x = np.arange(len(piv))
            for j, (stage, colour) in enumerate((("before", "#bab0ac"), ("after", "#4e79a7"))):
                if stage not in piv:
                    continue
                vals = piv[stage].to_numpy(float)
                bars = ax.bar(x + (j - 0.5) * 0.38, vals, 0.36, color=colour,
                              label=f"{stage} {sampler}")
                ax.bar_label(bars, labels=[f"{v:.0f}" for v in vals], fontsize=7, padding=1)
            ax.set_xticks(x, list(piv.index))
            ax.set_ylabel("training samples")
            ax.set_title(f"sampler: {sampler} (repeat {r_}, fold {f_})")
            top = float(sel["count"].max()) if len(sel) else 1.0
            ax.set_ylim(0, top * 1.35)
            ax.legend(loc="upper center", frameon=False, ncols=2)
        fig.suptitle("Class balance of one training fold before / after resampling",
                     fontsize=11)
    return fig


# --------------------------------------------------------------------------- ablation / shuffle

def plot_ablation(ablation: AblationResult, metric: str) -> Figure:
    """Mean ``metric`` (± std) per classifier and modality variant."""
    t = ablation.table
    t = t[t["metric"] == metric] if "metric" in t else t.iloc[0:0]
    with rc():
        if t.empty:
            return empty(new_figure(6, 2), f"no ablation rows for {metric}")
        clfs = list(dict.fromkeys(t["classifier"]))
        variants = list(dict.fromkeys(t["variant"]))
        fig = new_figure(max(7.5, 0.45 * len(clfs) * len(variants) + 3.0), 3.8)
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / len(variants)
        x = np.arange(len(clfs))
        for j, v in enumerate(variants):
            sub = t[t["variant"] == v].groupby("classifier")[["mean", "std"]].mean().reindex(clfs)
            ax.bar(x + (j - (len(variants) - 1) / 2) * width, sub["mean"].to_numpy(float),
                   width * 0.92, yerr=np.nan_to_num(sub["std"].to_numpy(float)), capsize=2,
                   color=PALETTE[j % len(PALETTE)], label=v)
        ax.set_xticks(x, clfs)
        ax.set_ylabel(f"mean {metric}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="variant")
        fig.suptitle(f"Modality ablation: {metric} (mean ± std over splits)", fontsize=11)
    return fig


def plot_shuffle_drops(shuffles: Sequence[ShuffleResult]) -> Figure:
    """Score drop when one modality's block is permuted in the test fold."""
    rows = [s.summary.assign(cell=s.cell, metric=s.metric) for s in shuffles if len(s.summary)]
    with rc():
        if not rows:
            return empty(new_figure(6, 2), "no modality-shuffle results")
        t = pd.concat(rows, ignore_index=True)
        labels = [f"{c}\n{st} ({m})" for c, st, m in zip(t["cell"], t["store"], t["modality"], strict=True)]
        fig = new_figure(9.0, 0.5 * len(t) + 1.4)
        ax = fig.add_subplot(1, 1, 1)
        y = np.arange(len(t))
        colours = [PALETTE[0] if m == "image" else PALETTE[1] for m in t["modality"]]
        ax.barh(y, t["drop_mean"].to_numpy(float), xerr=np.nan_to_num(t["drop_std"].to_numpy(
            float)), color=colours, capsize=3)
        ax.axvline(0, color="#222", lw=0.8)
        ax.set_yticks(y, labels, fontsize=7.5)
        ax.invert_yaxis()
        ax.set_xlabel(f"drop in {t['metric'].iloc[0]} (baseline - shuffled)")
        fig.suptitle("Modality shuffle: score drop when a modality is permuted in the test fold",
                     fontsize=11)
    return fig

