"""Build a manifest from a registered source: validate options -> parse -> filter -> label -> save.

Common options of :func:`build_manifest`: ``name``, ``label_rule`` (see
:mod:`pipeline.labels`), ``frontal_only``, ``one_per_report``, ``drop_empty_text``,
``allow_absolute_paths``, ``limit``, ``check_images``, ``drop_missing_images``,
``manifest_dir``, ``artifacts_root``. Every dropped row is counted by reason in
``manifest.meta['dropped']`` and listed with its id in ``<name>.dropped.csv`` next to the
manifest (:data:`~pipeline.sources.base.DROPPED_COLUMNS`).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.dataset.image_check import ImageCheck, check_images, missing_images_message
from pipeline.dataset.profile import profile_manifest, save_profile
from pipeline.errors import ConfigError, ManifestError
from pipeline.helpers import atomic_write
from pipeline.labels import LabelRule, apply_label_rule
from pipeline.manifest import (
    FRONTAL_VIEWS,
    Manifest,
    dropped_path,
    is_missing_label,
    manifest_path,
    save_manifest,
    validate_frame,
)
from pipeline.sources import DATASET_FORMATS, SourceTable
from pipeline.sources.base import DROPPED_COLUMNS, DroppedItem

logger = logging.getLogger(__name__)

COMMON_OPTIONS = (
    "name",
    "label_rule",
    "frontal_only",
    "one_per_report",
    "drop_empty_text",
    "allow_absolute_paths",
    "limit",
    "check_images",
    "drop_missing_images",
    "manifest_dir",
    "artifacts_root",
)
_EXAMPLES = 3  # ids per drop reason kept in the sidecar (and printed by `pipeline data`)


@dataclass(frozen=True)
class BuildPlan:
    """The validated options of one build: which source, its own options, where to save."""

    source: str
    name: str
    options: Mapping[str, Any]  # every option, format defaults included (recorded in provenance)
    source_options: Mapping[str, Any]  # the ones the source's builder takes
    manifest_dir: Path


@dataclass(frozen=True)
class LabelledRows:
    """The rows kept by the label step, with the rule (None = the ``label`` column) and classes."""

    frame: pd.DataFrame
    rule: LabelRule | None
    classes: tuple[str, ...]


class DropLog:
    """Every dropped item of one build: counts by reason (``meta['dropped']``) and one
    ``(id, level, reason, detail)`` entry per dropped id (``<name>.dropped.csv``)."""

    def __init__(self, counts: Mapping[str, int] = (), items: Iterable[DroppedItem] = ()) -> None:
        self.counts: Counter = Counter(dict(counts))
        self.items: list[DroppedItem] = list(items)

    def rows(self, frame: pd.DataFrame, mask: pd.Series, reason: str,
             detail: str | pd.Series = "") -> None:
        """Drop-record the rows of ``frame`` where ``mask`` is true (``detail``: one text for
        all, or a Series aligned with ``frame``)."""
        n = int(mask.sum())
        if n:
            self.counts[reason] += n
            ids = frame.loc[mask, "sample_id"].astype(str)
            details = (detail[mask].astype(str) if isinstance(detail, pd.Series)
                       else pd.Series(detail, index=ids.index))
            self.items += [(sid, "row", reason, d) for sid, d in zip(ids, details, strict=True)]
            logger.info("dropped %d row(s): %s", n, reason)

    def examples(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item_id, _, reason, _ in self.items:
            ids = out.setdefault(reason, [])
            if len(ids) < _EXAMPLES:
                ids.append(item_id)
        return dict(sorted(out.items()))

    def to_csv(self) -> str:
        return pd.DataFrame(self.items, columns=list(DROPPED_COLUMNS)).to_csv(index=False)


def _check_options(
    source: str, fn: Callable[..., SourceTable], options: Mapping[str, Any]
) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    specific = {k: v for k, v in options.items() if k in params}
    unknown = sorted(k for k in options if k not in params and k not in COMMON_OPTIONS)
    if unknown:
        valid = sorted(set(COMMON_OPTIONS) | set(params))
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


def plan_build(source: str, options: Mapping[str, Any]) -> BuildPlan:
    """Step 1: validate ``options`` for ``source`` (unknown/missing options, name, limit)."""
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
    return BuildPlan(source, name, opts, specific, manifest_dir)


def parse_source(plan: BuildPlan) -> SourceTable:
    """Step 2: run the source's builder (parses the release into one row per image)."""
    table = DATASET_FORMATS.get(plan.source)(**plan.source_options)
    for reason, n in table.dropped.items():
        logger.info("dropped %d: %s", n, reason)
    return table


