"""Figures of the analyst report, drawn from result objects only.

Every function takes result objects of :mod:`classify.results` (nothing is
recomputed from features) and returns a :class:`matplotlib.figure.Figure` bound
to an Agg canvas. No pyplot state is used, so figures are thread-safe, never
open a window and never need to be closed; matplotlib is imported inside the
functions (nothing happens at import time of this module).

Conventions:

* ROC / PR curves are **pooled over repeats**: the out-of-fold predictions of
  all repeats are concatenated (each sample contributes once per repeat) and one
  curve is drawn per cell. The AUC in the legend is that of the pooled curve; it
  can differ slightly from the mean per-split ``roc_auc``/``pr_auc`` of the
  tables. Binary problems use the positive class; multiclass problems use the
  micro-average over one-vs-rest indicators.
* Confusion matrices are pooled over repeats and row-normalised (recall per true
  class); the annotation shows the share and the mean count per repeat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from classify.results import AblationResult, CellResult, ComparisonResult, ShuffleResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Cells drawn per panel of the curve figures (best by pooled AUC); the rest are listed.
MAX_CURVES = 10
#: Colour cycle (colour-blind friendly, Tableau 10).
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
_FONT = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 7.5,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "figure.dpi": 100}


def _new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas (no pyplot, no global backend switch)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_FONT):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(_FONT)


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of ``fig`` (white background)."""
    import io

    buf = io.BytesIO()
    with _rc():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


# --------------------------------------------------------------------------- helpers

def short_names(labels: Sequence[str]) -> dict[str, str]:
    """Label -> shortest ``/``-separated form that still distinguishes ``labels``.

    Parts shared by all labels are dropped; the last part (the classifier) is kept.
    """
    labels = list(labels)
    parts = [str(lab).split("/") for lab in labels]
    if not parts or len({len(p) for p in parts}) != 1:
        return {lab: str(lab) for lab in labels}
    n = len(parts[0])
    keep = [i for i in range(n) if i == n - 1 or len({p[i] for p in parts}) > 1]
    return {lab: "/".join(p[i] for i in keep) for lab, p in zip(labels, parts, strict=True)}


def short_labels(cells: Sequence[CellResult]) -> dict[str, str]:
    """Cell label -> shortest label that still distinguishes the cells (see :func:`short_names`)."""
    return short_names([c.label for c in cells])


