"""Benchmark 3: the classify grid - parallel efficiency, per-classifier cost, incremental re-run.

A demo-shaped but REDUCED grid (the demo grid - 32 cells x 10 splits on ~3,300 rows -
takes far longer than this benchmark's budget on 2 cores): synthetic stores with the
demo's dimensions (image 1280-d, text 384-d, weak class signal), a label-only manifest
with the demo's class balance and 2 samples per patient, feature sets image / text /
fused, fusions single + concat (PCA 64 per block), SMOTE, and the classifiers below.

Measured in one run:
* wall time at ``n_jobs=1`` and ``n_jobs=2`` (efficiency = T1 / (2 T2)); scores must be
  identical;
* per-classifier share of the fit + predict time;
* cost of a re-run after adding one store (only the new store's cells are computed)
  relative to computing those new cells alone in a fresh results folder (target <= 1.1);
* optionally the same grid on a local Dask cluster via :mod:`classify.distributed`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import (
    BenchConfig,
    BenchOutcome,
    BenchTable,
    Ratio,
    synthetic_manifest,
    synthetic_store,
)

log = logging.getLogger(__name__)

TARGET_RERUN = 1.1
DIMS = {"bench_img": 1280, "bench_txt": 384, "bench_txt2": 384}
MODALITY = {"bench_img": "image", "bench_txt": "text", "bench_txt2": "text"}


def make_data(work: Path, n: int) -> tuple[Path, Path, str]:
    """Manifest + the three synthetic stores; returns (manifest path, features root, dataset)."""
    dataset = f"benchgrid{n}"
    mpath = work / "manifests" / f"{dataset}.csv"
    root = work / "features"
    manifest = synthetic_manifest(mpath, n)
    ids, labels = manifest.frame["sample_id"].tolist(), manifest.frame["label"].tolist()
    for k, (key, dim) in enumerate(DIMS.items()):
        path = root / dataset / f"{key}.h5"
        if not path.exists():
            synthetic_store(root, dataset, key, ids, labels, dim, seed=k,
                            modality=MODALITY[key])
    return mpath, root, dataset


def experiment(mpath: Path, root: Path, dataset: str, results: Path, *, stores: list[str],
               feature_sets: dict[str, list[str]], classifiers: list[str], folds: int,
               repeats: int, n_jobs: int) -> Any:
    from classify.experiment import experiment_from_dict

    return experiment_from_dict({
        "name": "bench", "dataset": dataset, "manifest": str(mpath),
        "features_root": str(root), "results_root": str(results), "positive_label": "abnormal",
        "stores": stores, "feature_sets": feature_sets, "fusions": ["single", "concat"],
        "samplers": ["smote"], "classifiers": classifiers,
        "cv": {"folds": folds, "repeats": repeats, "seed": 0}, "n_jobs": n_jobs,
        "params": {"fusion": {"concat": {"reduce": "pca", "n_components": 64}}},
    }, source="benchmarks.classify_grid")


def _timed(exp: Any, n_jobs: int) -> tuple[float, Any]:
    from classify.benchmark import run_benchmark

    t0 = time.perf_counter()
    res = run_benchmark(exp, n_jobs=n_jobs)
    return time.perf_counter() - t0, res


def score_frame(result: Any) -> pd.DataFrame:
    """All per-split scores of a run, in a canonical order (for equality checks)."""
    frames = [c.scores for c in result.cells]
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["cell_key", "repeat", "fold", "metric"]).reset_index(drop=True)


def run(cfg: BenchConfig, *, with_dask: bool | None = None) -> BenchOutcome:
    t_start = time.perf_counter()
    n = cfg.size(240, 600)
    classifiers = (["logistic", "knn", "decision_tree"] if cfg.quick else
                   ["logistic", "knn", "decision_tree", "random_forest", "xgboost", "gbdt"])
    folds, repeats = 3, 1
    work = cfg.work_dir / "classify"
    shutil.rmtree(work / "results", ignore_errors=True)
    mpath, root, dataset = make_data(work, n)
    base_sets = {"image": ["bench_img"], "text": ["bench_txt"], "fused": ["bench_img", "bench_txt"]}
    base = dict(stores=["bench_img", "bench_txt"], feature_sets=base_sets,
                classifiers=classifiers, folds=folds, repeats=repeats)

    t1, r1 = _timed(experiment(mpath, root, dataset, work / "results" / "j1", n_jobs=1, **base), 1)
    t2, r2 = _timed(experiment(mpath, root, dataset, work / "results" / "j2", n_jobs=2, **base), 2)
    identical = score_frame(r1).equals(score_frame(r2))
    eff = t1 / (2 * t2)
    n_tasks = len(r1.cells) * folds * repeats

    # per-classifier time (fit + predict summed over cells and splits, from the n_jobs=1 run)
    per: dict[str, float] = {}
    for c in r1.cells:
        s = float(c.folds["fit_seconds"].sum() + c.folds["predict_seconds"].sum())
        per[c.spec.classifier] = per.get(c.spec.classifier, 0.0) + s
    total = sum(per.values()) or 1e-9
    per_rows = tuple((k, round(v, 2), round(100 * v / total, 1),
                      round(v / (len(base_sets) * folds * repeats), 3))
                     for k, v in sorted(per.items(), key=lambda kv: -kv[1]))

    # add one store: re-run over the stored results vs the new cells alone
    grown = dict(base, stores=["bench_img", "bench_txt", "bench_txt2"],
                 feature_sets={**base_sets, "text2": ["bench_txt2"]})
    t_rerun, r_rerun = _timed(experiment(mpath, root, dataset, work / "results" / "j2",
                                         n_jobs=2, **grown), 2)
    only_new = dict(base, stores=["bench_txt2"], feature_sets={"text2": ["bench_txt2"]})
    t_new, r_new = _timed(experiment(mpath, root, dataset, work / "results" / "new",
                                     n_jobs=2, **only_new), 2)
    rerun_ratio = t_rerun / t_new
    rows = [
        ("n_jobs=1", len(r1.cells), n_tasks, round(t1, 2), ""),
        ("n_jobs=2", len(r2.cells), n_tasks, round(t2, 2),
         f"efficiency {eff:.2f}; scores identical to n_jobs=1: {identical}"),
        ("re-run after adding store bench_txt2", len(r_rerun.cells),
         r_rerun.n_computed * folds * repeats, round(t_rerun, 2),
         f"{r_rerun.n_computed} computed, {r_rerun.n_reused} reused"),
        ("new cells alone (fresh results)", len(r_new.cells), r_new.n_computed * folds * repeats,
         round(t_new, 2), ""),
    ]
    ratios = [
        Ratio("classify", "parallel efficiency T1/(2*T2)", eff, "(2 cores)", None),
        Ratio("classify", "n_jobs=2 scores == n_jobs=1 scores", float(identical), "== 1",
              identical),
        Ratio("classify", "re-run with one new store / new cells alone", rerun_ratio,
              f"<= {TARGET_RERUN}", rerun_ratio <= TARGET_RERUN),
    ]
    if with_dask is None:
        with_dask = not cfg.quick
    if with_dask:
        dask_row, dask_ratio = _dask_run(mpath, root, dataset, work, base, r1)
        if dask_row:
            rows.append(dask_row)
            ratios.append(dask_ratio)
    notes = (
        f"REDUCED grid (the full demo grid would exceed the time budget): {n} samples, "
        f"{len(r1.cells)} cells ({', '.join(base_sets)} x single/concat x smote x "
        f"{', '.join(classifiers)}), {folds} folds x {repeats} repeat; synthetic demo-shaped stores.",
        "wall time includes loading stores, the split plan and writing cells.",
    )
    grid = BenchTable("classify_grid", "Classify grid wall time",
                      ("run", "cells", "tasks computed", "wall_s", "note"), tuple(rows), notes)
    per_tab = BenchTable("classify_per_classifier", "Classify: time per classifier (n_jobs=1)",
                         ("classifier", "fit+predict_s", "share_%", "s_per_task"), per_rows,
                         (f"{n} samples, {folds}x{repeats} splits; a task = one cell x one split.",))
    costs = {"classify.seconds_per_task": t1 / max(n_tasks, 1), "classify.n_samples": float(n),
             "classify.efficiency_2": eff}
    return BenchOutcome("classify", (grid, per_tab), tuple(ratios), costs,
                        time.perf_counter() - t_start)


def _dask_run(mpath: Path, root: Path, dataset: str, work: Path, base: dict[str, Any],
              reference: Any) -> tuple[tuple[Any, ...] | None, Ratio | None]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        log.info("dask not installed: skipping the Dask run")
        return None, None
    from classify.benchmark import run_benchmark_on_dask

    exp = experiment(mpath, root, dataset, work / "results" / "dask", n_jobs=2, **base)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        res = run_benchmark_on_dask(exp, client, n_jobs=-1)
        t = time.perf_counter() - t0
    same = score_frame(res).equals(score_frame(reference))
    row = ("Dask LocalCluster 2 workers x 1 thread", len(res.cells),
           len(res.cells) * exp.cv.folds * exp.cv.repeats, round(t, 2),
           f"scores identical to local: {same}")
    return row, Ratio("classify", "Dask scores == local scores", float(same), "== 1", same)
