"""Structured clinical context derived from manifest columns written before the read (tabular stores).

``openi_context`` (registered in :data:`CONTEXT_TABLES`) is the demo's structured block: real
OpenI data that exists before the radiologist reads the film, never the findings or the
impression (which the labels are made of):

``sex``             categorical ``female``/``male`` when the INDICATION states it
                    (female/woman/girl/lady, male/man/boy/gentleman), else missing
                    (OpenI de-identifies ages as "XXXX-year-old", so age is not usable).
``has_comparison``  1 when the COMPARISON section names a prior exam, 0 when it says
                    none ("None", "None available", "No comparison"), missing when the
                    report has no COMPARISON text.
keyword flags       1/0 per pattern in the INDICATION (missing when it is empty), see
                    :data:`OPENI_KEYWORDS`: chest_pain, dyspnea (dyspnoea / shortness of
                    breath / SOB), cough, fever, trauma (trauma / fall / MVA / accident /
                    injury / assault / contusion), preoperative, follow_up, tb_screening
                    (TB / PPD / QuantiFERON), hemoptysis, smoking, cancer_history,
                    hypertension, weakness (weakness / fatigue / malaise / syncope /
                    dizziness), infection_question (pneumonia / infection / sepsis) and
                    rule_out (rule out / r/o / evaluate for).

A flag is a question or history, not a finding: "rule out pneumonia" is why the film was
ordered. The patterns are versioned (:data:`OPENI_CONTEXT_VERSION`, recorded in provenance).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ManifestError
from pipeline.manifest import Manifest
from pipeline.registry import Registry
from pipeline.store.tabular_writer import (
    TableData,
    WriteSummary,
    table_from_frame,
    tabular_provenance,
    write_store,
)

CONTEXT_TABLES: Registry[Callable[[Manifest], tuple[TableData, dict[str, Any]]]] = Registry(
    "context table")

OPENI_CONTEXT_VERSION = 1
OPENI_KEYWORDS: dict[str, str] = {
    "chest_pain": r"chest\s+(?:wall\s+)?pain|chest\s+discomfort|angina",
    "dyspnea": r"dyspn|short(?:ness)?\s+of\s+breath|\bsob\b|breathless",
    "cough": r"\bcough",
    "fever": r"fever|febrile|pyrexia",
    "trauma": r"trauma|\bfall\b|\bfell\b|\bmva\b|\bmvc\b|motor\s+vehicle|accident|injur|assault|"
              r"contusion",
    "preoperative": r"pre-?\s?op|preoperative|pre-operative|surgery|surgical",
    "follow_up": r"follow[\s-]?up|\bf/u\b",
    "tb_screening": r"\btb\b|tubercul|\bppd\b|quantiferon",
    "hemoptysis": r"hemoptysis|haemoptysis",
    "smoking": r"smok|tobacco|pack[\s-]?years?",
    "cancer_history": r"cancer|carcinoma|malignan|metasta|tumou?r|lymphoma|leuka?emia",
    "hypertension": r"hypertension|\bhtn\b",
    "weakness": r"weakness|fatigue|malaise|syncope|dizz",
    "infection_question": r"pneumonia|infection|sepsis",
    "rule_out": r"\br/o\b|rule\s+out|evaluate\s+for|eval\s+for",
}
_FEMALE = re.compile(r"\b(?:female|woman|women|girl|lady)\b", re.IGNORECASE)
_MALE = re.compile(r"\b(?:male|man|men|boy|gentleman)\b", re.IGNORECASE)
_NO_COMPARISON = re.compile(r"^\s*(?:none|no\s+(?:prior|previous|comparison)|n/?a)\b",
                            re.IGNORECASE)


def sex_from_text(text: str) -> str | None:
    """``'female'``/``'male'`` when the text states it (the first mention wins), else None."""
    f, m = _FEMALE.search(text or ""), _MALE.search(text or "")
    if f and (not m or f.start() <= m.start()):
        return "female"
    return "male" if m else None


def has_comparison(text: str) -> float:
    """1.0 when a prior exam is named, 0.0 for "None"/"No comparison", NaN for no text."""
    text = (text or "").strip()
    if not text:
        return float("nan")
    return 0.0 if _NO_COMPARISON.match(text) else 1.0


def keyword_flags(text: str) -> dict[str, float]:
    """1.0/0.0 per :data:`OPENI_KEYWORDS` pattern found in ``text``; NaN for an empty text."""
    text = (text or "").strip()
    if not text:
        return {k: float("nan") for k in OPENI_KEYWORDS}
    return {k: float(bool(re.search(p, text, re.IGNORECASE))) for k, p in OPENI_KEYWORDS.items()}


def openi_context_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``openi_context`` columns (see the module docstring) of a manifest table."""
    for col in ("indication", "comparison"):
        if col not in frame.columns:
            raise ManifestError(
                f"the manifest has no {col!r} column (it was built before the clinical context "
                "was parsed); rebuild it with `pipeline data` (same arguments)")
    empty = [(frame[c].fillna("").astype(str).str.strip() == "").all()
             for c in ("indication", "comparison")]
    if all(empty):
        raise ManifestError(
            "the manifest has no INDICATION or COMPARISON text in any row (a source without "
            "these sections, or a manifest built before they were parsed); rebuild it with "
            "`pipeline data` (same arguments), or use a table of your own (`pipeline import "
            "--kind tabular`)")
    rows = []
    for sid, ind, comp in zip(frame["sample_id"], frame["indication"].fillna(""),
                              frame["comparison"].fillna(""), strict=True):
        rows.append({"sample_id": str(sid), "sex": sex_from_text(str(ind)),
                     "has_comparison": has_comparison(str(comp)), **keyword_flags(str(ind))})
    return pd.DataFrame(rows, columns=["sample_id", "sex", "has_comparison", *OPENI_KEYWORDS])


