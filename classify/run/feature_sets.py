"""FeatureSet: the id-aligned join of feature stores with the manifest's labels and groups.

Rows are the sample ids present in *every* store and in the manifest with a
non-empty label; everything else is reported (logged at WARNING and recorded in
:attr:`FeatureSet.report`), never dropped silently. Each store stays a separate
column block so fusion can address modalities (:class:`Block`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from classify.results.types import DataReport, StoreInfo
from pipeline.errors import DataError, ManifestError

log = logging.getLogger(__name__)

_SHOW = 10  # ids shown in messages


@dataclass(frozen=True)
class Block:
    """A store's columns inside :attr:`FeatureSet.X`: ``X[:, start:stop]``."""

    name: str  # encoder key
    modality: str
    start: int
    stop: int
    kind: str = "embedding"  # or "tabular" (NaN = missing; see pipeline.store.kinds)
    #: tabular blocks: ``((column, "numeric"|"categorical", n_categories), ...)``
    columns: tuple[tuple[str, str, int], ...] = ()

    @property
    def dim(self) -> int:
        return self.stop - self.start


def blocks_spec(blocks: Sequence[Block]) -> tuple[tuple[str, int, int], ...]:
    """Plain-tuple form ``((name, start, stop), ...)`` used as a fusion parameter."""
    return tuple((b.name, b.start, b.stop) for b in blocks)


def tables_spec(blocks: Sequence[Block]) -> tuple[tuple[str, tuple[tuple[str, str, int], ...]], ...] | None:
    """The column schema of the tabular blocks (the ``tables`` parameter of
    :class:`classify.models.tabular_blocks.BlockPreprocessor`), or None when every block is an embedding."""
    out = tuple((b.name, b.columns) for b in blocks if b.kind == "tabular")
    return out or None


@dataclass(frozen=True)
class FeatureSet:
    """Joined features + labels.

    Attributes:
        ids: sample ids (sorted), ``[n]``.
        X: float32 ``[n, sum(dims)]``; block ``b`` is ``X[:, b.start:b.stop]``.
        y: int class codes ``[n]`` indexing ``classes``.
        classes: class labels in code order (sorted, so codes are stable).
        groups: CV grouping unit (``patient_id``) per row.
        blocks: one :class:`Block` per store, in the order given.
        report: what was dropped and why, store identities, class counts.
    """

    ids: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    classes: tuple[str, ...]
    groups: np.ndarray = field(repr=False)
    blocks: tuple[Block, ...]
    report: DataReport

    @property
    def n(self) -> int:
        return len(self.ids)

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise DataError(
            f"store {name!r} is not part of this feature set; available: "
            f"{', '.join(b.name for b in self.blocks)}. Add it to the experiment's `stores`"
        )

    def columns(self, names: Sequence[str]) -> tuple[np.ndarray, tuple[Block, ...]]:
        """Column indices of the stores ``names`` and their blocks re-based to 0."""
        cols: list[np.ndarray] = []
        out: list[Block] = []
        pos = 0
        for name in names:
            b = self.block(name)
            cols.append(np.arange(b.start, b.stop))
            out.append(Block(b.name, b.modality, pos, pos + b.dim, b.kind, b.columns))
            pos += b.dim
        return np.concatenate(cols), tuple(out)

    @property
    def positive_index(self) -> int | None:
        pos = self.report.positive_label
        return None if pos is None else self.classes.index(pos)


def _shown(ids: Sequence[str]) -> str:
    ids = list(ids)
    more = f" (+{len(ids) - _SHOW} more)" if len(ids) > _SHOW else ""
    return ", ".join(map(str, ids[:_SHOW])) + more


