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

_VIEW_MAP = {
    "PA": "PA",
    "AP": "AP",
    "AP AXIAL": "AP",
    "PA LLD": "PA",
    "AP LLD": "AP",
    "AP RLD": "AP",
    "LL": "LATERAL",
    "RL": "LATERAL",
    "L": "LATERAL",
    "LAT": "LATERAL",
    "LATERAL": "LATERAL",
    "LARGE LATERAL": "LATERAL",
    "LAO": "LAO",
    "RAO": "RAO",
    "LPO": "LPO",
    "SWIMMERS": "SWIMMERS",
}


@dataclass(frozen=True)
class SourceTable:
    """What a format builder returns before the common filters and label rule."""

    frame: pd.DataFrame
    image_root: Path
    label_source: str
    dropped: Mapping[str, int] = field(default_factory=dict)
    default_label_rule: str | None = "normal_vs_abnormal"
    notes: tuple[str, ...] = ()
    extra_meta: Mapping[str, Any] = field(default_factory=dict)
    finalize: Callable[[pd.DataFrame], dict[str, Any]] | None = None
    view_override: str | None = None  # set every kept row's view (after filtering), e.g. phantoms


#: Registered dataset formats (``openi``, ``openi_demo``, ``mimic_cxr``, ``csv``): each entry is
#: a builder returning a :class:`SourceTable`; ``defaults`` in its metadata are common options.
DATASET_FORMATS: Registry[Callable[..., SourceTable]] = Registry("dataset format")


def join_text(findings: str, impression: str) -> str:
    """``report_text``: findings and impression joined by one space (empty parts skipped)."""
    return " ".join(p for p in (findings.strip(), impression.strip()) if p)


def clean_text(text: str | None) -> str:
    """Whitespace runs collapsed to one space, stripped."""
    return re.sub(r"\s+", " ", text or "").strip()


def normalize_view(view: Any) -> str:
    """'PA'/'AP'/'LATERAL'/... from a raw view string; '' if unknown."""
    if view is None or (isinstance(view, float) and view != view):
        return ""
    text = re.sub(r"\s+", " ", str(view)).strip().upper()
    return _VIEW_MAP.get(text, text)


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
