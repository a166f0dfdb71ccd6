"""Dataset manifests: one table per dataset, one row per image.

A manifest is ``<manifest_dir>/<name>.csv`` plus a sidecar ``<name>.json``
(image_root, label rule, label source, dropped-row counts, notes). Columns are
:data:`MANIFEST_COLUMNS`; builders may add extra columns after them (OpenI adds
``mesh_major``/``mesh_automatic``). Labels live here, never in a feature store.

Builders (``DATASET_FORMATS``, a :class:`~pipeline.registry.Registry`):

``openi``
    NLMCXR report XMLs (a folder of ``*.xml`` or the ``NLMCXR_reports.tgz``):
    FINDINGS/IMPRESSION, MeSH major/automatic, one row per ``parentImage``;
    ``patient_id = report_id = uId`` (IU reports are de-identified per study, the
    report is the grouping unit); ``image_path = '<parentImage id>.png'`` (the
    ``NLMCXR_png`` naming). The XMLs carry no view; pass ``view_csv`` (e.g. the
    ``nlmcxr_dicom_metadata.csv.gz`` shipped with torchxrayvision) to get one,
    otherwise ``frontal_only`` cannot filter and says so (log + ``meta['notes']``).
``openi_demo``
    the 3,955 real OpenI reports shipped in torchxrayvision, each paired with a
    deterministic synthetic *phantom* image (:mod:`pipeline.phantoms`) for its
    first frontal image id. Offline, no data download.
``mimic_cxr``
    MIMIC-CXR-JPG metadata CSV + CheXpert label CSV + report ``.txt`` files.
``csv``
    a generic CSV with the manifest columns (``sample_id`` and ``image_path`` required).

Common options of :func:`build_manifest`: ``name``, ``label_rule`` (see
:mod:`pipeline.labels`), ``frontal_only``, ``one_per_report``, ``drop_empty_text``,
``allow_absolute_paths``, ``limit``, ``manifest_dir``, ``artifacts_root``. Every
dropped row is counted by reason in ``manifest.meta['dropped']`` and logged.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.util
import inspect
import json
import logging
import os
import re
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.labels import LabelRule, apply_label_rule, normalize_tag, normalize_tags, split_tags
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_COLUMNS = (
    "sample_id",
    "patient_id",
    "image_path",
    "report_id",
    "findings",
    "impression",
    "report_text",
    "tags",
    "label",
    "label_source",
    "view",
)
FRONTAL_VIEWS = frozenset({"PA", "AP"})
TEXT_MODES = ("both", "findings", "impression")
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
_COMMON_OPTIONS = (
    "name",
    "label_rule",
    "frontal_only",
    "one_per_report",
    "drop_empty_text",
    "allow_absolute_paths",
    "limit",
    "manifest_dir",
    "artifacts_root",
)


# =========================================================================== Manifest


@dataclass(frozen=True)
class Manifest:
    """A validated manifest table. ``frame`` has one row per image (string columns)."""

    name: str
    frame: pd.DataFrame
    image_root: Path
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_root", Path(self.image_root))
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
        """Report text per sample id: ``'both'`` (report_text), ``'findings'`` or ``'impression'``."""
        column = {"both": "report_text", "findings": "findings", "impression": "impression"}.get(
            mode
        )
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
    for sid, rel in zip(ids, frame["image_path"].astype(str), strict=True):
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


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_manifest(manifest: Manifest, csv_path: str | Path) -> Path:
    """Write ``csv_path`` and its ``.json`` sidecar atomically; returns the CSV path.

    A relative ``image_root`` is stored relative to the sidecar's folder, so the
    artifacts tree can be moved as a whole.
    """
    csv_path = Path(csv_path)
    if csv_path.suffix.lower() != ".csv":
        raise ConfigError(f"manifest path {str(csv_path)!r} must end in .csv.")
    _atomic_write_text(csv_path, manifest.frame.to_csv(index=False))
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
    _atomic_write_text(
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
        if int(meta.get("schema_version", 1)) > MANIFEST_SCHEMA_VERSION:
            raise ManifestError(
                f"manifest {str(side)!r} has schema_version {meta['schema_version']}, newer than this "
                f"code ({MANIFEST_SCHEMA_VERSION}); upgrade the pipeline."
            )
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


# =========================================================================== dataset families
# A manifest's *family* is the public data set its rows come from, in the normalised names
# encoder metadata uses for pretraining sets (``trained_on``). Two names of one family
# (``openi_demo`` and ``openi``; ``mimic`` and ``MIMIC-CXR``) compare equal.

#: normalised alias -> family. Keys are lower case with '-', ' ' and '.' read as '_'.
DATASET_FAMILY_ALIASES: dict[str, str] = {
    "openi": "openi", "open_i": "openi", "openi_demo": "openi", "iu_xray": "openi",
    "iu": "openi", "indiana": "openi", "nlmcxr": "openi",
    "mimic": "mimic_cxr", "mimic_cxr": "mimic_cxr", "mimic_cxr_jpg": "mimic_cxr",
    "mimic_iii": "mimic_iii", "mimiciii": "mimic_iii",
    "nih": "nih", "chestx_ray14": "nih", "chestxray14": "nih", "chestx_ray8": "nih",
    "nih_cxr14": "nih", "chexpert": "chexpert", "padchest": "padchest", "rsna": "rsna",
    "google": "google", "vindr": "vindr", "vindr_cxr": "vindr", "siim": "siim",
    "imagenet": "imagenet",
}


def normalize_dataset_name(name: Any) -> str:
    """Family of a data-set name (``'MIMIC-CXR'`` -> ``'mimic_cxr'``, ``'openi_demo'`` ->
    ``'openi'``); an unknown name comes back normalised (lower case, ``'_'`` separators)."""
    key = re.sub(r"[\s.\-]+", "_", str(name or "").strip().lower()).strip("_")
    return DATASET_FAMILY_ALIASES.get(key, key)


def dataset_family(meta: Mapping[str, Any] | None, name: str | None = None) -> str | None:
    """Family of a manifest: ``meta['source_dataset']``; for manifests built before that
    key existed, the registered format it was built from (``meta['build']['source']``),
    except ``csv`` (unknown). ``name`` is NOT used: a user-chosen manifest name says
    nothing reliable about the data. None = unknown."""
    meta = meta or {}
    fam = meta.get("source_dataset")
    if fam:
        return normalize_dataset_name(fam)
    source = str((meta.get("build") or {}).get("source") or "")
    if source and source != "csv" and normalize_dataset_name(source) in set(
        DATASET_FAMILY_ALIASES.values()
    ):
        return normalize_dataset_name(source)
    return None


def pretraining_overlap(trained_on: Any, family: str | None) -> list[str]:
    """Entries of an encoder's ``trained_on`` that name the data-set ``family``."""
    if not family:
        return []
    fam = normalize_dataset_name(family)
    return [str(t) for t in (trained_on or ()) if normalize_dataset_name(t) == fam]


