"""Terminal renderer of classify results (what ``pipeline classify`` prints); takes results only.

The headline table has the reference OpenI study's shape (Algorithm, Accuracy,
Precision, Recall, F1) plus ROC AUC, PR AUC, MCC, balanced accuracy and Brier,
each ``mean ± std`` over all splits. Precision/recall/F1 are WEIGHTED averages
over classes, like the reference study. Every table goes through
:func:`pipeline.helpers.text_table`, the project's one text-table renderer.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from classify.analysis.answer import QUESTIONS, Answer, PositiveClassSummary
from classify.analysis.answer.positive import POSITIVE_METRICS, TITLES
from classify.analysis.calibration import CalibrationSummary
from classify.analysis.equivalence import Equivalence
from classify.analysis.tuning_summary import TuningSummary
from classify.results.metrics import COLUMN_TITLES, HEADLINE
from classify.results.types import AblationResult, BenchmarkResult, ComparisonResult, ShuffleResult
from classify.run.time_estimate import TimeEstimate
from pipeline.helpers import format_p, text_table


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def label_words(rule_id: str) -> str:
    """A run's label rule for readers: ``manifest:None`` (a CSV manifest's label column) reads
    ``the manifest's label column``."""
    if rule_id in ("manifest:None", "manifest:label", "manifest:"):
        return "the manifest's label column"
    return rule_id


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
    title = f"{result.experiment} on {result.dataset} (labels: {label_words(result.label_rule)})"
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
        text += "\n\n" + attention_table(abl.attention_weights)
    return text


def attention_table(w: pd.DataFrame) -> str:
    """Mean attention weight per (sampler, store), once: the attention fusion is fitted before
    the classifier, so its weights are the same for every classifier of a sampler; rows are per
    classifier only where they differ."""
    if "sampler" not in w:
        w = w.assign(sampler="-")
    rows = []
    for (smp, store, mod), g in w.groupby(["sampler", "store", "modality"], sort=False):
        vals = g["weight"].to_numpy(float)
        if np.allclose(vals, vals[0], atol=5e-4):
            rows.append([smp, f"all {len(vals)}", store, mod, f"{vals.mean():.3f}"])
        else:
            rows += [[smp, c, store, mod, f"{v:.3f}"]
                     for c, v in zip(g["classifier"], vals, strict=True)]
    return text_table(["sampler", "classifier", "store", "modality", "weight"], rows,
                      title="Mean attention weight per modality")


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
                   calibration: CalibrationSummary | None = None, *,
                   names: dict[str, str] | None = None, brief: bool = False) -> str:
    """The one summary block: the best cell, the cells practically equivalent to it and the
    best cell's operating point (when the experiment chose one in-fold). ``names`` gives cells
    names for readers; ``brief`` counts the undecided cells instead of listing them."""
    if equivalence is None:
        return ""
    e = equivalence
    n = names or {}

    def listed(labels: Sequence[str]) -> str:
        return "; ".join(n.get(lab, lab) for lab in labels)

    lines = [f"Best cell on {e.metric}: {n.get(e.best, e.best)} ({e.best_mean:.3f})",
             f"  practically equivalent (|diff| <= ROPE {e.rope:g} with P >= "
             f"{e.decision_probability:g}, Bayesian correlated t-test over {e.n_splits} splits): "
             + (listed(e.equivalent) or "none")]
    if e.undecided and brief:
        lines.append(f"  undecided: {len(e.undecided)} cell(s) (listed with --verbose)")
    elif e.undecided:
        lines.append(f"  undecided (neither equivalent nor worse with P >= "
                     f"{e.decision_probability:g}): {listed(e.undecided)}")
    if e.better:
        lines.append(f"  decided better despite a lower mean: {listed(e.better)}")
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


