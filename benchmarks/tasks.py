"""Benchmark: many tasks in one experiment - the time each added task costs.

A multi-task experiment (:mod:`classify.run.tasks`) runs one single-task grid per task and
shares the label-free work (opening, verifying and reading the stores). Measured on synthetic
demo-shaped stores (image 1280-d, text 384-d) and a manifest with four ``label:<task>``
columns (prevalence 5-35 %): the wall time of the same grid with 1, 2 and 4 tasks, the
marginal time per added task ((T4 - T1) / 3), and the same four tasks run each as its own
single-task experiment (each opens, verifies and reads the stores itself), after an untimed
warm-up run (imports, the joblib worker pool). Each time is the best of the run's repeats (2 in
the full run), the configurations interleaved within each repeat (the cores are shared, their
speed drifts), each in fresh results folders. Target: four tasks in one experiment take no
longer than the four run separately.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio, synthetic_store

TARGET_RATIO = 1.0
TASKS = {"t35": 0.35, "t20": 0.20, "t10": 0.10, "t05": 0.05}


def make_data(work: Path, n: int) -> tuple[Path, Path, str]:
    """Manifest with ``label:<task>`` columns + two synthetic stores carrying the first task."""
    from pipeline.manifest import Manifest, save_manifest

    dataset = f"benchtasks{n}"
    mpath = work / "manifests" / f"{dataset}.csv"
    root = work / "features"
    rng = np.random.default_rng(0)
    ids = [f"s{i:06d}" for i in range(n)]
    import pandas as pd

    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": [f"p{i // 2:06d}" for i in range(n)],
        "image_path": [f"{s}.png" for s in ids], "report_id": [f"p{i // 2:06d}" for i in range(n)],
        "findings": "", "impression": "", "report_text": "", "tags": "", "label": "",
        "label_source": "synthetic", "view": ""})
    for task, rate in TASKS.items():
        frame[f"label:{task}"] = np.where(rng.random(n) < rate, "1", "0")
    save_manifest(Manifest(dataset, frame, work / "images", {}), mpath)
    first = np.where(frame[f"label:{next(iter(TASKS))}"] == "1", "abnormal", "normal")
    for k, (key, dim, modality) in enumerate((("bench_img", 1280, "image"),
                                              ("bench_txt", 384, "text"))):
        if not (root / dataset / f"{key}.h5").exists():
            synthetic_store(root, dataset, key, ids, first, dim, seed=k, modality=modality)
    return mpath, root, dataset


def experiment(mpath: Path, root: Path, dataset: str, results: Path, tasks: list[str]) -> Any:
    from classify.config.experiment import experiment_from_dict

    return experiment_from_dict({
        "name": "benchtasks", "dataset": dataset, "manifest": str(mpath),
        "features_root": str(root), "results_root": str(results), "tasks": tasks,
        "stores": ["bench_img", "bench_txt"],
        "feature_sets": {"image": ["bench_img"], "text": ["bench_txt"],
                         "fused": ["bench_img", "bench_txt"]},
        "fusions": ["single", "concat"], "samplers": ["none"], "classifiers": ["logistic"],
        "cv": {"folds": 3, "repeats": 1, "seed": 0}, "n_jobs": 2,
        "params": {"fusion": {"single": {"reduce": "pca", "n_components": 64},
                              "concat": {"reduce": "pca", "n_components": 64}}},
    }, source="benchmarks.tasks")


def run(cfg: BenchConfig) -> BenchOutcome:
    from classify.run.benchmark import run_benchmark
    from classify.run.tasks import run_tasks, task_experiment

    t_start = time.perf_counter()
    n = cfg.size(400, 2000)
    work = cfg.work_dir / "tasks"
    shutil.rmtree(work / "results", ignore_errors=True)
    mpath, root, dataset = make_data(work, n)
    names = list(TASKS)
    # warm-up (imports, the joblib worker pool), not timed
    run_tasks(experiment(mpath, root, dataset, work / "results" / "warmup", names[:1]))
    wall: dict[int, float] = {}
    runs: dict[int, Any] = {}
    separate = float("inf")
    for rep in range(cfg.repeats):  # best of cfg.repeats, interleaved, fresh results folders
        for k in (1, 2, 4):
            exp = experiment(mpath, root, dataset, work / "results" / f"k{k}-{rep}", names[:k])
            t0 = time.perf_counter()
            run = run_tasks(exp)
            seconds = time.perf_counter() - t0
            if seconds < wall.get(k, float("inf")):
                wall[k], runs[k] = seconds, run
        t0 = time.perf_counter()
        for task in names:  # the same four tasks, each its own single-task experiment
            run_benchmark(task_experiment(experiment(
                mpath, root, dataset, work / "results" / f"separate-{rep}", names), task))
        separate = min(separate, time.perf_counter() - t0)
    rows = [(f"{k} task(s) in one experiment", k, len(runs[k].tasks[0].benchmark.cells),
             round(wall[k], 2), round(runs[k].shared_seconds, 2),
             ", ".join(f"{t.task} {t.seconds:.1f}s" for t in runs[k].tasks)) for k in (1, 2, 4)]
    rows.append(("the 4 tasks, each its own experiment", 4, len(runs[4].tasks[0].benchmark.cells),
                 round(separate, 2), "", "each opens and reads the stores itself"))
    per_task = (wall[4] - wall[1]) / 3
    ratio = wall[4] / separate
    rows.append(("per added task ((T4 - T1) / 3)", "", "", round(per_task, 2), "",
                 f"{per_task / (separate / 4):.2f} x a task of the separate runs"))
    table = BenchTable(
        "tasks", "Many tasks in one experiment: time per added task",
        ("run", "tasks", "cells per task", "wall_s", "shared_s", "per task"), tuple(rows),
        (f"{n} synthetic samples (2 per patient), stores 1280-d + 384-d, image / text / fused "
         "x single/concat (PCA 64) x logistic, 3 folds x 1 repeat, n_jobs 2; tasks' "
         f"prevalence {', '.join(f'{int(100 * v)}%' for v in TASKS.values())}.",
         "shared_s: opening (with the content-digest check) and reading the stores, once for "
         "all tasks."))
    ratios = [Ratio("tasks", "4 tasks in one experiment / each its own experiment", ratio,
                    f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO)]
    return BenchOutcome("tasks", (table,), tuple(ratios),
                        {"tasks.seconds_per_added_task": per_task},
                        time.perf_counter() - t_start)
