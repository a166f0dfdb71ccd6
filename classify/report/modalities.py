"""Report blocks of the context modalities: block-subset ablation, attention per block, the
indication audit, and the prevalence-sweep section (table + one figure per metric).

Builders take frozen results (:class:`~classify.analysis.analyse.Analysis` fields) and only format
them; the sweep's statistics come from :func:`classify.analysis.prevalence_sweep.sweep_table`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from classify.analysis.analyse import Analysis
from classify.analysis.prevalence_sweep import PREVALENCE_METRICS, sweep_table
from classify.report import plots
from classify.report.model import Block, Callout, Paragraph, RenderedFigure, Table, TCell
from classify.report.plots.prevalence import plot_prevalence
from classify.report.tables import fmt, slug
from classify.results.metrics import higher_is_better
from classify.results.types import CellResult
from pipeline.helpers import format_p

METRIC_TITLES = {"pr_auc": "PR AUC", "mcc": "MCC", "f1_binary": "F1 (positive class)",
                 "balanced_accuracy": "Balanced accuracy", "roc_auc": "ROC AUC",
                 "brier": "Brier"}


def subset_table(subsets: pd.DataFrame | None, metric: str) -> Table | None:
    """Every full-fusion cell vs each subset of its blocks on ``metric`` (None without pairs)."""
    if subsets is None or subsets.empty:
        return None
    t = subsets[subsets["metric"] == metric]
    if t.empty:
        return None
    rows = []
    for r in t.itertuples(index=False):
        sig = math.isfinite(r.nb_p_holm) and r.nb_p_holm < 0.05
        rows.append((TCell(r.full_cell), TCell(r.kept), TCell(r.dropped or "–"),
                     TCell(fmt(r.mean_full)), TCell(fmt(r.mean_subset)),
                     TCell(f"{r.diff:+.4f}", bold=sig), TCell(format_p(r.nb_p)),
                     TCell(format_p(r.nb_p_holm), bold=sig), TCell(str(r.n_splits))))
    better = "higher" if higher_is_better(metric) else "lower"
    return Table(
        name=f"subset-ablation-{slug(metric)}",
        title=f"Block-subset ablation: {metric} of each full fusion vs its block subsets",
        columns=("Full cell", "Kept blocks", "Dropped", "Full", "Subset", "Subset − full",
                 "NB p", "NB p (Holm)", "Splits"),
        rows=tuple(rows), raw=t.reset_index(drop=True), numeric_from=3,
        notes=(f"Subsets use the same fusion (fusion 'single' for one block), sampler and "
               f"classifier; {better} is better. Nadeau-Bengio corrected paired t-test on the "
               "shared splits, Holm over the subsets of each full cell; bold = significant at "
               "0.05. A negative difference means the dropped blocks carried information the "
               "kept ones did not.",))


def attention_table(cells: Sequence[CellResult]) -> Table | None:
    """Mean ± std over splits of the learned attention weight of every block of every
    attention cell (None without attention cells)."""
    rows, raw = [], []
    for c in cells:
        if c.attention is None or not len(c.attention):
            continue
        g = c.attention.groupby(["store", "modality"], sort=False)["weight"]
        stats = g.agg(["mean", "std", "size"]).reset_index()
        top = float(stats["mean"].max())
        for r in stats.itertuples(index=False):
            rows.append((TCell(c.label), TCell(str(r.store)), TCell(str(r.modality)),
                         TCell(f"{fmt(r.mean)} ± {fmt(r.std)}", bold=float(r.mean) == top),
                         TCell(str(int(r.size)))))
            raw.append(dict(cell=c.label, store=r.store, modality=r.modality, mean=r.mean,
                            std=r.std, n_splits=int(r.size)))
    if not rows:
        return None
    return Table(name="attention-weights", title="Learned attention weight per block",
                 columns=("Cell", "Block (store)", "Modality", "Weight", "Splits"),
                 rows=tuple(rows), raw=pd.DataFrame(raw), numeric_from=3,
                 notes=("Mean over the training rows of each split, then mean ± std over "
                        "splits; 1 / (number of blocks) is the uniform weight. Bold: the "
                        "block with the largest weight in the cell.",))


def modality_blocks(analysis: Analysis) -> list[Block]:
    """Blocks appended to the report's modality section."""
    out: list[Block] = []
    audit = analysis.indication_audit
    if audit is not None:
        out.append(Callout(
            "Pre-read text: " + audit.sentence() + ". The text-only ceiling warning applies "
            "to report-derived text only (findings/impression), not to the indication."))
    abl = analysis.ablation
    if abl is not None:
        table = subset_table(abl.subsets, abl.metrics[0] if abl.metrics else "roc_auc")
        if table is not None:
            out.append(table)
    att = attention_table(analysis.benchmark.cells)
    if att is not None:
        out.append(att)
    return out