def keep_frontal(frame: pd.DataFrame, source: str, drops: DropLog, notes: list[str]) -> pd.DataFrame:
    """``frontal_only``: keep PA/AP rows; without any view information, filter nothing and say so."""
    known = frame["view"] != ""
    if not known.any():
        msg = f"frontal_only requested but {source!r} rows have no view information; no rows were filtered."
        logger.warning(msg)
        notes.append(msg)
        return frame
    drops.rows(frame, ~known, "view_unknown")
    not_frontal = known & ~frame["view"].isin(FRONTAL_VIEWS)
    drops.rows(frame, not_frontal, "not_frontal")
    return frame[known & ~not_frontal]


def keep_one_per_report(frame: pd.DataFrame, drops: DropLog) -> pd.DataFrame:
    """``one_per_report``: the first frontal image of each report, else its first image."""
    order = (~frame["view"].isin(FRONTAL_VIEWS)).astype(int)
    ranked = frame.assign(_rank=order.to_numpy(), _pos=range(len(frame))).sort_values(
        ["_rank", "_pos"], kind="stable"
    )
    keep = ~ranked.duplicated("report_id", keep="first") | (ranked["report_id"] == "")
    keep = keep.reindex(frame.index)
    drops.rows(frame, ~keep, "extra_image_of_report")
    return frame[keep]


def drop_empty_text(frame: pd.DataFrame, drops: DropLog) -> pd.DataFrame:
    """``drop_empty_text``: drop rows whose findings, impression and report text are all empty."""
    empty = (frame["findings"].str.strip() == "") & (frame["impression"].str.strip() == "")
    empty &= frame["report_text"].str.strip() == ""
    drops.rows(frame, empty, "empty_text")
    return frame[~empty]


def filter_rows(
    frame: pd.DataFrame, plan: BuildPlan, drops: DropLog, notes: list[str]
) -> pd.DataFrame:
    """Step 3: the common row filters, in this order: frontal only, one per report, empty text."""
    if plan.options.get("frontal_only"):
        frame = keep_frontal(frame, plan.source, drops, notes)
    if plan.options.get("one_per_report"):
        frame = keep_one_per_report(frame, drops)
    if plan.options.get("drop_empty_text"):
        frame = drop_empty_text(frame, drops)
    return frame


def _label_column(frame: pd.DataFrame, plan: BuildPlan, drops: DropLog) -> pd.DataFrame:
    """The table's own ``label`` column: empty and NaN-like cells ('NaN', 'nan', 'NA', ...) are
    missing labels, dropped as ``label:missing`` (the raw cell in the detail), never a class."""
    unlabeled = frame["label"].map(is_missing_label).astype(bool)
    if unlabeled.all():
        raise ConfigError(
            f"dataset {plan.name!r} has no labels (every 'label' cell is empty or NaN-like): pass "
            f"label_rule=... (e.g. 'normal_vs_abnormal') or fill the 'label' column."
        )
    drops.rows(frame, unlabeled, "label:missing", "label cell " + frame["label"].map(repr))
    return frame[~unlabeled]


def _top_k_note(rule: LabelRule, classes: tuple[str, ...], frame: pd.DataFrame,
                multiple: pd.Series, kept_rows: pd.Series, plan: BuildPlan) -> str:
    kept = sorted(set(frame.loc[kept_rows, "label"]) & set(classes))
    n_reports = frame.loc[multiple, "report_id"].nunique()
    per_finding = " ; ".join(
        f"--name {plan.name}-{c} --label-rule finding_vs_rest:{c}" for c in classes
    )
    return (
        f"{rule.spec} is single-label: {int(multiple.sum())} rows ({n_reports} reports/studies) with "
        f"more than one of the {len(classes)} classes ({', '.join(classes)}) were dropped as "
        f"label:multiple_top_k_findings, and {len(kept)} of the {len(classes)} classes remain "
        f"({', '.join(kept) or 'none'}). For the multi-label question build one binary task per "
        f"finding: `pipeline data {plan.source} ...` once with each of: {per_finding}."
    )


