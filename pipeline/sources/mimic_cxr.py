"""MIMIC-CXR-JPG source: metadata CSV + CheXpert label CSV + report ``.txt`` files (+ the official split).

The release as shipped (PhysioNet ``mimic-cxr-jpg/2.0.0`` and ``mimic-cxr/2.0.0``):
``mimic-cxr-2.0.0-metadata.csv.gz`` (``dicom_id, subject_id, study_id, ViewPosition,
ViewCodeSequence_CodeMeaning, ...``), ``mimic-cxr-2.0.0-chexpert.csv.gz`` (``subject_id,
study_id`` + 14 findings), ``mimic-cxr-2.0.0-split.csv.gz`` (``dicom_id, study_id,
subject_id, split``), images ``files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg`` and reports
``files/pNN/pNNNNNNNN/sNNNNNNNN.txt`` (from ``mimic-cxr-reports.zip``). One manifest row per
image; ``patient_id`` is the subject (the CV grouping unit), ``report_id`` the study.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.manifest import MANIFEST_COLUMNS
from pipeline.sources.base import (
    DATASET_FORMATS,
    DroppedItem,
    SourceTable,
    join_text,
    normalize_view,
    read_csv_checked,
)
from pipeline.sources.chexpert import (
    CHEXPERT_COLUMNS,
    UNCERTAIN_POLICIES,
    read_study_labels,
    study_tags,
    uncertain_policy,
)
from pipeline.sources.report_sections import ReportSections, parse_report, parse_report_sections

logger = logging.getLogger(__name__)

SPLIT_FILE = "mimic-cxr-2.0.0-split.csv.gz"
REPORT_PATTERN = "files/pNN/pNNNNNNNN/sNNNNNNNN.txt"
IMAGE_HINT = (
    "for mimic_cxr, --image-root is the MIMIC-CXR-JPG release folder that CONTAINS files/ "
    "(e.g. physionet.org/files/mimic-cxr-jpg/2.0.0), not files/ itself; image paths are "
    "files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg"
)

__all__ = ["CHEXPERT_COLUMNS", "build_mimic_cxr", "parse_report", "parse_report_sections"]


def _first_studies(meta: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The rows of the first ``limit`` studies (reports) in file order."""
    if not limit:
        return meta
    keep = set(pd.unique(meta["study_id"])[:limit])
    return meta[meta["study_id"].isin(keep)]


def _read_report(reports_dir: str, rel: str) -> ReportSections | None:
    for cand in (f"{reports_dir}/{rel}.txt", f"{reports_dir}/{rel[len('files/'):]}.txt"):
        try:
            with open(cand, encoding="utf-8", errors="replace") as fh:
                return parse_report(fh.read())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
    return None


def _official_split(path: Path) -> dict[str, str]:
    split = read_csv_checked(path, ("dicom_id", "split"), "MIMIC split CSV")
    return dict(zip(split["dicom_id"].str.strip(), split["split"].str.strip(), strict=True))


def _missing_reports_error(reports_dir: Path, n_studies: int, example: str) -> ManifestError:
    return ManifestError(
        f"no report file found for any of the {n_studies} studies under --reports-dir "
        f"{str(reports_dir)!r}: expected {REPORT_PATTERN} inside it (e.g. {example!r}). Pass the "
        f"folder that contains files/ from mimic-cxr-reports.zip (the MIMIC-CXR release, not "
        f"MIMIC-CXR-JPG, ships the reports)."
    )


