"""What every data source shares: the ``SourceTable`` it returns, the format registry, view and text helpers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ManifestError
from pipeline.registry import Registry

_WS = re.compile(r"\s+")

#: Raw view strings (DICOM ViewPosition, MIMIC's ViewCodeSequence_CodeMeaning, OpenI metadata)
#: -> normalised view. Only 'PA' and 'AP' are standard frontal films
#: (:data:`pipeline.manifest.FRONTAL_VIEWS`): axial and decubitus projections keep their own
#: names ('AP AXIAL', 'PA LLD', 'AP LLD', 'AP RLD') and are not frontal.
_VIEW_MAP = {
    "PA": "PA",
    "AP": "AP",
    "POSTERO-ANTERIOR": "PA",
    "POSTEROANTERIOR": "PA",
    "ANTERO-POSTERIOR": "AP",
    "ANTEROPOSTERIOR": "AP",
    "LL": "LATERAL",
    "RL": "LATERAL",
    "L": "LATERAL",
    "LAT": "LATERAL",
    "LATERAL": "LATERAL",
    "LARGE LATERAL": "LATERAL",
    "LEFT LATERAL": "LATERAL",
    "RIGHT LATERAL": "LATERAL",
    "XTABLE LATERAL": "LATERAL",
    "LATERAL-MEDIAL": "LATERAL",
    "LAO": "LAO",
    "RAO": "RAO",
    "LPO": "LPO",
    "RPO": "RPO",
    "LEFT ANTERIOR OBLIQUE": "LAO",
    "RIGHT ANTERIOR OBLIQUE": "RAO",
    "LEFT POSTERIOR OBLIQUE": "LPO",
    "RIGHT POSTERIOR OBLIQUE": "RPO",
    "SWIMMERS": "SWIMMERS",
}


#: Columns of ``<manifest>.dropped.csv``: the dropped id, what it is (image row, report,
#: study, file), the reason (the key counted in ``meta['dropped']``) and a detail (e.g. the
#: file that was expected).
DROPPED_COLUMNS = ("id", "level", "reason", "detail")
DroppedItem = tuple[str, str, str, str]

#: How the build step treats the images of a source: ``required`` (exit 2 when almost none
#: exist), ``optional`` (a warning; e.g. a text-only CSV), ``generated`` (written by the
#: source's ``finalize``, not checked).
IMAGE_POLICIES = ("required", "optional", "generated")


@dataclass(frozen=True)
class SourceTable:
    """What a format builder returns before the common filters and label rule.

    ``dropped`` counts what the parser dropped by reason; ``dropped_items`` lists the same
    drops one per id (:data:`DROPPED_COLUMNS`). ``uncertain_policy`` is set by sources whose
    frame has an ``uncertain_tags`` column (CheXpert -1 values); the label step applies it.
    ``image_hint`` is the source's advice when images are not found under ``image_root``.
    ``unlabelled``: new cases to predict; the label step keeps every row, labelled or not.
    """

    frame: pd.DataFrame
    image_root: Path
    label_source: str
    dropped: Mapping[str, int] = field(default_factory=dict)
    default_label_rule: str | None = "normal_vs_abnormal"
    notes: tuple[str, ...] = ()
    extra_meta: Mapping[str, Any] = field(default_factory=dict)
    finalize: Callable[[pd.DataFrame], dict[str, Any]] | None = None
    view_override: str | None = None  # set every kept row's view (after filtering), e.g. phantoms
    dropped_items: tuple[DroppedItem, ...] = ()
    images: str = "required"
    image_hint: str = ""
    uncertain_policy: str | None = None
    unlabelled: bool = False


#: Registered dataset formats (``openi``, ``openi_demo``, ``mimic_cxr``, ``csv``): each entry is
#: a builder returning a :class:`SourceTable`; ``defaults`` in its metadata are common options.
DATASET_FORMATS: Registry[Callable[..., SourceTable]] = Registry("dataset format")


def join_text(findings: str, impression: str) -> str:
    """``report_text``: findings and impression joined by one space (empty parts skipped)."""
    return " ".join(p for p in (findings.strip(), impression.strip()) if p)


def clean_text(text: str | None) -> str:
    """Whitespace runs collapsed to one space, stripped."""
    return _WS.sub(" ", text or "").strip()


def normalize_view(view: Any, fallback: Any = None) -> str:
    """'PA'/'AP'/'LATERAL'/... from a raw view string; ``fallback`` (e.g. MIMIC's
    ``ViewCodeSequence_CodeMeaning``) when ``view`` is blank; '' if both are unknown."""
    for raw in (view, fallback):
        if raw is None or (isinstance(raw, float) and raw != raw):
            continue
        text = _WS.sub(" ", str(raw)).strip().upper()
        if text:
            return _VIEW_MAP.get(text, text)
    return ""


def read_csv_checked(
    path: str | Path, required: tuple[str, ...], what: str, nrows: int | None = None
) -> pd.DataFrame:
    """Read ``path`` as all-string columns (no NA parsing), or raise :class:`ManifestError`
    naming the file and the fix (missing, not UTF-8, unparseable, missing ``required`` columns)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{what} {str(path)!r} not found; fix the path.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, nrows=nrows)
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{what} {str(path)!r} is not UTF-8 text ({exc}); re-save it as UTF-8 "
            f"(e.g. `iconv -f latin1 -t utf-8`)."
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ManifestError(
            f"{what} {str(path)!r} is not a readable CSV ({exc}); fix the file (one header row, "
            f"comma-separated, quoted fields)."
        ) from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ManifestError(
            f"{what} {str(path)!r} lacks column(s) {missing}; found {list(df.columns)[:15]}."
        )
    return df
