"""MIMIC-CXR-JPG source: metadata CSV + CheXpert label CSV + report ``.txt`` files."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.errors import ConfigError
from pipeline.labels import normalize_tags
from pipeline.manifest import MANIFEST_COLUMNS
from pipeline.sources.base import (
    DATASET_FORMATS,
    SourceTable,
    clean_text,
    join_text,
    normalize_view,
    read_csv_checked,
)

logger = logging.getLogger(__name__)

CHEXPERT_COLUMNS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
_SECTION_RE = re.compile(r"^\s*([A-Z][A-Z &/()-]{2,40}):", re.MULTILINE)


def parse_report_sections(text: str) -> tuple[str, str]:
    """(findings, impression) of a free-text report with 'FINDINGS:'/'IMPRESSION:' headings.
    A report with neither heading is returned whole as findings."""
    heads = list(_SECTION_RE.finditer(text))
    sections: dict[str, str] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        sections[m.group(1).strip()] = clean_text(text[m.end() : end])
    findings, impression = sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")
    if not findings and not impression:
        findings = clean_text(text)
    return findings, impression


@DATASET_FORMATS.register(
    "mimic_cxr", description="MIMIC-CXR-JPG metadata + CheXpert labels + report .txt files"
)
def build_mimic_cxr(
    *,
    metadata_csv: str | Path,
    labels_csv: str | Path,
    reports_dir: str | Path,
    image_root: str | Path | None = None,
    uncertain: str = "negative",
    limit: int | None = None,
) -> SourceTable:
    """MIMIC-CXR-JPG. CheXpert 1 = present; ``uncertain`` (-1) counts as ``'negative'``
    (U-Zeros, default) or ``'positive'`` (U-Ones)."""
    if uncertain not in {"negative", "positive"}:
        raise ConfigError(
            f"mimic_cxr option uncertain={uncertain!r} is invalid; use 'negative' or 'positive'."
        )
    meta = read_csv_checked(
        metadata_csv,
        ("dicom_id", "subject_id", "study_id", "ViewPosition"),
        "MIMIC metadata CSV",
        limit,
    )
    labels = read_csv_checked(labels_csv, ("subject_id", "study_id"), "CheXpert label CSV")
    label_cols = [c for c in CHEXPERT_COLUMNS if c in labels.columns]
    positive = {"1", "1.0"} | ({"-1", "-1.0"} if uncertain == "positive" else set())
    study_tags: dict[str, str] = {}
    for rec in labels.to_dict("records"):
        tags = normalize_tags(c for c in label_cols if str(rec[c]).strip() in positive)
        study_tags[str(rec["study_id"]).strip()] = ";".join(tags)
    reports_dir = Path(reports_dir)
    dropped: Counter = Counter()
    rows = []
    report_cache: dict[str, tuple[str, str] | None] = {}
    for rec in meta.to_dict("records"):
        subject, study, dicom = (
            str(rec[k]).strip() for k in ("subject_id", "study_id", "dicom_id")
        )
        rel = f"files/p{subject[:2]}/p{subject}/s{study}"
        if study not in report_cache:
            report_cache[study] = None
            for cand in (reports_dir / f"{rel}.txt", reports_dir / f"{rel[len('files/') :]}.txt"):
                if cand.is_file():
                    report_cache[study] = parse_report_sections(
                        cand.read_text(encoding="utf-8", errors="replace")
                    )
                    break
        sections = report_cache[study]
        if sections is None:
            dropped["missing_report"] += 1
            continue
        if study not in study_tags:
            dropped["missing_labels"] += 1
            continue
        findings, impression = sections
        rows.append(
            {
                "sample_id": dicom,
                "patient_id": subject,
                "image_path": f"{rel}/{dicom}.jpg",
                "report_id": f"s{study}",
                "findings": findings,
                "impression": impression,
                "report_text": join_text(findings, impression),
                "tags": study_tags[study],
                "label": "",
                "label_source": "chexpert:report",
                "view": normalize_view(rec["ViewPosition"]),
            }
        )
    return SourceTable(
        frame=pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)),
        image_root=Path(image_root) if image_root else Path(metadata_csv).parent,
        label_source="chexpert:report",
        dropped=dict(dropped),
        notes=(f"CheXpert uncertain (-1) labels treated as {uncertain}.",),
        extra_meta={"source_dataset": "mimic_cxr"},
    )