@DATASET_FORMATS.register(
    "mimic_cxr", description="MIMIC-CXR-JPG metadata + CheXpert labels + report .txt files"
)
def build_mimic_cxr(
    *,
    metadata_csv: str | Path,
    labels_csv: str | Path,
    reports_dir: str | Path,
    image_root: str | Path | None = None,
    uncertain: str = "zeros",
    split: str | None = None,
    split_csv: str | Path | None = None,
    limit: int | None = None,
) -> SourceTable:
    """MIMIC-CXR-JPG. CheXpert 1 = present; ``uncertain`` is the policy for -1 values
    (:mod:`pipeline.sources.chexpert`: ``zeros`` default, ``ones``, ``ignore``). ``limit``
    keeps the first N studies (reports) of the metadata. ``split='official'`` adds the
    release's train/validate/test split as a ``split`` column (``split_csv`` defaults to
    ``mimic-cxr-2.0.0-split.csv.gz`` next to the metadata CSV)."""
    policy = uncertain_policy(uncertain)
    if split not in (None, "official"):
        raise ConfigError(f"mimic_cxr option split={split!r} is invalid; use 'official' or leave it out.")
    meta = read_csv_checked(
        metadata_csv, ("dicom_id", "subject_id", "study_id", "ViewPosition"), "MIMIC metadata CSV"
    )
    n_meta_rows = len(meta)
    all_studies = set(meta["study_id"].str.strip())
    meta = _first_studies(meta, limit)
    labels = read_study_labels(
        read_csv_checked(labels_csv, ("subject_id", "study_id"), "CheXpert label CSV")
    )
    split_of: dict[str, str] | None = None
    if split == "official":
        split_path = Path(split_csv) if split_csv else Path(metadata_csv).parent / SPLIT_FILE
        split_of = _official_split(split_path)
    reports_dir = Path(reports_dir)
    code_meaning = (meta["ViewCodeSequence_CodeMeaning"] if "ViewCodeSequence_CodeMeaning"
                    in meta.columns else pd.Series([""] * len(meta), index=meta.index))
    dropped: Counter = Counter()
    dropped_studies: Counter = Counter()
    items: list[DroppedItem] = []
    rows: list[dict[str, Any]] = []
    reports: dict[str, ReportSections | None] = {}
    folder = str(reports_dir)
    for dicom, subject, study, view, meaning in zip(
        meta["dicom_id"].str.strip().tolist(), meta["subject_id"].str.strip().tolist(),
        meta["study_id"].str.strip().tolist(), meta["ViewPosition"].tolist(), code_meaning.tolist(),
        strict=True,
    ):
        rel = f"files/p{subject[:2]}/p{subject}/s{study}"
        if study not in reports:
            reports[study] = _read_report(folder, rel)
            if reports[study] is None:
                dropped_studies["missing_report"] += 1
            elif study not in labels.positive:
                dropped_studies["missing_labels"] += 1
        sections = reports[study]
        if sections is None:
            dropped["missing_report"] += 1
            items.append((dicom, "row", "missing_report", str(reports_dir / f"{rel}.txt")))
            continue
        if study not in labels.positive:
            dropped["missing_labels"] += 1
            items.append((dicom, "row", "missing_labels", f"study {study} not in {labels_csv}"))
            continue
        tags, unc = study_tags(labels, study, policy)
        row = {
            "sample_id": dicom,
            "patient_id": subject,
            "image_path": f"{rel}/{dicom}.jpg",
            "report_id": f"s{study}",
            "findings": sections.findings,
            "impression": sections.impression,
            "report_text": join_text(sections.findings, sections.impression),
            "indication": sections.indication,
            "comparison": sections.comparison,
            "tags": tags,
            "label": "",
            "label_source": "chexpert:report",
            "view": normalize_view(view, meaning),
            "uncertain_tags": unc,
        }
        if split_of is not None:
            row["split"] = split_of.get(dicom, "")
        rows.append(row)
    n_studies = len(reports)
    if n_studies and dropped_studies["missing_report"] == n_studies:
        first = next(iter(reports))
        subject = meta["subject_id"].iloc[0].strip()
        raise _missing_reports_error(
            reports_dir, n_studies, str(reports_dir / f"files/p{subject[:2]}/p{subject}/s{first}.txt")
        )
    notes = [f"CheXpert uncertain (-1) labels: {UNCERTAIN_POLICIES[policy]} ({policy})."]
    if dropped_studies["missing_report"]:
        msg = (f"{dropped_studies['missing_report']} of {n_studies} studies have no report file under "
               f"{str(reports_dir)!r} (expected {REPORT_PATTERN}); their image rows are dropped as "
               f"missing_report and listed in the .dropped.csv")
        logger.warning(msg)
        notes.append(msg + ".")
    # CheXpert rows whose study has no image (among the subjects read, so --limit is honest)
    seen_subjects = set(meta["subject_id"].str.strip())
    orphans = sorted(s for s, subj in labels.subjects.items()
                     if s not in all_studies and (limit is None or subj in seen_subjects))
    if orphans:
        dropped["label_row_without_images"] = len(orphans)
        items += [(s, "study", "label_row_without_images", f"in {labels_csv}, not in {metadata_csv}")
                  for s in orphans]
    extra: dict[str, Any] = {
        "source_dataset": "mimic_cxr",
        "n_studies": n_studies,
        "n_metadata_rows": n_meta_rows,
        "uncertain_policy": UNCERTAIN_POLICIES[policy],
        "chexpert_values": dict(labels.value_counts),
        "chexpert_uncertain_by_finding": dict(labels.uncertain_by_finding),
        "dropped_studies": dict(sorted(dropped_studies.items())),
    }
    columns = [*MANIFEST_COLUMNS, "uncertain_tags"]
    if split_of is not None:
        columns.append("split")
        extra["split"] = {"source": "official", "file": str(split_path)}
    elif (Path(metadata_csv).parent / SPLIT_FILE).is_file():
        notes.append(f"the official split ({SPLIT_FILE}) is next to the metadata; pass --split "
                     f"official to record it in a 'split' column.")
    return SourceTable(
        frame=pd.DataFrame(rows, columns=columns),
        image_root=Path(image_root) if image_root else Path(metadata_csv).parent,
        label_source="chexpert:report",
        dropped=dict(dropped),
        notes=tuple(notes),
        extra_meta=extra,
        dropped_items=tuple(items),
        image_hint=IMAGE_HINT,
        uncertain_policy=policy,
    )
