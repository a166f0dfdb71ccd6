"""CheXpert label tables: per-study positive and uncertain finding tags, value counts, uncertainty policies.

A CheXpert labeler cell is ``1`` (positive), ``0`` (negative), ``-1`` (uncertain) or blank
(not mentioned). The uncertain policies of the CheXpert paper (Irvin et al., 2019):

``zeros`` (U-Zeros, default)
    -1 is negative. A study whose only mentions are -1 has no positive finding: it is
    ``other`` for ``finding_vs_rest`` and dropped as ``label:uncertain_only`` by
    ``normal_vs_abnormal`` (no positive finding, but no 'No Finding' either).
``ones`` (U-Ones)
    -1 is positive.
``ignore`` (U-Ignore)
    a study whose label would differ between U-Zeros and U-Ones is dropped as
    ``label:uncertain``; every other study keeps its (certain) label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError
from pipeline.labels import normalize_tag, normalize_tags

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
#: policy -> its name in the CheXpert paper (recorded in the manifest's provenance).
UNCERTAIN_POLICIES: Mapping[str, str] = {"zeros": "U-Zeros", "ones": "U-Ones", "ignore": "U-Ignore"}
_POLICY_ALIASES = {
    "zeros": "zeros", "u-zeros": "zeros", "u_zeros": "zeros", "uzeros": "zeros", "negative": "zeros",
    "ones": "ones", "u-ones": "ones", "u_ones": "ones", "uones": "ones", "positive": "ones",
    "ignore": "ignore", "u-ignore": "ignore", "u_ignore": "ignore", "uignore": "ignore",
}
_VALUE_KIND = {"1": "positive", "1.0": "positive", "0": "negative", "0.0": "negative",
               "-1": "uncertain", "-1.0": "uncertain", "": "blank"}


def uncertain_policy(name: str) -> str:
    """Canonical policy (``zeros``/``ones``/``ignore``) of a user-given name
    (``U-Ones``, ``ones``, ``positive``, ...); :class:`ConfigError` otherwise."""
    key = str(name).strip().lower()
    if key not in _POLICY_ALIASES:
        raise ConfigError(
            f"uncertain label policy {name!r} is invalid; use zeros (U-Zeros: -1 is negative), "
            f"ones (U-Ones: -1 is positive) or ignore (U-Ignore: drop studies whose label depends "
            f"on a -1)."
        )
    return _POLICY_ALIASES[key]


@dataclass(frozen=True)
class StudyLabels:
    """Per study id: ';'-joined positive tags and uncertain (-1) tags, plus value counts."""

    positive: Mapping[str, str]
    uncertain: Mapping[str, str]
    value_counts: Mapping[str, int]  # positive / negative / uncertain / blank / other cells
    uncertain_by_finding: Mapping[str, int] = field(default_factory=dict)
    subjects: Mapping[str, str] = field(default_factory=dict)  # study id -> subject id


def read_study_labels(labels: pd.DataFrame) -> StudyLabels:
    """Tags per study from a CheXpert label table (string cells; columns that are absent are
    skipped). Unexpected cell values are counted as ``other`` and treated as blank."""
    cols = [c for c in CHEXPERT_COLUMNS if c in labels.columns]
    tag_of = [normalize_tag(c) for c in cols]
    cells = labels[cols].apply(lambda col: col.str.strip()).to_numpy(dtype=object)
    kinds = np.vectorize(lambda v: _VALUE_KIND.get(v, "other"), otypes=[object])(cells) if len(
        cells) else np.empty((0, len(cols)), dtype=object)
    counts = {k: int((kinds == k).sum()) for k in ("positive", "negative", "uncertain", "blank", "other")}
    is_pos, is_unc = kinds == "positive", kinds == "uncertain"
    positive: dict[str, str] = {}
    uncertain: dict[str, str] = {}
    studies = labels["study_id"].str.strip().tolist()
    for study, pos_row, unc_row in zip(studies, is_pos, is_unc, strict=True):
        pos = list(dict.fromkeys(tag_of[j] for j in np.flatnonzero(pos_row)))
        positive[study] = ";".join(pos)
        uncertain[study] = ";".join(dict.fromkeys(
            tag_of[j] for j in np.flatnonzero(unc_row) if tag_of[j] not in pos))
    by_finding = {c: int(n) for c, n in zip(cols, is_unc.sum(axis=0), strict=True) if n}
    return StudyLabels(
        positive=positive,
        uncertain=uncertain,
        value_counts=counts,
        uncertain_by_finding=dict(sorted(by_finding.items())),
        subjects=dict(zip(studies, labels["subject_id"].str.strip().tolist(), strict=True)),
    )


def study_tags(labels: StudyLabels, study: str, policy: str) -> tuple[str, str]:
    """(tags, uncertain_tags) of one study under ``policy``: U-Ones moves the uncertain
    findings into the tags; the other policies keep them apart for the label step."""
    pos, unc = labels.positive[study], labels.uncertain[study]
    if policy == "ones":
        return ";".join(normalize_tags([*pos.split(";"), *unc.split(";")])), unc
    return pos, unc
