"""Benchmark 7: the classify grid's cost curve to 60k rows and a MIMIC-size projection.

Synthetic rows with the demo's dimensions (image 1,280-d like EfficientNet-Lite0, text 384-d
like MiniLM; low-rank "embedding" rows, 35 % positive, 2 rows per patient) at n = 3,734 (the
demo), 15,000 and 60,000. One task of the grid is measured as the grid runs it
(:mod:`classify.run.split_runner`): on a 2-fold split (the MIMIC plan's 5x2 CV trains on half
the rows) the demo's pipeline prefix is fitted on the training half (fusion -> scaler -> SMOTE),
the test half is transformed, then each classifier is fitted on the prefix's output and
predicts the test half. Per row of ``scale_grid.csv``:

* ``fit_s``    CPU seconds of one task (fit on n/2 rows + predict_proba on n/2 rows), best
  of ``repeats`` (2 below 60k, 1 at 60k: the budget of a 2-core machine). The task runs on
  one BLAS/OpenMP/torch thread, as in the grid, so its CPU time is what it costs a core of its
  own; on a shared machine that is far steadier than wall time (``wall_s``, also given);
* ``peak_mb``  the extra resident memory of that fit + predict (the process's VmHWM, reset
  before it, minus its RSS before it; Linux; the input matrix itself is not counted);
* ``exponent`` b of ``fit_s ~ n^b``, least squares on log-log over the three sizes;
* the projection of a MIMIC-CXR-size experiment: 227,835 studies x 14 tasks x 10 splits
  (5x2 CV) x the demo grid's 4 cells per classifier (image/single, text/single, fused/concat,
  fused/attention); the classifier rows are measured on the fused/concat prefix's output
  (128 columns, as every prefix of the demo gives the classifier 64-128 columns), the
  ``prefix:*`` rows are the per-split prefixes the classifiers share. Core-seconds =
  tasks x ``fit_s`` x (227,835 / n_max)^b (``projection_exponent``: b, except 1 for
  ``knn_capped``, whose cap is reached only at 60k); wall time on c cores = core-seconds / (c x the
  parallel efficiency measured by the classify benchmark on 2 cores, 0.85 when not run).
  The 16-core figure ASSUMES that efficiency holds and that memory is not the limit
  (227,835 x 1,664 float32 = 1.5 GB per worker holding X).

Scalable options are measured the same way next to the defaults: ``knn_capped`` (kNN on at
most 20,000 training rows, :mod:`classify.models.classifiers`) and ``random_forest`` with
``max_samples = 0.2`` (each tree's bootstrap draws a fifth of the rows; set under
``[params.classifier.random_forest]``).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio

log = logging.getLogger(__name__)

SIZES = (3_734, 15_000, 60_000)
QUICK_SIZES = (1_000, 2_000, 4_000)
IMAGE_DIM, TEXT_DIM = 1280, 384
MIMIC_STUDIES, MIMIC_TASKS, MIMIC_SPLITS = 227_835, 14, 10
CELLS_PER_CLASSIFIER = 4  # image/single, text/single, fused/concat, fused/attention
DEFAULT_EFFICIENCY = 0.85  # the measured n_jobs=2 efficiency, when classify did not run
CLASSIFIERS = ("logistic", "knn", "decision_tree", "random_forest", "xgboost", "gbdt", "mlp",
               "voting_soft")
#: The scalable options, measured next to the defaults: label -> (classifier, parameters).
SCALABLE = {"knn_capped": ("knn_capped", {}),
            "random_forest(max_samples=0.2)": ("random_forest", {"max_samples": 0.2})}
# The demo's fusion parameters (experiments/demo.toml).
FUSION_PARAMS = {"single": {"reduce": "pca", "n_components": 128},
                 "concat": {"reduce": "pca", "n_components": 128},
                 "attention": {"dim": 64, "epochs": 60}}
PREFIXES = (("image", "single"), ("text", "single"), ("fused", "concat"), ("fused", "attention"))
#: One measurement: (name, CPU seconds, extra peak MB, ROC AUC, wall seconds).
Row = tuple[str, float, float, float, float]
COLUMNS = ("n", "classifier", "fit_s", "peak_mb", "exponent", "wall_s", "repeats",
           "projection_exponent", "mimic_core_h", "mimic_wall_h_2cores", "mimic_wall_h_16cores")
#: Growth used for the projection where the fitted one does not hold beyond the largest n:
#: with its training rows capped (20,000; reached only at 60k here), kNN's fit is constant
#: and its prediction linear in the test rows.
PROJECTION_EXPONENT = {"knn_capped": 1.0}


# --------------------------------------------------------------------------- memory
def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _release_freed() -> None:
    """Give freed heap pages back to the OS (glibc), so the RSS before a fit is not inflated
    by memory a previous fit freed but the allocator kept (the fit would reuse it unseen)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(best CPU seconds, best wall seconds, largest extra peak RSS in MB) of ``repeats``
    calls of ``fn``. The task runs on one thread, so its CPU time is its cost on a core of
    its own; wall time also counts the time other processes held the core."""
    best_cpu, best_wall, peak = math.inf, math.inf, float("nan")
    for _ in range(max(1, repeats)):
        _release_freed()
        base = _status_mb("VmRSS")
        ok = _reset_peak()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        if ok:
            extra = max(0.0, _status_mb("VmHWM") - base)
            peak = extra if math.isnan(peak) else max(peak, extra)
    return best_cpu, best_wall, peak


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# --------------------------------------------------------------------------- data
def demo_rows(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` demo-shaped rows (float32, image columns then text), labels, patient groups."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    X = np.empty((n, IMAGE_DIM + TEXT_DIM), dtype=np.float32)
    for start, dim in ((0, IMAGE_DIM), (IMAGE_DIM, TEXT_DIM)):
        k = 32
        W = rng.standard_normal((k, dim)) / np.sqrt(k)
        for lo in range(0, n, 10_000):  # chunks: no n x dim float64 temporary
            hi = min(n, lo + 10_000)
            Z = rng.standard_normal((hi - lo, k))
            Z[:, :4] += 0.5 * y[lo:hi, None]
            X[lo:hi, start:start + dim] = Z @ W + 0.7 * rng.standard_normal((hi - lo, dim))
    groups = np.arange(n) // 2
    return X, y, groups


def two_fold(y: np.ndarray, groups: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first split of a patient-grouped stratified 2-fold plan (train, test)."""
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed)
    return next(cv.split(np.zeros((len(y), 1)), y, groups))