def plan_table(result: BenchmarkResult, estimates: Mapping[str, TimeEstimate] | None = None,
               n_jobs: int = 1) -> str:
    """What a (dry) run computes or reuses, and why; with ``estimates`` (cell key ->
    :class:`~classify.run.time_estimate.TimeEstimate`) the fit time each cell will take and
    the wall time of the run on ``n_jobs`` parallel fits."""
    n = sum(p.action == "compute" for p in result.planned)
    s = result.split
    splits = f" x {s.n_folds * s.n_repeats} splits" if s is not None else ""
    est = estimates or {}
    rows = []
    for p in result.planned:
        e = est.get(p.key)
        time_text = ("-" if p.action != "compute" else
                     f"~{e.seconds:.0f} s ({e.basis})" if e is not None else "no similar cell stored")
        rows.append([p.spec.label, p.key, p.action, p.reason] + ([time_text] if estimates is not None
                                                                   else []))
    notes = []
    if estimates is not None and n:
        total = sum(e.seconds for e in est.values())
        missing = n - len(est)
        notes.append(f"estimated fit time {total:.0f} s, about {total / max(1, n_jobs) / 60:.1f} "
                     f"min wall on {n_jobs} parallel fit(s)"
                     + (f"; {missing} cell(s) without an estimate" if missing else "")
                     + " (from the stored cells' timings, same data set)")
    return text_table(["cell", "key", "action", "reason"] + (["fit time, all splits"]
                                                               if estimates is not None else []),
                      rows, title=f"{result.experiment}: {n} of {len(result.planned)} cells to "
                                  f"compute{splits}", notes=notes)


def data_notes(result: BenchmarkResult) -> str:
    """Dropped-sample summary of the feature join (never silent)."""
    d = result.data
    share = (f" ({d.class_counts.get(d.positive_label, 0) / d.n_samples:.1%} of samples)"
             if d.positive_label is not None and d.n_samples else "")
    lines = [f"{d.n_samples} samples, classes {dict(d.class_counts)}, positive = "
             f"{d.positive_label}{share}; labels: {label_words(result.label_rule)}"]
    for reason, ids in d.dropped.items():
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        lines.append(f"dropped {len(ids)} ({reason}): {shown}")
    return "\n".join(lines)


def cell_notes(result: BenchmarkResult) -> str:
    """Per-cell notes (e.g. SMOTE's k_neighbors reduced in a fold), one line each; ``""`` if none."""
    lines = [f"* {c.label}: {w}" for c in result.cells for w in c.warnings]
    return "\n".join(["Cell notes (also in the report's warnings):", *lines]) if lines else ""


def render_benchmark(result: BenchmarkResult,
                     estimates: Mapping[str, TimeEstimate] | None = None, n_jobs: int = 1) -> str:
    """What ``pipeline classify`` prints: the plan for a dry run (with time ``estimates``),
    else the headline table."""
    parts = [data_notes(result)]
    if result.dry_run:
        parts.append(plan_table(result, estimates, n_jobs))
        parts += [f"* {w}" for w in result.warnings]
    else:
        parts.append(headline_table(result))
        notes = cell_notes(result)
        if notes:
            parts.append(notes)
        parts.append(f"wall time {result.wall_seconds:.1f}s; results in {result.results_dir}")
    return "\n\n".join(parts)


#: Rows of the default leaderboard (``--verbose`` shows every cell).
LEADERBOARD_ROWS = 10
#: Width the answer's sentences are wrapped to.
WRAP = 100


def answer_text(answer: Answer | None, *, table: bool = False) -> str:
    """The answer: one wrapped sentence per question (and the comparisons with ``table``)."""
    if answer is None:
        return ""
    lines = [f"ANSWER ({answer.metric}; planned comparisons, Holm within each question, "
             f"Nadeau-Bengio 95 % CI, P(equivalent) for |difference| <= {answer.rope:g})"]
    for q, sentence in answer.sentences:
        lines.append(f"({q}) {QUESTIONS[q]}")
        lines += textwrap.wrap(sentence, WRAP, initial_indent="    ", subsequent_indent="    ")
    if table and len(answer.table):
        t = answer.table
        lines += ["", text_table(
            ["q", "comparison", "difference", "95 % CI", "p (Holm)", "P(=)", "verdict"],
            [[r.question, r.comparison, f"{r.difference:+.4f}",
              f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]", format_p(r.p_holm), _fmt(r.p_rope, 2),
              r.verdict] for r in t.itertuples(index=False)],
            title="Planned comparisons (tables/answer.csv in the report)")]
    return "\n".join(lines)


