"""The manifest: its schema, the validated ``Manifest`` table, and CSV + JSON sidecar load/save.

A manifest is ``<manifest_dir>/<name>.csv`` plus a sidecar ``<name>.json`` (image_root,
label rule, label source, dropped-row counts, notes, ``schema_version``). Columns are
:data:`MANIFEST_COLUMNS`; sources may add extra columns after them (OpenI adds
``mesh_major``/``mesh_automatic``). ``report_text`` is findings + impression (the read);
``indication`` and ``comparison`` are written before the read (:data:`CONTEXT_COLUMNS`).
Labels live here, never in a feature store. Manifests are built by
:func:`pipeline.dataset.build.build_manifest` from a registered source (:mod:`pipeline.sources`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.helpers import atomic_write
from pipeline.labels import LabelRule

logger = logging.getLogger(__name__)

#: 2: the ``indication`` and ``comparison`` columns (schema 1 manifests must be rebuilt).
MANIFEST_SCHEMA_VERSION = 2
MANIFEST_COLUMNS = (
    "sample_id",
    "patient_id",
    "image_path",
    "report_id",
    "findings",
    "impression",
    "report_text",
    "indication",
    "comparison",
    "tags",
    "label",
    "label_source",
    "view",
)
FRONTAL_VIEWS = frozenset({"PA", "AP"})
#: Text written before the read (the exam's clinical question and prior exams): the
#: non-leaking context. A table built in memory without these columns gets them empty.
CONTEXT_COLUMNS = ("indication", "comparison")
TEXT_MODES = ("both", "findings", "impression", "indication", "comparison")
#: Label (and tag) cells that mean "no label": empty and the usual NaN spellings, compared
#: stripped and case-insensitively. Such rows are dropped as ``label:missing``, never a class.
MISSING_LABEL_VALUES = frozenset({"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null"})
_TEXT_COLUMN = {"both": "report_text", "findings": "findings", "impression": "impression",
                "indication": "indication", "comparison": "comparison"}


def is_missing_label(value: Any) -> bool:
    """True for a label cell that holds no label: None, float NaN, '' or a NaN spelling
    (:data:`MISSING_LABEL_VALUES`: 'NaN', 'nan', 'NA', 'N/A', 'null', ...)."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return str(value).strip().lower() in MISSING_LABEL_VALUES


@dataclass(frozen=True)
class Manifest:
    """A validated manifest table. ``frame`` has one row per image (string columns).

    ``meta`` is the sidecar's content; the manifest keeps its own copy, so a caller's dict
    changed after construction does not change the manifest.
    """

    name: str
    frame: pd.DataFrame
    image_root: Path
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_root", Path(self.image_root))
        object.__setattr__(self, "meta", dict(self.meta))
        if isinstance(self.frame, pd.DataFrame):
            absent = {c: "" for c in CONTEXT_COLUMNS if c not in self.frame.columns}
            if absent:
                object.__setattr__(self, "frame", self.frame.assign(**absent))
        validate_frame(
            self.frame,
            where=f"manifest {self.name!r}",
            allow_absolute_paths=bool(self.meta.get("allow_absolute_paths", False)),
        )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> list[str]:
        return self.frame["sample_id"].tolist()

    @property
    def labels(self) -> pd.Series:
        """Labels indexed by sample id."""
        return pd.Series(
            self.frame["label"].to_numpy(), index=self.frame["sample_id"], name="label"
        )

    @functools.cached_property
    def _row_of(self) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(self.frame["sample_id"])}

    def row(self, sample_id: str) -> pd.Series:
        try:
            return self.frame.iloc[self._row_of[sample_id]]
        except KeyError:
            raise ManifestError(
                f"sample {sample_id!r} is not in manifest {self.name!r} ({len(self)} rows); "
                f"check the id or rebuild the manifest."
            ) from None

    def image_file(self, sample_id: str) -> Path:
        """The image path of ``sample_id`` resolved under ``image_root``."""
        rel = str(self.row(sample_id)["image_path"])
        if not rel:
            raise ManifestError(
                f"sample {sample_id!r} in manifest {self.name!r} has no image_path; "
                f"fill the column or drop the row."
            )
        return _resolve_image_path(
            rel, self.image_root, bool(self.meta.get("allow_absolute_paths", False)), sample_id
        )

    def image_files(self) -> list[Path]:
        return [self.image_file(sid) for sid in self.frame["sample_id"]]

    def text(self, mode: str = "both") -> pd.Series:
        """Text per sample id: ``'both'`` (report_text = findings + impression), ``'findings'``,
        ``'impression'``, or the pre-read context ``'indication'`` / ``'comparison'``."""
        column = _TEXT_COLUMN.get(mode)
        if column is None:
            raise ConfigError(f"text mode {mode!r} is invalid; use one of {', '.join(TEXT_MODES)}.")
        return pd.Series(self.frame[column].to_numpy(), index=self.frame["sample_id"], name=column)

    @property
    def label_rule(self) -> LabelRule | None:
        spec = self.meta.get("label_rule")
        return LabelRule.from_spec(spec) if spec else None

    def save(self, csv_path: str | Path) -> Path:
        return save_manifest(self, csv_path)


