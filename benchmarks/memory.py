"""Benchmark 4: peak memory of extract and classify at 1x, 2x, 4x a base size.

Each measurement runs in a fresh subprocess (``python -m benchmarks.memory <stage> ...``)
that reports its own peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and that of
its waited-for children (DataLoader / joblib workers, ``RUSAGE_CHILDREN``) as JSON.

* extract: ``run_extract`` with efficientnet_lite0 on N demo images. Images stream
  through the DataLoader and the store is written in parts, so the peak must stay flat
  (target: peak(4x) / peak(1x) <= 1.10).
* classify: ``run_benchmark`` (fused concat, SMOTE, logistic, 3 folds, n_jobs=1) on N
  synthetic demo-shaped samples. The feature matrix is held in memory, so its peak grows
  with N (reported, no target).
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio, demo_manifest

log = logging.getLogger(__name__)

TARGET_FLAT = 1.10


def _peaks_mb() -> tuple[float, float]:
    """(peak RSS of this process, largest peak of its waited-for children) in MB.

    Linux: VmHWM from /proc/self/status (``ru_maxrss`` survives ``execve`` and would report
    the parent's RSS at fork time). Children: ``RUSAGE_CHILDREN`` (forked DataLoader
    workers share pages with this process, so this is an upper bound).
    """
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                self_mb = int(line.split()[1]) / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return self_mb, child_mb


def _child_extract(work: Path, n_reports: int, n: int, batch: int) -> dict[str, float]:
    from extract.runner import run_extract

    manifest = demo_manifest(work, n_reports)
    root = work / f"features-mem-{n}"
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    s = run_extract(manifest, "efficientnet_lite0", root, batch_size=batch, device="cpu", limit=n,
                    progress=False)
    shutil.rmtree(root, ignore_errors=True)
    return {"n": float(s.n_embedded), "seconds": time.perf_counter() - t0}


def _child_classify(work: Path, n: int) -> dict[str, float]:
    from benchmarks.classify_grid import experiment, make_data
    from classify.run.benchmark import run_benchmark

    mpath, root, dataset = make_data(work, n)
    results = work / f"results-mem-{n}"
    shutil.rmtree(results, ignore_errors=True)
    exp = experiment(mpath, root, dataset, results, stores=["bench_img", "bench_txt"],
                     feature_sets={"fused": ["bench_img", "bench_txt"]},
                     classifiers=["logistic"], folds=3, repeats=1, n_jobs=1)
    t0 = time.perf_counter()
    res = run_benchmark(exp, n_jobs=1)
    shutil.rmtree(results, ignore_errors=True)
    return {"n": float(res.data.n_samples), "seconds": time.perf_counter() - t0}


def _measure(stage: str, work: Path, n: int, n_reports: int, batch: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "benchmarks.memory", stage, str(work), str(n), str(n_reports),
           str(batch)]
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(cfg: BenchConfig) -> BenchOutcome:
    t_start = time.perf_counter()
    n_reports = cfg.size(72, 300)
    demo_manifest(cfg.work_dir, n_reports)  # built once, before the children run
    batch = cfg.size(4, 16)  # the base size is 2 batches, so every size runs full batches
    plan = (("extract", 2 * batch), ("classify", cfg.size(250, 500)))
    rows, ratios, costs = [], [], {}
    for stage, base in plan:
        work = cfg.work_dir if stage == "extract" else cfg.work_dir / "classify-mem"
        peaks = []
        for mult in (1, 2, 4):
            m = _measure(stage, work, base * mult, n_reports, batch)
            peaks.append(m["self_mb"])
            rows.append((stage, f"{mult}x", int(m["n"]), round(m["self_mb"], 1),
                         round(m["children_mb"], 1), round(m["seconds"], 1)))
        growth = peaks[-1] / peaks[0]
        costs[f"{stage}.peak_mb_1x"], costs[f"{stage}.peak_mb_4x"] = peaks[0], peaks[-1]
        costs[f"{stage}.mb_per_item"] = (peaks[-1] - peaks[0]) / (3 * base)
        if stage == "extract":
            ratios.append(Ratio("memory", "extract peak RSS 4x / 1x", growth, f"<= {TARGET_FLAT}",
                                growth <= TARGET_FLAT))
        else:
            ratios.append(Ratio("memory", "classify peak RSS 4x / 1x", growth, "(reported)", None))
    notes = (
        f"extract: efficientnet_lite0, batch {batch}, base = 2 batches; classify: fused concat "
        "+ SMOTE + logistic, 3 folds, n_jobs=1.",
        "peak RSS of the measuring subprocess (MB); children = largest waited-for child "
        "(DataLoader decode workers for extract).",
        f"classify grows by ~{costs['classify.mb_per_item'] * 1000:.1f} MB per 1,000 samples "
        "here (feature matrix in float32 + float64 per-task copies + SMOTE output + OOF "
        "tables); extract grows by "
        f"~{costs['extract.mb_per_item'] * 1000:.1f} MB per 1,000 images.",
    )
    table = BenchTable("memory", "Peak memory (RSS) at 1x / 2x / 4x",
                       ("stage", "size", "n", "peak_rss_mb", "children_peak_mb", "seconds"),
                       tuple(rows), notes)
    return BenchOutcome("memory", (table,), tuple(ratios), costs, time.perf_counter() - t_start)


def main(argv: list[str]) -> int:
    stage, work, n, n_reports, batch = (argv[0], Path(argv[1]), int(argv[2]), int(argv[3]),
                                        int(argv[4]))
    logging.basicConfig(level=logging.WARNING)
    if stage == "extract":
        info = _child_extract(work, n_reports, n, batch)
    elif stage == "classify":
        info = _child_classify(work, n)
    else:
        raise SystemExit(f"unknown stage {stage!r}; use extract or classify")
    self_mb, child_mb = _peaks_mb()
    sys.stdout.write(json.dumps({**info, "self_mb": self_mb, "children_mb": child_mb}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
