"""A site export's own column names -> the manifest's fields (``--columns``, or a mapping in Python).

``sample_id=Accession,patient_id=MRN,image_path=FilePath,report_text=ReportText,label=Finding``
reads: the manifest field ``sample_id`` is the export's ``Accession`` column, and so on. The
export's columns stay in the manifest as extra columns (so ``MRN`` and ``Accession`` travel
with every row, into the predictions); the mapped fields are copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.helpers import did_you_mean

#: Manifest fields a column may be mapped to.
MAPPABLE_FIELDS = ("sample_id", "patient_id", "image_path", "report_id", "report_text",
                   "findings", "impression", "indication", "comparison", "label", "tags", "view")
#: Fields whose input columns hold report text (left out of the predictions file).
TEXT_FIELDS = ("report_text", "findings", "impression", "indication", "comparison")
#: Label sources ``--label-source`` accepts and what the manifest records: ``report`` (the
#: labels were read off the report text; the leakage ceiling and masking apply) or
#: ``external`` (another source: a second reader, a lab value, a registry).
LABEL_SOURCES = {"report": "csv:report", "external": "external"}


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``'field=Column,field=Column'`` (or a mapping) -> ``{field: Column}``; ConfigError
    naming the entry and the valid fields for anything else."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k).strip(), str(v).strip()) for k, v in spec.items()]
    else:
        items = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            field, eq, column = part.partition("=")
            if not eq or not field.strip() or not column.strip():
                raise ConfigError(f"--columns entry {part.strip()!r} is not field=Column (e.g. "
                                  "sample_id=Accession,patient_id=MRN)")
            items.append((field.strip(), column.strip()))
    out: dict[str, str] = {}
    for field, column in items:
        if field not in MAPPABLE_FIELDS:
            raise ConfigError(f"--columns: {field!r} is not a manifest field.{did_you_mean(field, MAPPABLE_FIELDS)}"
                              f" Fields: {', '.join(MAPPABLE_FIELDS)}")
        if field in out:
            raise ConfigError(f"--columns maps {field!r} twice ({out[field]!r} and {column!r})")
        out[field] = column
    return out


def parse_column_list(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``'PatientAge,PatientSex'`` (or a list) -> ``('PatientAge', 'PatientSex')``."""
    if spec is None or spec == "":
        return ()
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(dict.fromkeys(p.strip() for p in parts if str(p).strip()))


def apply_columns(frame: pd.DataFrame, columns: Mapping[str, str], path: str | Path) -> pd.DataFrame:
    """``frame`` with each mapped field set to a copy of its input column; ManifestError naming
    the file and the column (with a did-you-mean) when the export lacks it."""
    have = [str(c) for c in frame.columns]
    for field, column in columns.items():
        if column not in frame.columns:
            raise ManifestError(
                f"CSV {str(path)!r} has no column {column!r} (mapped to {field}).{did_you_mean(column, have)}"
                f" Its columns: {', '.join(have[:20])}; fix --columns.")
    out = frame.copy()
    for field, column in columns.items():
        out[field] = frame[column]
    return out


def normalize_label_source(value: str | None, frame: pd.DataFrame, path: str | Path) -> str:
    """The manifest's label source: ``value`` (``report``/``external``, or already
    ``<labeler>:report``), else the CSV's own ``label_source`` column when it holds one value,
    else ``external``. A column that disagrees with ``value`` or holds several values is an error."""
    column = None
    if "label_source" in frame.columns:
        vals = sorted({str(v).strip() for v in frame["label_source"] if str(v).strip()})
        if len(vals) > 1:
            raise ManifestError(f"CSV {str(path)!r}: the label_source column holds several values "
                                f"{vals}; one data set has one label source - split the file or "
                                "pass --label-source")
        column = vals[0] if vals else None
    if value is None:
        value = column or "external"
    recorded = LABEL_SOURCES.get(str(value).strip().lower(), str(value).strip())
    if column is not None and LABEL_SOURCES.get(column.lower(), column) != recorded:
        raise ManifestError(f"CSV {str(path)!r}: its label_source column says {column!r} but "
                            f"--label-source says {value!r}; make them agree")
    return recorded