def _resolve_image_path(rel: str, root: Path, allow_absolute: bool, sample_id: str) -> Path:
    problem = _path_problem(rel, allow_absolute)
    if problem:
        raise ManifestError(
            f"sample {sample_id!r}: image_path {rel!r} {problem}; use a path relative to image_root "
            f"{str(root)!r} or build the manifest with allow_absolute_paths=True."
        )
    path = Path(rel)
    return path if path.is_absolute() else Path(os.path.normpath(root / path))


_SUSPECT_PATH = r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)"


def _path_problem(rel: str, allow_absolute: bool) -> str | None:
    if allow_absolute or not rel:
        return None
    if (
        os.path.isabs(rel)
        or PurePosixPath(rel.replace("\\", "/")).is_absolute()
        or re.match(r"^[A-Za-z]:[\\/]", rel)
    ):
        return "is absolute"
    norm = os.path.normpath(rel.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        return "escapes image_root via '..'"
    return None


def validate_frame(frame: pd.DataFrame, *, where: str, allow_absolute_paths: bool = False) -> None:
    """Raise :class:`ManifestError` for missing columns, an empty table, duplicate or
    empty sample ids, and image paths that are absolute or escape the image root."""
    if not isinstance(frame, pd.DataFrame):
        raise ManifestError(
            f"{where}: frame must be a pandas DataFrame, got {type(frame).__name__}."
        )
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"{where}: missing required column(s) {missing}; the manifest needs "
            f"{', '.join(MANIFEST_COLUMNS)} (rebuild it with `pipeline data`)."
        )
    if frame.empty:
        raise ManifestError(f"{where}: the table has no rows; check the source data and filters.")
    ids = frame["sample_id"].astype(str)
    if (ids.str.strip() == "").any():
        rows = [int(i) for i in frame.index[ids.str.strip() == ""][:10]]
        raise ManifestError(
            f"{where}: empty sample_id in row(s) {rows}; every row needs a unique id."
        )
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        names = sorted(set(dup))
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        raise ManifestError(
            f"{where}: {len(names)} duplicate sample_id(s): {shown}; sample ids must be unique "
            f"(e.g. one row per image, or append the image name to the id)."
        )
    bad = []
    paths = frame["image_path"].astype(str)
    # only a path that starts at a root/drive or has a '..' part can be a problem (fast pre-filter)
    suspect = paths.str.contains(_SUSPECT_PATH, regex=True) if not allow_absolute_paths else paths == ""
    for sid, rel in zip(ids[suspect], paths[suspect], strict=True):
        problem = _path_problem(rel, allow_absolute_paths)
        if problem:
            bad.append(f"{sid!r} ({rel!r} {problem})")
    if bad:
        shown = "; ".join(bad[:10]) + (f"; ... {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ManifestError(
            f"{where}: {len(bad)} image_path(s) are absolute or escape image_root: {shown}. Use paths "
            f"relative to image_root, or pass allow_absolute_paths=True if this is intended."
        )


# =========================================================================== load / save


def manifest_path(name: str, manifest_dir: str | Path = "artifacts/manifests") -> Path:
    return Path(manifest_dir) / f"{name}.csv"


def _sidecar(csv_path: Path) -> Path:
    return csv_path.with_suffix(".json")


def dropped_path(csv_path: str | Path) -> Path:
    """``<name>.dropped.csv`` next to manifest ``<name>.csv``: every dropped id with its reason."""
    csv_path = Path(csv_path)
    return csv_path.with_name(f"{csv_path.stem}.dropped.csv")