def pretraining_overlap_message(
    encoder_key: str,
    hits: list[str],
    *,
    dataset: str,
    family: str,
    modality: str = "image",
    synthetic_images: bool = False,
) -> str:
    """The pretraining-overlap warning used by extraction and by the classify report."""
    head = (
        f"pretraining overlap: encoder {encoder_key} was trained on {', '.join(hits)}, the "
        f"data set family ({family}) of manifest {dataset!r}"
    )
    if synthetic_images and modality == "image":
        return head + (
            "; this manifest's images are synthetic phantoms, not the real radiographs the "
            "weights were trained on, so no evaluated image was seen in pretraining (the "
            "overlap is nominal here); on the real images its scores would be optimistic"
        )
    return head + (
        "; the weights may have seen these very samples and their labels, so its scores are "
        "optimistic (use an encoder not trained on this data set for a fair estimate)"
    )


# =========================================================================== builders


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


DATASET_FORMATS: Registry[Callable[..., SourceTable]] = Registry("dataset format")


def _join_text(findings: str, impression: str) -> str:
    return " ".join(p for p in (findings.strip(), impression.strip()) if p)


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def normalize_view(view: Any) -> str:
    """'PA'/'AP'/'LATERAL'/... from a raw view string; '' if unknown."""
    if view is None or (isinstance(view, float) and view != view):
        return ""
    text = re.sub(r"\s+", " ", str(view)).strip().upper()
    return _VIEW_MAP.get(text, text)