def assign_labels(
    frame: pd.DataFrame, plan: BuildPlan, table: SourceTable, drops: DropLog, notes: list[str]
) -> LabelledRows:
    """Step 4: labels from the label rule (option or the source's default), else the ``label``
    column; rows without a label are dropped and counted by reason. A source's uncertain
    findings (``uncertain_tags``) enter the rule under its ``uncertain_policy``."""
    rule_spec = plan.options.get("label_rule", table.default_label_rule)
    rule = LabelRule.from_spec(rule_spec) if rule_spec else None
    if table.unlabelled:  # new cases to predict: keep every row; a label, where given, is kept
        if rule is not None:
            raise ConfigError("an unlabelled data set takes no label rule: drop --label-rule")
        frame = frame.assign(label=["" if is_missing_label(v) else str(v).strip()
                                    for v in frame["label"]])
        classes: tuple[str, ...] = tuple(sorted(set(frame["label"]) - {""}))
    elif rule is None:
        frame = _label_column(frame, plan, drops)
        classes = tuple(sorted(frame["label"].unique()))
    else:
        uncertain = None
        if table.uncertain_policy in ("zeros", "ignore") and "uncertain_tags" in frame.columns:
            uncertain = frame["uncertain_tags"].tolist()
        assign = apply_label_rule(rule, frame["tags"].tolist(), uncertain=uncertain,
                                  policy=table.uncertain_policy or "zeros")
        frame = frame.assign(
            label=[lab or "" for lab in assign.labels], label_source=table.label_source
        )
        reasons = pd.Series(assign.reasons, index=frame.index, dtype=object)
        for reason in assign.dropped:
            drops.rows(frame, reasons == reason, f"label:{reason}", rule.spec)
        kept = pd.Series(assign.kept, index=frame.index)
        if rule.name == "top_k_multiclass" and assign.dropped.get("multiple_top_k_findings"):
            msg = _top_k_note(rule, assign.classes, frame, reasons == "multiple_top_k_findings",
                              kept, plan)
            logger.warning(msg)
            notes.append(msg)
        frame = frame[kept]
        classes = assign.classes
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ManifestError(
            f"dataset {plan.name!r}: no rows left after filtering (dropped: {dict(drops.counts)}); relax "
            f"the options or check the source data."
        )
    if table.view_override is not None:
        frame["view"] = table.view_override
    return LabelledRows(frame, rule, tuple(classes))


def verify_images(
    rows: LabelledRows, plan: BuildPlan, table: SourceTable, drops: DropLog, notes: list[str]
) -> tuple[LabelledRows, ImageCheck | None]:
    """Step 5: stat every kept row's image under the image root. Almost none found (a wrong
    root): exit 2 for image releases, a warning for ``optional`` sources. Some missing: kept
    (extract lists them as failed) or dropped with ``drop_missing_images``."""
    if table.images == "generated" or not plan.options.get("check_images", True):
        return rows, None
    frame = rows.frame
    check = check_images(frame["sample_id"].tolist(), frame["image_path"].tolist(), table.image_root)
    logger.info("images: %d of %d found under %s (%.1fs)", check.found, check.checked,
                table.image_root, check.seconds)
    if not check.missing:
        return rows, check
    if check.almost_none_found:
        msg = missing_images_message(check, where=f"dataset {plan.name!r}", hint=table.image_hint)
        if table.images == "required":
            raise ManifestError(msg)
        logger.warning(msg)
        notes.append(msg)
        return rows, check
    missing = frame["sample_id"].isin(set(check.missing_ids))
    if plan.options.get("drop_missing_images"):
        drops.rows(frame, missing, "image_missing", str(table.image_root))
        frame = frame[~missing].reset_index(drop=True)
        return LabelledRows(frame, rows.rule, rows.classes), check
    msg = (f"{check.missing} of {check.checked} images are missing under {str(table.image_root)!r} "
           f"(e.g. {check.missing_paths[0]}); the rows are kept and extract will list them as failed "
           f"(pass --drop-missing-images to drop them)")
    logger.warning(msg)
    notes.append(msg + ".")
    return rows, check


