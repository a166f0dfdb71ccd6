"""Statistics figures: the critical-difference diagram and the pairwise p-value heat maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from classify.report.plots.base import new_figure, rc, short_names, text_colour
from classify.results.types import ComparisonResult
from pipeline.helpers import format_p

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def cliques(ranks: Sequence[float], cd: float) -> list[tuple[int, int]]:
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
    groups = cliques(vals, cd) if has_cd else []
    n_left = math.ceil(len(vals) / 2)
    y_cd, y_axis = 0.45, 1.5
    y_lab0 = y_axis + 0.45 + 0.25 * len(groups) + 0.25
    total = y_lab0 + 0.5 * max(n_left - 1, 0) + 0.45
    lo, hi = 1.0, float(k)
    x0, x1 = 0.32, 0.68

    def xpos(r: float) -> float:
        return x0 + (r - lo) / (hi - lo) * (x1 - x0)

    with rc():
        fig = new_figure(10.0, 0.42 * total + 0.5)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.45 / (0.42 * total + 0.5)))
        ax.axis("off")
        ax.set_xlim(0, 1)
        ax.set_ylim(total, 0)
        ax.plot([x0, x1], [y_axis, y_axis], color="#222", lw=1.2)
        for t in range(1, k + 1):
            ax.plot([xpos(t)] * 2, [y_axis - 0.12, y_axis], color="#222", lw=1)
            ax.text(xpos(t), y_axis - 0.18, str(t), ha="center", va="bottom", fontsize=8.5)
        for m, (a, b) in enumerate(groups):
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
        if comparison.friedman_p is not None and not math.isfinite(comparison.friedman_p):
            note.append("Friedman: all tied")
        elif comparison.friedman_p is not None:
            note.append(f"Friedman chi2 = {comparison.friedman_stat:.2f}, "
                        f"p = {format_p(comparison.friedman_p)}")
        note.append("red bar: not significantly different (Nemenyi)" if has_cd
                    else "Nemenyi CD not available (fewer than 3 cells)")
        ax.text(0.01, y_cd, "\n".join(note), fontsize=8, va="center", color="#333")
        fig.suptitle(f"Critical-difference diagram: average rank on {comparison.metric} over "
                     f"{comparison.n_splits} splits (1 = best; alpha = {comparison.alpha})",
                     fontsize=10.5, y=0.985, va="top")
    return fig


def pmatrix(pairwise: pd.DataFrame, cells: Sequence[str], column: str) -> np.ndarray:
    idx = {c: i for i, c in enumerate(cells)}
    m = np.full((len(cells), len(cells)), np.nan)
    if column in pairwise:
        for a, b, p in zip(pairwise["a"], pairwise["b"], pairwise[column], strict=True):
            if a in idx and b in idx:
                m[idx[a], idx[b]] = m[idx[b], idx[a]] = float(p)
    return m


def plot_pvalue_heatmaps(comparison: ComparisonResult, max_cells: int | None = None) -> Figure:
    """Pairwise p-values: Nadeau-Bengio corrected t-test (headline) and Holm-adjusted Wilcoxon;
    with ``max_cells``, only that many cells with the best average rank (a 95-cell matrix is
    unreadable; every pair is in the comparison's CSV table)."""
    from matplotlib.colors import LogNorm

    cells = list(comparison.cells)
    limited = max_cells is not None and len(cells) > max_cells
    if limited:
        cells = list(comparison.average_ranks.index[:max_cells])
    n = len(cells)
    short = short_names(cells)
    panels = [("nb_p", "Nadeau-Bengio corrected t-test p (headline)"),
              ("nb_p_holm", "Nadeau-Bengio p, Holm-adjusted"),
              ("wilcoxon_p_holm", "Wilcoxon signed-rank p, Holm-adjusted")]
    panels = [p for p in panels if p[0] in comparison.pairwise.columns] or panels[:1]
    size = max(3.2, 0.5 * n + 1.8)
    with rc():
        fig = new_figure(size * len(panels) + 1.0, size + 0.6)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        norm = LogNorm(vmin=1e-4, vmax=1.0)
        im = None
        for ax, (col, title) in zip(axes, panels, strict=True):
            m = pmatrix(comparison.pairwise, cells, col)
            ax.grid(False)
            shown = np.clip(m, 1e-4, 1.0)
            im = ax.imshow(np.ma.masked_invalid(shown), cmap="YlGnBu_r", norm=norm)
            ax.set_facecolor("#e6e6e6")
            if n <= 14:
                for (r, k), v in np.ndenumerate(m):
                    if r == k:
                        continue
                    txt = "n/a" if not np.isfinite(v) else format_p(v)
                    star = "*" if np.isfinite(v) and v < comparison.alpha else ""
                    ax.text(k, r, txt + star, ha="center", va="center", fontsize=7,
                            color=text_colour(im.cmap(norm(shown[r, k])))
                            if np.isfinite(v) else "#555")
            ax.set_xticks(range(n), [short[c] for c in cells], rotation=45, ha="right")
            ax.set_yticks(range(n), [short[c] for c in cells])
            ax.set_title(title)
        if im is not None:
            cb = fig.colorbar(im, ax=list(axes), shrink=0.8)
            cb.set_label("p-value (log scale)")
        note = ("* p < alpha; grey = not computed (Wilcoxon is refused when the smallest "
                f"attainable p = {format_p(comparison.min_wilcoxon_p)} exceeds alpha = "
                f"{comparison.alpha})")
        top = (f" — the {n} best of {len(comparison.cells)} cells by average rank"
               if limited else "")
        fig.suptitle(f"Pairwise tests on {comparison.metric} over {comparison.n_splits} paired "
                     f"splits{top}\n{note}", fontsize=10)
    return fig

