"""The analyst report: one self-contained HTML file plus Markdown, CSV and LaTeX tables.

:func:`write_report` renders result objects only (a :class:`BenchmarkResult` and,
optionally, :class:`ComparisonResult` s, an :class:`AblationResult` and
:class:`ShuffleResult` s). When the statistics or the ablation are not given
(``None``) they are computed by :func:`build_report_inputs`, a thin wrapper that
imports :mod:`classify.stats` / :mod:`classify.ablation` lazily; pass an empty
tuple to leave a section out instead.

Layout of ``<out_dir>/<experiment>/``::

    report.html      everything, images embedded as base64 PNG data URIs, inline CSS
    report.md        the same tables in Markdown; figures linked from figures/
    figures/*.png    the figures (for the Markdown report and slides)
    tables/*.csv     one CSV per table (numbers unformatted: mean, std, CI bounds)
    latex/*.tex      one booktabs table per table (needs \\usepackage{booktabs})

Every file is written to a temporary name and moved into place (``os.replace``),
so a reader never sees a half-written report.

The 95% confidence interval of a mean over ``J`` CV splits is the t-interval
``mean ± t(0.975, J-1) · std / sqrt(J)``. The splits share training data, so the
interval is optimistic (too narrow); the report says so next to every table.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify import leakage, plots
from classify.evaluate import HEADLINE, METRICS
from classify.results import (
    AblationResult,
    BenchmarkResult,
    CellResult,
    ComparisonResult,
    ShuffleResult,
)
from classify.tables import COLUMN_TITLES
from pipeline.errors import ConfigError, PipelineError

log = logging.getLogger(__name__)

#: Tables with more rows are collapsed (<details>) in the HTML report.
COLLAPSE_ROWS = 30
#: Cells shown in the confusion-matrix figure before falling back to the best per feature set.
MAX_CONFUSION = 12
_VERSION_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "imbalanced-learn", "xgboost",
                     "matplotlib", "h5py", "torch", "transformers")


# =========================================================================== inputs

@dataclass(frozen=True)
class ReportInputs:
    """Statistics and ablation computed for a report by :func:`build_report_inputs`."""

    comparisons: tuple[ComparisonResult, ...]
    ablation: AblationResult | None
    notes: tuple[str, ...] = ()


def build_report_inputs(benchmark: BenchmarkResult, *, metric: str = "roc_auc",
                        alpha: float = 0.05) -> ReportInputs:
    """Compute the paired comparisons and the modality ablation of ``benchmark``.

    One comparison per feature set with at least two cells (classifiers compared on
    the same data, as in the reference study) plus, when there are several feature
    sets and at most 20 cells, one over all cells. The modality-shuffle test needs
    the features (it refits models), so it is not computed here: run
    ``classify.ablation.run_shuffle`` and pass its results to :func:`write_report`.
    """
    from classify.ablation import ablation_table
    from classify.stats import compare_cells

    if benchmark.split is None or not benchmark.cells:
        return ReportInputs((), None, ("no computed cells: statistics skipped",))
    ratio = benchmark.split.test_train_ratio
    groups = _by_feature_set(benchmark.cells)
    candidates: list[Sequence[CellResult]] = [cells for cells in groups.values() if len(cells) > 1]
    if len(groups) > 1 and 2 < len(benchmark.cells) <= 20:
        candidates.append(benchmark.cells)
    comparisons, notes = [], []
    for cells in candidates:
        try:
            comparisons.append(compare_cells(cells, metric, test_train_ratio=ratio, alpha=alpha))
        except PipelineError as exc:
            notes.append(f"comparison of {len(cells)} cells skipped: {exc}")
            log.warning("comparison skipped: %s", exc)
    ablation = None
    metrics = tuple(m for m in ("roc_auc", "f1_weighted", "balanced_accuracy", "accuracy")
                    if m in METRICS)
    try:
        ablation = ablation_table(benchmark, metrics=metrics)
    except PipelineError as exc:
        notes.append(f"ablation skipped: {exc}")
        log.warning("ablation skipped: %s", exc)
    return ReportInputs(tuple(comparisons), ablation, tuple(notes))


# =========================================================================== tables

@dataclass(frozen=True)
class TCell:
    """One displayed table cell: text, bold flag and an optional second line (HTML only)."""

    text: str
    bold: bool = False
    sub: str = ""


@dataclass(frozen=True)
class Table:
    """A rendered table: display cells for HTML/Markdown/LaTeX and raw numbers for CSV."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[TCell, ...], ...]
    raw: pd.DataFrame = field(hash=False)
    notes: tuple[str, ...] = ()
    numeric_from: int = 1  # first right-aligned column


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def _fmt_p(p: Any) -> str:
    try:
        v = float(p)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    return "<1e-4" if v < 1e-4 else f"{v:.4f}"


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """t-interval of the mean of ``values`` (NaNs ignored); ``(nan, nan)`` for < 2 values."""
    from scipy import stats as sps

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    m = float(v.mean())
    return m - half, m + half