# --------------------------------------------------------------------------- one size
def _spec(feature_set: str, fusion: str, classifier: str) -> Any:
    from classify.results.types import CellSpec

    stores = {"image": ("img",), "text": ("txt",), "fused": ("img", "txt")}[feature_set]
    modalities = tuple({"img": "image", "txt": "text"}[s] for s in stores)
    return CellSpec(feature_set, stores, modalities, fusion, "smote", classifier,
                    {"fusion": FUSION_PARAMS[fusion]})


def _blocks(feature_set: str) -> tuple[tuple[str, int, int], ...]:
    return {"image": (("img", 0, IMAGE_DIM),), "text": (("txt", 0, TEXT_DIM),),
            "fused": (("img", 0, IMAGE_DIM), ("txt", IMAGE_DIM, IMAGE_DIM + TEXT_DIM))}[
        feature_set]


def _columns(feature_set: str) -> slice:
    return {"image": slice(0, IMAGE_DIM), "text": slice(IMAGE_DIM, IMAGE_DIM + TEXT_DIM),
            "fused": slice(0, IMAGE_DIM + TEXT_DIM)}[feature_set]


def fit_prefix(pipe: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit every step but the classifier as ``Pipeline.fit`` does; transform the test rows."""
    Xt, yt = Xtr, ytr
    for _, step in pipe.steps[:-1]:
        if hasattr(step, "fit_resample"):
            Xt, yt = step.fit_resample(Xt, yt)
        else:
            Xt = step.fit_transform(Xt, yt)
    Xe = Xte
    for _, step in pipe.steps[:-1]:
        if not hasattr(step, "fit_resample"):
            Xe = step.transform(Xe)
    return Xt, yt, Xe


def measure_size(n: int, classifiers: Sequence[str], prefixes: Sequence[tuple[str, str]],
                 repeats: int, *, seed: int = 0) -> list[Row]:
    """(name, fit_s, peak_mb, auc) per prefix and classifier at ``n`` rows (the task's
    columns as float64 and one BLAS/OpenMP thread, as :mod:`classify.run.cell_task` runs it)."""
    from threadpoolctl import threadpool_limits

    X, y, groups = demo_rows(n, seed=seed)
    train, test = two_fold(y, groups, seed)
    with threadpool_limits(limits=1):  # one BLAS/OpenMP thread per task, as the grid runs it
        return _measure_split(X, y, train, test, classifiers, prefixes, repeats, seed)


def _measure_split(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                   classifiers: Sequence[str], prefixes: Sequence[tuple[str, str]],
                   repeats: int, seed: int) -> list[Row]:
    from sklearn.metrics import roc_auc_score

    from classify.models.cell_pipeline import build_pipeline

    out: list[Row] = []
    shared: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for feature_set, fusion in prefixes:
        cols = _columns(feature_set)
        Xtr = np.asarray(X[train, cols], dtype=np.float64)
        Xte = np.asarray(X[test, cols], dtype=np.float64)
        pipe = build_pipeline(_spec(feature_set, fusion, "logistic"), _blocks(feature_set),
                              random_state=seed)
        box: list[Any] = []

        def run_prefix(pipe: Any = pipe, Xtr: np.ndarray = Xtr, Xte: np.ndarray = Xte,
                       box: list[Any] = box) -> None:
            from sklearn.base import clone

            box[:] = [fit_prefix(clone(pipe), Xtr, y[train], Xte)]

        t, wall, mb = measure(run_prefix, repeats)
        out.append((f"prefix:{feature_set}/{fusion}", t, mb, float("nan"), wall))
        log.info("n=%d prefix %s/%s: %.2f CPU s (%.2f s wall), +%.0f MB", len(y), feature_set,
                 fusion, t, wall, mb)
        if (feature_set, fusion) == ("fused", "concat"):
            shared = box[0]
    if shared is None:
        raise ValueError("the fused/concat prefix is needed for the classifier rows")
    Xt, yt, Xe = shared
    from classify.models.classifiers import build_classifier

    for name in classifiers:
        clf, params = SCALABLE.get(name, (name, {}))
        proba: list[np.ndarray] = []

        def run_clf(clf: str = clf, params: dict = params, proba: list[np.ndarray] = proba
                    ) -> None:
            est = build_classifier(clf, random_state=seed, **params)
            est.fit(Xt, yt)
            proba[:] = [est.predict_proba(Xe)[:, 1]]

        t, wall, mb = measure(run_clf, repeats)
        auc = float(roc_auc_score(y[test], proba[0]))
        out.append((name, t, mb, auc, wall))
        log.info("n=%d %s: %.2f CPU s (%.2f s wall), +%.0f MB, auc %.3f", len(y), name, t, wall,
                 mb, auc)
    return out


# --------------------------------------------------------------------------- the curve
def growth_exponent(ns: Sequence[float], ts: Sequence[float]) -> float:
    """Least-squares slope of log t on log n (nan with < 2 finite points)."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(ns, ts, strict=True) if t > 0]
    if len(pts) < 2:
        return float("nan")
    a = np.asarray(pts)
    return float(np.polyfit(a[:, 0], a[:, 1], 1)[0])


def project(fit_s: float, n: int, exponent: float, *, tasks: float) -> float:
    """Core-seconds of ``tasks`` tasks at MIMIC size from one task's ``fit_s`` at ``n`` rows."""
    return tasks * fit_s * (MIMIC_STUDIES / n) ** exponent


def curve_rows(measured: dict[int, list[Row]], efficiency: float,
               repeats_at: dict[int, int]) -> tuple[tuple[Any, ...], ...]:
    """Rows of ``scale_grid.csv``: every (n, classifier) plus the exponent and projections
    (from the largest n) on the largest-n row of each classifier."""
    sizes = sorted(measured)
    names = [r[0] for r in measured[sizes[0]]]
    rows = []
    for name in names:
        ts = [next(r[1] for r in measured[n] if r[0] == name) for n in sizes]
        b = growth_exponent(sizes, ts)
        tasks = MIMIC_TASKS * MIMIC_SPLITS * (1 if name.startswith("prefix:")
                                              else CELLS_PER_CLASSIFIER)
        for n in sizes:
            r = next(r for r in measured[n] if r[0] == name)
            b_proj = PROJECTION_EXPONENT.get(name, b)
            if n == sizes[-1] and math.isfinite(b_proj):
                core_s = project(r[1], n, b_proj, tasks=tasks)
                proj = (round(b_proj, 2), round(core_s / 3600, 2),
                        round(core_s / (2 * efficiency) / 3600, 2),
                        round(core_s / (16 * efficiency) / 3600, 2))
            else:
                proj = ("", "", "", "")
            rows.append((n, name, round(r[1], 3), round(r[2], 1), round(b, 2),
                         round(r[4], 3), repeats_at[n], *proj))
    return tuple(rows)


#: Classifiers whose grid cost is not their own fits: the soft vote reuses the fitted members
#: that are also cells of the grid (classify/run/split_runner.py), so its grid cost is ~0.
REUSES_MEMBERS = ("voting_soft",)


def run(cfg: BenchConfig, costs: dict[str, float] | None = None) -> BenchOutcome:
    t_start = time.perf_counter()
    sizes = QUICK_SIZES if cfg.quick else SIZES
    classifiers = CLASSIFIERS + tuple(SCALABLE)
    efficiency = (costs or {}).get("classify.efficiency_2", DEFAULT_EFFICIENCY)
    load = _load()
    measured: dict[int, list[Row]] = {}
    repeats_at: dict[int, int] = {}
    for n in sizes:
        repeats_at[n] = 1 if n >= 60_000 else cfg.repeats
        print(f"   n={n:,} ...", flush=True)
        measured[n] = measure_size(n, classifiers, PREFIXES, repeats_at[n])
    return outcome(measured, repeats_at, efficiency, load, time.perf_counter() - t_start)


def outcome(measured: dict[int, list[Row]], repeats_at: dict[int, int], efficiency: float,
            load: float, seconds: float = 0.0) -> BenchOutcome:
    """The tables and ratios of measured rows (also rebuilt from saved CSVs: :func:`load_csv`)."""
    sizes = sorted(measured)
    names = [r[0] for r in measured[sizes[0]]]
    rows = curve_rows(measured, efficiency, repeats_at)
    # the demo grid: its 4 prefixes and 8 classifiers, less the soft vote's reused fits (and
    # not the scalable options)
    core_h = COLUMNS.index("mimic_core_h")
    total = sum(float(r[core_h]) for r in rows if r[core_h] != "" and r[1] not in SCALABLE
                and r[1] not in REUSES_MEMBERS)
    notes = (
        f"Synthetic demo-shaped rows ({IMAGE_DIM}+{TEXT_DIM} columns, 35 % positive); one task "
        "= fit on n/2 rows (SMOTE inside) + predict n/2 rows, on the fused/concat prefix's "
        "128 columns for classifiers; prefix:* = fusion + scaler + SMOTE fit and test transform.",
        f"fit_s: CPU seconds of the single-threaded task, best of "
        f"{', '.join(f'{repeats_at[n]} at {n:,}' for n in sizes)} (fewer at 60k: the budget of "
        "this shared 2-core machine); wall_s is the same task's wall time, inflated when other "
        f"processes share the cores (load average at the start {load:.1f}). peak_mb: extra "
        "VmHWM over the RSS before the task.",
        f"mimic_*: {MIMIC_STUDIES:,} studies x {MIMIC_TASKS} tasks x {MIMIC_SPLITS} splits "
        f"(5x2 CV) x {CELLS_PER_CLASSIFIER} cells per classifier (1 per prefix), extrapolated "
        "from the largest n with projection_exponent (the fitted one, except knn_capped: 1.0, "
        "its training rows are capped at 20,000, reached only at 60k, so beyond it only the "
        f"test rows grow); wall = core-h / (cores x {efficiency:.2f} efficiency, measured on 2 "
        "cores, assumed on 16).",
        f"Whole demo grid (4 prefixes + 8 default classifiers; voting_soft measured alone but "
        f"free in the grid, which reuses its members' fits) at MIMIC size: {total:,.0f} "
        f"core-h = {total / (2 * efficiency):,.0f} h on 2 cores, "
        f"{total / (16 * efficiency):,.0f} h on 16 cores.",
    )
    table = BenchTable("scale_grid", "Classify grid cost curve and MIMIC-size projection",
                       COLUMNS, rows, notes)
    auc_rows = tuple((n, r[0], round(r[3], 4)) for n in sizes for r in measured[n]
                     if not r[0].startswith("prefix:"))
    auc_table = BenchTable("scale_grid_auc", "ROC AUC of the measured task (same split)",
                           ("n", "classifier", "roc_auc"), auc_rows,
                           ("Synthetic rows: the AUCs only show that a scalable option "
                            "scores like its default on the same split.",))
    ratios = []
    big = sizes[-1]
    for fast, slow in (("knn_capped", "knn"), ("random_forest(max_samples=0.2)", "random_forest")):
        if fast in names and slow in names:
            t_fast = next(r[1] for r in measured[big] if r[0] == fast)
            t_slow = next(r[1] for r in measured[big] if r[0] == slow)
            ratios.append(Ratio("scale", f"{slow} / {fast} seconds at n={big:,}",
                                t_slow / t_fast, "", None))
    return BenchOutcome("scale_grid", (table, auc_table), tuple(ratios),
                        {"scale_grid.mimic_core_h": total}, seconds)


def load_csv(out_dir: Path) -> tuple[dict[int, list[Row]], dict[int, int]]:
    """The measurements saved in ``scale_grid.csv`` + ``scale_grid_auc.csv`` under ``out_dir``."""
    import csv

    with open(out_dir / "scale_grid_auc.csv") as fh:
        aucs = {(int(r["n"]), r["classifier"]): float(r["roc_auc"]) for r in csv.DictReader(fh)}
    measured: dict[int, list[Row]] = {}
    repeats_at: dict[int, int] = {}
    with open(out_dir / "scale_grid.csv") as fh:
        for r in csv.DictReader(fh):
            n = int(r["n"])
            repeats_at[n] = int(r["repeats"])
            measured.setdefault(n, []).append(
                (r["classifier"], float(r["fit_s"]), float(r["peak_mb"]),
                 aucs.get((n, r["classifier"]), float("nan")), float(r["wall_s"])))
    return measured, repeats_at
