"""The held-out test set (``[holdout]``): drawn once, kept out of everything, scored once.

``[holdout]`` takes ``fraction = 0.2`` (a share of the patients: StratifiedGroupKFold with
``round(1 / fraction)`` folds, shuffled with ``seed`` (default: the CV seed), its first test
fold, so the set is patient-grouped and stratified by label) or ``manifest = "ids.csv"``
(every sample listed there, and every other sample of a listed patient). The held-out sample
ids are saved next to the split plans (``<results>/splits/holdout__<hash>.csv``).

:func:`development_rows` is applied by :func:`classify.run.benchmark.load_feature_set`, so
cross-validation, tuning, calibration, the operating point, the cell selection (which reads
CV scores only) and ``pipeline fit-final`` never see a held-out row. :func:`evaluate_cells`
scores chosen cells on it once: the cell's whole procedure
(:func:`classify.run.procedure.final_procedure.reproduce_procedure`: search, calibrator, operating
point) is fitted on the development set, the held-out rows are predicted, and every metric
gets a 95% percentile interval by patient bootstrap. Scores are stored per (cell key,
held-out set) under ``<results>/holdout/`` and re-used, never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.config.sections import HoldoutConfig
from classify.models.cell_pipeline import build_pipeline
from classify.results.holdout import HOLDOUT_COLUMNS, HoldoutEvaluation, HoldoutScore
from classify.results.metrics import score_fold
from classify.results.types import CellResult
from classify.run.cell_task import full_proba
from classify.run.feature_sets import FeatureSet, blocks_spec, tables_spec
from classify.run.procedure.final_procedure import reproduce_procedure
from classify.run.procedure.operating_point import threshold_metrics
from pipeline.errors import ConfigError, DataError
from pipeline.helpers import atomic_write

log = logging.getLogger(__name__)

#: Bootstrap resamples (by patient) of the held-out intervals.
N_BOOTSTRAP = 1000


@dataclass(frozen=True)
class HoldoutSplit:
    """Rows of the feature set held out / left for development, and where the list is saved."""

    holdout: np.ndarray = field(repr=False)
    development: np.ndarray = field(repr=False)
    how: str
    hash: str
    path: Path


def subset_feature_set(fs: FeatureSet, rows: np.ndarray) -> FeatureSet:
    """``fs`` restricted to ``rows`` (class counts updated)."""
    import dataclasses

    y = fs.y[rows]
    counts = {c: int((y == i).sum()) for i, c in enumerate(fs.classes)}
    report = dataclasses.replace(fs.report, n_samples=len(rows), class_counts=counts)
    return dataclasses.replace(fs, ids=fs.ids[rows], X=fs.X[rows], y=y, groups=fs.groups[rows],
                               report=report)


def split_holdout(fs: FeatureSet, cfg: HoldoutConfig, *, seed: int, splits_dir: Path,
                  save: bool = True) -> HoldoutSplit:
    """The held-out rows of ``fs`` by ``cfg`` (see the module docstring); saves their list."""
    if cfg.manifest is not None:
        from pipeline.manifest import load_manifest

        other = load_manifest(Path(cfg.manifest)).frame
        sids = set(other["sample_id"].astype(str))
        pats = set(other["patient_id"].astype(str))
        hold = np.array([s in sids or g in pats for s, g in zip(fs.ids, fs.groups, strict=True)])
        how = f"the samples and patients of {cfg.manifest}"
    else:
        from sklearn.model_selection import StratifiedGroupKFold

        s = int(seed if cfg.seed is None else cfg.seed)
        k = max(2, int(round(1.0 / float(cfg.fraction))))
        if len(np.unique(fs.groups)) < k:
            raise DataError(f"[holdout] fraction {cfg.fraction} needs >= {k} patients; "
                            f"the data has {len(np.unique(fs.groups))}")
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=s)
        _, test = next(iter(cv.split(np.zeros((fs.n, 1)), fs.y, fs.groups)))
        hold = np.zeros(fs.n, dtype=bool)
        hold[test] = True
        how = (f"fraction {cfg.fraction:g} of the patients (1 of {k} patient-grouped, "
               f"label-stratified folds, seed {s})")
    if not hold.any():
        raise DataError(f"[holdout] holds out no sample of the experiment ({how}); check it")
    if hold.all():
        raise DataError(f"[holdout] holds out every sample ({how}); nothing is left for CV")
    ids = fs.ids[hold]
    digest = hashlib.sha256("\n".join(sorted(ids.tolist())).encode()).hexdigest()
    path = Path(splits_dir) / f"holdout__{digest[:12]}.csv"
    if save and not path.exists():
        frame = pd.DataFrame({"sample_id": ids, "patient_id": fs.groups[hold],
                              "label": np.asarray(fs.classes, dtype=object)[fs.y[hold]]})
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, frame.to_csv(index=False))
        log.info("held out %d samples of %d patients (%s): %s", int(hold.sum()),
                 len(set(fs.groups[hold].tolist())), how, path)
    return HoldoutSplit(np.flatnonzero(hold), np.flatnonzero(~hold), how, digest, path)


def development_rows(fs: FeatureSet, exp: Any, *, save: bool = True
                     ) -> tuple[FeatureSet, HoldoutSplit | None]:
    """``fs`` without the experiment's held-out rows (unchanged without ``[holdout]``)."""
    cfg = getattr(exp, "holdout", None)
    if cfg is None:
        return fs, None
    split = split_holdout(fs, cfg, seed=exp.cv.seed, splits_dir=exp.results_dir / "splits",
                          save=save)
    return subset_feature_set(fs, split.development), split


