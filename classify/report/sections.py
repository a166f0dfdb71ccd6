"""The ONE section list of the report, built from an :class:`~classify.analysis.analyse.Analysis`.

Every output format renders this :class:`~classify.report.model.Document`; a section
or table added here appears in the HTML and the Markdown report alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from classify.analysis.analyse import Analysis
from classify.report import modalities as M
from classify.report import tables as T
from classify.report.answer import answer_blocks
from classify.report.model import (
    Block,
    Callout,
    Code,
    Document,
    Heading,
    KeyValues,
    Paragraph,
    RenderedFigure,
    Section,
    WarningList,
)
from classify.results.types import BenchmarkResult
from classify.run import leakage


def summary_items(b: BenchmarkResult) -> list[tuple[str, str]]:
    """The key facts of a run shown at the top of the report."""
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


def choice_sentence(analysis: Analysis) -> str:
    """The best cell and the set of cells practically equivalent to it."""
    e = analysis.equivalence
    if e is None:
        return ""
    names = dict(analysis.answer.names) if analysis.answer is not None else {}
    text = (f"Best cell on {e.metric}: {names.get(e.best, e.best)} ({e.best_mean:.3f}). "
            f"Practically equivalent to it (|difference| <= {e.rope:g} with posterior "
            f"probability >= {e.decision_probability:g}): "
            + ("; ".join(names.get(c, c) for c in e.equivalent) or "none") + ".")
    if e.undecided:
        text += (f" Undecided: {len(e.undecided)} cell(s) (in the table below)."
                 if len(e.undecided) > 3 else
                 f" Undecided: {'; '.join(names.get(c, c) for c in e.undecided)}.")
    return text


def ceiling_sentence(analysis: Analysis) -> str:
    """One sentence on the text-only ceiling (and label leakage when it is flagged)."""
    lk = analysis.leakage
    if lk.ceiling is None:
        return ("Text-only ceiling: not measured (no text-only cell); with labels taken from "
                "the report text, fused scores cannot be judged for leakage without it.")
    cell, val, metric = lk.ceiling
    src = lk.label_source or "unknown"
    if lk.flagged:
        verdict = (f" — above {leakage.TEXT_CEILING} with labels from the same report ({src}): "
                   "LABEL LEAKAGE, not skill")
    elif lk.from_report:
        verdict = f" (labels come from the report text, {src})"
    else:
        verdict = f" (label source: {src})"
    return (f"Text-only ceiling: {cell} reaches {metric} = {val:.3f}{verdict}. Image and fused "
            "scores should be judged against it when labels come from the report text.")


def _figs(figures: Mapping[str, list[RenderedFigure]], key: str) -> list[Block]:
    return list(figures.get(key, []))


def build_document(analysis: Analysis, figures: Mapping[str, list[RenderedFigure]], *,
                   generated: str, versions: Mapping[str, str],
                   provenance: Mapping[str, Any] | None = None,
                   experiment_text: str | None = None) -> Document:
    """The report document: summary, warnings, classifiers, curves, statistics, modalities,
    resampling and provenance, in that order."""
    b = analysis.benchmark
    prov = dict(provenance or {})
    chips = [f"dataset {b.dataset}", f"labels {b.label_rule}", f"{b.data.n_samples} samples",
             f"{len(b.cells)} cells"]
    if b.split is not None:
        chips.append(f"{b.split.n_folds}x{b.split.n_repeats} CV · plan {b.split.hash[:12]}")

    summary: list[Block] = [KeyValues(tuple(summary_items(b)))]
    if analysis.equivalence is not None:
        names = dict(analysis.answer.names) if analysis.answer is not None else {}
        summary += [Callout(choice_sentence(analysis)),
                    T.equivalence_table(analysis.equivalence, names)]
    summary += [Callout(ceiling_sentence(analysis), strong=analysis.leakage.flagged),
                T.leakage_table(analysis.leakage, analysis.label_source)]
    warnings = WarningList(analysis.warnings)
    classifiers: list[Block] = [Paragraph(
        "One table per feature set, in the shape of the reference OpenI study (Algorithm, "
        "Accuracy, Precision, Recall, F1) plus ROC AUC, PR AUC, MCC, balanced accuracy and the "
        f"Brier score. Headline precision/recall/F1 use {b.headline_average} averaging.",
        muted=True)]
    classifiers += [T.classifier_table(s, b) for s in analysis.summaries]

    stats: list[Block] = []
    if not analysis.comparisons:
        stats.append(Paragraph("No comparison was computed.", muted=True))
    for i, cmp in enumerate(analysis.comparisons):
        stats += [Heading(f"Comparison {i + 1}: {cmp.metric} over {len(cmp.cells)} cells, "
                          f"{cmp.n_splits} paired splits"),
                  T.comparison_table(cmp, i + 1), T.ranks_table(cmp, i + 1),
                  *_figs(figures, f"cmp{i}")]

    modality: list[Block] = []
    if analysis.ablation is not None:
        modality += T.ablation_tables(analysis.ablation)
    if analysis.shuffles:
        modality.append(T.shuffle_table(analysis.shuffles))
    modality += M.modality_blocks(analysis)
    modality += _figs(figures, "modality")
    if not modality:
        modality.append(Paragraph("No ablation, shuffle or attention results.", muted=True))

    calibration: list[Block] = []
    if analysis.calibration:
        calibration.append(T.calibration_table(analysis.calibration))
        calibration += [T.operating_table(s) for s in analysis.calibration]
        if any(len(s.thresholds) for s in analysis.calibration):
            calibration.append(T.thresholds_table(analysis.calibration))
        calibration += _figs(figures, "calibration")
    else:
        calibration.append(Paragraph("Calibration and operating points are shown for binary "
                                     "tasks only.", muted=True))

    tuning: list[Block] = []
    if analysis.tuning is not None:
        tuning = [T.tuning_table(analysis.tuning), *T.tuned_params_tables(analysis.tuning)]

    return Document(
        title=b.experiment,
        subtitle=f"Chest X-ray + report feature benchmark · generated {generated}",
        chips=tuple(chips), generated=generated,
        sections=(
            Section("answer", "Answer", "Answer", tuple(answer_blocks(analysis))),
            Section("summary", "Summary", "Summary", tuple(summary)),
            Section("warnings", "Warnings", f"Warnings ({len(analysis.warnings)})"
                    if analysis.warnings else "Warnings", (warnings,),
                    kind="warnings" if analysis.warnings else "warnings-ok"),
            Section("classifiers", "Classifiers", "Classifier performance", tuple(classifiers)),
            Section("curves", "Curves", "Curves, confusion matrices and per-split scores",
                    tuple(_figs(figures, "curves"))),
            Section("calibration", "Calibration", "Operating point and calibration",
                    tuple(calibration)),
            *([Section("tuning", "Tuning", "Nested tuning: tuned vs default", tuple(tuning))]
              if tuning else []),
            Section("statistics", "Statistics", "Statistical comparison", tuple(stats)),
            Section("modality", "Modalities", "Modalities: ablation, shuffle test, attention",
                    tuple(modality)),
            Section("resampling", "Resampling", "Resampling",
                    (*_figs(figures, "resampling"), T.resampling_table(analysis.resampling))),
            *([Section("prevalence", "Prevalence", "Prevalence sweep: samplers at lower shares "
                       "of positives", tuple(M.prevalence_blocks(analysis, figures)))]
              if analysis.prevalence is not None else []),
            *([Section("holdout", "Held-out", "Held-out test set: scored once",
                       tuple(_holdout(analysis)))] if analysis.holdout is not None else []),
            Section("provenance", "Provenance", "Provenance",
                    tuple(_provenance(b, prov, versions, generated, experiment_text))),
        ))


def _provenance(b: BenchmarkResult, prov: Mapping[str, Any], versions: Mapping[str, str],
                generated: str, experiment_text: str | None) -> list[Block]:
    out: list[Block] = []
    s = b.split
    if s is not None:
        out.append(T.kv_table("split-plan", "Split plan", [
            ("hash", s.hash), ("path", s.path), ("folds x repeats", f"{s.n_folds} x {s.n_repeats}"),
            ("seed", s.seed), ("samples / patients", f"{s.n_samples} / {s.n_groups}"),
            ("class counts", ", ".join(f"{k}: {v}" for k, v in s.class_counts.items())),
            ("test/train ratio (n2/n1)", f"{s.test_train_ratio:.4f}")]))
    out += [T.stores_table(b), T.cells_table(b),
            T.kv_table("versions", "Package versions", list(versions.items()))]
    run_items: list[tuple[str, Any]] = [
        ("results directory", b.results_dir), ("run wall time (s)", f"{b.wall_seconds:.1f}"),
        ("fit time, all cells (s)", f"{sum(c.fit_seconds for c in b.cells):.1f}"),
        ("cells computed / reused", f"{b.n_computed} / {b.n_reused}"),
        ("report generated", generated)]
    extra = [(k, json.dumps(v, default=str) if isinstance(v, (dict, list, tuple)) else v)
             for k, v in prov.items() if k != "versions"]
    out.append(T.kv_table("run", "Run", run_items + extra))
    if experiment_text:
        out += [Heading("Experiment file"), Code(experiment_text, "toml")]
    return out


def _holdout(analysis: Analysis) -> list[Block]:
    """The held-out set and, per selected cell, its metrics with bootstrap intervals."""
    import math

    from classify.report.model import Table, TCell

    h = analysis.holdout
    counts = ", ".join(f"{k}: {v}" for k, v in h.class_counts.items())
    out: list[Block] = [Paragraph(
        f"Held out: {h.n_samples} samples of {h.n_patients} patients ({counts}); {h.how}. "
        f"Cross-validation, tuning, calibration, the operating point, the cell selection and "
        f"fit-final used the other {h.n_development} samples only. Each selected cell's whole "
        f"procedure was fitted on those and scored once on the held-out patients; intervals "
        f"are 95% percentiles of {h.n_boot} bootstrap resamples of patients. List: {h.path}.")]
    if h.missing:
        out.append(Callout(f"Not scored yet: {', '.join(h.missing)}. Run `pipeline evaluate "
                           "--config <experiment>` (once).", strong=True))

    def fmt(x: float) -> str:
        return f"{x:.3f}" if math.isfinite(x) else "n/a"

    for score in h.scores:
        m = score.metrics
        rows = tuple((TCell(str(r.metric)), TCell(fmt(r.value),
                      sub=f"95% CI {fmt(r.ci95_low)}–{fmt(r.ci95_high)}"), TCell(fmt(r.cv_mean)))
                     for r in m.itertuples(index=False))
        notes = []
        if score.threshold is not None:
            notes.append(f"op_* rows: at the operating point re-fitted on the development set "
                         f"(threshold {score.threshold:.4f}); other rows as in CV (argmax).")
        if score.chosen:
            notes.append(f"parameters chosen on the development set: {score.chosen}")
        out.append(Table(name=f"holdout-{T.slug(score.cell)}",
                         title=f"Held-out test: {score.cell}",
                         columns=("Metric", "Held-out", "CV mean"), rows=rows,
                         raw=m.assign(cell=score.cell), notes=tuple(notes)))
    return out