def manifest_meta(
    plan: BuildPlan, table: SourceTable, rows: LabelledRows, drops: DropLog, notes: list[str]
) -> dict[str, Any]:
    """The sidecar content of the built manifest (counts, rule, provenance of the build)."""
    frame = rows.frame
    return {
        "label_rule": rows.rule.spec if rows.rule else None,
        "label_classes": list(rows.classes),
        "label_source": table.label_source,
        "source_dataset": None,  # data-set family (see pipeline.families); formats set it
        "label_counts": dict(sorted(Counter(v for v in frame["label"] if v != "").items())),
        "unlabelled": bool(table.unlabelled),
        "allow_absolute_paths": bool(plan.options.get("allow_absolute_paths", False)),
        "n_rows": len(frame),
        "n_patients": int(frame["patient_id"].nunique()),
        "dropped": dict(sorted(drops.counts.items())),
        "dropped_file": dropped_path(manifest_path(plan.name, plan.manifest_dir)).name,
        "dropped_examples": drops.examples(),
        "notes": notes,
        **dict(table.extra_meta),
        "build": {
            "source": plan.source,
            "options": {
                k: (str(v) if isinstance(v, Path | LabelRule) else v)
                for k, v in sorted(plan.options.items())
            },
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    }


def build_manifest(source: str, **options: Any) -> Manifest:
    """Build the manifest of ``source`` (a registered dataset format), write
    ``<manifest_dir>/<name>.csv`` + ``.json`` + ``.dropped.csv`` and return it.

    Common options: ``name`` (default ``source``), ``label_rule`` (spec or
    :class:`LabelRule`; default per format), ``frontal_only``, ``one_per_report``
    (first image per report, frontal preferred when views are known),
    ``drop_empty_text``, ``allow_absolute_paths``, ``limit`` (first N reports; rows for
    ``csv``), ``check_images`` (default True), ``drop_missing_images``, ``manifest_dir``
    (default ``<artifacts_root>/manifests``), ``artifacts_root``.
    """
    t0 = time.perf_counter()
    plan = plan_build(source, options)
    table = parse_source(plan)
    drops = DropLog(table.dropped, table.dropped_items)
    notes = list(table.notes)
    frame = filter_rows(table.frame.copy(), plan, drops, notes)
    rows = assign_labels(frame, plan, table, drops, notes)
    allow_abs = bool(plan.options.get("allow_absolute_paths", False))
    validate_frame(rows.frame, where=f"manifest {plan.name!r}", allow_absolute_paths=allow_abs)
    rows, check = verify_images(rows, plan, table, drops, notes)
    meta = manifest_meta(plan, table, rows, drops, notes)
    if check is not None:
        meta["image_check"] = check.summary()
    if "split" in rows.frame.columns:  # e.g. MIMIC's official train/validate/test split
        counts = Counter(s or "(none)" for s in rows.frame["split"])
        meta["split_counts"] = dict(sorted(counts.items()))
    if table.finalize is not None:
        meta.update(table.finalize(rows.frame))
    csv_path = manifest_path(plan.name, plan.manifest_dir)
    profile = profile_manifest(
        plan.name, rows.frame, table.image_root, dropped=meta["dropped"],
        check_files=table.images != "generated" and plan.options.get("check_images", True),
        open_files=table.images == "optional",
        missing_ids=set(check.missing_ids) if check is not None else None)
    meta["profile_file"] = save_profile(profile, csv_path).name
    meta["build"]["seconds"] = round(time.perf_counter() - t0, 2)
    manifest = Manifest(plan.name, rows.frame, table.image_root, meta)
    atomic_write(dropped_path(csv_path), drops.to_csv())
    save_manifest(manifest, csv_path)
    logger.info(
        "manifest %s: %d rows, labels %s, dropped %s",
        plan.name,
        len(manifest),
        meta["label_counts"],
        meta["dropped"],
    )
    return manifest


def dataset_formats() -> list[str]:
    """Names of the registered dataset formats (for `pipeline list`)."""
    return DATASET_FORMATS.names()
