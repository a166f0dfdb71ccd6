"""The held-out test set of an experiment: which cells are scored on it, and their scores.

The cells scored are the ones the report calls out: the best cell of each feature set on
the headline metric, chosen from CV scores only (:func:`classify.analysis.analyse.best_by_feature_set`),
or the cells named by ``pipeline evaluate --cell``. The scoring itself (fit on the
development set, predict the held-out patients, bootstrap by patient) is
:func:`classify.run.holdout.evaluate_cells`; scores are stored and read back, so each cell
is scored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from classify.analysis.analyse import best_by_feature_set
from classify.results.holdout import HoldoutEvaluation
from classify.results.types import BenchmarkResult
from classify.run.benchmark import load_benchmark, load_feature_set
from classify.run.holdout import N_BOOTSTRAP, evaluate_cells
from pipeline.errors import ConfigError
from pipeline.helpers import did_you_mean


def evaluate_holdout(exp: Any, *, metric: str = "roc_auc", cells: Sequence[str] | None = None,
                     compute: bool = True, n_boot: int = N_BOOTSTRAP,
                     benchmark: BenchmarkResult | None = None) -> HoldoutEvaluation | None:
    """Scores of the selected cells on ``exp``'s held-out set (None without ``[holdout]``
    when only reading, ``compute=False``; ConfigError when asked to compute without one).
    ``benchmark``: the experiment's stored benchmark when the caller has it loaded already."""
    if getattr(exp, "holdout", None) is None and not compute:
        return None
    benchmark = load_benchmark(exp) if benchmark is None else benchmark
    labels = [c.label for c in benchmark.cells]
    chosen = list(cells) if cells else list(best_by_feature_set(benchmark.cells, metric))
    for name in chosen:
        if name not in labels:
            raise ConfigError(f"no stored cell {name!r} in experiment {exp.name!r}."
                              f"{did_you_mean(name, labels)} Run `pipeline classify` first")
    fs, _ = load_feature_set(exp, with_holdout=True)
    return evaluate_cells(exp, fs, [benchmark.cell(n) for n in chosen], compute=compute,
                          n_boot=n_boot)


def render_holdout(h: HoldoutEvaluation) -> str:
    """Terminal table of the held-out scores, one block per cell."""
    import math

    from pipeline.helpers import text_table

    def fmt(x: float) -> str:
        return f"{x:.3f}" if math.isfinite(x) else "n/a"

    counts = ", ".join(f"{k}={v}" for k, v in h.class_counts.items())
    parts = [f"held-out test set: {h.n_samples} samples of {h.n_patients} patients ({counts}); "
             f"{h.how}; CV/tuning/selection/fit-final used the other {h.n_development} "
             f"samples\n  list: {h.path}"]
    for s in h.scores:
        rows = [(r.metric, fmt(r.value), f"[{fmt(r.ci95_low)}, {fmt(r.ci95_high)}]",
                 fmt(r.cv_mean)) for r in s.metrics.itertuples(index=False)]
        notes = []
        if s.threshold is not None:
            notes.append(f"op_* at the operating point re-fitted on the development set "
                         f"(threshold {s.threshold:.4f})")
        if s.chosen:
            notes.append(f"parameters chosen on the development set: {s.chosen}")
        parts.append(text_table(("metric", "held-out", f"95% CI ({h.n_boot} patient bootstraps)",
                                 "CV mean"), rows, title=f"{s.cell}", notes=notes,
                                indent="  "))
    if h.missing:
        parts.append("not scored: " + ", ".join(h.missing))
    return "\n".join(parts)
