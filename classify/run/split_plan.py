"""Saved split plans: repeated StratifiedGroupKFold by patient, shared by every cell.

One plan per (dataset, label rule, seed, folds, repeats, sample set). It is
written once to ``<results>/<dataset>/splits/<name>.csv`` (``sample_id,
patient_id, label, r0..r{R-1}``; ``rK`` = test fold of the row in repeat K) with a
JSON sidecar holding its sha256, and reused by every cell so paired tests
compare models on identical splits. Repeat ``r`` shuffles with seed ``seed + r``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from classify.results.types import SplitPlanInfo
from pipeline.errors import ConfigError, DataError
from pipeline.helpers import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitPlan:
    """Row assignment of every split. ``test_fold[r, i]`` = test fold of row ``i`` in repeat ``r``."""

    ids: np.ndarray = field(repr=False)
    groups: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    test_fold: np.ndarray = field(repr=False)
    info: SplitPlanInfo

    @property
    def hash(self) -> str:
        return self.info.hash

    @property
    def n_splits(self) -> int:
        return self.info.n_folds * self.info.n_repeats

    def indices(self, repeat: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """``(train_rows, test_rows)`` of one split (row positions in ``ids`` order)."""
        tf = self.test_fold[repeat]
        return np.flatnonzero(tf != fold), np.flatnonzero(tf == fold)

    def splits(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        for r in range(self.info.n_repeats):
            for f in range(self.info.n_folds):
                yield (r, f, *self.indices(r, f))


def _slug(text: str) -> str:
    # a CSV manifest has no label rule (its labels are the label column): its rule id was
    # "manifest:None", naming plans "manifest-None__..."; the plan's content and hash (and so
    # the cell keys) do not depend on this name
    text = re.sub(r":None$", ":label", text)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "label"


def _check_feasible(labels: np.ndarray, groups: np.ndarray, n_folds: int, n_repeats: int) -> None:
    if n_folds < 2:
        raise ConfigError(f"cv.folds = {n_folds}; set cv.folds to at least 2 in the experiment")
    if n_repeats < 1:
        raise ConfigError(f"cv.repeats = {n_repeats}; set cv.repeats to at least 1")
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DataError(
            f"only {n_groups} patient group ({len(labels)} samples share one patient_id); "
            f"grouped cross-validation needs at least cv.folds = {n_folds} groups, so no split "
            "is possible. Fix: check the manifest's patient_id column (one id per patient, or "
            "per study when patients are unknown) or add samples of other patients"
        )
    if n_folds > n_groups:
        raise DataError(
            f"cv.folds = {n_folds} but only {n_groups} patient groups; grouped cross-validation "
            f"needs at least cv.folds groups: lower cv.folds to <= {n_groups} or add patients"
        )
    frame = pd.DataFrame({"label": labels, "group": groups})
    per_class = frame.groupby("label")["group"].nunique()
    short = per_class[per_class < n_folds]
    if len(short):
        detail = ", ".join(f"{k!r}: {v} group{'s' if v != 1 else ''}" for k, v in short.items())
        if int(per_class.min()) >= 2:
            fix = (f"Lower cv.folds to <= {int(per_class.min())} or merge rare classes in the "
                   "label rule")
        else:  # no fold count can help: cv.folds must be >= 2
            fix = ("No cv.folds value can help (at least 2 are needed): add samples of other "
                   "patients to that class, merge it with another class in the label rule, or "
                   "drop it from the manifest")
        raise DataError(
            f"class(es) with fewer patient groups than cv.folds = {n_folds} ({detail}); every "
            f"test fold needs each class, so grouped cross-validation needs at least cv.folds "
            f"groups per class. {fix}"
        )


def _assign(labels: np.ndarray, groups: np.ndarray, n_folds: int, n_repeats: int,
            seed: int) -> np.ndarray:
    out = np.full((n_repeats, len(labels)), -1, dtype=np.int64)
    dummy = np.zeros((len(labels), 1))
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed + r)
        for f, (_, test) in enumerate(cv.split(dummy, labels, groups)):
            out[r, test] = f
    return out


def _verify(plan_tf: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_folds: int,
            source: str) -> list[str]:
    warnings: list[str] = []
    if (plan_tf < 0).any() or (plan_tf >= n_folds).any():
        raise DataError(f"split plan {source} has rows without a valid fold; delete it to rebuild")
    classes = np.unique(labels)
    for r, tf in enumerate(plan_tf):
        g = pd.DataFrame({"g": groups, "f": tf}).groupby("g")["f"].nunique()
        leaking = g[g > 1]
        if len(leaking):
            raise DataError(
                f"split plan {source}: patient(s) {list(leaking.index[:5])} are in more than one "
                f"fold of repeat {r} (train/test leakage); delete the plan file to rebuild it"
            )
        for f in range(n_folds):
            present = np.unique(labels[tf == f])
            lacking = sorted(set(classes) - set(present))
            if lacking:
                warnings.append(
                    f"repeat {r} fold {f}: test fold lacks class(es) {lacking}; AUC is undefined there"
                )
    return warnings


def _table(ids, groups, labels, tf) -> pd.DataFrame:  # noqa: ANN001
    df = pd.DataFrame({"sample_id": ids, "patient_id": groups, "label": labels})
    for r in range(tf.shape[0]):
        df[f"r{r}"] = tf[r]
    return df


def make_split_plan(
    ids: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    n_folds: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
    label_rule: str = "label",
    splits_dir: Path | None = None,
    save: bool = True,
    check: Callable[[np.ndarray], None] | None = None,
) -> SplitPlan:
    """Load the saved plan for this sample set, or create, verify and save it.

    Args:
        ids, labels, groups: one entry per sample (labels as class strings).
        splits_dir: where plans live; None = do not save (tests).
        save: write a new plan to ``splits_dir`` (False for dry runs).
        check: called with the ``[repeats, n]`` test-fold array before the plan is saved
            (e.g. sampler feasibility); raises to refuse the plan.

    Raises:
        DataError/ConfigError before any work if the design is infeasible
        (folds > groups, a class with fewer groups than folds).
    """
    ids = np.asarray(ids, dtype=object).astype(str)
    order = np.argsort(ids, kind="stable")
    if not (order == np.arange(len(ids))).all():
        raise ValueError("make_split_plan expects ids sorted (FeatureSet order)")
    labels = np.asarray(labels).astype(str)
    groups = np.asarray(groups).astype(str)
    _check_feasible(labels, groups, n_folds, n_repeats)

    content = hashlib.sha256(
        "\n".join(f"{i}\t{g}\t{lab}" for i, g, lab in zip(ids, groups, labels, strict=True)).encode()
    ).hexdigest()
    name = f"{_slug(label_rule)}__k{n_folds}_r{n_repeats}_seed{seed}__{content[:12]}"
    csv_path = (splits_dir / f"{name}.csv") if splits_dir is not None else Path(f"{name}.csv")
    json_path = csv_path.with_suffix(".json")

    tf = None
    if splits_dir is not None and csv_path.exists() and json_path.exists():
        raw = csv_path.read_bytes()
        meta = json.loads(json_path.read_text())
        if hashlib.sha256(raw).hexdigest() != meta.get("hash"):
            raise DataError(
                f"split plan {csv_path} does not match the hash in {json_path} (edited or "
                "corrupted); delete both files and every result computed on them will be recomputed"
            )
        df = pd.read_csv(io.BytesIO(raw), dtype={"sample_id": str, "patient_id": str, "label": str})
        if (df["sample_id"].to_numpy() != ids).any() or (df["label"].to_numpy() != labels).any():
            raise DataError(f"split plan {csv_path} is for other samples; delete it to rebuild")
        tf = df[[f"r{r}" for r in range(n_repeats)]].to_numpy(dtype=np.int64).T
        log.info("reusing split plan %s", csv_path)
    if tf is None:
        tf = _assign(labels, groups, n_folds, n_repeats, seed)
    warnings = _verify(tf, labels, groups, n_folds, str(csv_path))
    if check is not None:
        check(tf)
    raw = _table(ids, groups, labels, tf).to_csv(index=False).encode()
    digest = hashlib.sha256(raw).hexdigest()
    n_test = np.array([(tf[r] == f).sum() for r in range(n_repeats) for f in range(n_folds)])
    ratio = float(np.mean(n_test / (len(ids) - n_test)))
    info = SplitPlanInfo(
        hash=digest,
        path=csv_path,
        n_folds=n_folds,
        n_repeats=n_repeats,
        seed=seed,
        n_samples=len(ids),
        n_groups=len(np.unique(groups)),
        class_counts={str(c): int((labels == c).sum()) for c in sorted(set(labels))},
        test_train_ratio=ratio,
        warnings=tuple(warnings),
    )
    if save and splits_dir is not None and not (csv_path.exists() and json_path.exists()):
        atomic_write(csv_path, raw)
        meta = {k: v for k, v in info.__dict__.items() if k not in ("path", "warnings")}
        meta["label_rule"] = label_rule
        atomic_write(json_path, json.dumps(meta, indent=2, default=str).encode())
        log.info("wrote split plan %s (%d folds x %d repeats, hash %s)",
                 csv_path, n_folds, n_repeats, digest[:12])
    for w in warnings:
        log.warning(w)
    return SplitPlan(ids=ids, groups=groups, labels=labels, test_fold=tf, info=info)