# ---------------------------------------------------------------- OpenI


def _report_sort_key(name: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", Path(name).stem)
    return (int(digits[-1]) if digits else 1 << 62, name)


def _iter_openi_xml(
    reports: Path, limit: int | None
) -> Iterator[tuple[str, bytes | None, str | None]]:
    """Yield (file name, xml bytes or None, read error) in numeric report order."""
    if reports.is_dir():
        files = sorted(
            (p for p in reports.rglob("*.xml") if p.is_file()),
            key=lambda p: _report_sort_key(p.name),
        )
        for p in files[:limit] if limit else files:
            try:
                yield str(p.relative_to(reports)), p.read_bytes(), None
            except OSError as exc:
                yield str(p.relative_to(reports)), None, f"unreadable: {exc}"
        return
    try:
        with tarfile.open(reports, "r:*") as tf:
            members = sorted(
                (m for m in tf.getmembers() if m.isfile() and m.name.lower().endswith(".xml")),
                key=lambda m: _report_sort_key(m.name),
            )
            for m in members[:limit] if limit else members:
                fh = tf.extractfile(m)
                if fh is None:
                    yield m.name, None, "unreadable tar member"
                    continue
                yield m.name, fh.read(), None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ManifestError(
            f"OpenI reports archive {str(reports)!r} cannot be read ({exc}); pass the NLMCXR_reports.tgz "
            f"or a folder of its XML files."
        ) from exc


def parse_openi_report(data: bytes) -> dict[str, Any]:
    """Parse one NLMCXR XML -> dict(report_id, findings, impression, major, automatic, images).

    Raises ``ValueError`` with a reason when the XML is unusable.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"XML parse error: {exc}") from None
    uid = root.find("uId")
    report_id = (uid.get("id") or "").strip() if uid is not None else ""
    if not report_id:
        raise ValueError("no <uId id=...> element")
    sections = {}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        sections[label] = _clean("".join(node.itertext()))
    return {
        "report_id": report_id,
        "findings": sections.get("FINDINGS", ""),
        "impression": sections.get("IMPRESSION", ""),
        "major": [_clean(n.text) for n in root.findall("./MeSH/major") if _clean(n.text)],
        "automatic": [_clean(n.text) for n in root.findall("./MeSH/automatic") if _clean(n.text)],
        "images": [
            p.get("id").strip() for p in root.findall("parentImage") if (p.get("id") or "").strip()
        ],
    }


def read_view_csv(path: str | Path) -> dict[str, str]:
    """image id -> normalised view from a CSV with ``imageid``/``image_id`` and
    ``View Position``/``view``/``tsne-view`` columns (torchxrayvision's NLMCXR metadata works)."""
    path = Path(path)
    try:
        head = pd.read_csv(path, nrows=0)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ManifestError(
            f"view CSV {str(path)!r} cannot be read ({exc}); fix the path."
        ) from exc
    id_col = next((c for c in ("imageid", "image_id", "sample_id") if c in head.columns), None)
    view_col = next(
        (c for c in ("View Position", "ViewPosition", "view", "tsne-view") if c in head.columns),
        None,
    )
    if id_col is None or view_col is None:
        raise ManifestError(
            f"view CSV {str(path)!r} needs an id column (imageid/image_id) and a view column "
            f"(View Position/view); found {list(head.columns)[:12]}."
        )
    df = pd.read_csv(path, usecols=[id_col, view_col], dtype=str, keep_default_na=True)
    views = {}
    for image_id, view in zip(df[id_col], df[view_col], strict=True):
        v = normalize_view(view)
        if isinstance(image_id, str) and v:
            views[image_id.strip()] = "LATERAL" if v == "L" else v
    return views


def _openi_frame(
    reports: Path, limit: int | None, views: Mapping[str, str] | None
) -> tuple[pd.DataFrame, Counter, dict[str, str], int]:
    rows: list[dict[str, str]] = []
    dropped: Counter = Counter()
    unparseable: dict[str, str] = {}
    n_reports = 0
    for fname, data, error in _iter_openi_xml(reports, limit):
        n_reports += 1
        if error is None:
            try:
                rep = parse_openi_report(data or b"")
            except ValueError as exc:
                error = str(exc)
        if error is not None:
            unparseable[fname] = error
            dropped["unparseable_xml"] += 1
            logger.warning("OpenI report %s skipped: %s", fname, error)
            continue
        if not rep["images"]:
            dropped["report_without_images"] += 1
            continue
        tags = ";".join(normalize_tags(rep["major"]))
        text = _join_text(rep["findings"], rep["impression"])
        for image_id in rep["images"]:
            rows.append(
                {
                    "sample_id": image_id,
                    "patient_id": rep["report_id"],
                    "image_path": f"{image_id}.png",
                    "report_id": rep["report_id"],
                    "findings": rep["findings"],
                    "impression": rep["impression"],
                    "report_text": text,
                    "tags": tags,
                    "label": "",
                    "label_source": "mesh:report",
                    "view": (views or {}).get(image_id, ""),
                    "mesh_major": ";".join(rep["major"]),
                    "mesh_automatic": ";".join(rep["automatic"]),
                }
            )
    if n_reports == 0:
        raise ManifestError(
            f"no OpenI report XML files found in {str(reports)!r}; pass the NLMCXR_reports folder or .tgz."
        )
    frame = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "mesh_major", "mesh_automatic"])
    return frame, dropped, unparseable, n_reports


