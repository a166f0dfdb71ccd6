"""Generic CSV source: a site export with its own column names, mapped onto the manifest.

Only ``sample_id`` and ``image_path`` are required, under their own names or mapped from the
export's (``columns``: see :mod:`pipeline.sources.column_map`). A ``report_text`` without
``findings``/``impression`` columns is split by its headings with the same parser as MIMIC-CXR
(:func:`pipeline.sources.report_sections.parse_report`): findings, impression, and the pre-read
indication and comparison; the manifest's ``report_text`` is then the read (findings +
impression), as for every other source. The label source is declared (``report`` switches on
the text-only leakage ceiling and label masking, as for OpenI).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.errors import ManifestError
from pipeline.families import normalize_dataset_name
from pipeline.labels import normalize_tags, split_tags
from pipeline.manifest import MANIFEST_COLUMNS, is_missing_label
from pipeline.sources.base import (
    DATASET_FORMATS,
    SourceTable,
    join_text,
    normalize_view,
    read_csv_checked,
)
from pipeline.sources.column_map import (
    TEXT_FIELDS,
    apply_columns,
    normalize_label_source,
    parse_column_list,
    parse_columns,
)
from pipeline.sources.report_sections import parse_report

logger = logging.getLogger(__name__)

#: The parts a report is split into (the manifest's text columns), in report order.
SECTION_COLUMNS = ("indication", "comparison", "findings", "impression")


def split_sections(df: pd.DataFrame) -> dict[str, int]:
    """Fill ``findings``/``impression``/``indication``/``comparison`` of ``df`` (in place) from
    ``report_text`` by its headings, set ``report_text`` to the read (findings + impression),
    and return how many reports have each part (``no_headings``: returned whole as findings;
    ``empty``: no text at all)."""
    parsed = [parse_report(str(t)) for t in df["report_text"]]
    for col in SECTION_COLUMNS:
        df[col] = [getattr(p, col) for p in parsed]
    df["report_text"] = [join_text(p.findings, p.impression) for p in parsed]
    counts: Counter = Counter()
    for raw, p in zip(df["report_text"], parsed, strict=True):
        counts.update(c for c in SECTION_COLUMNS if getattr(p, c))
        if not raw.strip():
            counts["empty"] += 1
        elif not p.sections:
            counts["no_headings"] += 1
    return {"reports": len(parsed), **{c: int(counts[c]) for c in (*SECTION_COLUMNS,
                                                                    "no_headings", "empty")}}


def _positive(df: pd.DataFrame, positive_label: str, path: str | Path) -> None:
    """Check ``positive_label`` against a two-class label column (ManifestError otherwise)."""
    values = sorted({str(v).strip() for v in df["label"] if not is_missing_label(v)})
    if positive_label not in values:
        raise ManifestError(f"CSV {str(path)!r}: --positive-label {positive_label!r} is not a "
                            f"value of the label column (values: {values[:10]}); fix the flag")
    if len(values) > 2:
        raise ManifestError(f"CSV {str(path)!r}: --positive-label needs a two-valued label "
                            f"column, found {len(values)} values {values[:10]}; map them to two")


@DATASET_FORMATS.register("csv", description="any CSV; --columns maps its own column names")
def build_csv(
    *,
    path: str | Path,
    image_root: str | Path | None = None,
    label_source: str | None = None,
    source_dataset: str | None = None,
    limit: int | None = None,
    columns: str | dict[str, str] | None = None,
    positive_label: str | None = None,
    tabular: str | list[str] | None = None,
    unlabelled: bool = False,
) -> SourceTable:
    """A CSV with ``sample_id`` and ``image_path`` (own names or mapped by ``columns``);
    missing columns get defaults (``patient_id`` = ``sample_id``, i.e. no grouping). Without
    ``label_rule`` the ``label`` column is used (empty and NaN-like cells are missing labels);
    ``positive_label`` names its positive value (two values only). ``label_source``:
    ``report`` | ``external`` (default: the CSV's ``label_source`` column, else external).
    ``tabular``: columns kept for a tabular store (written by the data step, key ``clinical``).
    ``unlabelled``: new cases to predict; no row is dropped for a missing label.
    ``source_dataset`` names the public data set the rows come from (e.g. ``'nih'``)."""
    mapping = parse_columns(columns)
    df = read_csv_checked(path, (), "CSV", limit)
    df = apply_columns(df, mapping, path)
    missing = [c for c in ("sample_id", "image_path") if c not in df.columns]
    if missing:
        raise ManifestError(
            f"CSV {str(path)!r} lacks {missing}; name the export's columns with --columns "
            f"(e.g. sample_id=Accession,image_path=FilePath); found {list(df.columns)[:15]}.")
    tab_cols = parse_column_list(tabular)
    absent = [c for c in tab_cols if c not in df.columns]
    if absent:
        raise ManifestError(f"CSV {str(path)!r} has no column(s) {absent} for --tabular; its "
                            f"columns: {', '.join(map(str, df.columns[:20]))}")
    notes = []
    if "patient_id" not in df.columns:
        df["patient_id"] = df["sample_id"]
        notes.append(
            "no patient_id column: every sample is its own CV group (leaks if patients repeat)."
        )
        logger.warning("%s has no patient_id column; each sample is its own CV group", path)
    recorded_source = normalize_label_source(label_source, df, path)
    split = "report_text" in df.columns and not any(
        c in df.columns for c in ("findings", "impression"))
    for col in ("report_id", "findings", "impression", "indication", "comparison", "tags", "label",
                "view"):
        if col not in df.columns:
            df[col] = ""
    sections = split_sections(df) if split else None
    if "report_text" not in df.columns:
        df["report_text"] = [
            join_text(f, i) for f, i in zip(df["findings"], df["impression"], strict=True)
        ]
    df["label_source"] = recorded_source
    df["tags"] = [";".join(normalize_tags(t for t in split_tags(v) if not is_missing_label(t)))
                  for v in df["tags"]]
    df["view"] = [normalize_view(v) for v in df["view"]]
    if positive_label is not None and not unlabelled:
        _positive(df, positive_label, path)
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    text_inputs = {mapping.get(f, f) for f in TEXT_FIELDS}
    input_meta = {
        "columns": mapping,
        "label_source": recorded_source,
        "positive_label": positive_label,
        "tabular": list(tab_cols),
        "split_sections": split,
        # the export's own columns that identify a row (carried into the predictions)
        "id_columns": [c for c in extra if c not in text_inputs and c not in tab_cols
                       and c != mapping.get("label")],
    }
    meta = {"source_dataset": normalize_dataset_name(source_dataset) if source_dataset else None,
            "csv_input": input_meta, "positive_label": positive_label}
    if sections is not None:
        meta["report_sections"] = sections
    if recorded_source.endswith(":report") and "label" in mapping:
        # the terms `extract --mask-labels` hides: the finding the label column is named after
        meta["mask_rule"] = f"finding_vs_rest:{mapping['label']}"
    return SourceTable(
        frame=df[[*MANIFEST_COLUMNS, *extra]],
        image_root=Path(image_root) if image_root else Path(path).parent,
        label_source=recorded_source,
        default_label_rule=None,
        images="optional",
        notes=tuple(notes),
        extra_meta=meta,
        unlabelled=bool(unlabelled),
    )
