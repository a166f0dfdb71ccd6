"""Benchmark 5: projected wall time for 10k / 100k / 1M items from measured per-item costs.

Measured here (this run): pipeline throughput per encoder on this CPU box (the faster
backend), single-core decode+preprocess rates for demo-size (256^2) and chest-film-size
(2048^2) PNGs and 2,500 x 3,000 JPEG films (reduced-size decode), and the shard-merge
rate of :func:`extract.distributed.merge_shards`.

ASSUMED (not measured, no GPU on this machine; override on the command line):
* GPU forward throughput of one H100 (fp16 autocast, channels-last, batch 256, PyTorch
  eager): efficientnet_lite0 ~8,000 img/s, resnet50 ~3,000 img/s, MiniLM-L6 ~4,000
  reports/s. These are order-of-magnitude figures in line with published PyTorch
  inference numbers for A100/H100-class GPUs; measure them with ``pipeline extract
  --device cuda`` before relying on them;
* a GPU box has 16 CPU cores, 14 of them decoding images (DataLoader workers);
* a Dask CPU worker is a box like this one; workers scale linearly except for the
  serial merge at the end and the model load per worker.

GPU pipeline rate = min(GPU forward, decode cores x single-core decode rate): at real
chest-film sizes the GPU is decode-bound unless images are pre-resized once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio

log = logging.getLogger(__name__)

SIZES = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Assumptions:
    """Throughputs that cannot be measured on this machine (see the module docstring)."""

    gpu_forward: tuple[tuple[str, float], ...] = (
        ("efficientnet_lite0", 8000.0), ("resnet50", 3000.0), ("minilm", 4000.0))
    gpu_decode_cores: int = 14
    dask_cpu_workers: tuple[int, ...] = (8, 32)
    dask_gpu_workers: int = 4
    model_load_s: float = 5.0


def merge_rate(work: Path, rows: int) -> float:
    """Rows/s of merge_shards for 2 shards of efficientnet_lite0-shaped rows (1280 + 40 + 112)."""
    import shutil

    from extract.distributed import merge_shards
    from pipeline.store.feature_store import StoreWriter

    shutil.rmtree(work, ignore_errors=True)
    rng = np.random.default_rng(0)
    prov = {"encoder_key": "m", "modality": "image", "architecture": "bench", "weights_name": "b",
            "weights_sha256": "", "dim": 1280, "layers": ["stage3", "stage5"],
            "preprocessing": {}, "trained_on": []}
    shards = []
    for k in range(2):
        path = work / f"shard-{k}" / "d" / "m.h5"
        ids = [f"k{k}-{i:07d}" for i in range(rows // 2)]
        with StoreWriter(path, prov) as w:
            for s in range(0, len(ids), 1024):
                part = ids[s : s + 1024]
                w.add(part, {"X": rng.standard_normal((len(part), 1280), dtype=np.float32),
                             "stage3": rng.standard_normal((len(part), 40), dtype=np.float32),
                             "stage5": rng.standard_normal((len(part), 112), dtype=np.float32)})
        shards.append(path)
    t0 = time.perf_counter()
    merge_shards(shards, work / "main" / "d" / "m.h5")
    rate = rows / (time.perf_counter() - t0)
    shutil.rmtree(work, ignore_errors=True)
    return rate


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def run(cfg: BenchConfig, costs: dict[str, float], assumptions: Assumptions = Assumptions()
        ) -> BenchOutcome:
    t_start = time.perf_counter()
    m_rate = merge_rate(cfg.work_dir / "merge-bench", cfg.size(2000, 8000))
    gpu = dict(assumptions.gpu_forward)
    dec_small = costs.get("decode_img_s_core.256", float("nan"))
    dec_large = costs.get("decode_img_s_core.2048", float("nan"))
    dec_jpeg = costs.get("decode_img_s_core.jpeg2500_draft", float("nan"))
    workloads: list[tuple[str, float, float, bool]] = []  # label, cpu rate, gpu forward, image?
    for name in ("efficientnet_lite0", "resnet50"):
        cpu = costs.get(f"{name}.pipeline_img_s", 0.0)  # the faster backend of this run
        if cpu > 0:
            workloads.append((name, cpu, gpu[name], True))
    if costs.get("minilm.pipeline_reports_s"):
        workloads.append(("minilm (reports)", costs["minilm.pipeline_reports_s"], gpu["minilm"],
                          False))
    rows = []
    for label, cpu_rate, gpu_fwd, is_image in workloads:
        sizes = (("256px", dec_small), ("2048px PNG", dec_large),
                 ("2500x3000 JPEG", dec_jpeg))
        for size_label, dec in (sizes if is_image else (("text", float("inf")),)):
            if np.isnan(dec):  # that decode rate was not measured in this run
                continue
            gpu_rate = min(gpu_fwd, assumptions.gpu_decode_cores * dec)
            bound = "decode" if gpu_rate < gpu_fwd else "GPU"
            # the 2-core box decodes on the same cores as the forward pass: add decode core-time
            extra = 0.5 / dec - 0.5 / dec_small if is_image else 0.0  # 256px decode is measured
            box_rate = 1.0 / (1.0 / cpu_rate + max(0.0, extra))
            for n in SIZES:
                merge = n / m_rate
                one_cpu = n / box_rate
                one_gpu = assumptions.model_load_s + n / gpu_rate
                row = [label, size_label if is_image else "", f"{n:,}", human(one_cpu),
                       f"{human(one_gpu)} ({bound}-bound)"]
                for w in assumptions.dask_cpu_workers:
                    row.append(human(assumptions.model_load_s + n / (w * box_rate) + merge))
                g = assumptions.dask_gpu_workers
                row.append(human(assumptions.model_load_s + n / (g * gpu_rate) + merge))
                rows.append(tuple(row))
    cols = ("workload", "image size", "items", "1 CPU box (this, measured)",
            "1 GPU (H100, assumed)",
            *(f"{w} Dask CPU workers" for w in assumptions.dask_cpu_workers),
            f"{assumptions.dask_gpu_workers} Dask GPU workers")
    notes = (
        f"measured: merge_shards {m_rate:,.0f} rows/s (lite0-shaped rows, serial, included in "
        f"every Dask column); decode+preprocess per core {dec_small:,.0f} img/s (256px PNG), "
        f"{dec_large:,.1f} img/s (2048px PNG), {dec_jpeg:,.1f} img/s (2500x3000 JPEG, "
        "reduced-size decode).",
        "CPU box at 256px = measured pipeline rate; at 2048px the decode core-time "
        "(measured) is added, since decode and forward share the 2 cores. The GPU column is "
        "decode-bound at 2048px: pre-resize images to <= 512px once (or decode on the GPU).",
        "ASSUMED (see benchmarks/scale_model.py): H100 forward img/s "
        + ", ".join(f"{k} {v:,.0f}" for k, v in gpu.items())
        + f"; {assumptions.gpu_decode_cores} decode cores per GPU box; linear Dask scaling "
          f"plus {assumptions.model_load_s:.0f} s model load per worker.",
    )
    table = BenchTable("scale_model", "Projected wall time (measured per-item costs x assumptions)",
                       cols, tuple(rows), notes)
    return BenchOutcome("scale", (table,), (Ratio("scale", "merge_shards rows/s", m_rate, "", None),),
                        {"merge_rows_s": m_rate}, time.perf_counter() - t_start)


def assumptions_from(args: Any) -> Assumptions:
    """Assumptions with command-line overrides (``--gpu-img-s name=rate``)."""
    base = Assumptions()
    gpu = dict(base.gpu_forward)
    for item in getattr(args, "gpu_img_s", None) or []:
        name, _, value = item.partition("=")
        gpu[name] = float(value)
    return Assumptions(gpu_forward=tuple(gpu.items()), gpu_decode_cores=base.gpu_decode_cores,
                       dask_cpu_workers=base.dask_cpu_workers,
                       dask_gpu_workers=base.dask_gpu_workers, model_load_s=base.model_load_s)
