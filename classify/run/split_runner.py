"""Fit and score cells on one train/test split: the shared prefix once, then every classifier.

A cell's estimator is one imblearn ``Pipeline`` (fusion -> scale -> sampler -> classifier,
:func:`classify.models.cell_pipeline.build_pipeline`). Cells that differ only in the classifier
share everything before it: the same stores, fusion (and its parameters), sampler (and its
parameters) and seed fit the same prefix on the same training rows. :func:`run_split_group`
therefore fits that prefix ONCE per split (for attention fusion: one torch training instead
of one per classifier), resamples once, transforms the test rows once, and fits each
classifier on the result. Steps are called exactly as ``Pipeline.fit`` / ``predict_proba``
call them (``fit_transform`` for transformers, ``fit_resample`` for the sampler, samplers
skipped at prediction), so every probability and score is identical to fitting each cell's
pipeline on its own (:func:`classify.run.cell_task.run_split`, the reference; a test compares
the two). Cells that tune their parameters or choose an operating point inside the fold
(``spec.params["tuning"]`` / ``["operating_point"]``) fit their own pipelines and are never
grouped (:func:`fits_alone`); :func:`run_split_group` dispatches.

A soft-voting classifier whose members are also classifiers of the group, with the same
parameters, reuses their fitted members' probabilities instead of fitting them again; the
vote (``np.average`` over members, as ``VotingClassifier.predict_proba`` computes it) is
unchanged. scikit-learn tree models get the float32 column-major copy of the training rows
that they would otherwise make themselves in row-major order (identical trees, faster).

Timings per cell: ``fit_seconds`` = the classifier's own fit plus an equal share of the
prefix fit; ``predict_seconds`` = its own prediction plus an equal share of transforming the
test rows. Summed over the cells of a split they are the split's real compute time (a
reusing voting cell counts only its own work).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, VotingClassifier
from sklearn.tree import DecisionTreeClassifier

from classify.models.cell_pipeline import build_pipeline
from classify.results.types import CellSpec
from classify.run.cell_task import fold_outputs, full_proba, run_split, task_columns


def fits_alone(spec: CellSpec) -> bool:
    """A cell that searches parameters or an operating point inside each training fold."""
    return bool(spec.params.get("tuning") or spec.params.get("operating_point"))


def prefix_key(spec: CellSpec) -> str:
    """Cells with equal keys share the fitted pipeline prefix (everything but the classifier)."""
    return json.dumps([list(spec.stores), spec.fusion, spec.component_params("fusion"),
                       spec.sampler, spec.component_params("sampler")],
                      sort_keys=True, default=str)


def group_by_prefix(specs: Sequence[CellSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped by :func:`prefix_key`, groups in first-seen order; a cell
    that :func:`fits_alone` is a group of its own."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        key = f"alone:{i}" if fits_alone(spec) else prefix_key(spec)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _params_key(est: Any) -> str:
    """Identity of an unfitted estimator: its class and every (nested) parameter."""
    params = {k: (type(v).__name__ if hasattr(v, "get_params") else v)
              for k, v in est.get_params(deep=True).items()}
    return type(est).__name__ + json.dumps(params, sort_keys=True, default=repr)


def run_split_group(
    specs: Sequence[CellSpec],
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
) -> list[dict[str, Any]]:
    """One benchmark task: the cells of one :func:`group_by_prefix` group on one split; one
    output per spec, each equal to :func:`classify.run.cell_task.run_split` for it (timings aside).
    ``tables``: the schema of the tabular blocks (see :func:`classify.run.cell_task.run_split`).

    A single cell, or one that :func:`fits_alone` (its inner CVs grouped by ``groups``), runs
    through :func:`classify.run.cell_task.run_split`; a larger group shares its prefix, which must
    be one (same :func:`prefix_key`).

    joblib calls made inside the task (e.g. the neighbour searches of SMOTE and kNN) run in
    this worker's own threads, as in a local worker process: on Dask they would otherwise go
    back to the cluster and be scattered lazily (issue 11, observation 13).
    """
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        if len(specs) == 1 or any(fits_alone(s) for s in specs):
            return [run_split(s, cols, blocks, X, y, train, test, n_classes=n_classes,
                              positive=positive, seed=seed, threads=threads, groups=groups,
                              tables=tables)
                    for s in specs]
        keys = {prefix_key(s) for s in specs}
        if len(keys) != 1:
            raise ValueError(f"cells with different pipeline prefixes cannot share one: {keys}")
        with task_columns(X, cols, threads) as Xc:
            return _run_shared_prefix(specs, blocks, Xc, y, train, test, n_classes=n_classes,
                                      positive=positive, seed=seed, tables=tables)


def _run_shared_prefix(specs: Sequence[CellSpec], blocks: tuple[tuple[str, int, int], ...],
                       Xc: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, *,
                       n_classes: int, positive: int | None, seed: int,
                       tables: Any) -> list[dict[str, Any]]:
    """Fit the prefix the cells share once on the ``train`` rows of ``Xc`` (the task's columns),
    then each classifier; score the ``test`` rows."""
    pipes = [build_pipeline(s, blocks, random_state=seed, tables=tables) for s in specs]
    prefix = pipes[0].steps[:-1]
    # fit the prefix exactly as imblearn's Pipeline.fit does
    t0 = time.perf_counter()
    Xt, yt = Xc[train], y[train]
    for _, step in prefix:
        if hasattr(step, "fit_resample"):
            Xt, yt = step.fit_resample(Xt, yt)
        else:
            Xt = step.fit_transform(Xt, yt)
    t1 = time.perf_counter()
    Xe = Xc[test]
    for _, step in prefix:  # prediction skips samplers, as Pipeline.predict_proba does
        if not hasattr(step, "fit_resample"):
            Xe = step.transform(Xe)
    t2 = time.perf_counter()
    share_fit, share_pred = (t1 - t0) / len(specs), (t2 - t1) / len(specs)
    steps = dict(prefix)
    # class codes of a training fold are 0..k-1, so VotingClassifier's label encoding is
    # the identity and its members can be fitted (or reused) on ``yt`` directly
    classes_t = np.unique(yt)
    codes_are_encoded = np.array_equal(classes_t, np.arange(len(classes_t)))
    fitted: dict[str, tuple[np.ndarray, Any]] = {}  # params key -> (test proba, classes)
    tree_X: list[np.ndarray] = []

    def fit_input(est: Any) -> np.ndarray:
        if not isinstance(est, _FLOAT32_TREES):
            return Xt
        if not tree_X:  # the float32 copy these models make anyway, column-major once
            tree_X.append(np.asfortranarray(Xt, dtype=np.float32))
        return tree_X[0]

    def fit_predict(est: Any) -> tuple[np.ndarray, Any, float, float]:
        key = _params_key(est)
        if key in fitted:
            return (*fitted[key], 0.0, 0.0)
        ta = time.perf_counter()
        est.fit(fit_input(est), yt)
        tb = time.perf_counter()
        fitted[key] = (est.predict_proba(Xe), est.classes_)
        return (*fitted[key], tb - ta, time.perf_counter() - tb)

    def shared_vote(clf: Any) -> bool:
        return codes_are_encoded and _is_soft_vote(clf)

    # standalone cells first, so soft votes find their members already fitted
    order = sorted(range(len(specs)), key=lambda i: shared_vote(pipes[i].steps[-1][1]))
    outs: list[dict[str, Any]] = [{}] * len(specs)
    for i in order:
        clf = pipes[i].steps[-1][1]
        if shared_vote(clf):
            # as VotingClassifier: members cloned, fitted, probabilities np.average'd
            members = [fit_predict(clone(est)) for _, est in clf.estimators]
            tv = time.perf_counter()
            raw = np.average(np.asarray([m[0] for m in members]), axis=0)
            fit_s = sum(m[2] for m in members)
            pred_s = sum(m[3] for m in members) + time.perf_counter() - tv
            classes = classes_t
        else:
            raw, classes, fit_s, pred_s = fit_predict(clf)
        proba = full_proba(raw, classes, len(test), n_classes)
        outs[i] = fold_outputs(steps, proba, y[test], positive, fit_s + share_fit,
                           pred_s + share_pred)
    return outs


#: scikit-learn tree models fit on a float32 copy of X whatever they are given; handing them one
#: column-major copy (shared by the group) makes their per-feature gathers contiguous: same
#: trees, ~10-15 % less fit time on 2,048 columns.
_FLOAT32_TREES = (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier)


def _is_soft_vote(clf: Any) -> bool:
    return isinstance(clf, VotingClassifier) and clf.voting == "soft" and clf.weights is None
