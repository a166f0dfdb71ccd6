"""Terminal renderer of classify results (what ``pipeline classify`` prints); takes results only.

The headline table has the reference OpenI study's shape (Algorithm, Accuracy,
Precision, Recall, F1) plus ROC AUC, PR AUC, MCC, balanced accuracy and Brier,
each ``mean ± std`` over all splits. Precision/recall/F1 are WEIGHTED averages
over classes, like the reference study. Every table goes through
:func:`pipeline.helpers.text_table`, the project's one text-table renderer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from classify.analysis.calibration import CalibrationSummary
from classify.analysis.equivalence import Equivalence
from classify.analysis.tuning_summary import TuningSummary
from classify.results.metrics import COLUMN_TITLES, HEADLINE
from classify.results.types import AblationResult, BenchmarkResult, ComparisonResult, ShuffleResult
from pipeline.helpers import format_p, text_table


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def headline_table(result: BenchmarkResult, metrics: Sequence[str] | None = None,
                   sort_by: str | None = "roc_auc") -> str:
    """The terminal table of a benchmark (rows sorted by ``sort_by``, best first)."""
    metrics = list(metrics or HEADLINE)
    cells = list(result.cells)
    if sort_by:
        keys = np.nan_to_num(np.asarray([c.summary(sort_by)[0] for c in cells], float),
                             nan=-np.inf)
        cells = [cells[i] for i in np.argsort(-keys, kind="stable")]
    rows = [[c.label] + [f"{_fmt(m)} ± {_fmt(s)}" for m, s in (c.summary(k) for k in metrics)]
            for c in cells]
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
    return text_table(["Algorithm", *[COLUMN_TITLES.get(m, m) for m in metrics]], rows,
                      title=title, notes=notes)


def comparison_table(cmp: ComparisonResult) -> str:
    """Pairwise test table + average ranks / Friedman / Nemenyi summary."""
    pw = cmp.pairwise
    rows = [[r["a"], r["b"], f"{r['mean_diff']:+.4f}", _fmt(r["nb_t"], 2),
             format_p(r["nb_p_holm"]), format_p(r["wilcoxon_p_holm"]),
             _fmt(r["rank_biserial"], 2), "yes" if r["nb_significant"] else "no",
             _fmt(r["p_a_better"]), _fmt(r["p_equivalent"]), _fmt(r["p_b_better"]),
             r["decision"]]
            for _, r in pw.iterrows()]
    notes = [f"Nadeau-Bengio corrected t-test (n2/n1 = {cmp.test_train_ratio:.3f}, "
             f"{cmp.n_splits} splits) is the headline test; alpha = {cmp.alpha}",
             f"Bayesian correlated t-test: P(A>B), P(=) (|A-B| <= ROPE {cmp.rope:g}), P(B>A); "
             f"a decision needs P >= {cmp.decision_probability:g}, else 'undecided'"]
    if cmp.friedman_p is not None and not math.isfinite(cmp.friedman_p):
        notes.append("Friedman: all tied (every split ties all cells)")
    elif cmp.friedman_p is not None:
        notes.append(f"Friedman chi2 = {cmp.friedman_stat:.2f}, p = {format_p(cmp.friedman_p)}; "
                     f"Nemenyi CD = {cmp.nemenyi_cd:.3f} average-rank units")
    notes.append(f"min attainable two-sided Wilcoxon p with {cmp.n_splits} pairs: "
                 f"{cmp.min_wilcoxon_p:.3g}")
    notes += list(cmp.warnings)
    main = text_table(["A", "B", "mean A-B", "NB t", "NB p (Holm)", "Wilcoxon p (Holm)",
                       "rank-biserial", "sig. (NB)", "P(A>B)", "P(=)", "P(B>A)", "decision"],
                      rows,
                      title=f"Paired comparison on {cmp.metric}", notes=notes)
    ranks = text_table(["cell", "average rank"],
                       [[k, f"{v:.2f}"] for k, v in cmp.average_ranks.items()],
                       title=f"Average ranks on {cmp.metric} (1 = best)")
    return main + "\n\n" + ranks


def ablation_table(abl: AblationResult, metric: str | None = None) -> str:
    """Wide table: one row per (classifier, sampler), one column per modality variant."""
    metric = metric or abl.metrics[0]
    t = abl.table[abl.table["metric"] == metric]
    header: list[str] = []
    rows: list[list[str]] = []
    if len(t):
        variants = list(dict.fromkeys(t["variant"]))
        header = ["classifier", "sampler", *variants]
        for (clf, smp), g in t.groupby(["classifier", "sampler"], sort=False):
            by_variant = {v: f"{_fmt(m)} ± {_fmt(s)}" for v, m, s in
                          zip(g["variant"], g["mean"], g["std"], strict=True)}
            rows.append([clf, smp, *[by_variant.get(v, "-") for v in variants]])
    text = text_table(header, rows, title=f"Modality ablation ({metric})", notes=abl.warnings)
    if len(abl.attention_weights):
        w = abl.attention_weights
        text += "\n\n" + text_table(
            ["classifier", "store", "modality", "weight"],
            [[c, s, m, f"{v:.3f}"] for c, s, m, v in
             zip(w["classifier"], w["store"], w["modality"], w["weight"], strict=True)],
            title="Mean attention weight per modality")
    return text


def shuffle_table(res: ShuffleResult) -> str:
    """Score drop per permuted store of one shuffled cell."""
    s = res.summary
    rows = [[r["store"], r["modality"], _fmt(r["baseline_mean"]), _fmt(r["shuffled_mean"]),
             f"{r['drop_mean']:+.3f} ± {_fmt(r['drop_std'])}", r["n_splits"]]
            for _, r in s.iterrows()]
    return text_table(["store", "modality", "baseline", "shuffled", "drop", "splits"], rows,
                      title=f"Modality shuffle test: {res.cell} ({res.metric}, "
                            f"{res.n_permutations} permutations per split)", notes=res.warnings)


def choice_summary(equivalence: Equivalence | None,
                   calibration: CalibrationSummary | None = None) -> str:
    """The one summary block: the best cell, the cells practically equivalent to it and the
    best cell's operating point (when the experiment chose one in-fold)."""
    if equivalence is None:
        return ""
    e = equivalence
    lines = [f"Best cell on {e.metric}: {e.best} ({e.best_mean:.3f})",
             f"  practically equivalent (|diff| <= ROPE {e.rope:g} with P >= "
             f"{e.decision_probability:g}, Bayesian correlated t-test over {e.n_splits} splits): "
             + (", ".join(e.equivalent) or "none")]
    if e.undecided:
        lines.append(f"  undecided (neither equivalent nor worse with P >= "
                     f"{e.decision_probability:g}): {', '.join(e.undecided)}")
    if e.better:
        lines.append(f"  decided better despite a lower mean: {', '.join(e.better)}")
    lines.append(f"  worse: {len(e.worse)} cell(s)")
    if calibration is not None and calibration.rule:
        c = calibration
        th = c.thresholds["threshold"].to_numpy(float)
        at = {r["quantity"]: r for _, r in c.operating.iterrows()}
        parts = [f"{q} {_fmt(at[q]['at_threshold_mean'])} [{_fmt(at[q]['at_threshold_ci_low'])}, "
                 f"{_fmt(at[q]['at_threshold_ci_high'])}]" for q in ("sensitivity", "specificity",
                                                                    "ppv", "npv", "f1")]
        lines.append(f"  operating point ({c.rule}, chosen in each training fold"
                     + (f", {c.calibration} calibration" if c.calibration not in ("", "none")
                        else "") + f"): threshold {th.mean():.3f} [{th.min():.3f}-{th.max():.3f}]")
        lines.append("    " + "; ".join(parts))
        lines.append(f"  calibration: ECE {c.ece:.3f}, Brier {c.brier:.3f} (out-of-fold)")
    return "\n".join(lines)


