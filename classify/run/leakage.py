"""Leakage checks of a benchmark: the text-only ceiling and pretraining overlap.

* **Text-only ceiling.** When the labels are derived from the report text (the
  manifest's ``label_source`` ends in ``':report'``: ``'mesh:report'`` for OpenI,
  ``'chexpert:report'`` for MIMIC-CXR), a text-only classifier can read the label off
  the very report it embeds. A text-only ROC AUC above :data:`TEXT_CEILING` is then
  flagged: it is the label leaking, not skill. Embed FINDINGS only
  (``minilm@findings``) or mask the label terms (``minilm@both+masked``) to measure
  real skill.
  Pre-read text is exempt: a store of the clinical indication (key ``<encoder>@indication``,
  written when the exam was ordered) cannot copy the read, so its cells are never judged
  against the ceiling; instead :func:`indication_term_audit` reports the share of indications
  that name a label term ("rule out pneumonia" is a question, not a finding).
  Whatever the scores, with labels from the report every run also states
  :func:`report_text_caveat`: cells that embed the report's findings or impression are
  judged against a ceiling the labels' own text sets.
* **Pretraining overlap.** An encoder whose ``trained_on`` names the manifest's data
  set family (``source_dataset``) may have seen the evaluated samples
  (torchxrayvision's ``all`` DenseNet includes OpenI).

These are the only definitions; the benchmark run, the ablation table and the
report all call them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from classify.results.types import CellResult, StoreInfo

#: Text-only ROC AUC strictly above this (with labels from the report text) is flagged.
TEXT_CEILING = 0.98
#: Metric the ceiling is judged on.
CEILING_METRIC = "roc_auc"


def label_from_report(label_source: str | None) -> bool:
    """True when labels were derived from the report text (``'<labeler>:report'``)."""
    return str(label_source or "").strip().lower().endswith(":report")


#: Store-key text modes of text written before the read (see ``extract`` store keys
#: ``<encoder>@<mode>[+masked]``); their cells are not report-derived text.
PRE_READ_TEXT_MODES = ("indication",)


def is_pre_read_store(encoder_key: str) -> bool:
    """True for a text store of pre-read context, e.g. ``minilm@indication(+masked)``."""
    _, at, mode = str(encoder_key).partition("@")
    return bool(at) and mode.split("+", 1)[0] in PRE_READ_TEXT_MODES


def is_text_only(cell: CellResult) -> bool:
    """True for a cell on report-derived text only (the leakage ceiling's candidates);
    cells whose stores are ALL pre-read (:func:`is_pre_read_store`) are not: one store of
    the full report is enough to read the labels off it."""
    return (set(cell.spec.modalities) == {"text"}
            and not all(is_pre_read_store(k) for k in cell.spec.stores))


def indication_term_audit(frame: pd.DataFrame, label_rule: str | None,
                          label_classes: Sequence[str] | None = None) -> Any:
    """:class:`pipeline.labels.audit.TermAudit` of the manifest's ``indication`` column
    against the label rule's vocabulary (the terms ``--mask-labels`` hides); None when the
    manifest has no indication column or no label rule to take the vocabulary from."""
    if "indication" not in frame.columns or not label_rule:
        return None
    from pipeline.labels import LabelMask, manifest_tag_vocabulary
    from pipeline.labels.audit import label_term_audit

    mask = LabelMask.for_rule(label_rule, label_classes, manifest_tag_vocabulary(frame))
    return label_term_audit(frame["indication"].fillna("").astype(str), mask)


def text_only_ceiling(cells: Sequence[CellResult]) -> tuple[str, float, str] | None:
    """``(cell label, value, metric)`` of the best text-only cell on ROC AUC (balanced
    accuracy where ROC AUC is undefined); None without text-only cells."""
    best = None
    for c in cells:
        if not is_text_only(c):
            continue
        for m in (CEILING_METRIC, "balanced_accuracy"):
            v = c.summary(m)[0]
            if math.isfinite(v):
                if best is None or v > best[1]:
                    best = (c.label, v, m)
                break
    return best


def flagged_text_cells(cells: Sequence[CellResult], label_source: str | None
                       ) -> list[tuple[str, float]]:
    """Text-only cells whose mean ROC AUC exceeds :data:`TEXT_CEILING`, best first, when
    ``label_source`` says the labels come from the report; else ``[]``."""
    if not label_from_report(label_source):
        return []
    out = []
    for c in cells:
        if is_text_only(c):
            v = c.summary(CEILING_METRIC)[0]
            if math.isfinite(v) and v > TEXT_CEILING:
                out.append((c.label, v))
    return sorted(out, key=lambda t: -t[1])


def ceiling_warning(cells: Sequence[CellResult], label_source: str | None) -> str | None:
    """One warning naming every text-only cell above the ceiling (None if there is none)."""
    flagged = flagged_text_cells(cells, label_source)
    if not flagged:
        return None
    label, v = flagged[0]
    more = ""
    if len(flagged) > 1:
        shown = ", ".join(f"{lab} ({val:.3f})" for lab, val in flagged[1:6])
        more = f"; also {shown}" + (" …" if len(flagged) > 6 else "")
    return (
        f"text-only ceiling: {label} reaches {CEILING_METRIC} = {v:.3f} > {TEXT_CEILING} and "
        f"the labels are derived from the same report ({label_source}): LABEL LEAKAGE, not "
        f"skill{more}. The text embedding reads the labels' own words: judge fused scores "
        "against it and measure real skill with FINDINGS-only text (encoder '<name>@findings') "
        "or masked label terms ('<name>@both+masked', `pipeline extract --mask-labels`)."
    )


def embeds_the_read(cell: CellResult) -> bool:
    """True for a cell with a text store of the report's findings or impression (any store
    on text that is not pre-read context, masked or not)."""
    return any(m == "text" and not is_pre_read_store(k)
               for k, m in zip(cell.spec.stores, cell.spec.modalities, strict=True))


def report_text_caveat(cells: Sequence[CellResult], label_source: str | None) -> str | None:
    """With labels from the report, the caveat for every cell that embeds the report's
    findings or impression, stated whatever the scores (None otherwise)."""
    if not label_from_report(label_source):
        return None
    embed = sorted({c.label for c in cells if embeds_the_read(c)})
    if not embed:
        return None
    shown = ", ".join(embed[:4]) + (f" and {len(embed) - 4} more" if len(embed) > 4 else "")
    return (
        f"label-source caveat: the labels were read off the same reports ({label_source}), and "
        f"{len(embed)} cell(s) embed the report's findings or impression ({shown}). Their scores "
        "are bounded by the labels' own text (the text ceiling of this data), not evidence "
        f"of skill, at any value, not only above {TEXT_CEILING}; compare fused cells with the "
        "image-only ones, and measure text skill on pre-read text ('<name>@indication') or "
        "masked label terms (`pipeline extract --mask-labels`)."
    )


def pretraining_warnings(stores: Sequence[StoreInfo], *, dataset: str,
                         source_dataset: str | None, synthetic_images: bool = False
                         ) -> list[str]:
    """One warning per store whose encoder was trained on the manifest's data-set family."""
    from pipeline.families import pretraining_overlap, pretraining_overlap_message

    out = []
    for s in stores:
        hits = pretraining_overlap(s.trained_on, source_dataset)
        if hits and source_dataset:
            out.append(pretraining_overlap_message(
                s.encoder_key, hits, dataset=dataset, family=source_dataset,
                modality=s.modality, synthetic_images=synthetic_images))
    return out