# ----------------------------------------------------------------------------- scoring
def _metrics(y: np.ndarray, proba: np.ndarray, positive: int | None,
             threshold: float | None) -> dict[str, float]:
    out = score_fold(y, proba, positive)
    if threshold is not None and positive is not None:
        out.update({k: v for k, v in threshold_metrics((y == positive).astype(int),
                                                      proba[:, positive], threshold).items()
                    if k != "op_threshold"})
    return out


def bootstrap_by_patient(y: np.ndarray, proba: np.ndarray, groups: np.ndarray,
                         positive: int | None, threshold: float | None, n_boot: int, seed: int
                         ) -> dict[str, tuple[float, float]]:
    """Percentile 95% interval of every metric, resampling patients with replacement."""
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        idx = np.concatenate([rows_of[g] for g in rng.integers(0, len(uniq), len(uniq))])
        for m, v in _metrics(y[idx], proba[idx], positive, threshold).items():
            draws.setdefault(m, []).append(v)
    out = {}
    for m, v in draws.items():
        a = np.asarray(v, float)
        a = a[np.isfinite(a)]
        out[m] = ((float(np.percentile(a, 2.5)), float(np.percentile(a, 97.5))) if len(a)
                  else (math.nan, math.nan))
    return out


def score_cell(cell: CellResult, dev: FeatureSet, hold: FeatureSet, *, seed: int,
               n_boot: int = N_BOOTSTRAP) -> HoldoutScore:
    """Fit ``cell``'s procedure on ``dev``, predict ``hold`` and score it (patient bootstrap)."""
    spec = cell.spec
    cols, blocks = dev.columns(spec.stores)
    X = np.asarray(dev.X[:, cols], dtype=np.float64)

    def build() -> Any:
        return build_pipeline(spec, blocks_spec(blocks), random_state=seed,
                              tables=tables_spec(blocks))

    n_classes, pos = len(dev.classes), dev.positive_index
    proc = reproduce_procedure(spec, build, X, dev.y, dev.groups, positive=pos,
                               n_classes=n_classes, seed=seed)
    pipe = build().set_params(**proc.params).fit(X, dev.y)
    Xh = np.asarray(hold.X[:, cols], dtype=np.float64)
    proba = full_proba(pipe.predict_proba(Xh), pipe.classes_, hold.n, n_classes)
    proba = proc.positive_proba(proba, pos)
    threshold = None if proc.fold is None else float(proc.fold.threshold)
    point = _metrics(hold.y, proba, pos, threshold)
    cis = bootstrap_by_patient(hold.y, proba, hold.groups, pos, threshold, n_boot, seed)
    rows = [(m, float(v), *cis.get(m, (math.nan, math.nan)), cell.summary(m)[0])
            for m, v in point.items()]
    return HoldoutScore(cell.label, cell.key, pd.DataFrame(rows, columns=list(HOLDOUT_COLUMNS)),
                        threshold, dict((proc.tuning or {}).get("chosen", {})))


def _score_path(exp: Any, key: str, digest: str) -> Path:
    return exp.results_dir / "holdout" / f"{key}__{digest[:12]}.json"


def _read_score(path: Path) -> HoldoutScore | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return HoldoutScore(d["cell"], d["key"], pd.DataFrame(d["metrics"],
                                                              columns=list(HOLDOUT_COLUMNS)),
                            d.get("threshold"), dict(d.get("chosen") or {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("stored held-out score %s is unreadable (%s); it is recomputed", path, exc)
        return None


def evaluate_cells(exp: Any, fs: FeatureSet, cells: Sequence[CellResult], *,
                   compute: bool = True, n_boot: int = N_BOOTSTRAP) -> HoldoutEvaluation:
    """Score ``cells`` on the held-out set of ``exp`` (``fs``: the full feature set, before
    the hold-out); with ``compute=False`` only stored scores are read."""
    if getattr(exp, "holdout", None) is None:
        raise ConfigError(f"experiment {exp.name!r} has no [holdout] section: add one "
                          "(fraction = 0.2, or manifest = \"ids.csv\") and re-run "
                          "`pipeline classify`")
    dev, split = development_rows(fs, exp, save=compute)
    hold = subset_feature_set(fs, split.holdout)
    scores, missing = [], []
    for cell in cells:
        path = _score_path(exp, cell.key, split.hash)
        score = _read_score(path) if path.is_file() else None
        if score is None and compute:
            log.info("held-out test: fitting %s on %d development samples, scoring %d held-out",
                     cell.label, dev.n, hold.n)
            score = score_cell(cell, dev, hold, seed=exp.cv.seed, n_boot=n_boot)
            doc = {"cell": score.cell, "key": score.key, "threshold": score.threshold,
                   "chosen": score.chosen, "holdout_hash": split.hash, "n_boot": n_boot,
                   "metrics": score.metrics.to_dict(orient="records")}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(doc, indent=1, default=float) + "\n")
        if score is None:
            missing.append(cell.label)
        else:
            scores.append(score)
    return HoldoutEvaluation(
        how=split.how, path=str(split.path), hash=split.hash, n_samples=hold.n,
        n_patients=len(set(hold.groups.tolist())), class_counts=dict(hold.report.class_counts),
        n_development=dev.n, scores=tuple(scores), missing=tuple(missing), n_boot=n_boot)
