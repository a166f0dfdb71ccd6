"""Benchmark 1: image extraction throughput as ratios measured in one run.

For each encoder (efficientnet_lite0 with its real weights, resnet50 with random
weights - timing only) on demo images (phantom PNGs of the embedded OpenI demo):

* pipeline      ``extract.runner.run_extract`` (DataLoader decode workers, batching,
                store writes), images/s of its batch loop;
* forward-only  the same encoder, batch size and device on tensors preprocessed in
                advance: the limit the pipeline can reach (target: pipeline >= 85 %);
* naive         open one image, preprocess, forward at batch 1, in a Python loop, with
                the encoder's default (channels-first) layout (target: pipeline >= 5x).

Both memory layouts are measured: the runner's CPU default (channels-first) and
``channels_last=True`` (what the runner uses on CUDA). All timings are best-of-k.
"""

from __future__ import annotations

import cProfile
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

TARGET_FORWARD = 0.85
TARGET_NAIVE = 5.0
BATCH = 32


def _forward_rate(enc: Any, X: Any, batch: int, repeats: int) -> float:
    enc.encode(X[: min(2, len(X))])  # warm-up (allocator, oneDNN primitives)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            enc.encode(X[s : s + batch])
        best = min(best, time.perf_counter() - t0)
    return len(X) / best


def _naive_rate(enc: Any, manifest: Any, ids: list[str], repeats: int) -> float:
    import torch

    from extract.preprocess import load_image

    def one(sid: str) -> None:
        arr = load_image(manifest.image_file(sid), enc.preprocess).array
        enc.encode(torch.from_numpy(arr[None]))

    one(ids[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):  # best of k, like the other two measurements
        t0 = time.perf_counter()
        for sid in ids:
            one(sid)
        best = min(best, time.perf_counter() - t0)
    return len(ids) / best


def _pipeline(manifest: Any, name: str, root: Path, n: int, *, channels_last: bool,
              random: bool, num_workers: int | None = None) -> Any:
    from extract.runner import run_extract

    shutil.rmtree(root, ignore_errors=True)
    return run_extract(manifest, name, root, batch_size=BATCH, num_workers=num_workers,
                       device="cpu", allow_random_weights=random, limit=n, progress=False,
                       channels_last=channels_last)


def _decode_rates(work: Path, preprocess: Any) -> tuple[float, float]:
    """Single-core preprocess rate (images/s) for a 256^2 phantom and a 2048^2 chest-film-sized PNG."""
    from PIL import Image

    from extract.preprocess import load_image
    from pipeline.phantoms import render_phantom

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


def profile_pipeline(manifest: Any, name: str, root: Path, n: int, out: Path, *,
                     channels_last: bool, random: bool) -> dict[str, float]:
    """cProfile one in-process run (num_workers=0 so decoding is visible); shares of the time."""
    prof = cProfile.Profile()
    prof.enable()
    _pipeline(manifest, name, root, n, channels_last=channels_last, random=random, num_workers=0)
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
            ("model forward (ImageEncoder.encode)", "encode", "image_encoders"),
            ("decode+preprocess (load_image)", "load_image", "preprocess"),
            ("store part writes (StoreWriter.flush)", "flush", "pipeline/store"),
            ("store merge (StoreWriter._merge)", "_merge", "pipeline/store"),
            ("model build (build_image_encoder)", "build_image_encoder", "image_encoders"),
        ):
            if func == fn and file_part in filename:
                cum[label] = max(cum.get(label, 0.0), ct)
    total = cum.pop("run_extract", 0.0) or 1e-9
    return {k: v / total for k, v in cum.items()} | {"total seconds": total}


