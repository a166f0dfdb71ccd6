"""Every warning of a benchmark run, categorised and de-duplicated for the report.

Collects the run's own warnings, the leakage and pretraining checks of
:mod:`classify.run.leakage`, dropped samples, split and per-cell notes (e.g. SMOTE's
``k_neighbors`` reduced in a fold), statistics caveats, ablation and shuffle notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classify.results.types import AblationResult, BenchmarkResult, ComparisonResult, ShuffleResult
from classify.run import leakage

#: Display order of the categories (others follow).
CATEGORY_ORDER = {"leakage": 0, "pretraining": 1, "data": 2, "split": 3, "resampling": 4,
                  "run": 5}


@dataclass(frozen=True)
class ReportWarning:
    """One warning: a category (``leakage``, ``data``, ``cell``, ...) and its text."""

    category: str
    text: str


def collect_warnings(benchmark: BenchmarkResult, *, comparisons: Sequence[ComparisonResult] = (),
                     ablation: AblationResult | None = None,
                     shuffles: Sequence[ShuffleResult] = (),
                     label_source: str = "",
                     notes: Sequence[str] = ()) -> tuple[ReportWarning, ...]:
    """All warnings of the run plus the report's own checks, de-duplicated and ordered.

    ``label_source`` (default: the benchmark's) decides the text-only ceiling check.
    """
    out: list[ReportWarning] = []
    run_text = " ".join(benchmark.warnings).lower()
    for w in benchmark.warnings:
        cat = ("leakage" if "ceiling" in w.lower() or "leak" in w.lower() else
               "pretraining" if "pretrain" in w.lower() else "run")
        out.append(ReportWarning(cat, w))
    ceiling = leakage.ceiling_warning(benchmark.cells, label_source or benchmark.label_source)
    if ceiling is not None and "text-only ceiling" not in run_text:
        out.append(ReportWarning("leakage", ceiling))
    caveat = leakage.report_text_caveat(benchmark.cells, label_source or benchmark.label_source)
    if caveat is not None and "label-source caveat" not in run_text:
        out.append(ReportWarning("leakage", caveat))
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
        out += [ReportWarning("resampling" if "k_neighbors reduced" in w else "cell",
                              f"{c.label}: {w}") for w in c.warnings]
    for cmp in comparisons:
        out += [ReportWarning("statistics", w) for w in cmp.warnings]
    if ablation is not None:
        out += [ReportWarning("leakage" if "ceiling" in w else "ablation", w)
                for w in ablation.warnings]
    for s in shuffles:
        out += [ReportWarning("shuffle", f"{s.cell}: {w}") for w in s.warnings]
    out += [ReportWarning("report", n) for n in notes]
    out = _merge_ceiling(out, benchmark)
    seen, unique = set(), []
    for w in out:
        if w.text not in seen:
            seen.add(w.text)
            unique.append(w)
    return tuple(sorted(unique, key=lambda w: CATEGORY_ORDER.get(w.category, 9)))


def _merge_ceiling(out: list[ReportWarning], benchmark: BenchmarkResult) -> list[ReportWarning]:
    """One line for all text-only ceiling warnings (one per flagged cell would drown the rest)."""
    ceiling_ws = [w for w in out if "text-only ceiling" in w.text]
    if len(ceiling_ws) <= 1:
        return out
    first = ceiling_ws[0]
    flagged = sorted({c.label for c in benchmark.cells if set(c.spec.modalities) == {"text"}
                      and any(c.label in w.text for w in ceiling_ws)})
    shown = ", ".join(flagged[:5]) + (" …" if len(flagged) > 5 else "")
    merged = ReportWarning("leakage", f"{first.text} [{len(flagged) or len(ceiling_ws)} "
                           f"text-only cell(s) flagged: {shown}]")
    return [merged if w is first else w for w in out if w is first or w not in ceiling_ws]