@DATASET_FORMATS.register(
    "openi", description="NLMCXR (Indiana University) report XMLs + NLMCXR_png images"
)
def build_openi(
    *,
    reports: str | Path,
    image_root: str | Path | None = None,
    view_csv: str | Path | None = None,
    limit: int | None = None,
) -> SourceTable:
    """OpenI: ``reports`` is a folder of XMLs or the .tgz; ``image_root`` holds ``<id>.png``."""
    reports = Path(reports)
    if not reports.exists():
        raise ManifestError(
            f"OpenI reports {str(reports)!r} not found; pass reports=<NLMCXR_reports folder or .tgz>."
        )
    views = read_view_csv(view_csv) if view_csv else None
    frame, dropped, unparseable, n_reports = _openi_frame(reports, limit, views)
    notes = []
    if views is None:
        notes.append("OpenI XMLs carry no view position; view is '' (pass view_csv to add one).")
    return SourceTable(
        frame=frame,
        image_root=Path(image_root) if image_root else reports.parent / "NLMCXR_png",
        label_source="mesh:report",
        dropped=dict(dropped),
        notes=tuple(notes),
        extra_meta={
            "n_reports": n_reports,
            "unparseable": unparseable,
            "reports": str(reports),
            "source_dataset": "openi",
        },
    )


