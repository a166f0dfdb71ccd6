"""Plain-text renderers of classify results (they take result objects only).

The headline table has the reference OpenI study's shape (Algorithm, Accuracy,
Precision, Recall, F1) plus ROC AUC, PR AUC, MCC, balanced accuracy and Brier,
each ``mean ± std`` over all splits. Precision/recall/F1 are WEIGHTED averages
over classes, like the reference study. ``*_frame`` functions return the same
content as DataFrames for other renderers (HTML report).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from classify.evaluate import HEADLINE
from classify.results import AblationResult, BenchmarkResult, ComparisonResult, ShuffleResult

COLUMN_TITLES = {
    "accuracy": "Accuracy",
    "precision_weighted": "Precision",
    "recall_weighted": "Recall",
    "f1_weighted": "F1",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "mcc": "MCC",
    "balanced_accuracy": "Bal. acc",
    "brier": "Brier",
}


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return "<1e-4" if x < 1e-4 else f"{x:.4f}"


def render(frame: pd.DataFrame, title: str = "", notes: Sequence[str] = ()) -> str:
    """Fixed-width text table of ``frame`` (all cells stringified)."""
    cols = [str(c) for c in frame.columns]
    body = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [title] if title else []
    out += [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    out += [f"* {n}" for n in notes]
    return "\n".join(out)


def headline_frame(result: BenchmarkResult, metrics: Sequence[str] | None = None,
                   sort_by: str | None = "roc_auc") -> pd.DataFrame:
    """One row per cell: ``Algorithm`` (cell label) and ``mean ± std`` per metric."""
    metrics = [m for m in (metrics or HEADLINE)]
    rows, keys = [], []
    for c in result.cells:
        row = {"Algorithm": c.label}
        for m in metrics:
            mean, std = c.summary(m)
            row[COLUMN_TITLES.get(m, m)] = f"{_fmt(mean)} ± {_fmt(std)}"
        rows.append(row)
        keys.append(c.summary(sort_by)[0] if sort_by else 0.0)
    df = pd.DataFrame(rows)
    if sort_by and len(df):
        order = np.argsort(-np.nan_to_num(np.asarray(keys), nan=-np.inf), kind="stable")
        df = df.iloc[order].reset_index(drop=True)
    return df


def headline_table(result: BenchmarkResult, metrics: Sequence[str] | None = None,
                   sort_by: str | None = "roc_auc") -> str:
    """The terminal table of a benchmark (rows sorted by ``sort_by``, best first)."""
    s = result.split
    notes = [
        "Precision, Recall and F1 are WEIGHTED averages over classes (as in the reference "
        "OpenI study); Brier: lower is better",
    ]
    if s is not None:
        notes.append(f"mean ± std over {s.n_folds} folds x {s.n_repeats} repeats "
                     f"(StratifiedGroupKFold by patient, plan {s.hash[:12]}), "
                     f"{s.n_samples} samples / {s.n_groups} patients")
    notes.append(f"cells: {result.n_computed} computed, {result.n_reused} reused")
    notes += list(result.warnings)
    title = f"{result.experiment} on {result.dataset} (labels: {result.label_rule})"
    return render(headline_frame(result, metrics, sort_by), title, notes)


def comparison_frame(cmp: ComparisonResult) -> pd.DataFrame:
    pw = cmp.pairwise
    return pd.DataFrame({
        "A": pw["a"], "B": pw["b"],
        "mean A-B": [f"{v:+.4f}" for v in pw["mean_diff"]],
        "NB t": [_fmt(v, 2) for v in pw["nb_t"]],
        "NB p (Holm)": [_p(v) for v in pw["nb_p_holm"]],
        "Wilcoxon p (Holm)": [_p(v) for v in pw["wilcoxon_p_holm"]],
        "rank-biserial": [_fmt(v, 2) for v in pw["rank_biserial"]],
        "sig. (NB)": ["yes" if v else "no" for v in pw["nb_significant"]],
    })


def comparison_table(cmp: ComparisonResult) -> str:
    """Pairwise test table + average ranks / Friedman / Nemenyi summary."""
    notes = [f"Nadeau-Bengio corrected t-test (n2/n1 = {cmp.test_train_ratio:.3f}, "
             f"{cmp.n_splits} splits) is the headline test; alpha = {cmp.alpha}"]
    if cmp.friedman_p is not None:
        notes.append(f"Friedman chi2 = {cmp.friedman_stat:.2f}, p = {_p(cmp.friedman_p)}; "
                     f"Nemenyi CD = {cmp.nemenyi_cd:.3f} average-rank units")
    notes.append(f"min attainable two-sided Wilcoxon p with {cmp.n_splits} pairs: "
                 f"{cmp.min_wilcoxon_p:.3g}")
    notes += list(cmp.warnings)
    main = render(comparison_frame(cmp), f"Paired comparison on {cmp.metric}", notes)
    ranks = pd.DataFrame({"cell": cmp.average_ranks.index,
                          "average rank": [f"{v:.2f}" for v in cmp.average_ranks.to_numpy()]})
    return main + "\n\n" + render(ranks, f"Average ranks on {cmp.metric} (1 = best)")


def ablation_frame(abl: AblationResult, metric: str | None = None) -> pd.DataFrame:
    """Wide table: one row per (classifier, sampler), one column per variant."""
    metric = metric or abl.metrics[0]
    t = abl.table[abl.table["metric"] == metric]
    if not len(t):
        return pd.DataFrame()
    t = t.assign(value=[f"{_fmt(m)} ± {_fmt(s)}" for m, s in zip(t["mean"], t["std"], strict=True)])
    wide = t.pivot_table(index=["classifier", "sampler"], columns="variant", values="value",
                         aggfunc="first", sort=False)
    return wide.reset_index().fillna("-")


def ablation_table(abl: AblationResult, metric: str | None = None) -> str:
    metric = metric or abl.metrics[0]
    text = render(ablation_frame(abl, metric), f"Modality ablation ({metric})", abl.warnings)
    if len(abl.attention_weights):
        w = abl.attention_weights.assign(weight=lambda d: d["weight"].map(lambda v: f"{v:.3f}"))
        text += "\n\n" + render(w[["classifier", "store", "modality", "weight"]],
                                "Mean attention weight per modality")
    return text


def shuffle_table(res: ShuffleResult) -> str:
    s = res.summary
    frame = pd.DataFrame({
        "store": s["store"], "modality": s["modality"],
        "baseline": [_fmt(v) for v in s["baseline_mean"]],
        "shuffled": [_fmt(v) for v in s["shuffled_mean"]],
        "drop": [f"{m:+.3f} ± {_fmt(sd)}" for m, sd in zip(s["drop_mean"], s["drop_std"], strict=True)],
        "splits": s["n_splits"],
    })
    return render(frame, f"Modality shuffle test: {res.cell} ({res.metric}, "
                         f"{res.n_permutations} permutations per split)", res.warnings)


def plan_table(result: BenchmarkResult) -> str:
    """What a (dry) run computes or reuses, and why."""
    frame = pd.DataFrame({
        "cell": [p.spec.label for p in result.planned],
        "key": [p.key for p in result.planned],
        "action": [p.action for p in result.planned],
        "reason": [p.reason for p in result.planned],
    })
    n = sum(p.action == "compute" for p in result.planned)
    s = result.split
    splits = f" x {s.n_folds * s.n_repeats} splits" if s is not None else ""
    return render(frame, f"{result.experiment}: {n} of {len(result.planned)} cells to compute{splits}")


def resampling_frame(result: BenchmarkResult) -> pd.DataFrame:
    """Mean training-fold class counts before/after the sampler, per cell and class."""
    rows = []
    for c in result.cells:
        g = c.class_counts.groupby(["stage", "class"])["count"].mean()
        for cls in sorted({k[1] for k in g.index}):
            rows.append({"cell": c.label, "class": cls,
                         "before": f"{g.get(('before', cls), float('nan')):.1f}",
                         "after": f"{g.get(('after', cls), float('nan')):.1f}"})
    return pd.DataFrame(rows)


def data_notes(result: BenchmarkResult) -> str:
    """Dropped-sample summary of the feature join (never silent)."""
    d = result.data
    lines = [f"{d.n_samples} samples, classes {dict(d.class_counts)}, positive = {d.positive_label}"]
    for reason, ids in d.dropped.items():
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        lines.append(f"dropped {len(ids)} ({reason}): {shown}")
    return "\n".join(lines)


def render_benchmark(result: BenchmarkResult) -> str:
    """What ``pipeline classify`` prints: the plan for a dry run, else the headline table."""
    parts = [data_notes(result)]
    if result.dry_run:
        parts.append(plan_table(result))
        parts += [f"* {w}" for w in result.warnings]
    else:
        parts.append(headline_table(result))
        parts.append(f"wall time {result.wall_seconds:.1f}s; results in {result.results_dir}")
    return "\n\n".join(parts)
