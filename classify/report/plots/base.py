"""Shared plumbing of the report figures: Agg figures without pyplot, PNG export, short names.

Figures are bound to an Agg canvas; no pyplot state is used, so they are thread-safe,
never open a window and never need closing. matplotlib is imported inside the functions
(nothing happens at import time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from classify.results.types import CellResult

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


def new_figure(width: float, height: float) -> Figure:
    """A Figure on an Agg canvas (no pyplot, no global backend switch)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_FONT):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(_FONT)


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of ``fig`` (white background), reduced to a 256-colour palette: a third of
    the size for line plots and heat maps, which is what keeps the self-contained HTML report
    small enough to send."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    with rc():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
    return out.getvalue()


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


def group_by_feature_set(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = {}
    for c in cells:
        out.setdefault(c.spec.feature_set, []).append(c)
    return out


def classes_of(cell: CellResult) -> list[str]:
    return [c[len("proba:"):] for c in cell.oof.columns if str(c).startswith("proba:")]


def binary_target(cell: CellResult, positive: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(y, score, what)``: 0/1 indicators and scores for the pooled curves."""
    classes = classes_of(cell)
    oof = cell.oof
    if len(classes) == 2:
        pos = positive if positive in classes else classes[1]
        return ((oof["y_true"].astype(str) == pos).to_numpy(int),
                oof[f"proba:{pos}"].to_numpy(float), f"positive class {pos!r}")
    y = np.concatenate([(oof["y_true"].astype(str) == c).to_numpy(int) for c in classes])
    s = np.concatenate([oof[f"proba:{c}"].to_numpy(float) for c in classes])
    return y, s, "micro-average over classes (one-vs-rest)"


def grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def empty(fig: Figure, message: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555")
    return fig


def text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on background ``rgba``."""
    r, g, b = rgba[:3]
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"

