"""OpenI / Indiana University source: NLMCXR report XMLs (+ NLMCXR_png), and the embedded ``openi_demo``.

``openi``
    NLMCXR report XMLs (a folder of ``*.xml`` or the ``NLMCXR_reports.tgz``):
    FINDINGS/IMPRESSION, MeSH major/automatic, one row per ``parentImage``;
    ``patient_id = report_id = uId`` (IU reports are de-identified per study, the
    report is the grouping unit); ``image_path = '<parentImage id>.png'`` (the
    ``NLMCXR_png`` naming). The XMLs carry no view: views come from the table shipped
    with torchxrayvision (:func:`shipped_openi_views`) unless ``view_csv`` names another
    (or ``'none'``; then ``frontal_only`` cannot filter and says so).
``openi_demo``
    the 3,955 real OpenI reports shipped in torchxrayvision, each paired with a
    deterministic synthetic *phantom* image (:mod:`pipeline.dataset.phantoms`) for its
    first frontal image id. Offline, no data download.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ManifestError
from pipeline.labels import normalize_tags, split_tags
from pipeline.manifest import MANIFEST_COLUMNS
from pipeline.sources.base import (
    DATASET_FORMATS,
    DroppedItem,
    SourceTable,
    clean_text,
    join_text,
    normalize_view,
)

logger = logging.getLogger(__name__)


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
    """Parse one NLMCXR XML -> dict(report_id, findings, impression, indication, comparison,
    major, automatic, images).

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
        sections[label] = clean_text("".join(node.itertext()))
    return {
        "report_id": report_id,
        "findings": sections.get("FINDINGS", ""),
        "impression": sections.get("IMPRESSION", ""),
        "indication": sections.get("INDICATION", ""),
        "comparison": sections.get("COMPARISON", ""),
        "major": [clean_text(n.text) for n in root.findall("./MeSH/major") if clean_text(n.text)],
        "automatic": [clean_text(n.text) for n in root.findall("./MeSH/automatic") if clean_text(n.text)],
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


@dataclass(frozen=True)
class OpenIParse:
    """The rows of an OpenI report set, what was dropped (counts and ids) and why."""

    frame: pd.DataFrame
    dropped: Mapping[str, int]
    dropped_items: tuple[DroppedItem, ...]
    unparseable: Mapping[str, str]
    n_reports: int


def _openi_frame(reports: Path, limit: int | None, views: Mapping[str, str] | None) -> OpenIParse:
    rows: list[dict[str, str]] = []
    dropped: Counter = Counter()
    items: list[DroppedItem] = []
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
            items.append((fname, "report file", "unparseable_xml", error))
            logger.warning("OpenI report %s skipped: %s", fname, error)
            continue
        if not rep["images"]:
            dropped["report_without_images"] += 1
            items.append((rep["report_id"], "report", "report_without_images", fname))
            continue
        tags = ";".join(normalize_tags(rep["major"]))
        text = join_text(rep["findings"], rep["impression"])
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
                    "indication": rep["indication"],
                    "comparison": rep["comparison"],
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
    return OpenIParse(frame, dict(dropped), tuple(items), unparseable, n_reports)


IMAGE_HINT = (
    "for openi, --image-root is the NLMCXR_png folder that holds <image id>.png files "
    "(e.g. CXR1_1_IM-0001-3001.png)"
)


def _views(view_csv: str | Path | None) -> tuple[dict[str, str] | None, str]:
    """(views, where they came from): ``view_csv``; 'none' for no views; by default the view
    table shipped with torchxrayvision (None when it is not installed)."""
    if view_csv is not None and str(view_csv).strip().lower() == "none":
        return None, "none"
    if view_csv:
        return read_view_csv(view_csv), str(view_csv)
    try:
        return shipped_openi_views(), "torchxrayvision shipped OpenI metadata (DICOM + t-SNE view)"
    except ManifestError as exc:
        logger.warning("no OpenI view table: %s", exc)
        return None, "none"


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
    """OpenI: ``reports`` is a folder of XMLs or the .tgz; ``image_root`` holds ``<id>.png``.

    Views come from ``view_csv``, by default from the view table shipped with
    torchxrayvision (:func:`shipped_openi_views`: 7,470 real image ids); ``view_csv='none'``
    leaves them empty. ``limit`` keeps the first N report files.
    """
    reports = Path(reports)
    if not reports.exists():
        raise ManifestError(
            f"OpenI reports {str(reports)!r} not found; pass reports=<NLMCXR_reports folder or .tgz>."
        )
    views, view_source = _views(view_csv)
    parsed = _openi_frame(reports, limit, views)
    notes = []
    if views is None:
        notes.append("OpenI XMLs carry no view position; view is '' (pass view_csv to add one).")
    else:
        known = int((parsed.frame["view"] != "").sum())
        notes.append(f"views from {view_source}: {known} of {len(parsed.frame)} images have one.")
    return SourceTable(
        frame=parsed.frame,
        image_root=Path(image_root) if image_root else reports.parent / "NLMCXR_png",
        label_source="mesh:report",
        dropped=dict(parsed.dropped),
        notes=tuple(notes),
        extra_meta={
            "n_reports": parsed.n_reports,
            "unparseable": dict(parsed.unparseable),
            "reports": str(reports),
            "source_dataset": "openi",
            "view_source": view_source,
        },
        dropped_items=parsed.dropped_items,
        image_hint=IMAGE_HINT,
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
    from pipeline.dataset import phantoms  # local: only the demo needs PIL rendering

    reports = Path(reports) if reports else shipped_openi_reports()
    out_dir = Path(out) if out else Path(artifacts_root) / "data" / "openi_demo"
    views = shipped_openi_views()
    parsed = _openi_frame(reports, limit, views)
    frame = parsed.frame
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
        dropped=dict(parsed.dropped),
        notes=(
            "images are synthetic phantoms (pipeline.dataset.phantoms) rendered from each report's MeSH tags, not real "
            "radiographs: image scores measure how well an encoder sees the drawn findings (~15% of findings are "
            "drawn faint or not at all).",
            "report text and labels are real OpenI data: labels come from the same report's MeSH tags, so "
            "text-only scores are a leakage ceiling (use findings-only text or label-term masking).",
            "view is 'PA' because every phantom is a frontal rendering; source_view is the real image's view.",
        ),
        extra_meta={
            "n_reports": parsed.n_reports,
            "unparseable": dict(parsed.unparseable),
            "reports": str(reports),
            "source_dataset": "openi",
            "synthetic_images": True,
        },
        finalize=finalize,
        view_override="PA",
        dropped_items=parsed.dropped_items,
        images="generated",
    )

