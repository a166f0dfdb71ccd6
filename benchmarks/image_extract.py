"""Benchmark 1: image extraction on CPU against the hardware limit, torch vs ONNX Runtime.

Measured in one process, interleaved and best of k (other processes share the cores):

* FLOPs per image of the encoder (``torch.utils.flop_counter``, batch 1, 224 px) and the
  sgemm rate of the same cores (fp32, n = 2048, the better of ``torch.mm`` and ONNX
  Runtime's MLAS): FLOP limit = sgemm / FLOPs, each timed run paired with its own samples;
* pipeline  ``run_extract`` (DataLoader decode workers, batching, backend check, store
  writes), images/s of its batch loop, with ``backend='torch'`` and ``'onnxruntime'``;
* forward-only  the same encoder and batch on tensors preprocessed in advance;
* naive  open one image, preprocess, forward at batch 1 with torch, in a Python loop;
* the embeddings of the two backends' stores (minimum cosine over rows and outputs);
* large JPEG films: reduced-size vs full decode (:mod:`benchmarks.large_jpeg`).

efficientnet_lite0 runs with its real weights, resnet50 with random weights (timing only).
"""

from __future__ import annotations

import cProfile
import functools
import io
import logging
import pstats
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio, at_least, demo_manifest

log = logging.getLogger(__name__)

TARGET_FLOP_FRACTION = 0.70
TARGET_ORT_VS_TORCH = 4.0
TARGET_COSINE = 0.99999
TARGET_FORWARD = 0.85
TARGET_NAIVE = 5.0
TARGET_JPEG = 3.0
TARGET_JPEG_COSINE = 0.999
BATCH = 32


def flops_per_image(enc: Any) -> float:
    """FLOPs of one forward pass at batch 1 (torch's FlopCounterMode: 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    c, s = enc.preprocess.channels, enc.preprocess.size
    x = torch.zeros(1, c, s, s)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        enc.model(x)
    return float(counter.get_total_flops())


def sgemm_gflops(n: int = 2048, calls: int = 3) -> float:
    """fp32 matrix-multiply rate of these cores: the better of torch's BLAS (``torch.mm`` on its
    intra-op threads; MKL, which takes a slower path on AMD CPUs) and ONNX Runtime's MLAS
    (a one-node ``MatMul`` graph on all cores), best single call of each."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    session = _mlas_matmul(n)
    feeds = {"a": a.numpy(), "b": b.numpy()}
    session.run(None, feeds)
    for _ in range(calls):
        t0 = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