def _group_by_feature_set(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = {}
    for c in cells:
        out.setdefault(c.spec.feature_set, []).append(c)
    return out


def _classes_of(cell: CellResult) -> list[str]:
    return [c[len("proba:"):] for c in cell.oof.columns if str(c).startswith("proba:")]


def _binary_target(cell: CellResult, positive: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(y, score, what)``: 0/1 indicators and scores for the pooled curves."""
    classes = _classes_of(cell)
    oof = cell.oof
    if len(classes) == 2:
        pos = positive if positive in classes else classes[1]
        return ((oof["y_true"].astype(str) == pos).to_numpy(int),
                oof[f"proba:{pos}"].to_numpy(float), f"positive class {pos!r}")
    y = np.concatenate([(oof["y_true"].astype(str) == c).to_numpy(int) for c in classes])
    s = np.concatenate([oof[f"proba:{c}"].to_numpy(float) for c in classes])
    return y, s, "micro-average over classes (one-vs-rest)"


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _empty(fig: Figure, message: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555")
    return fig


# --------------------------------------------------------------------------- curves

def _curve_figure(cells: Sequence[CellResult], kind: str, positive: str | None) -> Figure:
    from sklearn import metrics as skm

    groups = _group_by_feature_set([c for c in cells if len(c.oof)])
    if not groups:
        with _rc():
            return _empty(_new_figure(6, 2), "no out-of-fold predictions")
    rows, cols = _grid(len(groups))
    with _rc():
        n_leg = min(max(len(v) for v in groups.values()), MAX_CURVES) + 1
        below = n_leg > 5  # long legends go under the panel, not over the curves
        fig = _new_figure(max(4.6 * cols, 6.4),
                          (4.1 + (0.16 * n_leg if below else 0.0)) * rows + 0.3)
        what = ""
        for i, (fs, members) in enumerate(groups.items()):
            ax = fig.add_subplot(rows, cols, i + 1)
            names = short_labels(members)
            curves = []
            for c in members:
                y, s, what = _binary_target(c, positive)
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
        with _rc():
            return _empty(_new_figure(6, 2), "no out-of-fold predictions")
    rows, cols = _grid(len(cells), 4)
    with _rc():
        fig = _new_figure(3.3 * cols, 3.1 * rows + 0.4)
        for i, c in enumerate(cells):
            cls = list(classes) if classes else _classes_of(c)
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
    groups = _group_by_feature_set(cells)
    if not groups:
        with _rc():
            return _empty(_new_figure(6, 2), "no cells")
    n_max = max(len(v) for v in groups.values())
    with _rc():
        fig = _new_figure(9.5, sum(0.45 * len(v) + 1.0 for v in groups.values()) + 0.5)
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


# --------------------------------------------------------------------------- CD diagram

def _cliques(ranks: Sequence[float], cd: float) -> list[tuple[int, int]]:
    """Maximal index ranges ``[i, j]`` of sorted ranks whose spread is < ``cd``."""
    out: list[tuple[int, int]] = []
    n = len(ranks)
    for i in range(n):
        j = i
        while j + 1 < n and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in out):
            out.append((i, j))
    return out


def plot_critical_difference(comparison: ComparisonResult) -> Figure:
    """Demsar critical-difference diagram from average ranks and the Nemenyi CD.

    Cells joined by a thick bar are not significantly different (rank spread
    below the CD). Without a CD (fewer than 3 cells) only the ranks are drawn.
    """
    ranks = comparison.average_ranks.sort_values()
    short = short_names([str(n) for n in ranks.index])
    names = [short[str(n)] for n in ranks.index]
    vals = ranks.to_numpy(float)
    k = max(len(comparison.cells), len(vals), 2)
    cd = comparison.nemenyi_cd
    has_cd = cd is not None and math.isfinite(cd)
    cliques = _cliques(vals, cd) if has_cd else []
    n_left = math.ceil(len(vals) / 2)
    y_cd, y_axis = 0.45, 1.5
    y_lab0 = y_axis + 0.45 + 0.25 * len(cliques) + 0.25
    total = y_lab0 + 0.5 * max(n_left - 1, 0) + 0.45
    lo, hi = 1.0, float(k)
    x0, x1 = 0.32, 0.68

    def xpos(r: float) -> float:
        return x0 + (r - lo) / (hi - lo) * (x1 - x0)

    with _rc():
        fig = _new_figure(10.0, 0.42 * total + 0.5)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.45 / (0.42 * total + 0.5)))
        ax.axis("off")
        ax.set_xlim(0, 1)
        ax.set_ylim(total, 0)
        ax.plot([x0, x1], [y_axis, y_axis], color="#222", lw=1.2)
        for t in range(1, k + 1):
            ax.plot([xpos(t)] * 2, [y_axis - 0.12, y_axis], color="#222", lw=1)
            ax.text(xpos(t), y_axis - 0.18, str(t), ha="center", va="bottom", fontsize=8.5)
        for m, (a, b) in enumerate(cliques):
            y = y_axis + 0.3 + 0.25 * m
            ax.plot([xpos(vals[a]) - 0.005, xpos(vals[b]) + 0.005], [y, y], color="#d62728",
                    lw=4, solid_capstyle="round")
        for i, (nm, r) in enumerate(zip(names, vals, strict=True)):
            left = i < n_left
            row = i if left else len(vals) - 1 - i
            y = y_lab0 + 0.5 * row
            xe = x0 - 0.02 if left else x1 + 0.02
            ax.plot([xpos(r), xpos(r), xe], [y_axis, y, y], color="#444", lw=0.9)
            ax.plot([xpos(r)], [y_axis], "o", color="#222", ms=3.5)
            ax.text(xe - 0.005 if left else xe + 0.005, y,
                    f"{nm}  ({r:.2f})" if left else f"({r:.2f})  {nm}",
                    ha="right" if left else "left", va="center", fontsize=8.5)
        if has_cd:
            ax.plot([xpos(1), xpos(1 + cd)], [y_cd, y_cd], color="#222", lw=1.8)
            for xx in (xpos(1), xpos(1 + cd)):
                ax.plot([xx, xx], [y_cd - 0.1, y_cd + 0.1], color="#222", lw=1.5)
            ax.text((xpos(1) + xpos(1 + cd)) / 2, y_cd - 0.14, f"CD = {cd:.2f}",
                    ha="center", va="bottom", fontsize=8.5)
        note = []
        if comparison.friedman_p is not None:
            note.append(f"Friedman chi2 = {comparison.friedman_stat:.2f}, "
                        f"p = {_fmt_p(comparison.friedman_p)}")
        note.append("red bar: not significantly different (Nemenyi)" if has_cd
                    else "Nemenyi CD not available (fewer than 3 cells)")
        ax.text(0.01, y_cd, "\n".join(note), fontsize=8, va="center", color="#333")
        fig.suptitle(f"Critical-difference diagram: average rank on {comparison.metric} over "
                     f"{comparison.n_splits} splits (1 = best; alpha = {comparison.alpha})",
                     fontsize=10.5, y=0.985, va="top")
    return fig


def _text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on background ``rgba``."""
    r, g, b = rgba[:3]
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def _fmt_p(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


# --------------------------------------------------------------------------- p-value heat maps

def _pmatrix(pairwise: pd.DataFrame, cells: Sequence[str], column: str) -> np.ndarray:
    idx = {c: i for i, c in enumerate(cells)}
    m = np.full((len(cells), len(cells)), np.nan)
    if column in pairwise:
        for a, b, p in zip(pairwise["a"], pairwise["b"], pairwise[column], strict=True):
            if a in idx and b in idx:
                m[idx[a], idx[b]] = m[idx[b], idx[a]] = float(p)
    return m


def plot_pvalue_heatmaps(comparison: ComparisonResult) -> Figure:
    """Pairwise p-values: Nadeau-Bengio corrected t-test (headline) and Holm-adjusted Wilcoxon."""
    from matplotlib.colors import LogNorm

    cells = list(comparison.cells)
    n = len(cells)
    short = short_names(cells)
    panels = [("nb_p", "Nadeau-Bengio corrected t-test p (headline)"),
              ("nb_p_holm", "Nadeau-Bengio p, Holm-adjusted"),
              ("wilcoxon_p_holm", "Wilcoxon signed-rank p, Holm-adjusted")]
    panels = [p for p in panels if p[0] in comparison.pairwise.columns] or panels[:1]
    size = max(3.2, 0.5 * n + 1.8)
    with _rc():
        fig = _new_figure(size * len(panels) + 1.0, size + 0.6)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        norm = LogNorm(vmin=1e-4, vmax=1.0)
        im = None
        for ax, (col, title) in zip(axes, panels, strict=True):
            m = _pmatrix(comparison.pairwise, cells, col)
            ax.grid(False)
            shown = np.clip(m, 1e-4, 1.0)
            im = ax.imshow(np.ma.masked_invalid(shown), cmap="YlGnBu_r", norm=norm)
            ax.set_facecolor("#e6e6e6")
            if n <= 14:
                for (r, k), v in np.ndenumerate(m):
                    if r == k:
                        continue
                    txt = "n/a" if not np.isfinite(v) else _fmt_p(v)
                    star = "*" if np.isfinite(v) and v < comparison.alpha else ""
                    ax.text(k, r, txt + star, ha="center", va="center", fontsize=7,
                            color=_text_colour(im.cmap(norm(shown[r, k])))
                            if np.isfinite(v) else "#555")
            ax.set_xticks(range(n), [short[c] for c in cells], rotation=45, ha="right")
            ax.set_yticks(range(n), [short[c] for c in cells])
            ax.set_title(title)
        if im is not None:
            cb = fig.colorbar(im, ax=list(axes), shrink=0.8)
            cb.set_label("p-value (log scale)")
        note = ("* p < alpha; grey = not computed (Wilcoxon is refused when the smallest "
                f"attainable p = {_fmt_p(comparison.min_wilcoxon_p)} exceeds alpha = "
                f"{comparison.alpha})")
        fig.suptitle(f"Pairwise tests on {comparison.metric} over {comparison.n_splits} paired "
                     f"splits\n{note}", fontsize=10)
    return fig


# --------------------------------------------------------------------------- attention

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
    with _rc():
        if table.empty:
            return _empty(_new_figure(6, 2), "no attention-fusion cells")
        whos = list(dict.fromkeys(table["who"]))
        stores = list(dict.fromkeys(table["store"]))
        fig = _new_figure(max(7.5, 0.8 * len(whos) * max(len(stores), 1) + 3.0), 3.8)
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
    with _rc():
        if not chosen:
            return _empty(_new_figure(6, 2), "no class counts recorded")
        rows, cols = _grid(len(chosen), 4)
        fig = _new_figure(max(3.6 * cols + 0.4, 6.4), 3.3 * rows + 0.5)
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
    with _rc():
        if t.empty:
            return _empty(_new_figure(6, 2), f"no ablation rows for {metric}")
        clfs = list(dict.fromkeys(t["classifier"]))
        variants = list(dict.fromkeys(t["variant"]))
        fig = _new_figure(max(7.5, 0.45 * len(clfs) * len(variants) + 3.0), 3.8)
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
    with _rc():
        if not rows:
            return _empty(_new_figure(6, 2), "no modality-shuffle results")
        t = pd.concat(rows, ignore_index=True)
        labels = [f"{c}\n{st} ({m})" for c, st, m in zip(t["cell"], t["store"], t["modality"], strict=True)]
        fig = _new_figure(9.0, 0.5 * len(t) + 1.4)
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


def figure_ids() -> Mapping[str, str]:
    """Stable element id -> description of every report figure."""
    return {
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
    }
