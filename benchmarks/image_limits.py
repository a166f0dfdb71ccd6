"""Where an encoder's FLOPs go and how fast ONNX Runtime runs each kind of convolution.

The FLOP limit (FLOPs per image at the cores' sgemm rate) assumes every FLOP runs at matrix-
multiply speed. For a depthwise-separable CNN that is not so: a depthwise convolution does
k*k multiply-adds per value it reads, so it is bound by memory bandwidth, not by the FMA
units. This module measures, in the benchmark's own run:

* the FLOPs of each kind of layer (``1x1`` pointwise convolutions, ``depthwise``, other
  ``kxk dense`` convolutions, ``linear``) from forward hooks on the torch model (2 per
  multiply-add, as ``torch.utils.flop_counter`` counts);
* the share of ONNX Runtime's kernel time per kind (its own profiler, on the optimised graph
  it really runs, micro-batches included), hence each kind's GFLOP/s and fraction of sgemm.

Only CPU tools are used (torch hooks, ONNX Runtime's profiler, the ``onnx`` package).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("1x1", "depthwise", "kxk dense", "linear", "other")


def _kind(groups: int, kernel: tuple[int, ...]) -> str:
    if groups > 1:
        return "depthwise"
    return "1x1" if all(k == 1 for k in kernel) else "kxk dense"


def flops_by_kind(enc: Any) -> dict[str, float]:
    """FLOPs of one image (batch 1) per layer kind, from hooks on Conv2d / Linear modules."""
    import torch

    totals: Counter[str] = Counter()

    def hook(mod: Any, _inp: Any, out: Any) -> None:
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            totals[_kind(mod.groups, mod.kernel_size)] += 2 * out.numel() * (
                mod.in_channels // mod.groups) * k
        elif isinstance(mod, torch.nn.Linear):
            totals["linear"] += 2 * out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in enc.model.modules()
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    try:
        c, s = enc.preprocess.channels, enc.preprocess.size
        with torch.inference_mode():
            enc.model(torch.zeros(1, c, s, s))
    finally:
        for h in handles:
            h.remove()
    return {k: float(totals.get(k, 0)) for k in KINDS}


def ort_seconds_by_kind(onnx_path: Path, threads: int, micro_batch: int,
                        runs: int = 20) -> tuple[dict[str, float], float]:
    """Kernel seconds per image by layer kind on ONNX Runtime (its profiler), and the summed
    kernel seconds per image. Nodes are classified from the optimised graph ORT runs."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        shape = [micro_batch, *session.get_inputs()[0].shape[1:]]
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        name = session.get_inputs()[0].name
        session.run(None, {name: x})  # warm-up, profiled too: skipped below by run index
        for _ in range(runs):
            session.run(None, {name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(str(Path(tmp) / "optimised.onnx")).graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer}
    kind_of = {}
    for node in graph.node:
        if node.op_type == "Conv":
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            dims = weights.get(node.input[1], (0, 0, 3, 3))
            kind_of[node.name] = _kind(groups, tuple(dims[2:]))
        elif node.op_type in ("Gemm", "MatMul"):
            kind_of[node.name] = "linear"
    runs_seen: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for ev in events:
        if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
            continue
        node = ev["name"][: -len("_kernel_time")]
        runs_seen[node] += 1
        if runs_seen[node] == 1:
            continue  # the warm-up call
        seconds[kind_of.get(node, "other")] += ev["dur"] * 1e-6
    per_image = {k: seconds.get(k, 0.0) / (runs * micro_batch) for k in KINDS}
    return per_image, sum(per_image.values())


@dataclass(frozen=True)
class KindRow:
    kind: str
    gflop: float
    flop_share: float
    time_share: float
    gflops: float
    of_sgemm: float


def kind_rows(flops: dict[str, float], seconds: dict[str, float], sgemm_gflops: float
              ) -> list[KindRow]:
    """One row per layer kind present: FLOPs, shares, achieved GFLOP/s and its sgemm fraction."""
    total_f, total_s = sum(flops.values()) or 1.0, sum(seconds.values()) or 1.0
    rows = []
    for k in KINDS:
        f, s = flops.get(k, 0.0), seconds.get(k, 0.0)
        if f == 0.0 and s == 0.0:
            continue
        rate = f / s / 1e9 if s > 0 else float("nan")
        rows.append(KindRow(k, f / 1e9, f / total_f, s / total_s, rate, rate / sgemm_gflops))
    return rows


def pipeline_limit(flop_limit: float, decode_core_s: float, cores: int) -> float:
    """Images/s when the forward pass at the FLOP limit and the decode share the same cores:
    ``cores / (cores / flop_limit + decode_core_s)`` (core-seconds per image, summed)."""
    return cores / (cores / flop_limit + decode_core_s)
