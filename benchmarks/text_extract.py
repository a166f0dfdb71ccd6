"""Benchmark 2: report-text extraction throughput (MiniLM, CPU), as ratios.

* pipeline      ``run_extract(manifest, 'minilm')``: texts sorted by length, dynamic
                padding per batch, store writes; reports/s of its batch loop, with
                ``backend='torch'`` and ``'onnxruntime'`` (target: >= 1.1x), and the
                minimum cosine between the two stores;
* pad-to-max    the same model, batch size and pooling, every batch padded to the
                model maximum (256 word pieces), manifest order (target: pipeline >= 2x);
* unsorted      dynamic padding without length sorting (for reference);
* forward-only  length-sorted batches tokenised in advance: only the model forward and
                pooling are timed (the limit of the pipeline).
Real OpenI report texts (the embedded demo). Best of k.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from benchmarks.common import BenchConfig, BenchOutcome, BenchTable, Ratio, at_least, demo_manifest

log = logging.getLogger(__name__)

TARGET_PAD = 2.0
TARGET_ORT = 1.1
BATCH = 32


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _pad_to_max(enc: Any, texts: list[str]) -> None:
    import torch

    with torch.inference_mode():
        for s in range(0, len(texts), BATCH):
            b = enc.tokenizer(texts[s : s + BATCH], padding="max_length", truncation=True,
                              max_length=enc.max_length, return_tensors="pt")
            _pool(enc.model(**b).last_hidden_state, b["attention_mask"]).numpy()


def _pretokenized(enc: Any, texts: list[str]) -> list[Any]:
    lengths = enc.token_lengths(texts)
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    return [enc.tokenizer([texts[i] for i in order[s : s + BATCH]], padding=True, truncation=True,
                          max_length=enc.max_length, return_tensors="pt")
            for s in range(0, len(texts), BATCH)]


def _forward_only(enc: Any, batches: list[Any]) -> None:
    import torch

    with torch.inference_mode():
        for b in batches:
            _pool(enc.model(**b).last_hidden_state, b["attention_mask"]).numpy()


def run(cfg: BenchConfig) -> BenchOutcome:
    from benchmarks.image_extract import _store_cosine
    from extract.encoders import build_text_encoder
    from extract.runner import manifest_texts, run_extract

    t_start = time.perf_counter()
    manifest = demo_manifest(cfg.work_dir, cfg.size(72, 300))
    n = cfg.size(48, 192)
    texts_all, _ = manifest_texts(manifest, "both", False)
    texts = [t for t in texts_all[:n] if t]
    n = len(texts)
    enc = build_text_encoder("minilm", batch_size=BATCH)
    lengths = enc.token_lengths(texts)
    batches = _pretokenized(enc, texts)
    enc.encode(texts[:8])  # warm-up
    best = {"pipeline onnxruntime": float("inf"), "pipeline torch": float("inf"),
            "pad_to_max": float("inf"), "unsorted": float("inf"), "forward_only": float("inf")}
    stores = {}
    for _ in range(cfg.repeats):
        for backend in ("torch", "onnxruntime"):
            root = cfg.work_dir / f"features-text-{backend}"
            shutil.rmtree(root, ignore_errors=True)
            summary = run_extract(manifest, "minilm", root, batch_size=BATCH, device="cpu",
                                  limit=n, progress=False, backend=backend,
                                  onnx_cache=cfg.work_dir / "cache" / "onnx")
            stores[backend] = summary.store
            key = f"pipeline {backend}"
            best[key] = min(best[key], summary.n_embedded / max(summary.items_per_s, 1e-9))
        t0 = time.perf_counter()
        _pad_to_max(enc, texts)
        best["pad_to_max"] = min(best["pad_to_max"], time.perf_counter() - t0)
        enc.sort_by_length = False
        t0 = time.perf_counter()
        enc.encode(texts)
        best["unsorted"] = min(best["unsorted"], time.perf_counter() - t0)
        enc.sort_by_length = True
        t0 = time.perf_counter()
        _forward_only(enc, batches)
        best["forward_only"] = min(best["forward_only"], time.perf_counter() - t0)
    rate = {k: n / v for k, v in best.items()}
    ort, tch = rate["pipeline onnxruntime"], rate["pipeline torch"]
    cosine = _store_cosine(stores["torch"], stores["onnxruntime"])
    rows = tuple((k, n, BATCH, round(v, 2), round(ort / v, 3)) for k, v in rate.items())
    notes = (
        f"{n} real OpenI reports; word pieces mean {lengths.mean():.0f}, max {lengths.max()}, "
        f"model max {enc.max_length} ({int((lengths > enc.max_length).sum())} truncated).",
        f"padding every batch to {enc.max_length} computes ~{enc.max_length / lengths.mean():.1f}x "
        "the tokens of the real lengths (attention cost grows faster).",
        "pipeline = run_extract batch loop (HF tokenizer, length-sorted batches, store part "
        f"writes) with each backend, interleaved, best of {cfg.repeats}; pad-to-max, unsorted "
        "and forward-only use torch.",
        f"embeddings onnxruntime vs torch: minimum cosine {cosine:.7f}.",
    )
    table = BenchTable("text_extract", "Text extraction (MiniLM, CPU, reports/s)",
                       ("variant", "n", "batch", "reports_per_s", "onnxruntime pipeline / variant"),
                       rows, notes)
    ratios = (
        Ratio("text", "minilm onnxruntime pipeline / torch pipeline", ort / tch,
              f">= {TARGET_ORT}", at_least(ort / tch, TARGET_ORT)),
        Ratio("text", "minilm embeddings onnxruntime vs torch (min cosine)", cosine, ">= 0.99999",
              at_least(cosine, 0.99999)),
        Ratio("text", "minilm torch pipeline / pad-to-max", tch / rate["pad_to_max"],
              f">= {TARGET_PAD}", at_least(tch / rate["pad_to_max"], TARGET_PAD)),
        Ratio("text", "minilm torch pipeline / forward-only (pre-tokenized)",
              tch / rate["forward_only"], "(limit)", None),
        Ratio("text", "minilm torch pipeline / unsorted dynamic padding", tch / rate["unsorted"],
              "", None),
    )
    costs = {"minilm.pipeline_reports_s": max(ort, tch),
             "minilm.forward_reports_s": rate["forward_only"]}
    return BenchOutcome("text", (table,), ratios, costs, time.perf_counter() - t_start)