def leaderboard(result: BenchmarkResult, names: dict[str, str] | None = None,
                positive: PositiveClassSummary | None = None, *, metric: str = "roc_auc",
                rows: int | None = LEADERBOARD_ROWS) -> str:
    """The best ``rows`` cells (all with None) by ``metric``, with the positive class's
    sensitivity, specificity, PPV, NPV, PR AUC, MCC and balanced accuracy for binary tasks
    (weighted metrics for multiclass)."""
    names = names or {}
    sign = 1.0 if metric != "brier" else -1.0
    cells = sorted(result.cells, key=lambda c: -np.nan_to_num(sign * c.summary(metric)[0],
                                                                nan=-np.inf))
    shown = cells if rows is None else cells[:rows]
    if positive is not None:
        cols = [m for m in POSITIVE_METRICS if m != metric]
        by = positive.table.set_index("cell")
        body = [[names.get(c.label, c.label), _fmt(c.summary(metric)[0]),
                 *[_fmt(by.loc[c.label, f"{m}_mean"]) for m in cols]] for c in shown]
        titles = [TITLES.get(m, m) for m in cols]
        sub = (f"positive class {positive.positive!r}, prevalence {positive.prevalence:.1%} "
               f"({positive.n_positive} of {positive.n_samples})")
    else:
        cols = [m for m in HEADLINE if m != metric]
        body = [[names.get(c.label, c.label), _fmt(c.summary(metric)[0]),
                 *[_fmt(c.summary(m)[0]) for m in cols]] for c in shown]
        titles = [COLUMN_TITLES.get(m, m) for m in cols]
        sub = "multiclass: weighted precision/recall/F1"
    notes = [f"mean over {result.split.n_folds} folds x {result.split.n_repeats} repeats"
             + ("; positive-class metrics at the most probable class" if positive else "")
             ] if result.split is not None else []
    if rows is not None and len(cells) > rows:
        notes.append(f"{len(cells) - rows} more cells: --verbose, or the report")
    return text_table(["cell", COLUMN_TITLES.get(metric, metric), *titles], body,
                      title=f"Leaderboard: {len(shown)} of {len(cells)} cells by "
                            f"{COLUMN_TITLES.get(metric, metric)} ({sub})", notes=notes)


def _first_sentence(text: str, width: int = 200) -> str:
    first = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0]
    return first if len(first) <= width else first[: width - 3] + "..."


def warning_digest(result: BenchmarkResult, extra: Sequence[str] = ()) -> str:
    """Every warning of a run once, with how often it came (cell notes counted over cells);
    the first sentence of each (the full text is in the log file and the report)."""
    counts: Counter[str] = Counter()
    for w in (*result.warnings, *extra):
        counts[_first_sentence(w)] += 1
    for c in result.cells:
        for w in c.warnings:
            counts[_first_sentence(w)] += 1
    if not counts:
        return ""
    return "\n".join([f"Warnings ({len(counts)}, each once; full text in the log file and the "
                      "report):"] + [f"* {w}" + (f"  [x{n}]" if n > 1 else "")
                                     for w, n in counts.items()])


def render_classify_summary(result: BenchmarkResult, answer: Answer | None,
                            positive: PositiveClassSummary | None, *, metric: str = "roc_auc",
                            choice: str = "") -> str:
    """What ``pipeline classify`` prints by default: the data, a short leaderboard, the
    warnings once, the chosen cell's operating point and, last, the answer."""
    names = answer.names if answer is not None else {}
    parts = [data_notes(result), leaderboard(result, dict(names), positive, metric=metric)]
    digest = warning_digest(result)
    if digest:
        parts.append(digest)
    if choice:
        parts.append(choice)
    parts.append(f"cells: {result.n_computed} computed, {result.n_reused} reused; wall time "
                 f"{result.wall_seconds:.1f}s; results in {result.results_dir}")
    text = answer_text(answer)
    if text and any("text-only ceiling" in w for w in result.warnings):
        text += ("\n    Caution: the labels come from the report itself, so every comparison "
                 "with the report\n    alone measures the label leaking, not skill (see the "
                 "text-only ceiling warning).")
    parts.append(text)
    return "\n\n".join(p for p in parts if p)
