"""What verifying a store costs: seconds per GB to check and re-hash a store on open.

Writes one synthetic store (1 GB full run, 16 MB quick; 1280-d float32 rows like
EfficientNet-Lite0), then times ``FeatureStore(path)`` with full verification (attributes,
shapes, finite values, SHA-256 content digest) against the metadata-only open. The file was
just written, so it is read from the page cache: a cold read adds the disk's read time.
"""

from __future__ import annotations

import shutil
import time

import numpy as np

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio, best_seconds

DIM = 1280
BATCH = 8192
TARGET_S_PER_GB = 5.0  # a 4 GB store verifies in under 20 s


def run(cfg: BenchConfig) -> BenchOutcome:
    from pipeline.store.feature_store import FeatureStore, StoreWriter, store_path

    t_start = time.perf_counter()
    mb = cfg.size(16, 1024)
    n = mb * (1 << 20) // (4 * DIM)
    root = cfg.work_dir / "verify"
    path = store_path(root, "verify", "synthetic1280")
    prov = {"encoder_key": "synthetic1280", "modality": "image", "architecture": "synthetic",
            "weights_name": "synthetic", "weights_sha256": "", "dim": DIM, "layers": [],
            "preprocessing": {}, "trained_on": [], "dataset": "verify"}
    rng = np.random.default_rng(0)
    block = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    with StoreWriter(path, prov) as w:
        for start in range(0, n, BATCH):
            ids = [f"s{i:08d}" for i in range(start, min(start + BATCH, n))]
            w.add(ids, {"X": block[: len(ids)] + np.float32(start)})
            w.flush()
    write_s = time.perf_counter() - t0
    gb = path.stat().st_size / 1e9
    verify_s, _ = best_seconds(lambda: FeatureStore(path, verify=True), cfg.repeats)
    meta_s, _ = best_seconds(lambda: FeatureStore(path, verify=False), cfg.repeats)
    assert FeatureStore(path).verified
    shutil.rmtree(root, ignore_errors=True)
    per_gb = verify_s / gb
    table = BenchTable(
        "store_verify", "Store verification on open (SHA-256 content digest)",
        ("store GB", "rows", "dim", "verify s", "s per GB", "metadata-only open s",
         "write + finalise s"),
        ((round(gb, 3), n, DIM, round(verify_s, 3), round(per_gb, 2), round(meta_s, 3),
          round(write_s, 1)),),
        ("warm page cache (the store was just written); a cold read adds the disk's read time",
         "classify, report and a resuming extract verify every store they open once per run"),
    )
    ratio = Ratio("verify", "seconds per GB to verify a store on open", per_gb,
                  f"<= {TARGET_S_PER_GB:g} (4 GB in < 20 s)", per_gb <= TARGET_S_PER_GB)
    return BenchOutcome("verify", (table,), (ratio,), {"verify_s_per_gb": per_gb},
                        time.perf_counter() - t_start)
