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
* optionally the same grid on a local Dask cluster of 2 worker processes via
  :mod:`classify.run.backends`: scores must be identical, efficiency T1 / (2 T_dask) at least
  local joblib's. Both pools import the task modules before the timed runs (steady state:
  a grid of hours pays the imports once per worker).
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
    from classify.config.experiment import experiment_from_dict

    return experiment_from_dict({
        "name": "bench", "dataset": dataset, "manifest": str(mpath),
        "features_root": str(root), "results_root": str(results), "positive_label": "abnormal",
        "stores": stores, "feature_sets": feature_sets, "fusions": ["single", "concat"],
        "samplers": ["smote"], "classifiers": classifiers,
        "cv": {"folds": folds, "repeats": repeats, "seed": 0}, "n_jobs": n_jobs,
        "params": {"fusion": {"concat": {"reduce": "pca", "n_components": 64}}},
    }, source="benchmarks.classify_grid")


def _timed(exp: Any, n_jobs: int) -> tuple[float, Any]:
    from classify.run.benchmark import run_benchmark

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

    warm_local(2)  # steady state: the pool's imports are not part of the timed grids
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
        dask_row, dask_ratios = _dask_run(mpath, root, dataset, work, base, r1, t1, eff)
        if dask_row:
            rows.append(dask_row)
            ratios.extend(dask_ratios)
    notes = (
        f"REDUCED grid (the full demo grid would exceed the time budget): {n} samples, "
        f"{len(r1.cells)} cells ({', '.join(base_sets)} x single/concat x smote x "
        f"{', '.join(classifiers)}), {folds} folds x {repeats} repeat; synthetic demo-shaped stores.",
        "wall time includes loading stores, the split plan and writing cells; the local and "
        "Dask worker pools imported the task modules before the timed runs.",
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


#: What a grid task imports; imported in every worker before a timed run.
TASK_MODULES = ("classify.run.split_runner", "classify.models.cell_pipeline", "imblearn.pipeline",
                "imblearn.over_sampling", "sklearn.decomposition", "sklearn.ensemble",
                "sklearn.linear_model", "sklearn.neighbors", "sklearn.neural_network",
                "sklearn.tree", "xgboost")


def import_modules(names: tuple[str, ...] = TASK_MODULES) -> int:
    """Import ``names`` in this process; returns its pid (to see which workers ran it)."""
    import importlib
    import os

    for name in names:
        importlib.import_module(name)
    return os.getpid()


def warm_local(n_jobs: int) -> set[int]:
    """Import the task modules here and in joblib's reusable local worker pool (loky)."""
    from joblib import Parallel, delayed

    import_modules()
    return set(Parallel(n_jobs=n_jobs)(delayed(import_modules)() for _ in range(4 * n_jobs)))


def _dask_run(mpath: Path, root: Path, dataset: str, work: Path, base: dict[str, Any],
              reference: Any, t1: float, local_eff: float
              ) -> tuple[tuple[Any, ...] | None, list[Ratio]]:
    """The grid on a LocalCluster of 2 worker PROCESSES x 1 thread, workers warmed as the
    local pool is; its efficiency T1 / (2 T_dask) against local joblib's on the same cores."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        log.info("dask not installed: skipping the Dask run")
        return None, []
    from classify.run.benchmark import run_benchmark_on_dask

    def timed_run(client: Any, name: str) -> tuple[float, Any]:
        exp = experiment(mpath, root, dataset, work / "results" / name, n_jobs=2, **base)
        t0 = time.perf_counter()
        res = run_benchmark_on_dask(exp, client, n_jobs=-1)
        return time.perf_counter() - t0, res

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t_cold, res_cold = timed_run(client, "dask_cold")  # fresh workers import on first use
        client.run(import_modules)
        t, res = timed_run(client, "dask")
    same = all(score_frame(r).equals(score_frame(reference)) for r in (res, res_cold))
    eff = t1 / (2 * t)
    row = ("Dask LocalCluster 2 worker processes x 1 thread", len(res.cells),
           len(res.cells) * base["folds"] * base["repeats"], round(t, 2),
           f"efficiency {eff:.2f} (local n_jobs=2: {local_eff:.2f}); first run on the fresh "
           f"workers {t_cold:.1f} s; scores identical to local: {same}")
    return row, [
        Ratio("classify", "Dask scores == local scores", float(same), "== 1", same),
        Ratio("classify", "Dask efficiency / local n_jobs=2 efficiency", eff / local_eff,
              ">= 1.0", eff / local_eff >= 1.0),
    ]


# --------------------------------------------------------------------------- the full grid
#: The full grid of issue 12: the demo's 8 classifiers x {image, text, concat, attention} x
#: 5 folds x 5 repeats on 7,470 samples x (2,048 + 384) features, target < 15 min on 2 cores.
FULL_GRID = {
    "classifiers": ["logistic", "knn", "decision_tree", "random_forest", "xgboost", "gbdt",
                    "mlp", "voting_soft"],
    "n_base": 3735, "image_dim": 2048, "text_dim": 384, "folds": 5, "repeats": 5,
    "target_s": 900.0,
}


def _demo_like(rng: Any, y: Any, n: int, dim: int, *, k: int = 32, signal: float = 0.5) -> Any:
    """Low-rank 'embedding' rows: k latent factors (4 carry the class) mixed into ``dim``
    columns, plus isotropic noise (frozen-encoder features are far from i.i.d. columns)."""
    import numpy as np

    Z = rng.standard_normal((n, k))
    Z[:, :4] += signal * y[:, None]
    W = rng.standard_normal((k, dim)) / np.sqrt(k)
    return Z @ W + 0.7 * rng.standard_normal((n, dim))


def make_full_grid_data(work: Path, *, n_base: int = 3735, image_dim: int = 2048,
                        text_dim: int = 384, seed: int = 0) -> tuple[Path, Path, str]:
    """Manifest + stores of the full-grid shape, built from demo-shaped synthetic features.

    Base: ``n_base`` rows (the demo's 3,735 reports, 35 % abnormal, 2 rows per patient) with
    demo-like features (image 1,280-d like EfficientNet-Lite0, text 384-d like MiniLM; see
    :func:`_demo_like`). Tiled to the target shape: rows twice (2 x 3,735 = 7,470; the copy
    keeps the patient, so a copy never sits on the other side of a split), image columns
    1,280 + the first 768 again (= 2,048); every tiled value gets fresh N(0, 0.1^2) noise.
    Returns (manifest path, features root, dataset)."""

    import numpy as np
    import pandas as pd

    from pipeline.store.feature_store import StoreWriter, store_path

    dataset = f"fullgrid{2 * n_base}"
    root = work / "features"
    mpath = work / "manifests" / f"{dataset}.csv"
    keys = {"grid_img": ("image", image_dim), "grid_txt": ("text", text_dim)}
    if mpath.is_file() and all(store_path(root, dataset, k).is_file() for k in keys):
        return mpath, root, dataset
    rng = np.random.default_rng(seed)
    y0 = (rng.random(n_base) < 0.35).astype(np.int64)
    n = 2 * n_base
    y = np.concatenate([y0, y0])
    ids = [f"g{i:06d}" for i in range(n)]
    patients = [f"p{(i % n_base) // 2:06d}" for i in range(n)]
    base_img = _demo_like(rng, y0, n_base, 1280)
    blocks = {
        "grid_img": np.hstack([base_img, base_img[:, : image_dim - 1280]]),
        "grid_txt": _demo_like(rng, y0, n_base, text_dim),
    }
    for key, (modality, dim) in keys.items():
        X = np.vstack([blocks[key]] * 2)
        X = (X + 0.1 * rng.standard_normal(X.shape)).astype(np.float32)
        prov = {"encoder_key": key, "modality": modality, "architecture": "synthetic",
                "weights_name": "synthetic", "weights_sha256": "", "dim": dim, "layers": [],
                "preprocessing": {"seed": seed, "tiled_from": n_base}, "trained_on": [],
                "dataset": dataset}
        path = store_path(root, dataset, key)
        path.unlink(missing_ok=True)
        with StoreWriter(path, prov) as w:
            w.add(ids, {"X": X})
    from pipeline.manifest import Manifest, save_manifest

    label = np.where(y == 1, "abnormal", "normal")
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": patients, "image_path": [f"{s}.png" for s in ids],
        "report_id": patients, "findings": "", "impression": "", "report_text": "", "tags": "",
        "label": label, "label_source": "synthetic", "view": "",
    })
    save_manifest(Manifest(dataset, frame, mpath.parent / "images", {"label_rule": None}), mpath)
    return mpath, root, dataset


def full_grid_experiment(mpath: Path, root: Path, dataset: str, results: Path, *,
                         classifiers: list[str], folds: int, repeats: int, n_jobs: int) -> Any:
    """The demo's grid settings (experiments/demo.toml) on the full-grid stores."""
    from classify.config.experiment import experiment_from_dict

    return experiment_from_dict({
        "name": "fullgrid", "dataset": dataset, "manifest": str(mpath),
        "features_root": str(root), "results_root": str(results), "positive_label": "abnormal",
        "stores": ["grid_img", "grid_txt"],
        "feature_sets": {"image": ["grid_img"], "text": ["grid_txt"],
                         "fused": ["grid_img", "grid_txt"]},
        "fusions": ["single", "concat", "attention"], "samplers": ["smote"],
        "classifiers": classifiers, "cv": {"folds": folds, "repeats": repeats, "seed": 0},
        "n_jobs": n_jobs,
        "params": {"fusion": {"single": {"reduce": "pca", "n_components": 128},
                              "concat": {"reduce": "pca", "n_components": 128},
                              "attention": {"dim": 64, "epochs": 60}}},
    }, source="benchmarks.classify_grid.full")


def run_full(cfg: BenchConfig) -> BenchOutcome:
    """Wall time of the full grid at ``n_jobs=2`` and where it goes (per classifier, prefix).

    ``--quick`` runs the same grid on 1/5 of the rows with 3 folds x 1 repeat (a smoke run)."""
    t_start = time.perf_counter()
    g = FULL_GRID
    n_base = cfg.size(747, g["n_base"])
    folds, repeats = (3, 1) if cfg.quick else (g["folds"], g["repeats"])
    work = cfg.work_dir / "fullgrid"
    shutil.rmtree(work / "results", ignore_errors=True)
    mpath, root, dataset = make_full_grid_data(work, n_base=n_base, image_dim=g["image_dim"],
                                               text_dim=g["text_dim"])
    exp = full_grid_experiment(mpath, root, dataset, work / "results",
                               classifiers=list(g["classifiers"]), folds=folds,
                               repeats=repeats, n_jobs=2)
    wall, res = _timed(exp, 2)
    n_splits = folds * repeats
    per: dict[str, float] = {}
    for c in res.cells:
        s = float(c.folds["fit_seconds"].sum() + c.folds["predict_seconds"].sum())
        per[c.spec.classifier] = per.get(c.spec.classifier, 0.0) + s
    total = sum(per.values()) or 1e-9
    per_rows = tuple((k, round(v, 1), round(100 * v / total, 1), round(v / n_splits, 2))
                     for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
    shape = f"{2 * n_base} x ({g['image_dim']} + {g['text_dim']})"
    ok = wall < g["target_s"]
    rows = ((f"{len(res.cells)} cells x {n_splits} splits, n_jobs=2", shape, round(wall, 1),
             round(wall / 60, 2), "" if cfg.quick else ("met" if ok else "NOT met")),)
    notes = (
        "feature sets image and text (single, PCA 128), fused (concat PCA 128 per block; "
        "attention dim 64, 60 epochs), SMOTE, classifiers " + ", ".join(g["classifiers"]) + ".",
        "data: demo-shaped synthetic features (latent-factor rows, 35 % positive) tiled to the "
        "shape: rows x2 (copies keep their patient), image 1,280 + 768 repeated columns, fresh "
        "N(0, 0.1^2) noise on every value (benchmarks.classify_grid.make_full_grid_data).",
        "the fusion/scaler/SMOTE prefix is fitted once per split for all 8 classifiers "
        "(classify.run.split_runner); the soft vote reuses its members' fits.",
    )
    tables = (
        BenchTable("classify_full_grid", "Classify: the full grid (issue 12)",
                   ("grid", "samples x features", "wall_s", "wall_min", "< 15 min"), rows, notes),
        BenchTable("classify_full_grid_per_classifier",
                   "Classify full grid: time per classifier (incl. its share of the prefix)",
                   ("classifier", "fit+predict_s", "share_%", "s_per_split"), per_rows,
                   ("summed over its 4 cells (image, text, concat, attention); task wall times "
                    "at n_jobs=2, so they add up to ~2x the grid's wall time.",)),
    )
    ratios = () if cfg.quick else (
        Ratio("classify", "full grid wall time, minutes (2 cores)", wall / 60, "< 15", ok),)
    costs = {"classify.full_grid_seconds": wall}
    return BenchOutcome("grid", tables, ratios, costs, time.perf_counter() - t_start)
