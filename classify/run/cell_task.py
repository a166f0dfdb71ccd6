"""One benchmark task and one cell: fit and score a cell on one split, assemble its splits.

:func:`run_split` is the unit of parallel work (one joblib/Dask task per cell x split):
optional nested tuning and operating point on the training rows, then the fit on the
training rows and the scores of the test rows. :func:`assemble_cell` combines a cell's
splits, in plan order, into a :class:`~classify.results.types.CellResult`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from classify.models.cell_pipeline import build_pipeline, spec_notes
from classify.results.cell_store import oof_frame
from classify.results.metrics import score_fold
from classify.results.types import (
    ATTENTION_COLUMNS,
    COUNT_COLUMNS,
    FOLD_COLUMNS,
    SCORE_COLUMNS,
    CellResult,
    CellSpec,
)
from classify.run.feature_sets import FeatureSet
from classify.run.procedure.operating_point import (
    apply_operating_point,
    fit_operating_point,
    operating_point_seed,
)
from classify.run.procedure.tuning import chosen_json, tune_split
from classify.run.split_plan import SplitPlan

log = logging.getLogger(__name__)


def fold_outputs(steps: dict[str, Any], proba: np.ndarray, y_test: np.ndarray,
                 positive: int | None, fit_s: float, predict_s: float, *,
                 extra_scores: dict[str, float] | None = None,
                 tuning: dict[str, Any] | None = None) -> dict[str, Any]:
    """What one cell returns for one split: test probabilities and scores, class counts
    before/after the sampler, SMOTE's k, notes, timings, attention weights, tuning."""
    sampler, fusion = steps["sampler"], steps["fusion"]
    att = getattr(fusion, "modality_weights_", None)
    return {
        "proba": proba,
        "scores": {**score_fold(y_test, proba, positive), **(extra_scores or {})},
        "before": dict(sampler.counts_before_),
        "after": dict(sampler.counts_after_),
        "k": int(sampler.k_neighbors_),
        "notes": list(sampler.notes_),
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "attention": None if att is None else [float(a) for a in att],
        "tuning": tuning,
    }


def full_proba(raw: np.ndarray, classes: Any, n_rows: int, n_classes: int) -> np.ndarray:
    """Probabilities over all ``n_classes`` (a training fold may lack a class)."""
    proba = np.zeros((n_rows, n_classes))
    proba[:, np.asarray(classes, dtype=int)] = raw
    return proba


