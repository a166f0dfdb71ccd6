"""Report tables built from frozen results: display cells for the page, raw numbers for CSV.

Every builder formats numbers that were computed elsewhere (:mod:`classify.analysis.cell_summary`,
:mod:`classify.analysis.stats`, :mod:`classify.analysis.ablation.modalities`, :mod:`classify.run.leakage`); nothing is
computed here beyond choosing which formatted value to show in bold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from classify.analysis.calibration import CalibrationSummary
from classify.analysis.cell_summary import FeatureSetSummary
from classify.analysis.equivalence import Equivalence
from classify.analysis.tuning_summary import TuningSummary
from classify.report.model import Table, TCell
from classify.report.plots.base import short_names
from classify.results.metrics import COLUMN_TITLES, METRICS
from classify.results.types import AblationResult, BenchmarkResult, ComparisonResult, ShuffleResult
from classify.run import leakage
from classify.run.leakage import LeakageSummary
from pipeline.helpers import format_p


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``n/a`` when missing or not finite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (at most 80 characters)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-")[:80] or "x"


def _best(values: Sequence[str], metric: str) -> str | None:
    """The best formatted value of a column (ties in the display are all best)."""
    finite = [float(v) for v in values if v != "n/a"]
    if not finite:
        return None
    return fmt(max(finite) if METRICS.get(metric, True) else min(finite))


def classifier_table(summary: FeatureSetSummary, benchmark: BenchmarkResult) -> Table:
    """The reference-study table of one feature set: mean ± std and 95% CI per metric."""
    t = summary.table
    metrics = summary.metrics
    best = {m: _best([fmt(v) for v in t[f"{m}_mean"]], m) for m in metrics} if len(t) else {}
    rows = []
    for _, r in t.iterrows():
        row = [TCell(str(r["Algorithm"]))]
        for m in metrics:
            mean, std, lo, hi = r[f"{m}_mean"], r[f"{m}_std"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]
            sub = f"95% CI {fmt(lo)}–{fmt(hi)}" if math.isfinite(lo) else ""
            row.append(TCell(f"{fmt(mean)} ± {fmt(std)}", bold=best.get(m) == fmt(mean), sub=sub))
        rows.append(tuple(row))
    s = benchmark.split
    avg = benchmark.headline_average
    notes = [f"Precision, Recall and F1 are {avg.upper()} averages over classes"
             + (" (as in the reference OpenI study)" if avg == "weighted" else "")
             + "; ROC AUC / PR AUC are on the positive class"
             + (f" ({benchmark.data.positive_label!r})" if benchmark.data.positive_label else
                " (one-vs-rest macro average for multiclass)") + ".",
             "Bold: best mean per column" + ("; Brier is lower-is-better" if "brier" in metrics
                                            else "") + "."]
    if s is not None:
        notes.append(f"mean ± std over {s.n_folds * s.n_repeats} splits ({s.n_folds} folds x "
                     f"{s.n_repeats} repeats, StratifiedGroupKFold by patient); the 95% CI is a "
                     "t-interval over splits (clipped to the metric's range), optimistic (too "
                     "narrow) because CV training sets overlap.")
    title = f"Classifiers on feature set “{summary.feature_set}”"
    if len(t):
        mods = "+".join(f"{st} ({mo})" for st, mo in zip(summary.stores, summary.modalities,
                                                          strict=True))
        title += f": {mods}" + (f"; {summary.shared}" if summary.shared else "")
    return Table(name=f"classifiers-{slug(summary.feature_set)}", title=title,
                 columns=("Algorithm", *[COLUMN_TITLES.get(m, m) for m in metrics]),
                 rows=tuple(rows), raw=t.copy(), notes=tuple(notes))


def comparison_table(cmp: ComparisonResult, index: int) -> Table:
    """Pairwise tests: Nadeau-Bengio (headline) and Holm-adjusted Wilcoxon."""
    pw = cmp.pairwise
    short = short_names(cmp.cells)
    cols = ("A", "B", "mean A", "mean B", "A − B", "NB t", "NB p", "NB p (Holm)",
            "Wilcoxon p", "Wilcoxon p (Holm)", "rank-biserial", "pairs", "P(A better)",
            "P(equivalent)", "P(B better)", "Decision")
    rows = []
    for r in pw.itertuples(index=False):
        d = r._asdict()
        rows.append((
            TCell(short.get(d["a"], str(d["a"]))), TCell(short.get(d["b"], str(d["b"]))),
            TCell(fmt(d["mean_a"])),
            TCell(fmt(d["mean_b"])), TCell(f"{float(d['mean_diff']):+.4f}"),
            TCell(fmt(d["nb_t"], 2)), TCell(format_p(d["nb_p"])),
            TCell(format_p(d["nb_p_holm"]), bold=bool(d.get("nb_significant", False))),
            TCell(format_p(d["wilcoxon_p"])),
            TCell(format_p(d["wilcoxon_p_holm"]),
                  bold=bool(d.get("wilcoxon_significant", False))),
            TCell(fmt(d["rank_biserial"], 2)), TCell(str(d.get("n_pairs", ""))),
            TCell(fmt(d.get("p_a_better"))), TCell(fmt(d.get("p_equivalent"))),
            TCell(fmt(d.get("p_b_better"))),
            TCell(str(d.get("decision", "n/a")), bold=d.get("decision") in
                  ("A better", "equivalent", "B better")),
        ))
    notes = [
        f"Headline: Nadeau-Bengio corrected resampled t-test (n2/n1 = {cmp.test_train_ratio:.3f}, "
        f"{cmp.n_splits} paired splits); bold = significant after Holm at alpha = {cmp.alpha}.",
        "Wilcoxon signed-rank is reported as requested, but CV splits share training data, so "
        f"its p-values are optimistic; with {cmp.n_splits} splits the smallest attainable "
        f"two-sided p is {cmp.min_wilcoxon_p:.4g}"
        + (" > alpha, so it cannot be significant (n/a)." if cmp.min_wilcoxon_p > cmp.alpha
           else "."),
        "rank-biserial: matched-pairs effect size (+1 = A better on every split).",
        f"Bayesian correlated t-test (Benavoli et al. 2017): posterior probability that A is "
        f"better, that |A − B| <= ROPE = {cmp.rope:g} (practically equivalent), or that B is "
        f"better; the decision needs P >= {cmp.decision_probability:g}, else 'undecided'.",
    ]
    if cmp.friedman_p is not None and not math.isfinite(cmp.friedman_p):
        notes.append("Friedman: all tied (every split ties all cells).")
    elif cmp.friedman_p is not None:
        notes.append(f"Friedman chi2 = {cmp.friedman_stat:.3f}, p = {format_p(cmp.friedman_p)}; "
                     f"Nemenyi CD = {fmt(cmp.nemenyi_cd, 3)} (average rank).")
    if any(v != k for k, v in short.items()):
        notes.append("Cells: " + "; ".join(f"{v} = {k}" for k, v in short.items()) + ".")
    notes += list(cmp.warnings)
    return Table(name=f"pairwise-{index}-{slug(cmp.metric)}",
                 title=f"Pairwise tests on {cmp.metric} ({len(cmp.cells)} cells)",
                 columns=cols, rows=tuple(rows), raw=pw.copy(), notes=tuple(dict.fromkeys(notes)),
                 numeric_from=2)


def equivalence_table(e: Equivalence, names: dict[str, str] | None = None) -> Table:
    """Every cell against the best one: posterior probabilities and the verdict (cells named
    by ``names`` where given; the CSV keeps the labels)."""
    n = names or {}
    rows = tuple((TCell(n.get(str(r["cell"]), str(r["cell"]))), TCell(fmt(r["mean"])),
                  TCell(f"{float(r['diff_vs_best']):+.4f}"), TCell(fmt(r["p_best_better"])),
                  TCell(fmt(r["p_equivalent"])), TCell(fmt(r["p_other_better"])),
                  TCell(str(r["verdict"]), bold=r["verdict"] == "equivalent"),
                  TCell(format_p(r["nb_p_holm"])))
                 for _, r in e.table.iterrows())
    return Table(name=f"equivalence-{slug(e.metric)}",
                 title=f"Cells against the best one on {e.metric} ({n.get(e.best, e.best)}, "
                       f"{e.best_mean:.3f})",
                 columns=("Cell", "Mean", "− best", "P(best better)", "P(equivalent)",
                          "P(cell better)", "Verdict", "NB p (Holm)"),
                 rows=rows, raw=e.table.assign(best=e.best, rope=e.rope,
                                               decision_probability=e.decision_probability),
                 notes=(f"Bayesian correlated t-test over {e.n_splits} paired splits with a "
                        f"region of practical equivalence of ±{e.rope:g}; a verdict needs "
                        f"P >= {e.decision_probability:g}, else 'undecided'. Bold: practically "
                        "equivalent to the best cell, so not a reason to prefer the best one.",),
                 numeric_from=1)


def calibration_table(summaries: Sequence[CalibrationSummary]) -> Table:
    """ECE, Brier and the operating-point settings of the best cells."""
    rows, raws = [], []
    for s in summaries:
        th = s.thresholds["threshold"].to_numpy(float) if len(s.thresholds) else np.array([])
        spread = (f"{th.mean():.3f} ± {th.std(ddof=1) if len(th) > 1 else 0.0:.3f} "
                  f"[{th.min():.3f}–{th.max():.3f}]" if len(th) else "– (argmax)")
        rows.append((TCell(s.cell), TCell(fmt(s.ece)), TCell(fmt(s.brier)),
                     TCell(s.calibration or "none"), TCell(s.rule or "argmax"), TCell(spread)))
        raws.append({"cell": s.cell, "ece": s.ece, "brier_pooled": s.brier,
                     "calibration": s.calibration or "none", "rule": s.rule or "argmax",
                     "threshold_mean": float(th.mean()) if len(th) else float("nan"),
                     "threshold_min": float(th.min()) if len(th) else float("nan"),
                     "threshold_max": float(th.max()) if len(th) else float("nan")})
    return Table(name="calibration", title="Calibration and threshold of the best cells",
                 columns=("Cell", "ECE", "Brier (pooled)", "Calibration", "Threshold rule",
                          "Threshold per fold: mean ± sd [min–max]"),
                 rows=tuple(rows), raw=pd.DataFrame(raws),
                 notes=("ECE: expected calibration error over 10 equal-width bins of the "
                        "out-of-fold probabilities pooled over repeats. The threshold is chosen "
                        "inside each training fold (inner out-of-fold predictions, grouped by "
                        "patient) and applied unchanged to the test fold.",))


def operating_table(s: CalibrationSummary) -> Table:
    """Sensitivity ... F1 at the in-fold threshold next to argmax, with 95% CIs."""
    def cell(mean: float, lo: float, hi: float) -> TCell:
        return TCell(fmt(mean), sub=f"95% CI {fmt(lo)}–{fmt(hi)}" if math.isfinite(lo) else "")

    rows = tuple((TCell(str(r["quantity"]).upper() if r["quantity"] in ("ppv", "npv")
                        else str(r["quantity"]).capitalize()),
                  cell(r["at_threshold_mean"], r["at_threshold_ci_low"],
                       r["at_threshold_ci_high"]),
                  cell(r["argmax_mean"], r["argmax_ci_low"], r["argmax_ci_high"]))
                 for _, r in s.operating.iterrows())
    rule = s.rule or "none configured"
    return Table(name=f"operating-point-{slug(s.cell)}",
                 title=f"Operating point of {s.cell} (rule: {rule})",
                 columns=("Quantity", "At the in-fold threshold", "At argmax"), rows=rows,
                 raw=s.operating.assign(cell=s.cell, rule=s.rule, calibration=s.calibration),
                 notes=("Mean over splits with a Nadeau-Bengio corrected 95% interval (CV "
                        "splits share training data). Argmax uses probabilities that "
                        "oversampling may have shifted; the in-fold threshold never looks at "
                        "the test fold.", *_undefined_notes(s)))


def _undefined_notes(s: CalibrationSummary) -> tuple[str, ...]:
    """One note per quantity that some splits leave undefined (counted, not hidden)."""
    out = []
    for _, r in s.operating.iterrows():
        for col, where in (("at_threshold_undefined", "at the in-fold threshold"),
                           ("argmax_undefined", "at argmax")):
            n_undef = int(r.get(col, 0) or 0)
            if n_undef:
                out.append(f"{str(r['quantity']).upper()} {where} is undefined in {n_undef} of "
                           f"{int(r['n'])} splits (no prediction on that side); the mean and "
                           "interval are over the other splits.")
    return tuple(out)


def thresholds_table(summaries: Sequence[CalibrationSummary]) -> Table:
    """The threshold chosen in each training fold, per best cell."""
    frames = [s.thresholds.assign(cell=s.cell) for s in summaries if len(s.thresholds)]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["repeat", "fold", "threshold", "cell"])
    rows = tuple((TCell(str(r["cell"])), TCell(str(int(r["repeat"]))), TCell(str(int(r["fold"]))),
                  TCell(fmt(r["threshold"]))) for _, r in raw.iterrows())
    return Table(name="thresholds", title="Threshold chosen in each training fold",
                 columns=("Cell", "Repeat", "Fold", "Threshold"), rows=rows,
                 raw=raw[["cell", "repeat", "fold", "threshold"]], numeric_from=1)


def tuning_table(t: TuningSummary) -> Table:
    """Tuned vs default per classifier: paired corrected test, posterior and tuning cost."""
    rows = tuple((TCell(str(r["cell"])), TCell(f"{r['search']}, {int(r['budget'])} x "
                                                 f"{int(r['inner_folds'])} folds"),
                  TCell(fmt(r["mean_default"])), TCell(fmt(r["mean_tuned"])),
                  TCell(f"{float(r['diff']):+.4f}" if math.isfinite(float(r["diff"])) else "–"),
                  TCell(format_p(r["nb_p"])), TCell(fmt(r["p_tuned_better"])),
                  TCell(fmt(r["p_equivalent"])), TCell(fmt(r["p_default_better"])),
                  TCell(str(r["decision"]), bold=r["decision"] == "tuned better"),
                  TCell(fmt(r["tuning_seconds"], 1)))
                 for _, r in t.table.iterrows())
    return Table(name="tuning", title=f"Tuned vs default on {t.metric}",
                 columns=("Tuned cell", "Search", "Default", "Tuned", "Tuned − default",
                          "NB p", "P(tuned better)", "P(equivalent)", "P(default better)",
                          "Decision", "Tuning s"),
                 rows=rows, raw=t.table.copy(), numeric_from=2,
                 notes=("Nested tuning: the search runs on each outer training fold only "
                        "(inner folds grouped by patient, the whole pipeline refitted per inner "
                        "fold); the scores are those of the outer test folds. NB p: "
                        "Nadeau-Bengio corrected t-test; posterior: Bayesian correlated t-test "
                        "with the ROPE. Tuning s: search time over all outer folds.",))


def tuned_params_tables(t: TuningSummary) -> list[Table]:
    """The spread of the chosen parameters, and the parameters of every outer fold."""
    spread = Table(name="tuned-params-spread", title="Parameters chosen over the outer folds",
                   columns=("Tuned cell", "Parameter", "Chosen values"),
                   rows=tuple((TCell(str(r["cell"])), TCell(str(r["param"])),
                               TCell(str(r["values"]))) for _, r in t.spread.iterrows()),
                   raw=t.spread.copy(), numeric_from=99)
    per_fold = Table(name="tuned-params", title="Parameters chosen in each outer training fold",
                     columns=("Tuned cell", "Repeat", "Fold", "Inner score", "Parameters"),
                     rows=tuple((TCell(str(r["cell"])), TCell(str(r["repeat"])),
                                 TCell(str(r["fold"])), TCell(fmt(r["inner_score"])),
                                 TCell(str(r["params"]))) for _, r in t.chosen.iterrows()),
                     raw=t.chosen.copy(), numeric_from=1)
    return [spread, per_fold]


def ranks_table(cmp: ComparisonResult, index: int) -> Table:
    """Average rank per cell over splits (1 = best)."""
    r = cmp.average_ranks
    short = short_names([str(k) for k in r.index])
    rows = tuple((TCell(short[str(k)]), TCell(f"{float(v):.2f}", bold=i == 0))
                 for i, (k, v) in enumerate(r.items()))
    raw = pd.DataFrame({"cell": [str(k) for k in r.index], "average_rank": r.to_numpy(float)})
    return Table(name=f"ranks-{index}-{slug(cmp.metric)}",
                 title=f"Average rank on {cmp.metric} over {cmp.n_splits} splits (1 = best)",
                 columns=("Cell", "Average rank"), rows=rows, raw=raw)


def ablation_tables(abl: AblationResult) -> list[Table]:
    """One table per metric: classifier (x sampler) rows, modality variant columns."""
    out: list[Table] = []
    t = abl.table
    if t.empty:
        return out
    idx = ["classifier", "sampler"] if "sampler" in t and t["sampler"].nunique() > 1 \
        else ["classifier"]
    for m in abl.metrics:
        sub = t[t["metric"] == m]
        if sub.empty:
            continue
        mean = sub.pivot_table(index=idx, columns="variant", values="mean", aggfunc="mean",
                               sort=False)
        std = sub.pivot_table(index=idx, columns="variant", values="std", aggfunc="mean",
                              sort=False)
        variants = list(dict.fromkeys(sub["variant"]))
        rows = []
        for key in mean.index:
            vals = [mean.loc[key].get(v, np.nan) for v in variants]
            best = _best([fmt(v) for v in vals], m)
            name = " / ".join(key) if isinstance(key, tuple) else str(key)
            rows.append((TCell(name), *[
                TCell(f"{fmt(v)} ± {fmt(std.loc[key].get(var, np.nan))}" if math.isfinite(
                    float(v)) else "–", bold=fmt(v) == best)
                for v, var in zip(vals, variants, strict=True)]))
        out.append(Table(name=f"ablation-{slug(m)}",
                         title=f"Modality ablation: {m} (mean ± std over splits)",
                         columns=("Classifier", *variants), rows=tuple(rows),
                         raw=sub.reset_index(drop=True),
                         notes=("Bold: best variant per classifier. image-only / text-only use "
                                "fusion 'single'; concat / weighted_sum / attention fuse both.",)))
    return out


def shuffle_table(shuffles: Sequence[ShuffleResult]) -> Table:
    """Score drop per permuted store of each shuffled cell."""
    rows, raws = [], []
    for s in shuffles:
        for r in s.summary.itertuples(index=False):
            d = r._asdict()
            rows.append((TCell(s.cell), TCell(f"{d['store']} ({d['modality']})"),
                         TCell(fmt(d["baseline_mean"])), TCell(fmt(d["shuffled_mean"])),
                         TCell(f"{fmt(d['drop_mean'])} ± {fmt(d['drop_std'])}",
                               bold=float(d["drop_mean"]) == float(s.summary["drop_mean"].max())),
                         TCell(str(d["n_splits"]))))
        raws.append(s.summary.assign(cell=s.cell, key=s.key, metric=s.metric,
                                     n_permutations=s.n_permutations))
    metric = shuffles[0].metric if shuffles else ""
    return Table(name="modality-shuffle", title=f"Modality shuffle: drop in {metric}",
                 columns=("Cell", "Permuted store", "Baseline", "Shuffled", "Drop ± std",
                          "Splits"),
                 rows=tuple(rows), raw=pd.concat(raws, ignore_index=True) if raws
                 else pd.DataFrame(),
                 notes=("One store's block is permuted across the rows of the test fold after "
                        "fitting; a large drop means the model relies on that modality. Bold: "
                        "largest drop per cell.",), numeric_from=2)


def resampling_table(resampling: pd.DataFrame) -> Table:
    """Mean training-fold class counts before/after the sampler (see ``resampling_summary``)."""
    rows = tuple((TCell(str(r["cell"])), TCell(str(r["class"])), TCell(fmt(r["before_mean"], 1)),
                  TCell(fmt(r["after_mean"], 1))) for _, r in resampling.iterrows())
    return Table(name="resampling", title="Training-fold class counts (mean over splits)",
                 columns=("Cell", "Class", "Before sampler", "After sampler"), rows=rows,
                 raw=resampling.copy(), numeric_from=2)


def kv_table(name: str, title: str, items: Sequence[tuple[str, Any]]) -> Table:
    """A two-column ``Field / Value`` table."""
    rows = tuple((TCell(str(k)), TCell(str(v))) for k, v in items)
    return Table(name=name, title=title, columns=("Field", "Value"), rows=rows,
                 raw=pd.DataFrame(list(items), columns=["field", "value"]), numeric_from=99)


def stores_table(benchmark: BenchmarkResult) -> Table:
    """The feature stores used, with their content identity and provenance bits."""
    rows, raws = [], []
    for s in benchmark.data.stores:
        rows.append((TCell(s.encoder_key), TCell(s.modality), TCell(str(s.dim)),
                     TCell(s.identity[:16] + "…" if len(s.identity) > 16 else s.identity),
                     TCell(", ".join(s.trained_on) or "–"), TCell(str(s.n_failed)),
                     TCell(str(s.path))))
        raws.append({"encoder_key": s.encoder_key, "modality": s.modality, "dim": s.dim,
                     "identity": s.identity, "trained_on": ";".join(s.trained_on),
                     "n_failed": s.n_failed, "path": str(s.path)})
    return Table(name="stores", title="Feature stores (content identity = hash of provenance, "
                 "ids and vectors)",
                 columns=("Encoder key", "Modality", "Dim", "Identity", "Trained on", "Failed",
                          "Path"), rows=tuple(rows), raw=pd.DataFrame(raws), numeric_from=99)


def cells_table(benchmark: BenchmarkResult) -> Table:
    """Every cell with its key, status (computed/reused), reason and notes."""
    rows, raws = [], []
    reasons = {p.key: p.reason for p in benchmark.planned}
    for c in benchmark.cells:
        rows.append((TCell(c.label), TCell(c.key), TCell(c.status),
                     TCell(reasons.get(c.key, "")), TCell(fmt(c.fit_seconds, 1)),
                     TCell("; ".join(c.warnings) or "–")))
        raws.append({"cell": c.label, "key": c.key, "status": c.status,
                     "reason": reasons.get(c.key, ""), "fit_seconds": c.fit_seconds,
                     "warnings": "; ".join(c.warnings), "path": str(c.path or "")})
    return Table(name="cells", title=f"Cells: {benchmark.n_computed} computed in this run, "
                 f"{benchmark.n_reused} reused from disk",
                 columns=("Cell", "Key", "Status", "Reason", "Fit s (all splits)", "Notes"),
                 rows=tuple(rows), raw=pd.DataFrame(raws), numeric_from=99)


def leakage_table(summary: LeakageSummary, label_source: str) -> Table:
    """The text-only ceiling next to the best image-only and fused cells."""
    rows = []
    for _, r in summary.table.iterrows():
        gap = r["roc_auc_minus_text_ceiling"]
        rows.append((TCell(str(r["feature_set"])), TCell(str(r["kind"])),
                     TCell(str(r["best_cell"])),
                     TCell(f"{fmt(r['roc_auc_mean'])} ± {fmt(r['roc_auc_std'])}",
                           bold=bool(r["is_ceiling"])),
                     TCell(f"{fmt(r['f1_weighted_mean'])} ± {fmt(r['f1_weighted_std'])}"),
                     TCell("ceiling" if r["is_ceiling"] else f"{gap:+.3f}" if math.isfinite(gap)
                           else "–")))
    notes = [f"Best cell of each feature set by mean ROC AUC; label source: "
             f"{label_source or 'unknown'}. A text-only ROC AUC above {leakage.TEXT_CEILING} "
             "with labels from the report text is the label leaking, not skill; FINDINGS-only "
             "and masked-text feature sets show how much of the text score survives without it."]
    if summary.ceiling is None:
        notes.append("No text-only cell in this experiment, so the text-only ceiling cannot be "
                     "shown: add a text-only feature set (e.g. text = [\"minilm\"]).")
    return Table(name="leakage", title="Text-only ceiling vs image-only and fused results",
                 columns=("Feature set", "Kind", "Best cell", "ROC AUC", "F1 (weighted)",
                          "ROC AUC − text ceiling"),
                 rows=tuple(rows), raw=summary.table.drop(columns=["is_ceiling"],
                                                          errors="ignore"),
                 notes=tuple(notes), numeric_from=3)