def run(cfg: BenchConfig) -> BenchOutcome:
    import torch

    from extract.encoders import build_image_encoder
    from extract.preprocess import load_image

    t_start = time.perf_counter()
    manifest = demo_manifest(cfg.work_dir, cfg.size(72, 300))
    plan = (  # name, random weights allowed, images, naive images
        ("efficientnet_lite0", False, cfg.size(32, 128), cfg.size(4, 16)),
        ("resnet50", True, cfg.size(16, 64), cfg.size(3, 8)),
    )
    rows, ratios, costs, notes = [], [], {}, []
    where_rows: list[tuple[Any, ...]] = []
    for name, random, n, n_naive in plan:
        n = min(n, len(manifest))
        ids = manifest.ids[:n]
        enc = build_image_encoder(name, allow_random_weights=random)
        weights = "random (timing only)" if enc.random_init else "pretrained"
        t0 = time.perf_counter()
        X = torch.from_numpy(np.stack([load_image(manifest.image_file(s), enc.preprocess).array
                                       for s in ids]))
        prep_rate = n / (time.perf_counter() - t0)
        enc.to("cpu", channels_last=False)
        naive = _naive_rate(enc, manifest, ids[:n_naive], cfg.repeats)
        for cl in (False, True):
            enc.to("cpu", channels_last=cl)
            fwd = _forward_rate(enc, X, BATCH, cfg.repeats)
            best, summary = 0.0, None
            for _ in range(cfg.repeats):
                summary = _pipeline(manifest, name, cfg.work_dir / "features-image", n,
                                    channels_last=cl, random=random)
                best = max(best, float(summary.items_per_s))
            layout = "channels_last" if cl else "channels_first (runner CPU default)"
            ra, rb = best / fwd, best / naive
            rows.append((name, weights, layout, BATCH, n, round(best, 2), round(fwd, 2),
                         round(naive, 2), round(ra, 3), round(rb, 2), round(prep_rate, 1),
                         round(summary.seconds, 1)))
            short = "CL" if cl else "CF"
            ratios.append(Ratio("image", f"{name} [{short}] pipeline / forward-only", ra,
                                f">= {TARGET_FORWARD}", at_least(ra, TARGET_FORWARD)))
            ratios.append(Ratio("image", f"{name} [{short}] pipeline / naive loop", rb,
                                f">= {TARGET_NAIVE}", at_least(rb, TARGET_NAIVE)))
            costs[f"{name}.{short}.pipeline_img_s"] = best
            costs[f"{name}.{short}.forward_img_s"] = fwd
            ms_fwd, ms_pipe = 1000 / fwd, 1000 / best
            where_rows.append((name, short, round(1000 / prep_rate, 2), round(ms_fwd, 1),
                               round(ms_pipe, 1), round(ms_pipe - ms_fwd, 1),
                               round(100 * ms_fwd / ms_pipe, 1)))
            if cfg.profile or ra < TARGET_FORWARD:
                shares = profile_pipeline(
                    manifest, name, cfg.work_dir / "features-profile", n,
                    cfg.out_dir / f"profile_{name}_{short}.txt", channels_last=cl, random=random)
                total = shares.pop("total seconds")
                notes.append(f"cProfile {name} [{short}] (num_workers=0, {total:.1f} s): " + ", ".join(
                    f"{k} {100 * v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])))
        costs[f"{name}.naive_img_s"] = naive
        del enc, X
    small, large = _decode_rates(cfg.work_dir / "decode", _lite0_preprocess())
    costs["decode_img_s_core.256"] = small
    costs["decode_img_s_core.2048"] = large
    notes = [
        "pipeline = run_extract batch loop (DataLoader decode workers + forward + store part "
        f"writes), best of {cfg.repeats}; forward-only = same encoder/batch/device on preloaded "
        "tensors; naive = load one image, preprocess, forward at batch 1 (channels-first), best of k.",
        f"single-core decode+preprocess: {small:.0f} img/s for 256x256 phantom PNGs, "
        f"{large:.1f} img/s for a 2048x2048 8-bit PNG (chest-film size).",
        "resnet50 uses random weights (allow_random_weights=True): timing is the same.",
        *notes,
    ]
    table = BenchTable(
        "image_extract", "Image extraction (CPU, images/s)",
        ("encoder", "weights", "layout", "batch", "n", "pipeline", "forward_only", "naive",
         "pipe/fwd", "pipe/naive", "prep_img_s_1core", "e2e_s"),
        tuple(rows), tuple(notes))
    where = BenchTable(
        "image_where_time_goes", "Image extraction: where the time goes (ms per image)",
        ("encoder", "layout", "decode+prep (1 core)", "forward", "pipeline", "overhead",
         "forward % of pipeline"),
        tuple(where_rows),
        ("decode runs in DataLoader workers, overlapping the forward pass; overhead = pipeline - "
         "forward (store writes, collation, worker contention for the 2 cores).",))
    return BenchOutcome("image", (table, where), tuple(ratios), costs,
                        time.perf_counter() - t_start)


def _lite0_preprocess() -> Any:
    from extract.preprocess import PreprocessConfig

    return PreprocessConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
