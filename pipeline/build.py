"""Build a manifest from a registered source: validate options -> parse -> filter -> label -> save.

Common options of :func:`build_manifest`: ``name``, ``label_rule`` (see
:mod:`pipeline.labels`), ``frontal_only``, ``one_per_report``, ``drop_empty_text``,
``allow_absolute_paths``, ``limit``, ``manifest_dir``, ``artifacts_root``. Every
dropped row is counted by reason in ``manifest.meta['dropped']`` and logged.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, ManifestError
from pipeline.labels import LabelRule, apply_label_rule
from pipeline.manifest import FRONTAL_VIEWS, Manifest, manifest_path, save_manifest
from pipeline.sources import DATASET_FORMATS, SourceTable

logger = logging.getLogger(__name__)

COMMON_OPTIONS = (
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


def _count_drop(dropped: Counter, reason: str, n: int) -> None:
    if n:
        dropped[reason] += int(n)
        logger.info("dropped %d row(s): %s", n, reason)


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


def keep_frontal(frame: pd.DataFrame, source: str, dropped: Counter, notes: list[str]) -> pd.DataFrame:
    """``frontal_only``: keep PA/AP rows; without any view information, filter nothing and say so."""
    known = frame["view"] != ""
    if not known.any():
        msg = f"frontal_only requested but {source!r} rows have no view information; no rows were filtered."
        logger.warning(msg)
        notes.append(msg)
        return frame
    _count_drop(dropped, "view_unknown", int((~known).sum()))
    not_frontal = known & ~frame["view"].isin(FRONTAL_VIEWS)
    _count_drop(dropped, "not_frontal", int(not_frontal.sum()))
    return frame[known & ~not_frontal]


def keep_one_per_report(frame: pd.DataFrame, dropped: Counter) -> pd.DataFrame:
    """``one_per_report``: the first frontal image of each report, else its first image."""
    order = (~frame["view"].isin(FRONTAL_VIEWS)).astype(int)
    ranked = frame.assign(_rank=order.to_numpy(), _pos=range(len(frame))).sort_values(
        ["_rank", "_pos"], kind="stable"
    )
    keep = ~ranked.duplicated("report_id", keep="first") | (ranked["report_id"] == "")
    _count_drop(dropped, "extra_image_of_report", int((~keep).sum()))
    return ranked[keep].sort_values("_pos").drop(columns=["_rank", "_pos"])


def drop_empty_text(frame: pd.DataFrame, dropped: Counter) -> pd.DataFrame:
    """``drop_empty_text``: drop rows whose findings, impression and report text are all empty."""
    empty = (frame["findings"].str.strip() == "") & (frame["impression"].str.strip() == "")
    empty &= frame["report_text"].str.strip() == ""
    _count_drop(dropped, "empty_text", int(empty.sum()))
    return frame[~empty]


def filter_rows(
    frame: pd.DataFrame, plan: BuildPlan, dropped: Counter, notes: list[str]
) -> pd.DataFrame:
    """Step 3: the common row filters, in this order: frontal only, one per report, empty text."""
    if plan.options.get("frontal_only"):
        frame = keep_frontal(frame, plan.source, dropped, notes)
    if plan.options.get("one_per_report"):
        frame = keep_one_per_report(frame, dropped)
    if plan.options.get("drop_empty_text"):
        frame = drop_empty_text(frame, dropped)
    return frame


def assign_labels(
    frame: pd.DataFrame, plan: BuildPlan, table: SourceTable, dropped: Counter
) -> LabelledRows:
    """Step 4: labels from the label rule (option or the source's default), else the ``label``
    column; rows without a label are dropped and counted by reason."""
    rule_spec = plan.options.get("label_rule", table.default_label_rule)
    rule = LabelRule.from_spec(rule_spec) if rule_spec else None
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
                f"dataset {plan.name!r} has no labels: pass label_rule=... (e.g. 'normal_vs_abnormal') or "
                f"fill the 'label' column."
            )
        _count_drop(dropped, "label:missing", int(unlabeled.sum()))
        frame = frame[~unlabeled]
        classes = tuple(sorted(frame["label"].unique()))
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ManifestError(
            f"dataset {plan.name!r}: no rows left after filtering (dropped: {dict(dropped)}); relax the "
            f"options or check the source data."
        )
    if table.view_override is not None:
        frame["view"] = table.view_override
    return LabelledRows(frame, rule, tuple(classes))


def manifest_meta(
    plan: BuildPlan, table: SourceTable, rows: LabelledRows, dropped: Counter, notes: list[str]
) -> dict[str, Any]:
    """The sidecar content of the built manifest (counts, rule, provenance of the build)."""
    frame = rows.frame
    return {
        "label_rule": rows.rule.spec if rows.rule else None,
        "label_classes": list(rows.classes),
        "label_source": table.label_source,
        "source_dataset": None,  # data-set family (see pipeline.families); formats set it
        "label_counts": dict(sorted(Counter(frame["label"]).items())),
        "allow_absolute_paths": bool(plan.options.get("allow_absolute_paths", False)),
        "n_rows": len(frame),
        "n_patients": int(frame["patient_id"].nunique()),
        "dropped": dict(sorted(dropped.items())),
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
    ``<manifest_dir>/<name>.csv`` + ``.json`` and return it.

    Common options: ``name`` (default ``source``), ``label_rule`` (spec or
    :class:`LabelRule`; default per format), ``frontal_only``, ``one_per_report``
    (first image per report, frontal preferred when views are known),
    ``drop_empty_text``, ``allow_absolute_paths``, ``limit`` (first N reports/rows),
    ``manifest_dir`` (default ``<artifacts_root>/manifests``), ``artifacts_root``.
    """
    t0 = time.perf_counter()
    plan = plan_build(source, options)
    table = parse_source(plan)
    dropped: Counter = Counter(table.dropped)
    notes = list(table.notes)
    frame = filter_rows(table.frame.copy(), plan, dropped, notes)
    rows = assign_labels(frame, plan, table, dropped)
    meta = manifest_meta(plan, table, rows, dropped, notes)
    Manifest(plan.name, rows.frame, table.image_root, meta)  # validate before side effects
    if table.finalize is not None:
        meta.update(table.finalize(rows.frame))
    meta["build"]["seconds"] = round(time.perf_counter() - t0, 2)
    manifest = Manifest(plan.name, rows.frame, table.image_root, meta)
    save_manifest(manifest, manifest_path(plan.name, plan.manifest_dir))
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