def build_feature_set(
    stores: Sequence[Any],
    frame: pd.DataFrame,
    *,
    label_column: str = "label",
    group_column: str = "patient_id",
    positive_label: str | None = None,
    source: str = "manifest",
    unlabelled_reasons: Mapping[str, str] | None = None,
) -> FeatureSet:
    """Join ``stores`` (objects with the :class:`pipeline.store.feature_store.FeatureStore` API) with ``frame``.

    Args:
        stores: feature stores; their order fixes the block order.
        frame: manifest table with ``sample_id``, ``group_column`` and ``label_column``.
        positive_label: positive class for binary metrics; default = the minority class.
        source: name of the manifest (for messages).
        unlabelled_reasons: sample id -> why it has no label (e.g. a label rule's drop
            reason); recorded instead of the generic "no label".

    Raises:
        ManifestError: a required column is missing or sample ids repeat.
        DataError: NaN/inf in a store (naming ids), no rows left, or fewer than 2 classes.
    """
    if not stores:
        raise DataError("no feature stores given; list at least one encoder key in `stores`")
    for col in ("sample_id", group_column, label_column):
        if col not in frame.columns:
            raise ManifestError(
                f"{source} has no column {col!r} (columns: {', '.join(map(str, frame.columns))}); "
                "rebuild it with `pipeline data`"
            )
    ids_all = frame["sample_id"].astype(str)
    dup = ids_all[ids_all.duplicated()].unique().tolist()
    if dup:
        raise ManifestError(f"{source} repeats sample ids {_shown(dup)}; sample_id must be unique")
    keys = [str(s.encoder_key if hasattr(s, "encoder_key") else s.provenance["encoder_key"]) for s in stores]
    if len(set(keys)) != len(keys):
        raise DataError(f"the same store is listed twice in {keys}; list each encoder key once")

    dropped: dict[str, list[str]] = {}
    labels = frame[label_column]
    has_label = labels.notna() & (labels.astype(str).str.strip() != "")
    why = unlabelled_reasons or {}
    for sid in ids_all[~has_label]:
        dropped.setdefault(why.get(sid, "no label"), []).append(sid)
    keep = set(ids_all[has_label])
    manifest_ids = set(ids_all)

    for key, store in zip(keys, stores, strict=True):
        sids = {str(i) for i in store.ids}
        failed = {str(k) for k in store.failed}
        missing = sorted((keep - sids) - failed)
        failed_here = sorted(keep & failed - sids)
        extra = sorted(sids - manifest_ids)
        if missing:
            dropped[f"missing from store {key}"] = missing
        if failed_here:
            dropped[f"failed in store {key}"] = failed_here
        if extra:
            dropped[f"not in manifest (store {key})"] = extra
        keep &= sids
    for reason, ids in dropped.items():
        log.warning("%s: %d sample(s) dropped (%s): %s", source, len(ids), reason, _shown(ids))

    if not keep:
        raise DataError(
            f"no sample of {source} is in all stores {keys} with a label; run `pipeline extract` "
            "for every store on this manifest"
        )
    ids = np.array(sorted(keep), dtype=object)
    sub = frame.assign(sample_id=ids_all).set_index("sample_id").loc[ids]
    label_str = sub[label_column].astype(str).str.strip().to_numpy()
    classes = tuple(sorted(set(label_str)))
    if len(classes) < 2:
        raise DataError(
            f"{source}: only one class ({classes[0]!r}) among the {len(ids)} usable samples; "
            "check the label rule"
        )
    code = {c: i for i, c in enumerate(classes)}
    y = np.array([code[v] for v in label_str], dtype=np.int64)
    groups = sub[group_column].astype(str).to_numpy(dtype=object)
    counts = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    if positive_label is not None and positive_label not in classes:
        raise DataError(
            f"positive_label {positive_label!r} is not a class of {source} (classes: "
            f"{', '.join(classes)}); fix `positive_label` in the experiment"
        )
    if len(classes) == 2 and positive_label is None:
        positive_label = min(classes, key=lambda c: (counts[c], c))
        log.info("positive class for binary metrics: %r (the minority class)", positive_label)
    if len(classes) > 2:
        positive_label = None

    mats, blocks, infos = [], [], []
    pos = 0
    for key, store in zip(keys, stores, strict=True):
        X = np.asarray(store.read(list(ids)), dtype=np.float32)
        kind = str(getattr(store, "kind", "embedding"))
        # a tabular store marks missing values with NaN (imputed inside the folds)
        bad = np.isinf(X).any(axis=1) if kind == "tabular" else ~np.isfinite(X).all(axis=1)
        if bad.any():
            raise DataError(
                f"store {key} ({getattr(store, 'path', '?')}) has "
                f"{'infinite' if kind == 'tabular' else 'NaN/inf'} features for "
                f"{int(bad.sum())} sample(s): {_shown(ids[bad].tolist())}; delete the store and "
                "re-run `pipeline extract`, or drop these ids from the manifest"
            )
        modality = str(store.provenance.get("modality", "unknown"))
        columns: tuple[tuple[str, str, int], ...] = ()
        if kind == "tabular":
            columns = tuple((c.name, c.type, len(c.categories)) for c in store.schema.columns)
        blocks.append(Block(key, modality, pos, pos + X.shape[1], kind, columns))
        pos += X.shape[1]
        mats.append(X)
        infos.append(
            StoreInfo(
                encoder_key=key,
                modality=modality,
                dim=int(X.shape[1]),
                identity=str(store.identity),
                path=getattr(store, "path", None),
                trained_on=tuple(store.provenance.get("trained_on", ()) or ()),
                n_failed=len(store.failed),
            )
        )
    report = DataReport(
        n_samples=len(ids),
        classes=classes,
        class_counts=counts,
        positive_label=positive_label,
        stores=tuple(infos),
        dropped={k: tuple(v) for k, v in dropped.items()},
    )
    log.info(
        "feature set: %d samples x %d features from %s; classes %s",
        len(ids), pos, keys, counts,
    )
    return FeatureSet(
        ids=ids,
        X=np.ascontiguousarray(np.hstack(mats)),
        y=y,
        classes=classes,
        groups=groups,
        blocks=tuple(blocks),
        report=report,
    )