def tuning_table(t: TuningSummary | None) -> str:
    """Tuned vs default per classifier with the corrected test and the tuning cost, then the
    spread of the chosen parameters over the outer folds."""
    if t is None:
        return ""
    rows = [[r["cell"], f"{r['search']}/{int(r['budget'])}", _fmt(r["mean_default"]),
             _fmt(r["mean_tuned"]), f"{r['diff']:+.4f}", format_p(r["nb_p"]),
             _fmt(r["p_equivalent"]), r["decision"], f"{r['tuning_seconds']:.1f}"]
            for _, r in t.table.iterrows()]
    main = text_table(["tuned cell", "search", "default", "tuned", "diff", "NB p", "P(=)",
                       "decision", "tuning s"], rows, title=f"Tuned vs default on {t.metric}",
                      notes=["searched on each outer training fold only (inner folds grouped by "
                             "patient); scores are the outer test folds'"])
    spread = text_table(["tuned cell", "parameter", "chosen over the outer folds"],
                        [[r["cell"], r["param"], r["values"]] for _, r in t.spread.iterrows()])
    return main + "\n\n" + spread


def plan_table(result: BenchmarkResult) -> str:
    """What a (dry) run computes or reuses, and why."""
    n = sum(p.action == "compute" for p in result.planned)
    s = result.split
    splits = f" x {s.n_folds * s.n_repeats} splits" if s is not None else ""
    return text_table(["cell", "key", "action", "reason"],
                      [[p.spec.label, p.key, p.action, p.reason] for p in result.planned],
                      title=f"{result.experiment}: {n} of {len(result.planned)} cells to "
                            f"compute{splits}")


def data_notes(result: BenchmarkResult) -> str:
    """Dropped-sample summary of the feature join (never silent)."""
    d = result.data
    lines = [f"{d.n_samples} samples, classes {dict(d.class_counts)}, positive = {d.positive_label}"]
    for reason, ids in d.dropped.items():
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        lines.append(f"dropped {len(ids)} ({reason}): {shown}")
    return "\n".join(lines)


def cell_notes(result: BenchmarkResult) -> str:
    """Per-cell notes (e.g. SMOTE's k_neighbors reduced in a fold), one line each; ``""`` if none."""
    lines = [f"* {c.label}: {w}" for c in result.cells for w in c.warnings]
    return "\n".join(["Cell notes (also in the report's warnings):", *lines]) if lines else ""


def render_benchmark(result: BenchmarkResult) -> str:
    """What ``pipeline classify`` prints: the plan for a dry run, else the headline table."""
    parts = [data_notes(result)]
    if result.dry_run:
        parts.append(plan_table(result))
        parts += [f"* {w}" for w in result.warnings]
    else:
        parts.append(headline_table(result))
        notes = cell_notes(result)
        if notes:
            parts.append(notes)
        parts.append(f"wall time {result.wall_seconds:.1f}s; results in {result.results_dir}")
    return "\n\n".join(parts)