def prevalence_figures(analysis: Analysis) -> dict[str, list[RenderedFigure]]:
    """``{"prevalence": [one figure per metric]}`` (empty without a sweep)."""
    sweep = analysis.prevalence
    if sweep is None or not sweep.cells:
        return {}
    table = sweep_table(sweep)
    figs = []
    for m in PREVALENCE_METRICS:
        title = METRIC_TITLES.get(m, m)
        figs.append(RenderedFigure(
            f"fig-prevalence-{slug(m)}", f"{title} vs prevalence",
            f"{title} (mean ± std over splits) at each prevalence of "
            f"{sweep.positive_label!r}, one line per sampler; filled marker = different from "
            "sampler 'none' (Nadeau-Bengio corrected paired t-test, Holm over samplers, 0.05).",
            plots.figure_to_png(plot_prevalence(table, m))))
    return {"prevalence": figs}


def prevalence_blocks(analysis: Analysis, figures: Mapping[str, list[RenderedFigure]]
                      ) -> list[Block]:
    """The prevalence section: what was run, the table of every metric, one figure per metric."""
    sweep = analysis.prevalence
    if sweep is None:
        return []
    if not sweep.cells:
        return [Paragraph("The prevalence sweep has no computed cells yet; run `pipeline "
                          "classify` on this experiment.", muted=True)]
    levels = "; ".join(f"{lv.prevalence:g}: {lv.n_positive} positives of {lv.n_samples} "
                       f"(plan {lv.split_hash[:12]})" for lv in sweep.levels)
    out: list[Block] = [Paragraph(
        f"Positives ({sweep.positive_label!r}, natural prevalence "
        f"{sweep.natural_prevalence:.3f}) subsampled with seed {sweep.seed} into nested subsets "
        f"(each lower prevalence is inside the higher ones), every negative kept; one grouped "
        f"stratified split plan per prevalence. {levels}.")]
    if sweep.missing:
        out.append(Paragraph(f"{sweep.missing} cell(s) of the sweep are not computed yet and are "
                             "missing here.", muted=True))
    out.append(_sweep_table(sweep_table(sweep)))
    out += list(figures.get("prevalence", []))
    return out


def _sweep_table(t: pd.DataFrame) -> Table:
    metrics = [m for m in PREVALENCE_METRICS if m in set(t["metric"])]
    wide = {(r.prevalence, r.config, r.sampler, r.metric): r for r in t.itertuples(index=False)}
    keys = list(dict.fromkeys((r.prevalence, r.config, r.sampler)
                              for r in t.sort_values(["prevalence", "config"], ascending=[
                                  False, True], kind="stable").itertuples(index=False)))
    rows = []
    for p, cfg, sampler in keys:
        cells = [TCell(f"{p:g}"), TCell(cfg), TCell(sampler)]
        for m in metrics:
            r = wide.get((p, cfg, sampler, m))
            if r is None:
                cells.append(TCell("–"))
                continue
            sub = "" if sampler == "none" or not np.isfinite(r.diff_vs_none) else (
                f"Δ {r.diff_vs_none:+.3f}, p {format_p(r.nb_p_holm)}")
            cells.append(TCell(f"{fmt(r.mean)} ± {fmt(r.std)}", bold=bool(r.significant),
                               sub=sub))
        rows.append(tuple(cells))
    return Table(name="prevalence-sweep", title="Metrics vs prevalence per sampler",
                 columns=("Prevalence", "Feature set / fusion / classifier", "Sampler",
                          *[METRIC_TITLES.get(m, m) for m in metrics]),
                 rows=tuple(rows), raw=t, numeric_from=3,
                 notes=("Mean ± std over splits; second line: difference to sampler 'none' on "
                        "the same splits and its Nadeau-Bengio corrected p (Holm over the "
                        "samplers of one prevalence); bold = significant at 0.05. Brier: lower "
                        "is better.",))