@contextmanager
def task_columns(X: np.ndarray, cols: np.ndarray, threads: int) -> Iterator[np.ndarray]:
    """The task's columns of ``X`` as float64, with BLAS/OpenMP limited to ``threads`` meanwhile."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield np.asarray(X[:, cols], dtype=np.float64)


def run_split(
    spec: CellSpec,
    cols: np.ndarray,
    blocks: tuple[tuple[str, int, int], ...],
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    n_classes: int,
    positive: int | None,
    seed: int,
    threads: int = 1,
    groups: np.ndarray | None = None,
    tables: Any = None,
) -> dict[str, Any]:
    """Fit the cell pipeline on ``train`` rows and score the ``test`` rows (one joblib task).

    ``tables``: the schema of the tabular blocks (:func:`classify.run.feature_sets.tables_spec`;
    a fold-safe ``prepare`` step then comes first, :mod:`classify.models.tabular_blocks`).

    With ``spec.params["tuning"]`` the parameters are first searched by an inner CV of the
    training rows (:mod:`classify.run.procedure.tuning`); with ``spec.params["operating_point"]`` the
    threshold (and calibration) is chosen by an inner CV of the training rows
    (:mod:`classify.run.procedure.operating_point`). Inner CVs are grouped by ``groups`` (patients).
    """
    op = spec.params.get("operating_point")
    tuning = spec.params.get("tuning")
    op_scores: dict[str, float] = {}
    tuned: dict[str, Any] = {}
    chosen: dict[str, Any] | None = None
    with task_columns(X, cols, threads) as Xc:
        g = np.asarray(groups if groups is not None else np.arange(len(y)))[train]
        t_tune = time.perf_counter()
        if tuning:  # searched on the training rows only
            tuned, chosen, tune_score = tune_split(
                lambda: build_pipeline(spec, blocks, random_state=seed, tables=tables), Xc[train], y[train], g,
                tuning, positive=positive, n_classes=n_classes, seed=seed)

        def build() -> Any:
            return build_pipeline(spec, blocks, random_state=seed, tables=tables).set_params(**tuned)

        pipe = build()
        t0 = time.perf_counter()
        pipe.fit(Xc[train], y[train])
        fold_op = None
        if op:  # decided on the training rows, before the test fold is predicted
            fold_op = fit_operating_point(build, Xc[train], y[train], g, op,
                                          positive=int(positive),
                                          seed=operating_point_seed(seed, bool(tuning)),
                                          n_classes=n_classes)
        t_op = time.perf_counter()
        raw = pipe.predict_proba(Xc[test])
        t2 = time.perf_counter()
        proba = full_proba(raw, pipe.classes_, len(test), n_classes)
        if fold_op is not None:
            proba, op_scores = apply_operating_point(fold_op, proba, y[test],
                                                     positive=int(positive))
    tuning_out = None if chosen is None else {"params": chosen, "score": tune_score,
                                              "seconds": t0 - t_tune}
    # fit_seconds includes the in-fold operating point
    return fold_outputs(pipe.named_steps, proba, y[test], positive, t_op - t0, t2 - t_op,
                        extra_scores=op_scores, tuning=tuning_out)

def assemble_cell(spec: CellSpec, key: str, plan: SplitPlan, fs: FeatureSet,
                  outs: Sequence[tuple[int, int, dict[str, Any]]]) -> CellResult:
    """Combine per-split outputs (in plan order) into a :class:`CellResult`."""
    scores, counts, folds, att, notes = [], [], [], [], []
    ids, reps, fids, ytrue, probas = [], [], [], [], []
    for r, f, o in outs:
        train, test = plan.indices(r, f)
        scores.extend((key, r, f, m, v) for m, v in o["scores"].items())
        for stage in ("before", "after"):
            counts.extend((key, r, f, stage, fs.classes[c], n) for c, n in sorted(o[stage].items()))
        folds.append((key, r, f, len(train), len(test), o["fit_seconds"], o["predict_seconds"],
                      o["k"]))
        if o["attention"] is not None:
            att.extend((key, r, f, s, m, w) for s, m, w in
                       zip(spec.stores, spec.modalities, o["attention"], strict=True))
        notes.extend(n for n in o["notes"] if n not in notes)
        ids.append(fs.ids[test])
        reps.append(np.full(len(test), r))
        fids.append(np.full(len(test), f))
        ytrue.append(fs.y[test])
        probas.append(o["proba"])
        log.debug("%s r%d f%d: train counts %s -> %s", spec.label, r, f,
                 {fs.classes[c]: n for c, n in o["before"].items()},
                 {fs.classes[c]: n for c, n in o["after"].items()})
    folds_df = pd.DataFrame(folds, columns=list(FOLD_COLUMNS))
    if any(o.get("tuning") for _, _, o in outs):  # tuned cells: the search per outer fold
        folds_df["tuning_seconds"] = [o["tuning"]["seconds"] for _, _, o in outs]
        folds_df["tuning_score"] = [o["tuning"]["score"] for _, _, o in outs]
        folds_df["tuned_params"] = [chosen_json(o["tuning"]["params"]) for _, _, o in outs]
    return CellResult(
        spec=spec,
        key=key,
        scores=pd.DataFrame(scores, columns=list(SCORE_COLUMNS)),
        oof=oof_frame(np.concatenate(ids), np.concatenate(reps), np.concatenate(fids),
                      np.concatenate(ytrue), np.vstack(probas), fs.classes),
        class_counts=pd.DataFrame(counts, columns=list(COUNT_COLUMNS)),
        folds=folds_df,
        fit_seconds=float(folds_df["fit_seconds"].sum()),
        attention=pd.DataFrame(att, columns=list(ATTENTION_COLUMNS)) if att else None,
        status="computed",
        warnings=tuple(notes) + spec_notes(spec),
    )
