"""Generic CSV source: any table with the manifest columns (``sample_id`` and ``image_path`` required)."""

from __future__ import annotations

import logging
from pathlib import Path

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

logger = logging.getLogger(__name__)


@DATASET_FORMATS.register("csv", description="generic CSV with the manifest columns")
def build_csv(
    *,
    path: str | Path,
    image_root: str | Path | None = None,
    label_source: str = "external",
    source_dataset: str | None = None,
    limit: int | None = None,
) -> SourceTable:
    """A CSV with at least ``sample_id`` and ``image_path``; missing columns get defaults
    (``patient_id`` = ``sample_id``, i.e. no grouping). Without ``label_rule`` the CSV's
    ``label`` column is used (empty and NaN-like cells are missing labels); ``tags`` are
    normalised (NaN-like tags are no tags). ``source_dataset`` names the public
    data set the rows come from (e.g. ``'openi'``, ``'nih'``); unknown if not given, and
    then the pretraining-overlap check cannot run."""
    df = read_csv_checked(path, ("sample_id", "image_path"), "manifest CSV", limit)
    notes = []
    if "patient_id" not in df.columns:
        df["patient_id"] = df["sample_id"]
        notes.append(
            "no patient_id column: every sample is its own CV group (leaks if patients repeat)."
        )
        logger.warning("%s has no patient_id column; each sample is its own CV group", path)
    for col in ("report_id", "findings", "impression", "indication", "comparison", "tags", "label",
                "view"):
        if col not in df.columns:
            df[col] = ""
    if "report_text" not in df.columns:
        df["report_text"] = [
            join_text(f, i) for f, i in zip(df["findings"], df["impression"], strict=True)
        ]
    if "label_source" not in df.columns:
        df["label_source"] = label_source
    df["tags"] = [";".join(normalize_tags(t for t in split_tags(v) if not is_missing_label(t)))
                  for v in df["tags"]]
    df["view"] = [normalize_view(v) for v in df["view"]]
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return SourceTable(
        frame=df[[*MANIFEST_COLUMNS, *extra]],
        image_root=Path(image_root) if image_root else Path(path).parent,
        label_source=label_source,
        default_label_rule=None,
        images="optional",
        notes=tuple(notes),
        extra_meta={
            "source_dataset": normalize_dataset_name(source_dataset) if source_dataset else None
        },
    )

