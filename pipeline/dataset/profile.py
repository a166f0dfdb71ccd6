"""The data profile of a built manifest (``<name>.profile.json``): problems shown before extraction.

Classes and prevalence, patients and studies per patient, missing and unreadable image files,
empty reports and the coverage of each report section. :func:`profile_manifest` computes it,
:func:`render_profile` turns it into the lines ``pipeline data`` prints.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.helpers import atomic_write

logger = logging.getLogger(__name__)

_EXAMPLES = 3
_SECTIONS = ("indication", "comparison", "findings", "impression")


@dataclass(frozen=True)
class DataProfile:
    """What a data set holds, as counted at the data step (every count is of manifest rows)."""

    name: str
    n_rows: int
    classes: Mapping[str, int]
    prevalence: Mapping[str, float]
    n_unlabelled: int
    n_patients: int
    studies_per_patient: Mapping[str, Any]
    images: Mapping[str, Any]
    empty_reports: int
    sections: Mapping[str, int]
    dropped: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def _image_problems(frame: pd.DataFrame, image_root: Path, open_files: bool,
                    known_missing: set[str] | None) -> dict[str, Any]:
    """Missing files (``known_missing``: already found by the image check), and
    (``open_files``) files whose image header cannot be read."""
    missing, unreadable = [], []
    for sid, rel in zip(frame["sample_id"].astype(str), frame["image_path"].astype(str),
                        strict=True):
        path = Path(rel) if Path(rel).is_absolute() else image_root / rel
        gone = sid in known_missing if known_missing is not None else not path.is_file()
        if not rel or gone:
            missing.append(sid)
        elif open_files:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(path) as img:
                    img.size  # noqa: B018  (the header is parsed on open)
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
                unreadable.append(sid)  # a bomb-sized header too: extract refuses it as well
    return {"checked": len(frame), "missing": len(missing), "unreadable": len(unreadable),
            "headers_read": bool(open_files), "missing_examples": missing[:_EXAMPLES],
            "unreadable_examples": unreadable[:_EXAMPLES]}


def profile_manifest(name: str, frame: pd.DataFrame, image_root: Path, *,
                     dropped: Mapping[str, int] | None = None, check_files: bool = True,
                     open_files: bool = False, missing_ids: set[str] | None = None
                     ) -> DataProfile:
    """The :class:`DataProfile` of a manifest table (``open_files``: read each image's header;
    ``missing_ids``: the ids whose file the image check did not find, so no file is stat'ed twice)."""
    labels = frame["label"].astype(str)
    counts = Counter(v for v in labels if v)
    n_lab = sum(counts.values())
    studies = frame["report_id"].where(frame["report_id"].astype(str) != "", frame["sample_id"])
    per_patient = pd.Series(studies.to_numpy()).groupby(frame["patient_id"].to_numpy()).nunique()
    spp = {"min": int(per_patient.min()), "median": float(np.median(per_patient)),
           "max": int(per_patient.max()),
           "distribution": {str(k): int(v) for k, v in sorted(Counter(per_patient).items())}}
    text = frame[["findings", "impression", "report_text"]].astype(str)
    empty = int(((text["findings"].str.strip() == "") & (text["impression"].str.strip() == "")
                 & (text["report_text"].str.strip() == "")).sum())
    sections = {c: int((frame[c].astype(str).str.strip() != "").sum())
                for c in _SECTIONS if c in frame.columns}
    images = (_image_problems(frame, image_root, open_files, missing_ids) if check_files
              else {"checked": 0, "missing": 0, "unreadable": 0, "headers_read": False})
    return DataProfile(
        name=name, n_rows=len(frame), classes=dict(sorted(counts.items())),
        prevalence={k: round(v / n_lab, 4) for k, v in sorted(counts.items())},
        n_unlabelled=len(frame) - n_lab, n_patients=int(frame["patient_id"].nunique()),
        studies_per_patient=spp, images=images, empty_reports=empty, sections=sections,
        dropped=dict(dropped or {}))


def profile_path(manifest_csv: str | Path) -> Path:
    """``<name>.profile.json`` next to the manifest ``<name>.csv``."""
    p = Path(manifest_csv)
    return p.with_name(p.stem + ".profile.json")


def save_profile(profile: DataProfile, manifest_csv: str | Path) -> Path:
    path = profile_path(manifest_csv)
    atomic_write(path, json.dumps(profile.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def load_profile(path: str | Path) -> DataProfile:
    return DataProfile(**json.loads(Path(path).read_text(encoding="utf-8")))


def render_profile(profile: DataProfile) -> str:
    """The profile as the indented lines ``pipeline data`` prints."""
    n = profile.n_rows
    classes = ", ".join(f"{k}={v} ({100 * profile.prevalence[k]:.1f}%)"
                        for k, v in profile.classes.items()) or "none"
    spp = profile.studies_per_patient
    dist = ", ".join(f"{k}: {v}" for k, v in spp["distribution"].items())
    lines = [f"  profile of {profile.name}: {n} rows",
             f"    classes: {classes}" + (f"; unlabelled {profile.n_unlabelled}"
                                           if profile.n_unlabelled else ""),
             f"    patients: {profile.n_patients}; studies per patient min {spp['min']}, median "
             f"{spp['median']:g}, max {spp['max']} (patients by count {dist})"]
    im = profile.images
    if im.get("checked"):
        what = "missing or unreadable" if im.get("headers_read") else "missing"
        ex = [*im.get("missing_examples", []), *im.get("unreadable_examples", [])]
        lines.append(f"    image files: {im['missing']} missing, {im['unreadable']} unreadable of "
                     f"{im['checked']} ({what} ones fail at extract" + (
                         f"; e.g. {', '.join(ex)})" if ex else ")"))
    lines.append(f"    empty reports: {profile.empty_reports}")
    if profile.sections:
        lines.append("    section coverage: " + ", ".join(
            f"{c} {v} ({100 * v / max(n, 1):.0f}%)" for c, v in profile.sections.items()))
    return "\n".join(lines)