@CONTEXT_TABLES.register("openi_context", description="sex, prior-exam flag and indication "
                         "keyword flags from OpenI INDICATION/COMPARISON (pre-read)")
def build_openi_context(manifest: Manifest) -> tuple[TableData, dict[str, Any]]:
    """The ``openi_context`` table of ``manifest`` and its provenance details."""
    table = table_from_frame(
        openi_context_frame(manifest.frame), source=f"manifest {manifest.name!r} (openi_context)",
        numeric=["has_comparison", *OPENI_KEYWORDS], categorical=["sex"],
        categories={"sex": ["female", "male"]}, line_offset=None)
    details = {"builder": "openi_context", "version": OPENI_CONTEXT_VERSION,
               "keywords": dict(OPENI_KEYWORDS),
               "sources": ["indication", "comparison"], "written_before_read": True}
    return table, details


def write_context_store(manifest: Manifest, builder: str, features_root: Path, *,
                        key: str | None = None, rebuild: bool = False) -> WriteSummary:
    """Build the context table ``builder`` from ``manifest`` and write it as the tabular store
    ``<features_root>/<dataset>/<key or builder>.h5`` (append-only by id)."""
    from pipeline.store.feature_store import store_path

    table, details = CONTEXT_TABLES.get(builder)(manifest)
    key = key or builder
    prov = tabular_provenance(
        key, table, dataset=manifest.name, modality="tabular", architecture="manifest-context",
        weights_name=f"{builder}/v{details['version']}", preprocessing=details)
    counts = {n: int(v) for n, v in table.n_missing.items()}
    prov["missing_per_column"] = counts
    return write_store(store_path(features_root, manifest.name, key), prov, list(table.ids),
                       table.values, rebuild=rebuild)


def describe_table(table: TableData) -> dict[str, Any]:
    """Per column: type, missing count, and the mean (numeric) or category counts."""
    out: dict[str, Any] = {}
    for j, col in enumerate(table.schema.columns):
        v = table.values[:, j].astype(np.float64)
        seen = v[~np.isnan(v)]
        if col.type == "categorical":
            stat = {c: int((seen == i).sum()) for i, c in enumerate(col.categories)}
        else:
            stat = float(seen.mean()) if len(seen) else float("nan")
        out[col.name] = {"type": col.type, "missing": int(np.isnan(v).sum()), "value": stat}
    return out