def _by_feature_set(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = {}
    for c in cells:
        out.setdefault(c.spec.feature_set, []).append(c)
    return out


def _algorithm_names(cells: Sequence[CellResult]) -> tuple[dict[str, str], str]:
    """Row names within one feature set and a caption of the parts shared by all rows."""
    parts = [(c.spec.fusion, c.spec.sampler, c.spec.classifier) for c in cells]
    varying = [i for i in range(3) if i == 2 or len({p[i] for p in parts}) > 1]
    shared = [f"{n} {parts[0][i]}" for i, n in enumerate(("fusion", "sampler")) if i not in varying]
    names = {c.label: " / ".join(p[i] for i in varying) for c, p in zip(cells, parts, strict=True)}
    return names, ", ".join(shared)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-")[:80] or "x"


def classifier_table(benchmark: BenchmarkResult, feature_set: str,
                     metrics: Sequence[str] = HEADLINE) -> Table:
    """The reference-study table of one feature set: mean ± std and 95% CI per metric."""
    cells = [c for c in benchmark.cells if c.spec.feature_set == feature_set]
    names, shared = _algorithm_names(cells)
    metrics = [m for m in metrics if m in METRICS]
    stats: dict[str, list[tuple[float, float, float, float, int]]] = {m: [] for m in metrics}
    raw_rows = []
    # metric ranges: the t-interval is clipped to them (it can overshoot with few splits)
    bounds = {"mcc": (-1.0, 1.0), "brier": (0.0, 1.0 if len(benchmark.data.classes) == 2 else 2.0)}
    for c in cells:
        raw = {"Algorithm": names[c.label], "cell": c.label, "key": c.key, "status": c.status}
        for m in metrics:
            v = c.metric_values(m).to_numpy(float)
            v = v[np.isfinite(v)]
            mean = float(v.mean()) if len(v) else float("nan")
            std = float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else float("nan"))
            lo, hi = t_interval(v)
            lo, hi = max(lo, bounds.get(m, (0.0, 1.0))[0]), min(hi, bounds.get(m, (0.0, 1.0))[1])
            stats[m].append((mean, std, lo, hi, len(v)))
            raw.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_ci_low": lo,
                        f"{m}_ci_high": hi, f"{m}_n": len(v)})
        raw_rows.append(raw)
    best: dict[str, str] = {}
    for m in metrics:
        shown = [_fmt(s[0]) for s in stats[m] if math.isfinite(s[0])]
        if shown:
            vals = [float(x) for x in shown]
            best[m] = _fmt(max(vals) if METRICS[m] else min(vals))
    rows = []
    for i, c in enumerate(cells):
        row = [TCell(names[c.label])]
        for m in metrics:
            mean, std, lo, hi, _ = stats[m][i]
            text = f"{_fmt(mean)} ± {_fmt(std)}"
            sub = f"95% CI {_fmt(lo)}–{_fmt(hi)}" if math.isfinite(lo) else ""
            row.append(TCell(text, bold=best.get(m) == _fmt(mean), sub=sub))
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
    title = f"Classifiers on feature set “{feature_set}”"
    if cells:
        mods = "+".join(f"{st} ({mo})" for st, mo in zip(cells[0].spec.stores,
                                                          cells[0].spec.modalities, strict=True))
        title += f": {mods}" + (f"; {shared}" if shared else "")
    return Table(name=f"classifiers-{_slug(feature_set)}", title=title,
                 columns=("Algorithm", *[COLUMN_TITLES.get(m, m) for m in metrics]),
                 rows=tuple(rows), raw=pd.DataFrame(raw_rows), notes=tuple(notes))


