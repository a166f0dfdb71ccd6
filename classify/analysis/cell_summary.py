"""Per-feature-set metric summaries of a benchmark: mean, std and 95% t-interval per cell.

The numbers behind the report's classifier tables, computed once from the cells'
per-split scores. The t-interval over ``J`` splits is optimistic (too narrow) because
CV training sets overlap; it is clipped to each metric's range, since it can overshoot
with few splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classify.analysis.stats import t_interval
from classify.results.metrics import HEADLINE, METRICS
from classify.results.types import BenchmarkResult, CellResult


@dataclass(frozen=True)
class FeatureSetSummary:
    """Mean / std / CI of every metric for the cells of one feature set.

    Attributes:
        feature_set: the feature set's name.
        stores, modalities: of its cells (in block order).
        shared: caption of the components shared by every row (e.g. ``fusion concat``).
        metrics: summarised metrics, in display order.
        table: one row per cell, columns ``Algorithm`` (the varying components), ``cell``,
            ``key``, ``status`` and per metric ``<m>_mean, <m>_std, <m>_ci_low, <m>_ci_high,
            <m>_n`` (std ddof=1; the CI is a 95% t-interval over splits, clipped).
    """

    feature_set: str
    stores: tuple[str, ...]
    modalities: tuple[str, ...]
    shared: str
    metrics: tuple[str, ...]
    table: pd.DataFrame = field(hash=False)


def by_feature_set(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """Cells grouped by feature set, in first-seen order."""
    out: dict[str, list[CellResult]] = {}
    for c in cells:
        out.setdefault(c.spec.feature_set, []).append(c)
    return out


def algorithm_names(cells: Sequence[CellResult]) -> tuple[dict[str, str], str]:
    """Row names within one feature set and a caption of the parts shared by all rows."""
    parts = [(c.spec.fusion, c.spec.sampler, c.spec.classifier + _suffix(c.label))
             for c in cells]
    varying = [i for i in range(3) if i == 2 or len({p[i] for p in parts}) > 1]
    shared = [f"{n} {parts[0][i]}" for i, n in enumerate(("fusion", "sampler")) if i not in varying]
    names = {c.label: " / ".join(p[i] for i in varying) for c, p in zip(cells, parts, strict=True)}
    return names, ", ".join(shared)


def _suffix(label: str) -> str:
    """What a cell label carries after its classifier (e.g. ``+tuned``)."""
    last = label.rsplit("/", 1)[-1]
    return last[last.index("+"):] if "+" in last else ""


def metric_bounds(n_classes: int) -> Mapping[str, tuple[float, float]]:
    """Range of each metric (the CI is clipped to it); default ``(0, 1)``."""
    return {"mcc": (-1.0, 1.0), "brier": (0.0, 1.0 if n_classes == 2 else 2.0)}


def summarise_values(values: Sequence[float], bounds: tuple[float, float] = (0.0, 1.0)
                     ) -> tuple[float, float, float, float, int]:
    """``(mean, std, ci_low, ci_high, n)`` of the finite ``values`` (CI clipped to ``bounds``)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    mean = float(v.mean()) if len(v) else float("nan")
    std = float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else float("nan"))
    lo, hi = t_interval(v)
    return mean, std, max(lo, bounds[0]), min(hi, bounds[1]), len(v)


def summarise_feature_set(benchmark: BenchmarkResult, feature_set: str,
                          metrics: Sequence[str] = HEADLINE) -> FeatureSetSummary:
    """The summary of the cells of ``feature_set`` on ``metrics`` (unknown metrics skipped)."""
    cells = [c for c in benchmark.cells if c.spec.feature_set == feature_set]
    names, shared = algorithm_names(cells)
    metrics = tuple(m for m in metrics if m in METRICS)
    bounds = metric_bounds(len(benchmark.data.classes))
    rows = []
    for c in cells:
        row: dict[str, object] = {"Algorithm": names[c.label], "cell": c.label, "key": c.key,
                                  "status": c.status}
        for m in metrics:
            mean, std, lo, hi, n = summarise_values(c.metric_values(m).to_numpy(float),
                                                    bounds.get(m, (0.0, 1.0)))
            row.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_ci_low": lo,
                        f"{m}_ci_high": hi, f"{m}_n": n})
        rows.append(row)
    first = cells[0].spec if cells else None
    return FeatureSetSummary(
        feature_set=feature_set,
        stores=tuple(first.stores) if first else (),
        modalities=tuple(first.modalities) if first else (),
        shared=shared, metrics=metrics, table=pd.DataFrame(rows))


def summarise_benchmark(benchmark: BenchmarkResult, metrics: Sequence[str] = HEADLINE
                        ) -> tuple[FeatureSetSummary, ...]:
    """One :class:`FeatureSetSummary` per feature set, in the benchmark's order."""
    return tuple(summarise_feature_set(benchmark, fs, metrics)
                 for fs in by_feature_set(benchmark.cells))


def resampling_summary(benchmark: BenchmarkResult) -> pd.DataFrame:
    """Mean training-fold class counts before/after the sampler over splits.

    Columns ``cell, class, before_mean, after_mean``; one row per (cell, class).
    """
    rows = []
    for c in benchmark.cells:
        cc = c.class_counts
        if cc is None or cc.empty:
            continue
        g = cc.groupby(["stage", "class"])["count"].mean()
        for cls in sorted({str(k[1]) for k in g.index}):
            rows.append({"cell": c.label, "class": cls,
                         "before_mean": float(g.get(("before", cls), np.nan)),
                         "after_mean": float(g.get(("after", cls), np.nan))})
    return pd.DataFrame(rows, columns=["cell", "class", "before_mean", "after_mean"])