def save_manifest(manifest: Manifest, csv_path: str | Path) -> Path:
    """Write ``csv_path`` and its ``.json`` sidecar atomically; returns the CSV path.

    A relative ``image_root`` is stored relative to the sidecar's folder, so the
    artifacts tree can be moved as a whole.
    """
    csv_path = Path(csv_path)
    if csv_path.suffix.lower() != ".csv":
        raise ConfigError(f"manifest path {str(csv_path)!r} must end in .csv.")
    atomic_write(csv_path, manifest.frame.to_csv(index=False))
    root = manifest.image_root
    if root.is_absolute():
        root_str = str(root)
    else:
        root_str = os.path.relpath(os.path.abspath(root), os.path.abspath(csv_path.parent))
    meta = {k: v for k, v in manifest.meta.items() if k not in {"image_root", "name"}}
    doc = {
        "name": manifest.name,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "image_root": root_str,
        **meta,
    }
    atomic_write(
        _sidecar(csv_path), json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    )
    logger.info(
        "wrote manifest %s (%d rows) and %s", csv_path, len(manifest), _sidecar(csv_path).name
    )
    return csv_path


def load_manifest(path: str | Path) -> Manifest:
    """Load ``<name>.csv`` (or its ``.json`` sidecar) and validate it.

    Without a sidecar the image root is the CSV's folder (logged as a warning).
    """
    path = Path(path)
    csv_path = path.with_suffix(".csv") if path.suffix.lower() == ".json" else path
    if not csv_path.is_file():
        raise ManifestError(
            f"manifest {str(csv_path)!r} does not exist; build it with `pipeline data <format>` "
            f"(or pass the path of an existing manifest CSV)."
        )
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"manifest {str(csv_path)!r} is not a readable CSV ({exc}); rebuild it."
        ) from exc
    side = _sidecar(csv_path)
    meta: dict[str, Any] = {}
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"manifest sidecar {str(side)!r} is not valid JSON ({exc}); rebuild it."
            ) from exc
        _check_schema(meta, side)
        root = Path(str(meta.get("image_root", ".")))
        image_root = root if root.is_absolute() else Path(os.path.normpath(csv_path.parent / root))
    else:
        logger.warning(
            "manifest %s has no sidecar %s; using its folder as image_root", csv_path, side.name
        )
        image_root = csv_path.parent
    name = str(meta.pop("name", csv_path.stem))
    meta.pop("image_root", None)
    return Manifest(name, frame, image_root, meta)


def rebuild_command(meta: Mapping[str, Any]) -> str:
    """The ``pipeline data ...`` command that rebuilds a manifest, from its sidecar's ``build``."""
    build = meta.get("build") or {}
    args = ["pipeline", "data", str(build.get("source") or "<format>")]
    for key, value in sorted((build.get("options") or {}).items()):
        if key == "manifest_dir" or value in (None, False):
            continue
        if key == "artifacts_root":
            args += ["--artifacts", str(value)]
        elif key == "check_images":
            continue
        elif value is True:
            args.append("--" + key.replace("_", "-"))
        else:
            args += ["--" + key.replace("_", "-"), str(value)]
    return " ".join(args)


def _check_schema(meta: Mapping[str, Any], side: Path) -> None:
    raw = meta.get("schema_version", 1)
    try:
        version = int(raw)
    except (TypeError, ValueError):
        raise ManifestError(
            f"manifest sidecar {str(side)!r} has schema_version {raw!r}, not an integer; rebuild it "
            f"with `{rebuild_command(meta)}`."
        ) from None
    if version > MANIFEST_SCHEMA_VERSION:
        raise ManifestError(
            f"manifest {str(side)!r} has schema_version {version}, newer than this code "
            f"({MANIFEST_SCHEMA_VERSION}); upgrade the pipeline."
        )
    if version < MANIFEST_SCHEMA_VERSION:
        raise ConfigError(
            f"manifest {str(side.with_suffix('.csv'))!r} was built with manifest schema {version}; this "
            f"code needs schema {MANIFEST_SCHEMA_VERSION} (it adds the {' and '.join(CONTEXT_COLUMNS)} "
            f"columns). Rebuild it: `{rebuild_command(meta)}`."
        )


def load_manifest_meta(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of manifest ``path`` (``{}`` if it has none); the CSV is not read."""
    side = _sidecar(Path(path).with_suffix(".csv"))
    if not side.is_file():
        return {}
    try:
        return dict(json.loads(side.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"manifest sidecar {str(side)!r} is not valid JSON ({exc}); rebuild it."
        ) from exc