def comparison_table(cmp: ComparisonResult, index: int) -> Table:
    """Pairwise tests: Nadeau-Bengio (headline) and Holm-adjusted Wilcoxon."""
    pw = cmp.pairwise
    short = plots.short_names(cmp.cells)
    cols = ("A", "B", "mean A", "mean B", "A − B", "NB t", "NB p", "NB p (Holm)",
            "Wilcoxon p", "Wilcoxon p (Holm)", "rank-biserial", "pairs")
    rows = []
    for r in pw.itertuples(index=False):
        d = r._asdict()
        rows.append((
            TCell(short.get(d["a"], str(d["a"]))), TCell(short.get(d["b"], str(d["b"]))),
            TCell(_fmt(d["mean_a"])),
            TCell(_fmt(d["mean_b"])), TCell(f"{float(d['mean_diff']):+.4f}"),
            TCell(_fmt(d["nb_t"], 2)), TCell(_fmt_p(d["nb_p"])),
            TCell(_fmt_p(d["nb_p_holm"]), bold=bool(d.get("nb_significant", False))),
            TCell(_fmt_p(d["wilcoxon_p"])),
            TCell(_fmt_p(d["wilcoxon_p_holm"]), bold=bool(d.get("wilcoxon_significant", False))),
            TCell(_fmt(d["rank_biserial"], 2)), TCell(str(d.get("n_pairs", ""))),
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
    ]
    if cmp.friedman_p is not None:
        notes.append(f"Friedman chi2 = {cmp.friedman_stat:.3f}, p = {_fmt_p(cmp.friedman_p)}; "
                     f"Nemenyi CD = {_fmt(cmp.nemenyi_cd, 3)} (average rank).")
    if any(v != k for k, v in short.items()):
        notes.append("Cells: " + "; ".join(f"{v} = {k}" for k, v in short.items()) + ".")
    notes += list(cmp.warnings)
    return Table(name=f"pairwise-{index}-{_slug(cmp.metric)}",
                 title=f"Pairwise tests on {cmp.metric} ({len(cmp.cells)} cells)",
                 columns=cols, rows=tuple(rows), raw=pw.copy(), notes=tuple(dict.fromkeys(notes)),
                 numeric_from=2)


def ranks_table(cmp: ComparisonResult, index: int) -> Table:
    r = cmp.average_ranks
    short = plots.short_names([str(k) for k in r.index])
    rows = tuple((TCell(short[str(k)]), TCell(f"{float(v):.2f}", bold=i == 0))
                 for i, (k, v) in enumerate(r.items()))
    raw = pd.DataFrame({"cell": [str(k) for k in r.index], "average_rank": r.to_numpy(float)})
    return Table(name=f"ranks-{index}-{_slug(cmp.metric)}",
                 title=f"Average rank on {cmp.metric} over {cmp.n_splits} splits (1 = best)",
                 columns=("Cell", "Average rank"), rows=rows, raw=raw)


def ablation_tables(abl: AblationResult) -> list[Table]:
    """One table per metric: classifier (x sampler) rows, modality variant columns."""
    out = []
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
            finite = [float(_fmt(v)) for v in vals if math.isfinite(float(v))]
            best = _fmt(max(finite) if METRICS.get(m, True) else min(finite)) if finite else None
            name = " / ".join(key) if isinstance(key, tuple) else str(key)
            rows.append((TCell(name), *[
                TCell(f"{_fmt(v)} ± {_fmt(std.loc[key].get(var, np.nan))}" if math.isfinite(
                    float(v)) else "–", bold=_fmt(v) == best)
                for v, var in zip(vals, variants, strict=True)]))
        out.append(Table(name=f"ablation-{_slug(m)}",
                         title=f"Modality ablation: {m} (mean ± std over splits)",
                         columns=("Classifier", *variants), rows=tuple(rows),
                         raw=sub.reset_index(drop=True),
                         notes=("Bold: best variant per classifier. image-only / text-only use "
                                "fusion 'single'; concat / weighted_sum / attention fuse both.",)))
    return out


def shuffle_table(shuffles: Sequence[ShuffleResult]) -> Table:
    rows, raws = [], []
    for s in shuffles:
        for r in s.summary.itertuples(index=False):
            d = r._asdict()
            rows.append((TCell(s.cell), TCell(f"{d['store']} ({d['modality']})"),
                         TCell(_fmt(d["baseline_mean"])), TCell(_fmt(d["shuffled_mean"])),
                         TCell(f"{_fmt(d['drop_mean'])} ± {_fmt(d['drop_std'])}",
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


def resampling_table(benchmark: BenchmarkResult) -> Table:
    rows, raws = [], []
    for c in benchmark.cells:
        cc = c.class_counts
        if cc is None or cc.empty:
            continue
        g = cc.groupby(["stage", "class"])["count"].mean()
        for cls in sorted({str(k[1]) for k in g.index}):
            before = float(g.get(("before", cls), np.nan))
            after = float(g.get(("after", cls), np.nan))
            rows.append((TCell(c.label), TCell(cls), TCell(_fmt(before, 1)),
                         TCell(_fmt(after, 1))))
            raws.append({"cell": c.label, "class": cls, "before_mean": before,
                         "after_mean": after})
    return Table(name="resampling", title="Training-fold class counts (mean over splits)",
                 columns=("Cell", "Class", "Before sampler", "After sampler"), rows=tuple(rows),
                 raw=pd.DataFrame(raws), numeric_from=2)


def _kv_table(name: str, title: str, items: Sequence[tuple[str, Any]]) -> Table:
    rows = tuple((TCell(str(k)), TCell(str(v))) for k, v in items)
    return Table(name=name, title=title, columns=("Field", "Value"), rows=rows,
                 raw=pd.DataFrame(items, columns=["field", "value"]), numeric_from=99)


def stores_table(benchmark: BenchmarkResult) -> Table:
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
    rows, raws = [], []
    reasons = {p.key: p.reason for p in benchmark.planned}
    for c in benchmark.cells:
        rows.append((TCell(c.label), TCell(c.key), TCell(c.status),
                     TCell(reasons.get(c.key, "")), TCell(_fmt(c.fit_seconds, 1)),
                     TCell("; ".join(c.warnings) or "–")))
        raws.append({"cell": c.label, "key": c.key, "status": c.status,
                     "reason": reasons.get(c.key, ""), "fit_seconds": c.fit_seconds,
                     "warnings": "; ".join(c.warnings), "path": str(c.path or "")})
    return Table(name="cells", title=f"Cells: {benchmark.n_computed} computed in this run, "
                 f"{benchmark.n_reused} reused from disk",
                 columns=("Cell", "Key", "Status", "Reason", "Fit s (all splits)", "Notes"),
                 rows=tuple(rows), raw=pd.DataFrame(raws), numeric_from=99)


# =========================================================================== renderers

def _latex_escape(text: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
           "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
           "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--", "−": "$-$", "…": r"\ldots{}",
           "“": "``", "”": "''", "<": r"$<$", ">": r"$>$"}
    return "".join(rep.get(ch, ch) for ch in str(text))


def table_to_latex(t: Table) -> str:
    """A booktabs ``table`` environment (bold = ``\\textbf``)."""
    align = "".join("l" if i < t.numeric_from else "r" for i in range(len(t.columns)))
    lines = [
        "% generated by classify.report; needs \\usepackage{booktabs}",
        "\\begin{table}[ht]", "\\centering", "\\small",
        f"\\caption{{{_latex_escape(t.title)}}}", f"\\label{{tab:{t.name}}}",
        f"\\begin{{tabular}}{{{align}}}", "\\toprule",
        " & ".join(_latex_escape(c) for c in t.columns) + " \\\\", "\\midrule",
    ]
    for row in t.rows:
        cells = [f"\\textbf{{{_latex_escape(c.text)}}}" if c.bold else _latex_escape(c.text)
                 for c in row]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if t.notes:
        lines.append("\\par\\smallskip\\footnotesize " + " ".join(_latex_escape(n)
                                                                   for n in t.notes))
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_to_markdown(t: Table) -> str:
    head = "| " + " | ".join(_md_escape(c) for c in t.columns) + " |"
    sep = "|" + "|".join(":---" if i < t.numeric_from else "---:"
                         for i in range(len(t.columns))) + "|"
    body = []
    for row in t.rows:
        cells = []
        for c in row:
            txt = _md_escape(c.text) + (f" ({_md_escape(c.sub)})" if c.sub else "")
            cells.append(f"**{txt}**" if c.bold else txt)
        body.append("| " + " | ".join(cells) + " |")
    out = [f"**{_md_escape(t.title)}**", "", head, sep, *body]
    if t.notes:
        out += [""] + [f"> {_md_escape(n)}  " for n in t.notes]
    return "\n".join(out) + "\n"


def table_to_html(t: Table) -> str:
    e = html.escape
    head = "".join(f'<th class="{"num" if i >= t.numeric_from else "txt"}">{e(c)}</th>'
                   for i, c in enumerate(t.columns))
    body = []
    for row in t.rows:
        tds = []
        for i, c in enumerate(row):
            cls = ["num" if i >= t.numeric_from else "txt"] + (["best"] if c.bold else [])
            inner = f"<strong>{e(c.text)}</strong>" if c.bold else e(c.text)
            if c.sub:
                inner += f'<span class="ci">{e(c.sub)}</span>'
            tds.append(f'<td class="{" ".join(cls)}">{inner}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    notes = "".join(f"<li>{e(n)}</li>" for n in t.notes)
    table = (f'<div class="table-scroll"><table><thead><tr>{head}</tr></thead><tbody>'
             f'{"".join(body)}</tbody></table></div>')
    if len(t.rows) > COLLAPSE_ROWS:
        table = f"<details><summary>Show all {len(t.rows)} rows</summary>{table}</details>"
    return (f'<div class="table-block" id="tab-{e(t.name)}"><div class="table-title">{e(t.title)}'
            f"</div>{table}" + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</div>")


# =========================================================================== warnings

@dataclass(frozen=True)
class ReportWarning:
    category: str
    text: str


def text_only_ceiling(benchmark: BenchmarkResult) -> tuple[str, float, str] | None:
    """``(cell, value, metric)`` of the best text-only cell (see :mod:`classify.leakage`)."""
    return leakage.text_only_ceiling(benchmark.cells)


def _label_source(benchmark: BenchmarkResult, provenance: Mapping[str, Any]) -> str:
    """The run's label source; a ``label_source`` given in the provenance wins."""
    return str(provenance.get("label_source") or benchmark.label_source or "")


def leakage_table(benchmark: BenchmarkResult) -> Table:
    """The text-only ceiling next to the image-only and fused results: the best cell (by
    ROC AUC) of every feature set, with its gap to the best text-only cell."""
    ceiling = text_only_ceiling(benchmark)
    ceil_auc = None
    if ceiling is not None:
        ceil_auc = benchmark.cell(ceiling[0]).summary("roc_auc")[0]
    rows, raws = [], []
    for fs_name, cells in _by_feature_set(benchmark.cells).items():
        best = max(cells, key=lambda c: (math.isfinite(c.summary("roc_auc")[0]),
                                         np.nan_to_num(c.summary("roc_auc")[0], nan=-1.0)))
        mods = set(best.spec.modalities)
        kind = f"{mods.pop()}-only" if len(mods) == 1 else "fused"
        auc, auc_sd = best.summary("roc_auc")
        f1, f1_sd = best.summary("f1_weighted")
        gap = auc - ceil_auc if ceil_auc is not None and math.isfinite(ceil_auc) else float("nan")
        is_ceiling = ceiling is not None and best.label == ceiling[0]
        rows.append((TCell(fs_name), TCell(kind), TCell(best.label),
                     TCell(f"{_fmt(auc)} ± {_fmt(auc_sd)}", bold=is_ceiling),
                     TCell(f"{_fmt(f1)} ± {_fmt(f1_sd)}"),
                     TCell("ceiling" if is_ceiling else f"{gap:+.3f}" if math.isfinite(gap)
                           else "–")))
        raws.append({"feature_set": fs_name, "kind": kind, "best_cell": best.label,
                     "stores": ";".join(best.spec.stores), "roc_auc_mean": auc,
                     "roc_auc_std": auc_sd, "f1_weighted_mean": f1, "f1_weighted_std": f1_sd,
                     "roc_auc_minus_text_ceiling": gap})
    src = benchmark.label_source or "unknown"
    notes = [f"Best cell of each feature set by mean ROC AUC; label source: {src}. "
             f"A text-only ROC AUC above {leakage.TEXT_CEILING} with labels from the report "
             "text is the label leaking, not skill; FINDINGS-only and masked-text feature sets "
             "show how much of the text score survives without it."]
    if ceiling is None:
        notes.append("No text-only cell in this experiment, so the text-only ceiling cannot be "
                     "shown: add a text-only feature set (e.g. text = [\"minilm\"]).")
    return Table(name="leakage", title="Text-only ceiling vs image-only and fused results",
                 columns=("Feature set", "Kind", "Best cell", "ROC AUC", "F1 (weighted)",
                          "ROC AUC − text ceiling"),
                 rows=tuple(rows), raw=pd.DataFrame(raws), notes=tuple(notes), numeric_from=3)


def collect_warnings(benchmark: BenchmarkResult, *, comparisons: Sequence[ComparisonResult] = (),
                     ablation: AblationResult | None = None,
                     shuffles: Sequence[ShuffleResult] = (),
                     provenance: Mapping[str, Any] | None = None,
                     notes: Sequence[str] = ()) -> list[ReportWarning]:
    """All warnings of the run plus the report's own checks, de-duplicated."""
    prov = provenance or {}
    out: list[ReportWarning] = []
    run_text = " ".join(benchmark.warnings).lower()
    for w in benchmark.warnings:
        cat = ("leakage" if "ceiling" in w.lower() or "leak" in w.lower() else
               "pretraining" if "pretrain" in w.lower() else "run")
        out.append(ReportWarning(cat, w))
    ceiling = leakage.ceiling_warning(benchmark.cells, _label_source(benchmark, prov))
    if ceiling is not None and "text-only ceiling" not in run_text:
        out.append(ReportWarning("leakage", ceiling))
    overlap = leakage.pretraining_warnings(
        benchmark.data.stores, dataset=benchmark.dataset,
        source_dataset=benchmark.source_dataset, synthetic_images=benchmark.synthetic_images)
    for s, w in ((s, w) for s in benchmark.data.stores for w in overlap
                 if f"encoder {s.encoder_key} " in w):
        if not ("pretraining" in run_text and s.encoder_key.lower() in run_text):
            out.append(ReportWarning("pretraining", w))
    for s in benchmark.data.stores:
        if s.n_failed:
            out.append(ReportWarning("data", f"{s.n_failed} item(s) failed to embed in store "
                                     f"{s.encoder_key} and are excluded."))
    for reason, ids in benchmark.data.dropped.items():
        shown = ", ".join(list(ids)[:5]) + (" …" if len(ids) > 5 else "")
        out.append(ReportWarning("data", f"dropped {len(ids)} sample(s): {reason} ({shown})."))
    if benchmark.split is not None:
        out += [ReportWarning("split", w) for w in benchmark.split.warnings]
    for c in benchmark.cells:
        out += [ReportWarning("cell", f"{c.label}: {w}") for w in c.warnings]
    for cmp in comparisons:
        out += [ReportWarning("statistics", w) for w in cmp.warnings]
    if ablation is not None:
        out += [ReportWarning("leakage" if "ceiling" in w else "ablation", w)
                for w in ablation.warnings]
    for s in shuffles:
        out += [ReportWarning("shuffle", f"{s.cell}: {w}") for w in s.warnings]
    out += [ReportWarning("report", n) for n in notes]
    ceiling_ws = [w for w in out if "text-only ceiling" in w.text]
    if len(ceiling_ws) > 1:  # one line per flagged cell would drown the other warnings
        first = ceiling_ws[0]
        flagged = sorted({c.label for c in benchmark.cells if set(c.spec.modalities) == {"text"}
                          and any(c.label in w.text for w in ceiling_ws)})
        shown = ", ".join(flagged[:5]) + (" …" if len(flagged) > 5 else "")
        merged = ReportWarning("leakage", f"{first.text} [{len(flagged) or len(ceiling_ws)} "
                               f"text-only cell(s) flagged: {shown}]")
        out = [merged if w is first else w for w in out if w is first or w not in ceiling_ws]
    seen, unique = set(), []
    for w in out:
        if w.text not in seen:
            seen.add(w.text)
            unique.append(w)
    order = {"leakage": 0, "pretraining": 1, "data": 2, "split": 3, "run": 4}
    return sorted(unique, key=lambda w: order.get(w.category, 9))


# =========================================================================== figures

@dataclass(frozen=True)
class RenderedFigure:
    id: str
    title: str
    caption: str
    png: bytes = field(repr=False)


def _render_figures(benchmark: BenchmarkResult, comparisons: Sequence[ComparisonResult],
                    ablation: AblationResult | None, shuffles: Sequence[ShuffleResult],
                    primary: str) -> dict[str, list[RenderedFigure]]:
    """Section name -> figures (each rendered to PNG once)."""
    cells = list(benchmark.cells)
    pos = benchmark.data.positive_label
    out: dict[str, list[RenderedFigure]] = {}

    def add(section: str, fid: str, title: str, caption: str, fig: Any) -> None:
        out.setdefault(section, []).append(RenderedFigure(fid, title, caption,
                                                          plots.figure_to_png(fig)))

    pooled = ("Out-of-fold predictions of all repeats pooled into one curve per cell (each "
              "sample counted once per repeat); the AUC in the legend is of the pooled curve "
              "and can differ slightly from the mean per-split value in the tables.")
    add("curves", "fig-roc", "ROC curves", pooled, plots.plot_roc(cells, positive=pos))
    add("curves", "fig-pr", "Precision-recall curves", pooled + " AP = average precision.",
        plots.plot_pr(cells, positive=pos))
    shown = cells
    note = "every cell"
    if len(cells) > MAX_CONFUSION:
        shown = []
        for members in _by_feature_set(cells).values():
            shown.append(max(members, key=lambda c: np.nan_to_num(c.summary(primary)[0],
                                                                  nan=-np.inf)))
        note = f"the best cell per feature set by mean {primary}"
    add("curves", "fig-confusion", "Confusion matrices",
        f"Confusion matrices of {note}, out-of-fold predictions pooled over repeats, "
        "row-normalised (recall per true class); mean count per repeat in brackets.",
        plots.plot_confusion(shown, classes=benchmark.data.classes))
    add("curves", "fig-boxplot", f"Per-split {primary}",
        f"Distribution of {primary} over the {len(cells[0].metric_values(primary))} splits of "
        "each cell (every cell is scored on the same splits).",
        plots.plot_fold_boxplots(cells, primary))
    for i, cmp in enumerate(comparisons):
        sfx = "" if i == 0 else f"-{i + 1}"
        add(f"cmp{i}", f"fig-cd{sfx}", "Critical-difference diagram",
            "Average rank over splits (1 = best). Cells joined by a red bar are not "
            "significantly different by the Nemenyi test (rank difference < CD). Friedman/"
            "Nemenyi treat CV splits as independent, so they are optimistic.",
            plots.plot_critical_difference(cmp))
        add(f"cmp{i}", f"fig-pvalues{sfx}", "Pairwise p-values",
            "Nadeau-Bengio corrected t-test (headline; raw and Holm-adjusted) and Holm-adjusted "
            "Wilcoxon signed-rank p-values. Grey = not computed.",
            plots.plot_pvalue_heatmaps(cmp))
    if ablation is not None and not ablation.table.empty:
        add("modality", "fig-ablation", "Modality ablation",
            "Single-modality vs fused cells per classifier (mean ± std over splits).",
            plots.plot_ablation(ablation, ablation.metrics[0]))
    if shuffles:
        add("modality", "fig-shuffle", "Modality shuffle",
            "Score drop when one store's features are permuted across test rows.",
            plots.plot_shuffle_drops(shuffles))
    att_cells = [c for c in cells if c.attention is not None and len(c.attention)]
    if att_cells or (ablation is not None and len(ablation.attention_weights)):
        add("modality", "fig-attention", "Attention weights per modality",
            "Mean learned attention weight of each store over splits (error bar = std over "
            "splits); the dashed line is the uniform weight.",
            plots.plot_attention(att_cells if att_cells else ablation))
    if any(c.class_counts is not None and len(c.class_counts) for c in cells):
        add("resampling", "fig-class-balance", "Class balance before/after resampling",
            "Class counts of one training fold (repeat 0, fold 0) before and after each "
            "sampler; the sampler runs on training rows only, never on the test fold.",
            plots.plot_class_balance(cells))
    return out


# =========================================================================== HTML

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--accent:#2f5d8a;--bg:#f5f7fa;
--warn-bg:#fff8e6;--warn-line:#f0b429;--best:#e3f0fb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#102a43;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 6px;font-size:24px;font-weight:600}
header .sub{color:#bcccdc;font-size:13px}
.chips{margin-top:12px;display:flex;flex-wrap:wrap;gap:8px}
.chip{background:#243b53;border-radius:12px;padding:3px 10px;font-size:12px;color:#d9e2ec}
nav{background:#fff;border-bottom:1px solid var(--line);padding:10px 40px;position:sticky;top:0;
z-index:5}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:13px;font-weight:500}
main{max-width:1320px;margin:0 auto;padding:24px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 26px;
margin:0 0 22px}
h2{font-size:19px;margin:0 0 14px;padding-bottom:8px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:22px 0 8px;color:#243b53}
p{margin:6px 0 10px}
.muted{color:var(--muted)}
.table-block{margin:12px 0 20px}
.table-title{font-weight:600;margin-bottom:6px}
.table-scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;width:auto;min-width:50%}
th{background:#f0f4f8;font-weight:600;border-bottom:2px solid #9fb3c8;padding:6px 8px}
td{padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#eef4fb}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.txt,td.txt{text-align:left}
td.best{background:var(--best)}
.ci{display:block;font-size:10.5px;color:var(--muted);font-weight:normal}
ul.notes{margin:6px 0 0;padding-left:18px;color:var(--muted);font-size:12px}
figure{margin:16px 0 24px;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;
background:#fff}
figcaption{font-size:12.5px;color:var(--muted);max-width:900px;margin:6px auto 0;
text-align:left}
figcaption b{color:var(--ink)}
.warnbox{background:var(--warn-bg);border:1px solid var(--warn-line);
border-left:6px solid var(--warn-line);border-radius:6px;padding:12px 18px}
.warnbox h2{border:0;margin:0 0 6px;padding:0}
.warnbox ul{margin:0;padding-left:0;list-style:none}
.warnbox li{margin:4px 0;padding-left:0}
.tag{display:inline-block;min-width:86px;font-size:11px;font-weight:600;text-transform:uppercase;
letter-spacing:.03em;color:#8d2b0b;background:#ffe8d9;border-radius:3px;padding:1px 6px;
margin-right:8px;text-align:center}
.ok{background:#e3f9e5;border:1px solid #7bc47f;border-left:6px solid #3f9142}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:6px 28px}
.kv{font-size:13px;display:grid;grid-template-columns:160px 1fr}.kv b{color:#334e68}
pre{background:#f0f4f8;border:1px solid var(--line);border-radius:4px;padding:12px;overflow-x:auto;
font-size:12px;line-height:1.4}
.callout{background:#f0f4f8;border-radius:6px;padding:10px 14px;margin:10px 0}
details summary{cursor:pointer;color:var(--accent);font-size:12.5px;margin:4px 0}
footer{text-align:center;color:var(--muted);font-size:12px;padding:10px}
"""


def _figure_html(f: RenderedFigure) -> str:
    b64 = base64.b64encode(f.png).decode("ascii")
    e = html.escape
    return (f'<figure><img id="{e(f.id)}" alt="{e(f.id)}: {e(f.title)}" '
            f'src="data:image/png;base64,{b64}"><figcaption><b>{e(f.title)}.</b> {e(f.caption)}'
            "</figcaption></figure>")


def _versions(provenance: Mapping[str, Any]) -> dict[str, str]:
    if isinstance(provenance.get("versions"), Mapping):
        return {str(k): str(v) for k, v in provenance["versions"].items()}
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class _Doc:
    """Everything the HTML and Markdown writers need (built once)."""

    benchmark: BenchmarkResult
    classifier_tables: tuple[Table, ...]
    comparisons: tuple[ComparisonResult, ...]
    comparison_tables: tuple[tuple[Table, Table], ...]
    ablation_tables: tuple[Table, ...]
    shuffle: Table | None
    resampling: Table
    stores: Table
    cells: Table
    split: Table | None
    versions: Table
    extra: Table | None
    warnings: tuple[ReportWarning, ...]
    figures: Mapping[str, list[RenderedFigure]]
    ceiling: tuple[str, float, str] | None
    experiment_text: str | None
    generated: str
    primary: str
    leakage: Table | None = None
    label_source: str = ""


def _summary_items(b: BenchmarkResult) -> list[tuple[str, str]]:
    d = b.data
    items = [("Dataset", b.dataset), ("Label rule", b.label_rule),
             ("Samples", f"{d.n_samples}"),
             ("Classes", ", ".join(f"{k}: {v}" for k, v in d.class_counts.items())),
             ("Positive class", d.positive_label or "– (multiclass)"),
             ("Headline averaging", f"{b.headline_average} (precision / recall / F1)")]
    if b.split is not None:
        s = b.split
        items += [("Cross-validation", f"{s.n_folds} folds x {s.n_repeats} repeats "
                   f"(StratifiedGroupKFold by patient, seed {s.seed})"),
                  ("Patients (groups)", str(s.n_groups))]
    items += [("Cells", f"{len(b.cells)} ({b.n_computed} computed, {b.n_reused} reused)"),
              ("Fit time, all cells", f"{sum(c.fit_seconds for c in b.cells):.0f} s "
               f"(this run: {b.wall_seconds:.1f} s wall)")]
    return items


def _ceiling_flagged(doc: _Doc) -> bool:
    return bool(doc.ceiling is not None and leakage.label_from_report(doc.label_source)
                and doc.ceiling[2] == leakage.CEILING_METRIC
                and doc.ceiling[1] > leakage.TEXT_CEILING)


def _ceiling_sentence(doc: _Doc) -> str:
    if doc.ceiling is None:
        return ("Text-only ceiling: not measured (no text-only cell); with labels taken from "
                "the report text, fused scores cannot be judged for leakage without it.")
    cell, val, metric = doc.ceiling
    src = doc.label_source or "unknown"
    if _ceiling_flagged(doc):
        verdict = (f" — above {leakage.TEXT_CEILING} with labels from the same report ({src}): "
                   "LABEL LEAKAGE, not skill")
    elif leakage.label_from_report(doc.label_source):
        verdict = f" (labels come from the report text, {src})"
    else:
        verdict = f" (label source: {src})"
    return (f"Text-only ceiling: {cell} reaches {metric} = {val:.3f}{verdict}. Image and fused "
            "scores should be judged against it when labels come from the report text.")


def _html(doc: _Doc) -> str:
    e = html.escape
    b = doc.benchmark
    figs = doc.figures
    parts: list[str] = []
    nav = [("summary", "Summary"), ("warnings", "Warnings"), ("classifiers", "Classifiers"),
           ("curves", "Curves"), ("statistics", "Statistics"), ("modality", "Modalities"),
           ("resampling", "Resampling"), ("provenance", "Provenance")]
    chips = [f"dataset {b.dataset}", f"labels {b.label_rule}", f"{b.data.n_samples} samples",
             f"{len(b.cells)} cells"]
    if b.split is not None:
        chips.append(f"{b.split.n_folds}x{b.split.n_repeats} CV · plan {b.split.hash[:12]}")
    parts.append(
        f"<header><h1>{e(b.experiment)}</h1><div class=\"sub\">Chest X-ray + report feature "
        f"benchmark · generated {e(doc.generated)}</div><div class=\"chips\">"
        + "".join(f'<span class="chip">{e(c)}</span>' for c in chips) + "</div></header>")
    parts.append("<nav>" + "".join(f'<a href="#{k}">{v}</a>' for k, v in nav) + "</nav><main>")

    # summary
    kv = "".join(f'<div class="kv"><b>{e(k)}</b>{e(v)}</div>' for k, v in _summary_items(b))
    ceiling = f'<div class="callout">{e(_ceiling_sentence(doc))}</div>'
    if doc.leakage is not None:
        ceiling += table_to_html(doc.leakage)
    parts.append(f'<section id="summary"><h2>Summary</h2><div class="grid2">{kv}</div>{ceiling}'
                 "</section>")

    # warnings
    if doc.warnings:
        items = "".join(f'<li><span class="tag">{e(w.category)}</span>{e(w.text)}</li>'
                        for w in doc.warnings)
        parts.append(f'<section id="warnings" class="warnbox"><h2>Warnings ({len(doc.warnings)})'
                     f"</h2><ul>{items}</ul></section>")
    else:
        parts.append('<section id="warnings" class="warnbox ok"><h2>Warnings</h2>'
                     "<p>No warnings were raised.</p></section>")

    # classifier tables
    parts.append('<section id="classifiers"><h2>Classifier performance</h2>'
                 f'<p class="muted">One table per feature set, in the shape of the reference '
                 f"OpenI study (Algorithm, Accuracy, Precision, Recall, F1) plus ROC AUC, PR AUC, "
                 f"MCC, balanced accuracy and the Brier score. Headline precision/recall/F1 use "
                 f"<b>{e(b.headline_average)}</b> averaging.</p>"
                 + "".join(table_to_html(t) for t in doc.classifier_tables) + "</section>")

    # curves
    parts.append('<section id="curves"><h2>Curves, confusion matrices and per-split scores</h2>'
                 + "".join(_figure_html(f) for f in figs.get("curves", [])) + "</section>")

    # statistics
    stats = ['<section id="statistics"><h2>Statistical comparison</h2>']
    if not doc.comparisons:
        stats.append('<p class="muted">No comparison was computed.</p>')
    for i, (cmp, (pw, rk)) in enumerate(zip(doc.comparisons, doc.comparison_tables, strict=True)):
        stats.append(f"<h3>Comparison {i + 1}: {e(cmp.metric)} over {len(cmp.cells)} cells, "
                     f"{cmp.n_splits} paired splits</h3>")
        stats.append(table_to_html(pw))
        stats.append(table_to_html(rk))
        stats += [_figure_html(f) for f in figs.get(f"cmp{i}", [])]
    stats.append("</section>")
    parts.append("".join(stats))

    # modalities
    mod = ['<section id="modality"><h2>Modalities: ablation, shuffle test, attention</h2>']
    mod += [table_to_html(t) for t in doc.ablation_tables]
    if doc.shuffle is not None:
        mod.append(table_to_html(doc.shuffle))
    mod += [_figure_html(f) for f in figs.get("modality", [])]
    if len(mod) == 1:
        mod.append('<p class="muted">No ablation, shuffle or attention results.</p>')
    mod.append("</section>")
    parts.append("".join(mod))

    # resampling
    parts.append('<section id="resampling"><h2>Resampling</h2>'
                 + "".join(_figure_html(f) for f in figs.get("resampling", []))
                 + table_to_html(doc.resampling) + "</section>")

    # provenance
    prov = ['<section id="provenance"><h2>Provenance</h2>']
    if doc.split is not None:
        prov.append(table_to_html(doc.split))
    prov += [table_to_html(doc.stores), table_to_html(doc.cells), table_to_html(doc.versions)]
    if doc.extra is not None:
        prov.append(table_to_html(doc.extra))
    if doc.experiment_text:
        prov.append(f"<h3>Experiment file</h3><pre>{e(doc.experiment_text)}</pre>")
    prov.append("</section>")
    parts.append("".join(prov))
    parts.append(f"</main><footer>classify.report · {e(b.experiment)} · {e(doc.generated)}"
                 "</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(b.experiment)} — benchmark report</title><style>{_CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def _markdown(doc: _Doc, figure_dir: str) -> str:
    b = doc.benchmark
    out = [f"# {b.experiment}", "", f"_Generated {doc.generated}_", "", "## Summary", ""]
    out += [f"- **{k}:** {v}" for k, v in _summary_items(b)]
    out += ["", f"**{_ceiling_sentence(doc)}**" if _ceiling_flagged(doc) else
            _ceiling_sentence(doc)]
    if doc.leakage is not None:
        out += ["", table_to_markdown(doc.leakage)]
    out += ["", "## Warnings", ""]
    out += [f"- **{w.category}:** {w.text}" for w in doc.warnings] or ["- none"]
    out += ["", "## Classifier performance", ""]
    for t in doc.classifier_tables:
        out += [table_to_markdown(t)]

    def figs(section: str) -> list[str]:
        return [f"![{f.title}]({figure_dir}/{f.id}.png)\n\n_{f.caption}_\n"
                for f in doc.figures.get(section, [])]

    out += ["## Curves, confusion matrices and per-split scores", "", *figs("curves")]
    out += ["## Statistical comparison", ""]
    for i, (pw, rk) in enumerate(doc.comparison_tables):
        out += [table_to_markdown(pw), table_to_markdown(rk), *figs(f"cmp{i}")]
    out += ["## Modalities", ""]
    out += [table_to_markdown(t) for t in doc.ablation_tables]
    if doc.shuffle is not None:
        out.append(table_to_markdown(doc.shuffle))
    out += figs("modality")
    out += ["## Resampling", "", *figs("resampling"), table_to_markdown(doc.resampling)]
    out += ["## Provenance", ""]
    if doc.split is not None:
        out.append(table_to_markdown(doc.split))
    out += [table_to_markdown(doc.stores), table_to_markdown(doc.cells),
            table_to_markdown(doc.versions)]
    if doc.extra is not None:
        out.append(table_to_markdown(doc.extra))
    if doc.experiment_text:
        out += ["**Experiment file**", "", "```toml", doc.experiment_text.rstrip(), "```", ""]
    return "\n".join(out) + "\n"


# =========================================================================== writing

def _atomic_write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _sync_dir(directory: Path, files: Mapping[str, bytes | str], pattern: str) -> None:
    """Write ``files`` into ``directory`` and delete stale files matching ``pattern``."""
    for name, data in files.items():
        _atomic_write(directory / name, data)
    for old in directory.glob(pattern):
        if old.name not in files:
            old.unlink()


def write_report(
    benchmark: BenchmarkResult,
    out_dir: Path,
    *,
    comparisons: Sequence[ComparisonResult] | None = None,
    ablation: AblationResult | None = None,
    shuffles: Sequence[ShuffleResult] | None = None,
    experiment_text: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the report of ``benchmark`` under ``out_dir/<experiment>/``.

    Args:
        benchmark: a finished (not dry) run.
        out_dir: reports root, e.g. ``artifacts/reports``.
        comparisons: paired comparisons to show; ``None`` computes them (see
            :func:`build_report_inputs`), ``()`` leaves the section empty.
        ablation: modality ablation; ``None`` computes it when ``comparisons`` is also
            computed, otherwise the section is left out.
        shuffles: modality-shuffle results (never computed here).
        experiment_text: the experiment file's text, shown verbatim.
        provenance: extra facts shown in the provenance section (e.g. ``label_source``,
            ``command``, ``manifest``, ``versions`` to override the detected versions).

    Returns:
        ``{"html", "markdown", "csv_dir", "latex_dir", "figures_dir"}`` paths.
    """
    if benchmark.dry_run or not benchmark.cells:
        raise ConfigError(
            f"experiment {benchmark.experiment!r} has no computed cells (dry run?); run "
            "`pipeline classify` on it without --dry-run before `pipeline report`"
        )
    prov = dict(provenance or {})
    notes: tuple[str, ...] = ()
    if comparisons is None:
        inputs = build_report_inputs(benchmark)
        comparisons = inputs.comparisons
        ablation = inputs.ablation if ablation is None else ablation
        notes = inputs.notes
    comparisons = tuple(comparisons)
    shuffles = tuple(shuffles or ())
    primary = comparisons[0].metric if comparisons else (
        "roc_auc" if "roc_auc" in benchmark.metrics or not benchmark.metrics
        else benchmark.metrics[0])

    fs_names = list(_by_feature_set(benchmark.cells))
    metrics = [m for m in HEADLINE if m in benchmark.metrics] or list(HEADLINE)
    s = benchmark.split
    split_table = None if s is None else _kv_table("split-plan", "Split plan", [
        ("hash", s.hash), ("path", s.path), ("folds x repeats", f"{s.n_folds} x {s.n_repeats}"),
        ("seed", s.seed), ("samples / patients", f"{s.n_samples} / {s.n_groups}"),
        ("class counts", ", ".join(f"{k}: {v}" for k, v in s.class_counts.items())),
        ("test/train ratio (n2/n1)", f"{s.test_train_ratio:.4f}")])
    known = {"versions"}
    extra_items = [(k, json.dumps(v, default=str) if isinstance(v, (dict, list, tuple)) else v)
                   for k, v in prov.items() if k not in known]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    run_items = [("results directory", benchmark.results_dir), ("run wall time (s)",
                  f"{benchmark.wall_seconds:.1f}"),
                 ("fit time, all cells (s)", f"{sum(c.fit_seconds for c in benchmark.cells):.1f}"),
                 ("cells computed / reused", f"{benchmark.n_computed} / {benchmark.n_reused}"),
                 ("report generated", generated)]
    doc = _Doc(
        benchmark=benchmark,
        classifier_tables=tuple(classifier_table(benchmark, f, metrics) for f in fs_names),
        comparisons=comparisons,
        comparison_tables=tuple((comparison_table(c, i + 1), ranks_table(c, i + 1))
                                for i, c in enumerate(comparisons)),
        ablation_tables=tuple(ablation_tables(ablation)) if ablation is not None else (),
        shuffle=shuffle_table(shuffles) if shuffles else None,
        resampling=resampling_table(benchmark),
        stores=stores_table(benchmark),
        cells=cells_table(benchmark),
        split=split_table,
        versions=_kv_table("versions", "Package versions",
                           list(_versions(prov).items())),
        extra=_kv_table("run", "Run", run_items + extra_items),
        warnings=tuple(collect_warnings(benchmark, comparisons=comparisons, ablation=ablation,
                                        shuffles=shuffles, provenance=prov, notes=notes)),
        figures=_render_figures(benchmark, comparisons, ablation, shuffles, primary),
        ceiling=text_only_ceiling(benchmark),
        experiment_text=experiment_text,
        generated=generated,
        primary=primary,
        leakage=leakage_table(benchmark),
        label_source=_label_source(benchmark, prov),
    )
    root = Path(out_dir) / _slug(benchmark.experiment)
    csv_dir, latex_dir, fig_dir = root / "tables", root / "latex", root / "figures"
    tables = [*([doc.leakage] if doc.leakage is not None else []), *doc.classifier_tables, *[t for pair in doc.comparison_tables for t in pair],
              *doc.ablation_tables, *([doc.shuffle] if doc.shuffle is not None else []),
              doc.resampling, doc.stores, doc.cells, doc.versions,
              *([doc.split] if doc.split is not None else []),
              *([doc.extra] if doc.extra is not None else [])]
    _sync_dir(csv_dir, {f"{t.name}.csv": t.raw.to_csv(index=False) for t in tables}, "*.csv")
    _sync_dir(latex_dir, {f"{t.name}.tex": table_to_latex(t) for t in tables}, "*.tex")
    _sync_dir(fig_dir, {f"{f.id}.png": f.png for fl in doc.figures.values() for f in fl},
              "*.png")
    md = _atomic_write(root / "report.md", _markdown(doc, "figures"))
    page = _atomic_write(root / "report.html", _html(doc))
    log.info("report written: %s (%d tables, %d figures, %d warnings)", page, len(tables),
             sum(len(v) for v in doc.figures.values()), len(doc.warnings))
    return {"html": page, "markdown": md, "csv_dir": csv_dir, "latex_dir": latex_dir,
            "figures_dir": fig_dir}