@functools.lru_cache(maxsize=4)
def _mlas_matmul(n: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from extract.backends.ort import available_cores

    spec = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm",
                              spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores()
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


class _PairedTimer:
    """Best rates, and best *paired* fractions of the FLOP limit: each timed run is bracketed
    by two sgemm samples, so a run and its limit see the same share of the cores."""

    def __init__(self, gflop: float, n_gemm: int) -> None:
        self.gflop, self.n_gemm = gflop, n_gemm
        self.best: dict[str, float] = {"sgemm": 0.0}
        self.frac: dict[str, float] = {}

    def run(self, key: str, timed: Any) -> Any:
        """Call ``timed()`` (a rate in items/s, or an ExtractSummary) between sgemm samples."""
        before = sgemm_gflops(self.n_gemm)
        out = timed()
        after = sgemm_gflops(self.n_gemm)
        rate = float(getattr(out, "items_per_s", out))
        self.best["sgemm"] = max(self.best["sgemm"], before, after)
        self.best[key] = max(self.best.get(key, 0.0), rate)
        self.frac[key] = max(self.frac.get(key, 0.0), rate * self.gflop / (0.5 * (before + after)))
        return out


def _forward_rate(enc: Any, X: Any) -> float:
    enc.encode(X[: min(2, len(X))])  # warm-up (allocator, oneDNN/MLAS kernels)
    t0 = time.perf_counter()
    for s in range(0, len(X), BATCH):
        enc.encode(X[s : s + BATCH])
    return len(X) / (time.perf_counter() - t0)


def _naive_rate(enc: Any, manifest: Any, ids: list[str], repeats: int) -> float:
    import torch

    from extract.preprocess import load_image

    def one(sid: str) -> None:
        arr = load_image(manifest.image_file(sid), enc.preprocess).array
        enc.encode(torch.from_numpy(arr[None]))

    one(ids[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for sid in ids:
            one(sid)
        best = min(best, time.perf_counter() - t0)
    return len(ids) / best


def _pipeline(manifest: Any, name: str, root: Path, n: int, *, backend: str, random: bool,
              num_workers: int | None = None) -> Any:
    from extract.runner import run_extract

    shutil.rmtree(root, ignore_errors=True)
    return run_extract(manifest, name, root, batch_size=BATCH, num_workers=num_workers,
                       device="cpu", backend=backend, allow_random_weights=random, limit=n,
                       progress=False, onnx_cache=root.parent / "cache" / "onnx")


def _store_cosine(a: Path, b: Path) -> float:
    from extract.backends.verify import row_cosines
    from pipeline.store.feature_store import FeatureStore

    sa, sb = FeatureStore(a), FeatureStore(b)
    ids = sorted(set(sa.ids.tolist()) & set(sb.ids.tolist()))
    return min(float(row_cosines(sa.read(ids, layer=k), sb.read(ids, layer=k)).min())
               for k in (None, *sa.layers))


def _decode_rates(work: Path, preprocess: Any) -> tuple[float, float]:
    """Single-core preprocess rate (images/s) for a 256^2 phantom and a 2048^2 chest-film-sized PNG."""
    from PIL import Image

    from extract.preprocess import load_image
    from pipeline.dataset.phantoms import render_phantom

    rates = []
    for size in (256, 2048):
        path = work / f"decode_{size}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(render_phantom(f"bench-{size}", ("opacity",), size=size)).save(path)
        k = 40 if size == 256 else 4
        load_image(path, preprocess)
        t0 = time.perf_counter()
        for _ in range(k):
            load_image(path, preprocess)
        rates.append(k / (time.perf_counter() - t0))
    return rates[0], rates[1]


def profile_pipeline(manifest: Any, name: str, root: Path, n: int, out: Path, *, backend: str,
                     random: bool) -> dict[str, float]:
    """cProfile one in-process run (num_workers=0); shares of the main thread's time (the
    decode runs in the read-ahead thread, which cProfile does not see)."""
    prof = cProfile.Profile()
    prof.enable()
    _pipeline(manifest, name, root, n, backend=backend, random=random, num_workers=0)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(30)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buf.getvalue())
    cum: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for label, fn, file_part in (
            ("run_extract", "run_extract", "extract/runner"),
            ("batch loop (_batch_loop)", "_batch_loop", "extract/runner"),
            ("model forward (ImageEncoder.encode)", "encode", "encoders/base"),
            ("decode+preprocess (load_image)", "load_image", "preprocess"),
            ("backend choice (export, check)", "select_backend", "backends/select"),
            ("store part writes (StoreWriter.flush)", "flush", "pipeline/store"),
            ("store merge (StoreWriter._merge)", "_merge", "pipeline/store"),
            ("model build (build_image_encoder)", "build_image_encoder", "encoders/__init__"),
        ):
            if func == fn and file_part in filename:
                cum[label] = max(cum.get(label, 0.0), ct)
    total = cum.pop("run_extract", 0.0) or 1e-9
    return {k: v / total for k, v in cum.items()} | {"total seconds": total}


def run(cfg: BenchConfig) -> BenchOutcome:
    import torch

    from benchmarks import image_limits, large_jpeg
    from extract.backends.ort import OrtSession, available_cores
    from extract.encoders import build_image_encoder
    from extract.jobs import decode_workers
    from extract.options import ExtractOptions
    from extract.preprocess import load_image
    from pipeline.store.feature_store import FeatureStore

    t_start = time.perf_counter()
    manifest = demo_manifest(cfg.work_dir, cfg.size(72, 300))
    plan = (  # name, random weights allowed, images, naive images
        ("efficientnet_lite0", False, cfg.size(32, 128), cfg.size(4, 16)),
        ("resnet50", True, cfg.size(16, 48), cfg.size(3, 6)),
    )
    rows, limit_rows, where_rows, ratios, costs, notes = [], [], [], [], {}, []
    kind_rows: list[tuple[Any, ...]] = []
    cores = available_cores()
    lite0 = build_image_encoder("efficientnet_lite0")
    small, large = _decode_rates(cfg.work_dir / "decode", lite0.preprocess)
    for name, random, n, n_naive in plan:
        n = min(n, len(manifest))
        ids = manifest.ids[:n]
        enc = build_image_encoder(name, allow_random_weights=random)
        weights = "random (timing only)" if enc.random_init else "pretrained"
        X = torch.from_numpy(np.stack([load_image(manifest.image_file(s), enc.preprocess).array
                                       for s in ids]))
        gflop = flops_per_image(enc) / 1e9
        enc.to("cpu", channels_last=False)
        naive = _naive_rate(enc, manifest, ids[:n_naive], cfg.repeats)
        enc.to("cpu", channels_last=True)  # the runner's layout
        roots = {b: cfg.work_dir / f"features-image-{b}" for b in ("torch", "onnxruntime")}
        timer = _PairedTimer(gflop, cfg.size(1024, 2048))
        best, frac = timer.best, timer.frac
        summaries: dict[str, Any] = {}
        session = None
        for _ in range(cfg.repeats):
            for backend in ("torch", "onnxruntime"):
                summaries[backend] = timer.run(backend, functools.partial(
                    _pipeline, manifest, name, roots[backend], n, backend=backend,
                    random=random))
            if session is None:
                record = FeatureStore(summaries["onnxruntime"].store).provenance["inference"]
                if record["backend"] == "onnxruntime":
                    cache = roots["onnxruntime"].parent / "cache" / "onnx"
                    onnx_file = cache / record["onnx"]["file"]
                    session = OrtSession(onnx_file, cores, micro_batch=enc.onnx_micro_batch)
            enc.session = None
            timer.run("fwd_torch", functools.partial(_forward_rate, enc, X))
            if session is not None:
                enc.session = session
                timer.run("fwd_ort", functools.partial(_forward_rate, enc, X))
                enc.session = None
        ort_store = summaries["onnxruntime"].store
        ort_used = FeatureStore(ort_store).provenance["inference"]["backend"]
        cosine = _store_cosine(summaries["torch"].store, ort_store)
        limit = best["sgemm"] / gflop
        with_decode = image_limits.pipeline_limit(limit, 1.0 / small, cores)
        if session is not None:
            per_kind, _ = min((image_limits.ort_seconds_by_kind(onnx_file, cores,
                                                                enc.onnx_micro_batch)
                               for _ in range(cfg.repeats + 1)), key=lambda r: r[1])
            for r in image_limits.kind_rows(image_limits.flops_by_kind(enc), per_kind,
                                            best["sgemm"]):
                kind_rows.append((name, r.kind, round(r.gflop, 4), round(100 * r.flop_share, 1),
                                  round(100 * r.time_share, 1), round(r.gflops, 1),
                                  round(r.of_sgemm, 2)))
        for backend, fkey in (("torch", "fwd_torch"), ("onnxruntime", "fwd_ort")):
            pipe, fwd = best[backend], best.get(fkey, 0.0)
            rows.append((name, weights, backend, BATCH, n, round(pipe, 2), round(fwd, 2),
                         round(pipe / fwd, 3) if fwd else float("nan"), round(naive, 2),
                         round(summaries[backend].seconds, 1)))
            limit_rows.append((name, backend, round(gflop, 3), round(best["sgemm"], 1),
                               round(limit, 1), round(pipe, 1), round(frac[backend], 3),
                               round(frac.get(fkey, float("nan")), 3), round(with_decode, 1),
                               round(frac[backend] * limit / with_decode, 3)))
            ms_fwd, ms_pipe = 1000 / max(fwd, 1e-9), 1000 / max(pipe, 1e-9)
            where_rows.append((name, backend, round(ms_fwd, 2), round(ms_pipe, 2),
                               round(ms_pipe - ms_fwd, 2), round(100 * ms_fwd / ms_pipe, 1)))
            costs[f"{name}.{backend}.pipeline_img_s"] = pipe
            costs[f"{name}.{backend}.forward_img_s"] = fwd
        ort, tch = best["onnxruntime"], best["torch"]
        costs[f"{name}.pipeline_img_s"] = max(ort, tch)
        costs[f"{name}.naive_img_s"] = naive
        strict = name == "efficientnet_lite0"  # the targets are set for the real-weights encoder
        ratios += [
            Ratio("image", f"{name} onnxruntime pipeline / FLOP limit", frac["onnxruntime"],
                  f">= {TARGET_FLOP_FRACTION}" if strict else "",
                  at_least(frac["onnxruntime"], TARGET_FLOP_FRACTION) if strict else None),
            Ratio("image", f"{name} onnxruntime forward-only / FLOP limit",
                  frac.get("fwd_ort", float("nan")), "", None),
            Ratio("image", f"{name} onnxruntime pipeline / (FLOP + decode) limit",
                  frac["onnxruntime"] * limit / with_decode, "", None),
            Ratio("image", f"{name} onnxruntime pipeline / torch pipeline", ort / tch,
                  f">= {TARGET_ORT_VS_TORCH}" if strict else "",
                  at_least(ort / tch, TARGET_ORT_VS_TORCH) if strict else None),
            Ratio("image", f"{name} embeddings onnxruntime vs torch (min cosine)", cosine,
                  f">= {TARGET_COSINE}", at_least(cosine, TARGET_COSINE)),
            Ratio("image", f"{name} onnxruntime pipeline / forward-only", ort / best.get("fwd_ort", 0.0)
                  if best.get("fwd_ort") else float("nan"), f">= {TARGET_FORWARD}" if strict else "",
                  at_least(ort / best.get("fwd_ort", 0.0), TARGET_FORWARD)
                  if strict and best.get("fwd_ort") else None),
            Ratio("image", f"{name} onnxruntime pipeline / naive loop", ort / naive,
                  f">= {TARGET_NAIVE}", at_least(ort / naive, TARGET_NAIVE)),
        ]
        if ort_used != "onnxruntime":
            notes.append(f"{name}: the onnxruntime run fell back to {ort_used} (see its log).")
        if cfg.profile or (strict and frac["onnxruntime"] < TARGET_FLOP_FRACTION):
            shares = profile_pipeline(manifest, name, cfg.work_dir / "features-profile", n,
                                      cfg.out_dir / f"profile_{name}_onnxruntime.txt",
                                      backend="onnxruntime", random=random)
            total = shares.pop("total seconds")
            notes.append(f"cProfile {name} [onnxruntime] (num_workers=0, {total:.1f} s, main thread "
                         "only: decode runs in the read-ahead thread): " + ", ".join(
                f"{k} {100 * v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])))
        del enc, X, session
    jpeg = large_jpeg.measure(cfg.work_dir / "films", cfg.size(4, 12), cfg.repeats + 1, lite0)
    jpeg_cos = min(jpeg.min_cosine.values())
    ratios += [
        Ratio("image", "large JPEG decode+preprocess per core: draft / full", jpeg.speedup,
              f">= {TARGET_JPEG}", at_least(jpeg.speedup, TARGET_JPEG)),
        Ratio("image", "large JPEG embeddings draft vs full decode (min cosine)", jpeg_cos,
              f">= {TARGET_JPEG_COSINE}", at_least(jpeg_cos, TARGET_JPEG_COSINE)),
    ]
    costs.update({"decode_img_s_core.256": small, "decode_img_s_core.2048": large,
                  "decode_img_s_core.jpeg2500_full": jpeg.full_img_s,
                  "decode_img_s_core.jpeg2500_draft": jpeg.draft_img_s})
    notes = [
        f"{cores} cores; torch intra-op threads {torch.get_num_threads()}, onnxruntime intra-op "
        f"threads {cores}; DataLoader decode workers {decode_workers(ExtractOptions(), 10**6, 'cpu')} "
        f"(the CPU default); batch {BATCH}; best of {cfg.repeats}, interleaved (sgemm "
        "sampled before each timed run, torch pipeline, onnxruntime pipeline, forward-only).",
        "pipeline = run_extract batch loop (decode workers + forward + store part writes); "
        "forward-only = the same encoder on preloaded tensors; naive = torch, batch 1, "
        "channels-first, one image at a time.",
        f"single-core decode+preprocess: {small:.0f} img/s for 256x256 phantom PNGs, "
        f"{large:.1f} img/s for a 2048x2048 PNG.",
        *notes,
    ]
    table = BenchTable(
        "image_extract", "Image extraction (CPU, images/s)",
        ("encoder", "weights", "backend", "batch", "n", "pipeline", "forward_only", "pipe/fwd",
         "naive_torch", "e2e_s"), tuple(rows), tuple(notes))
    limits = BenchTable(
        "image_limits", "Image extraction vs the FLOP limit of these cores",
        ("encoder", "backend", "GFLOP/img", "sgemm GFLOP/s", "FLOP-limit img/s", "pipeline img/s",
         "pipeline / limit", "forward / limit", "FLOP+decode limit img/s",
         "pipeline / FLOP+decode limit"), tuple(limit_rows),
        ("FLOPs from torch.utils.flop_counter.FlopCounterMode (2 per multiply-add, batch 1, the "
         "torch forward incl. the classifier head); sgemm = fp32 n=2048, the better of torch.mm "
         "(MKL) and ONNX Runtime's MLAS MatMul on all cores (best sample of the run); FLOP "
         "limit = sgemm / FLOPs per image. The fractions "
         "are paired: each timed run divided by the mean of the sgemm samples taken just before "
         "and after it (the cores' share varies when other processes run), best pair.",
         "FLOP+decode limit = cores / (cores / FLOP limit + decode core-seconds per image): the "
         "forward pass at sgemm speed and the single-core decode+preprocess of a 256 px phantom "
         "PNG (PIL, measured in this run) on the same cores; its fraction is paired like the "
         "others (= pipeline / limit x FLOP limit / FLOP+decode limit).",))
    kinds = BenchTable(
        "image_layer_kinds", "Image encoders on ONNX Runtime: FLOPs and time by layer kind",
        ("encoder", "kind", "GFLOP/img", "FLOP %", "ORT time %", "GFLOP/s", "of sgemm"),
        tuple(kind_rows),
        ("FLOPs from forward hooks on the torch model (2 per multiply-add); time from ONNX "
         "Runtime's profiler on the optimised graph it runs (NCHWc convolutions), micro-batches "
         f"as extraction runs them, {cores} intra-op threads; of sgemm = the kind's GFLOP/s / "
         "the sgemm rate of this run. Depthwise convolutions do k*k multiply-adds per value "
         "read, so memory bandwidth, not the FMA units, bounds them.",))
    where = BenchTable(
        "image_where_time_goes", "Image extraction: where the time goes (ms per image)",
        ("encoder", "backend", "forward", "pipeline", "overhead", "forward % of pipeline"),
        tuple(where_rows),
        ("decode runs one batch ahead in a thread of the same process (0 DataLoader workers, "
         "the CPU default up to 2 cores) on the same cores as the forward pass; overhead = "
         "pipeline - forward (decode contention, collation, store writes).",))
    films = BenchTable(
        "large_jpeg", "Large JPEG films (2,500 x 3,000, quality 95): reduced-size decode",
        ("films", "MB/film", "full img/s/core", "draft img/s/core", "speedup", "decoded size",
         *(f"min cosine {k}" for k in jpeg.min_cosine), *(f"{k} ms" for k in jpeg.decode_ms)),
        ((jpeg.n_films, round(jpeg.mb_per_film, 2), round(jpeg.full_img_s, 1),
          round(jpeg.draft_img_s, 1), round(jpeg.speedup, 2), "x".join(map(str, jpeg.decoded_size)),
          *(round(v, 6) for v in jpeg.min_cosine.values()),
          *(round(v, 1) for v in jpeg.decode_ms.values())),),
        ("phantoms rendered at 3,000 px, cropped to 2,500 x 3,000, saved as baseline JPEG q95; "
         "load_image (decode + grey + resize 224 + normalise) in one process, interleaved, best "
         "of k; draft = libjpeg DCT scaling keeping the short side >= jpeg_draft x 224, full = "
         "jpeg_draft=0. Cosines: EfficientNet-Lite0 embeddings (torch) of both decodes.",
         "Huffman decoding of the whole file is the floor of both paths: DCT scaling skips the "
         "inverse DCT and the big resize, not the entropy decoding ('decode 1/8 ms' = bare "
         "libjpeg decode at the smallest scale; 'decode 1 ms' = at full size)."))
    return BenchOutcome("image", (table, limits, kinds, where, films), tuple(ratios), costs,
                        time.perf_counter() - t_start)