def _torchxrayvision_data_dir() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError(
            "the embedded demo needs the torchxrayvision package (it ships NLMCXR_reports.tgz); "
            "install the 'offline-models' extra, or use format 'openi' with reports=<your NLMCXR_reports.tgz>."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def shipped_openi_reports() -> Path:
    """Path of the NLMCXR_reports.tgz (all 3,955 OpenI reports) shipped in torchxrayvision."""
    path = _torchxrayvision_data_dir() / "NLMCXR_reports.tgz"
    if not path.is_file():
        raise ManifestError(
            f"{str(path)!r} is missing from the torchxrayvision install; reinstall torchxrayvision or pass "
            f"reports=<NLMCXR_reports.tgz>."
        )
    return path


def shipped_openi_views() -> dict[str, str]:
    """View per OpenI image id from torchxrayvision's DICOM metadata, gaps filled by its t-SNE views."""
    data = _torchxrayvision_data_dir()
    views: dict[str, str] = {}
    for name in ("nlmcxr_tsne_pa.csv.gz", "nlmcxr_dicom_metadata.csv.gz"):  # later wins
        path = data / name
        if path.is_file():
            views.update(read_view_csv(path))
        else:
            logger.warning("%s not found; OpenI demo views may be incomplete", path)
    return views


@DATASET_FORMATS.register(
    "openi_demo",
    description="embedded demo: 3,955 real OpenI reports + deterministic synthetic phantom images",
    defaults={"one_per_report": True, "drop_empty_text": True},
)
def build_openi_demo(
    *,
    out: str | Path | None = None,
    reports: str | Path | None = None,
    n_jobs: int = -1,
    limit: int | None = None,
    artifacts_root: str | Path = "artifacts",
) -> SourceTable:
    """Real OpenI report text + a synthetic phantom image per kept row (written to ``out/images``).

    Rows carry the real image id of each report (frontal views preferred, via
    torchxrayvision's shipped metadata); the phantom drawn for it is always frontal,
    so ``view`` is ``'PA'`` and the real view is kept in ``source_view``.
    """
    from pipeline import phantoms  # local: only the demo needs PIL rendering

    reports = Path(reports) if reports else shipped_openi_reports()
    out_dir = Path(out) if out else Path(artifacts_root) / "data" / "openi_demo"
    views = shipped_openi_views()
    frame, dropped, unparseable, n_reports = _openi_frame(reports, limit, views)
    # one_per_report prefers frontal ids; the phantom drawn for them is always PA
    frame["source_view"] = frame["view"]
    image_dir = out_dir / "images"

    def finalize(final: pd.DataFrame) -> dict[str, Any]:
        items = [
            (sid, split_tags(tags), path)
            for sid, tags, path in zip(
                final["sample_id"], final["tags"], final["image_path"], strict=True
            )
        ]
        res = phantoms.write_phantoms(items, image_dir, n_jobs=n_jobs)
        if res.failed:
            logger.error(
                "%d phantom images could not be written: %s",
                len(res.failed),
                dict(list(res.failed.items())[:5]),
            )
        return {
            "phantoms": {
                "version": phantoms.PHANTOM_VERSION,
                "written": res.written,
                "already_valid": res.skipped,
                "failed": dict(res.failed),
                "seconds": round(res.seconds, 2),
            }
        }

    return SourceTable(
        frame=frame,
        image_root=image_dir,
        label_source="mesh:report",
        dropped=dict(dropped),
        notes=(
            "images are synthetic phantoms (pipeline.phantoms) rendered from each report's MeSH tags, not real "
            "radiographs: image scores measure how well an encoder sees the drawn findings (~15% of findings are "
            "drawn faint or not at all).",
            "report text and labels are real OpenI data: labels come from the same report's MeSH tags, so "
            "text-only scores are a leakage ceiling (use findings-only text or label-term masking).",
            "view is 'PA' because every phantom is a frontal rendering; source_view is the real image's view.",
        ),
        extra_meta={
            "n_reports": n_reports,
            "unparseable": unparseable,
            "reports": str(reports),
            "source_dataset": "openi",
            "synthetic_images": True,
        },
        finalize=finalize,
        view_override="PA",
    )


# ---------------------------------------------------------------- MIMIC-CXR

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
        sections[m.group(1).strip()] = _clean(text[m.end() : end])
    findings, impression = sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")
    if not findings and not impression:
        findings = _clean(text)
    return findings, impression


def _read_csv_checked(
    path: str | Path, required: tuple[str, ...], what: str, nrows: int | None = None
) -> pd.DataFrame:
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
    meta = _read_csv_checked(
        metadata_csv,
        ("dicom_id", "subject_id", "study_id", "ViewPosition"),
        "MIMIC metadata CSV",
        limit,
    )
    labels = _read_csv_checked(labels_csv, ("subject_id", "study_id"), "CheXpert label CSV")
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
                "report_text": _join_text(findings, impression),
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


# ---------------------------------------------------------------- generic CSV


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
    ``label`` column is used; ``tags`` are normalised. ``source_dataset`` names the public
    data set the rows come from (e.g. ``'openi'``, ``'nih'``); unknown if not given, and
    then the pretraining-overlap check cannot run."""
    df = _read_csv_checked(path, ("sample_id", "image_path"), "manifest CSV", limit)
    notes = []
    if "patient_id" not in df.columns:
        df["patient_id"] = df["sample_id"]
        notes.append(
            "no patient_id column: every sample is its own CV group (leaks if patients repeat)."
        )
        logger.warning("%s has no patient_id column; each sample is its own CV group", path)
    for col in ("report_id", "findings", "impression", "tags", "label", "view"):
        if col not in df.columns:
            df[col] = ""
    if "report_text" not in df.columns:
        df["report_text"] = [
            _join_text(f, i) for f, i in zip(df["findings"], df["impression"], strict=True)
        ]
    if "label_source" not in df.columns:
        df["label_source"] = label_source
    df["tags"] = [";".join(normalize_tags(split_tags(t))) for t in df["tags"]]
    df["view"] = [normalize_view(v) for v in df["view"]]
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return SourceTable(
        frame=df[[*MANIFEST_COLUMNS, *extra]],
        image_root=Path(image_root) if image_root else Path(path).parent,
        label_source=label_source,
        default_label_rule=None,
        notes=tuple(notes),
        extra_meta={
            "source_dataset": normalize_dataset_name(source_dataset) if source_dataset else None
        },
    )


# =========================================================================== build


def _count_drop(dropped: Counter, reason: str, n: int) -> None:
    if n:
        dropped[reason] += int(n)
        logger.info("dropped %d row(s): %s", n, reason)


def _check_options(
    source: str, fn: Callable[..., SourceTable], options: Mapping[str, Any]
) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    specific = {k: v for k, v in options.items() if k in params}
    unknown = sorted(k for k in options if k not in params and k not in _COMMON_OPTIONS)
    if unknown:
        valid = sorted(set(_COMMON_OPTIONS) | set(params))
        raise ConfigError(
            f"dataset format {source!r} got unknown option(s) {unknown}; valid options: {', '.join(valid)}."
        )
    required = [
        n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in specific
    ]
    if required:
        raise ConfigError(
            f"dataset format {source!r} needs option(s) {required} (e.g. {required[0]}=<path>)."
        )
    return specific


def build_manifest(source: str, **options: Any) -> Manifest:
    """Build the manifest of ``source`` (a registered dataset format), write
    ``<manifest_dir>/<name>.csv`` + ``.json`` and return it.

    Common options: ``name`` (default ``source``), ``label_rule`` (spec or
    :class:`LabelRule`; default per format), ``frontal_only``, ``one_per_report``
    (first image per report, frontal preferred when views are known),
    ``drop_empty_text``, ``allow_absolute_paths``, ``limit`` (first N reports/rows),
    ``manifest_dir`` (default ``<artifacts_root>/manifests``), ``artifacts_root``.
    """
    t0 = time.perf_counter()
    fn = DATASET_FORMATS.get(source)
    fmt_meta = DATASET_FORMATS.meta(source)
    opts = {**fmt_meta.get("defaults", {}), **{k: v for k, v in options.items() if v is not None}}
    specific = _check_options(source, fn, opts)
    name = str(opts.get("name") or source)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"manifest name {name!r} is invalid; use letters, digits, '_', '-', '.'.")
    limit = opts.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"option limit={limit!r} must be a positive integer.")
    artifacts_root = Path(opts.get("artifacts_root", "artifacts"))
    manifest_dir = Path(opts.get("manifest_dir") or artifacts_root / "manifests")

    table = fn(**specific)
    frame = table.frame.copy()
    dropped: Counter = Counter(table.dropped)
    notes = list(table.notes)
    for reason, n in table.dropped.items():
        logger.info("dropped %d: %s", n, reason)

    if opts.get("frontal_only"):
        known = frame["view"] != ""
        if not known.any():
            msg = f"frontal_only requested but {source!r} rows have no view information; no rows were filtered."
            logger.warning(msg)
            notes.append(msg)
        else:
            _count_drop(dropped, "view_unknown", int((~known).sum()))
            not_frontal = known & ~frame["view"].isin(FRONTAL_VIEWS)
            _count_drop(dropped, "not_frontal", int(not_frontal.sum()))
            frame = frame[known & ~not_frontal]
    if opts.get("one_per_report"):
        order = (~frame["view"].isin(FRONTAL_VIEWS)).astype(int)
        ranked = frame.assign(_rank=order.to_numpy(), _pos=range(len(frame))).sort_values(
            ["_rank", "_pos"], kind="stable"
        )
        keep = ~ranked.duplicated("report_id", keep="first") | (ranked["report_id"] == "")
        _count_drop(dropped, "extra_image_of_report", int((~keep).sum()))
        frame = ranked[keep].sort_values("_pos").drop(columns=["_rank", "_pos"])
    if opts.get("drop_empty_text"):
        empty = (frame["findings"].str.strip() == "") & (frame["impression"].str.strip() == "")
        empty &= frame["report_text"].str.strip() == ""
        _count_drop(dropped, "empty_text", int(empty.sum()))
        frame = frame[~empty]

    rule_spec = opts.get("label_rule", table.default_label_rule)
    rule = LabelRule.from_spec(rule_spec) if rule_spec else None
    classes: tuple[str, ...] = ()
    if rule is not None:
        assign = apply_label_rule(rule, frame["tags"].tolist())
        frame = frame.assign(
            label=[lab or "" for lab in assign.labels], label_source=table.label_source
        )
        for reason, n in assign.dropped.items():
            _count_drop(dropped, f"label:{reason}", n)
        frame = frame[list(assign.kept)]
        classes = assign.classes
    else:
        unlabeled = frame["label"].astype(str).str.strip() == ""
        if unlabeled.all():
            raise ConfigError(
                f"dataset {name!r} has no labels: pass label_rule=... (e.g. 'normal_vs_abnormal') or "
                f"fill the 'label' column."
            )
        _count_drop(dropped, "label:missing", int(unlabeled.sum()))
        frame = frame[~unlabeled]
        classes = tuple(sorted(frame["label"].unique()))
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ManifestError(
            f"dataset {name!r}: no rows left after filtering (dropped: {dict(dropped)}); relax the options "
            f"or check the source data."
        )
    if table.view_override is not None:
        frame["view"] = table.view_override

    meta: dict[str, Any] = {
        "label_rule": rule.spec if rule else None,
        "label_classes": list(classes),
        "label_source": table.label_source,
        "source_dataset": None,  # data-set family (see dataset_family); formats set it
        "label_counts": dict(sorted(Counter(frame["label"]).items())),
        "allow_absolute_paths": bool(opts.get("allow_absolute_paths", False)),
        "n_rows": len(frame),
        "n_patients": int(frame["patient_id"].nunique()),
        "dropped": dict(sorted(dropped.items())),
        "notes": notes,
        **dict(table.extra_meta),
        "build": {
            "source": source,
            "options": {
                k: (str(v) if isinstance(v, Path | LabelRule) else v)
                for k, v in sorted(opts.items())
            },
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    }
    manifest = Manifest(name, frame, table.image_root, meta)
    if table.finalize is not None:
        meta.update(table.finalize(frame))
    meta["build"]["seconds"] = round(time.perf_counter() - t0, 2)
    save_manifest(manifest, manifest_path(name, manifest_dir))
    logger.info(
        "manifest %s: %d rows, labels %s, dropped %s",
        name,
        len(frame),
        meta["label_counts"],
        meta["dropped"],
    )
    return manifest


def dataset_formats() -> list[str]:
    """Names of the registered dataset formats (for `pipeline list`)."""
    return DATASET_FORMATS.names()


__all__ = [
    "DATASET_FORMATS",
    "FRONTAL_VIEWS",
    "MANIFEST_COLUMNS",
    "Manifest",
    "SourceTable",
    "build_manifest",
    "dataset_family",
    "dataset_formats",
    "load_manifest",
    "load_manifest_meta",
    "manifest_path",
    "normalize_dataset_name",
    "normalize_view",
    "parse_openi_report",
    "parse_report_sections",
    "pretraining_overlap",
    "pretraining_overlap_message",
    "read_view_csv",
    "save_manifest",
    "shipped_openi_reports",
    "validate_frame",
    "normalize_tag",
]