@dataclass(frozen=True)
class LeakageSummary:
    """The text-only ceiling next to the best cell of every feature set.

    Attributes:
        label_source: where the labels come from (``''`` = unknown).
        ceiling: ``(cell, value, metric)`` of the best text-only cell, None without one.
        ceiling_roc_auc: mean ROC AUC of that cell (NaN without one).
        from_report: the labels are derived from the report text.
        flagged: the ceiling is on ROC AUC, above :data:`TEXT_CEILING`, with labels from
            the report text (label leakage).
        table: one row per feature set: ``feature_set, kind`` (``image-only``/``text-only``/
            ``fused``), ``best_cell, stores, roc_auc_mean, roc_auc_std, f1_weighted_mean,
            f1_weighted_std, roc_auc_minus_text_ceiling, is_ceiling``.
    """

    label_source: str
    ceiling: tuple[str, float, str] | None
    ceiling_roc_auc: float
    from_report: bool
    flagged: bool
    table: pd.DataFrame = field(hash=False)


def leakage_summary(cells: Sequence[CellResult], label_source: str | None) -> LeakageSummary:
    """Best cell (by mean ROC AUC) of every feature set with its gap to the text-only ceiling."""
    ceiling = text_only_ceiling(cells)
    ceil_auc = float("nan")
    if ceiling is not None:
        ceil_auc = next(c for c in cells if c.label == ceiling[0]).summary(CEILING_METRIC)[0]
    groups: dict[str, list[CellResult]] = {}
    for c in cells:
        groups.setdefault(c.spec.feature_set, []).append(c)
    rows = []
    for fs_name, members in groups.items():
        best = max(members, key=lambda c: (math.isfinite(c.summary("roc_auc")[0]),
                                           np.nan_to_num(c.summary("roc_auc")[0], nan=-1.0)))
        mods = set(best.spec.modalities)
        kind = f"{mods.pop()}-only" if len(mods) == 1 else "fused"
        auc, auc_sd = best.summary("roc_auc")
        f1, f1_sd = best.summary("f1_weighted")
        gap = auc - ceil_auc if math.isfinite(ceil_auc) else float("nan")
        rows.append({"feature_set": fs_name, "kind": kind, "best_cell": best.label,
                     "stores": ";".join(best.spec.stores), "roc_auc_mean": auc,
                     "roc_auc_std": auc_sd, "f1_weighted_mean": f1, "f1_weighted_std": f1_sd,
                     "roc_auc_minus_text_ceiling": gap,
                     "is_ceiling": ceiling is not None and best.label == ceiling[0]})
    src = str(label_source or "")
    from_report = label_from_report(src)
    flagged = bool(ceiling is not None and from_report and ceiling[2] == CEILING_METRIC
                   and ceiling[1] > TEXT_CEILING)
    return LeakageSummary(label_source=src, ceiling=ceiling, ceiling_roc_auc=ceil_auc,
                          from_report=from_report, flagged=flagged, table=pd.DataFrame(rows))
