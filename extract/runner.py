"""Batched, resumable extraction of one manifest with one encoder into one feature store.

:func:`run_extract` is what ``pipeline extract`` calls. It

- builds the modality's job (:mod:`extract.jobs`): the encoder, its store key (text keys
  carry the text mode and masking: ``minilm``, ``minilm@findings``, ``minilm@both+masked``,
  so each variant is its own store) and the store provenance;
- opens a :class:`pipeline.store.feature_store.StoreWriter` (file lock, provenance check) and embeds only
  ids not already in the store (failed ids are retried);
- runs ONE batch loop for images and texts: the job yields batches (images decoded in
  DataLoader workers; texts sorted by length) and encodes them; per-item failures
  (missing/corrupt image, empty text) are recorded with a reason instead of stopping;
  the store is flushed every ``flush_every`` batches (a killed run loses at most those
  batches; the default 1 loses only the batch in flight); a tqdm bar shows when stderr
  is a terminal; the call returns a frozen :class:`ExtractSummary`.

Outputs are deterministic: encoders are frozen and in eval mode, preprocessing has
no randomness, and random-init weights (only with ``allow_random_weights``) are seeded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extract.encoders import encoder_modality
from extract.jobs import Job, build_job
from extract.options import ExtractOptions
from extract.summary import ExtractSummary, log_summary, progress_bar
from extract.texts import manifest_label_mask, manifest_texts, select_text

if TYPE_CHECKING:
    from extract.backends.select import BackendChoice
    from pipeline.manifest import Manifest
    from pipeline.store.feature_store import StoreWriter

__all__ = [
    "ExtractOptions",
    "ExtractSummary",
    "encoder_modality",
    "manifest_label_mask",
    "manifest_texts",
    "run_extract",
    "select_text",
    "warn_pretraining_overlap",
]

logger = logging.getLogger(__name__)


def warn_pretraining_overlap(manifest: Manifest, provenance: dict[str, Any]) -> str | None:
    """Log (WARNING) and return the pretraining-overlap message when the store's encoder was
    trained on the manifest's data-set family (``manifest.meta['source_dataset']``); None
    when there is no overlap or the family is unknown."""
    from pipeline.families import dataset_family, pretraining_overlap, pretraining_overlap_message

    family = dataset_family(manifest.meta)
    hits = pretraining_overlap(provenance.get("trained_on"), family)
    if not hits or family is None:
        return None
    msg = pretraining_overlap_message(
        str(provenance.get("encoder_key")),
        hits,
        dataset=str(manifest.name),
        family=family,
        modality=str(provenance.get("modality", "image")),
        synthetic_images=bool(manifest.meta.get("synthetic_images")),
    )
    logger.warning("%s", msg)
    return msg


def run_extract(
    manifest: Manifest,
    encoder: str,
    features_root: str | Path,
    options: ExtractOptions | None = None,
    **overrides: Any,
) -> ExtractSummary:
    """Embed the rows of ``manifest`` with ``encoder`` into ``<features_root>/<dataset>/<key>.h5``.

    ``encoder`` is an image encoder name (``efficientnet_lite0``) or a text spec
    (``minilm``, ``hf:<model>[#cls]``, ``tfidf_svd``; the text mode may also be given as
    ``@findings``). ``options`` is an :class:`ExtractOptions` (defaults when None);
    keyword ``overrides`` replace single fields, e.g. ``run_extract(m, "minilm", root,
    batch_size=8)``.
    """
    from pipeline.store.feature_store import StoreWriter, store_path

    options = ExtractOptions.of(options, **overrides)
    started = time.perf_counter()
    encoder_modality(encoder)  # unknown names fail before anything is built
    ids = [str(s) for s in manifest.ids]
    if options.limit is not None:
        ids = ids[: options.limit]
    job = build_job(manifest, encoder, options)
    warn_pretraining_overlap(manifest, job.provenance)
    path = store_path(features_root, manifest.name, job.key)
    choice = _choose_backend(job, ids, path, options, Path(features_root))
    job.backend = choice.backend
    provenance = {**job.provenance, "inference": choice.record()}
    with StoreWriter(path, provenance, lock_timeout=options.lock_timeout,
                     rebuild=options.rebuild) as writer:
        done = writer.done_ids
        todo = [sid for sid in ids if sid not in done]
        items, failed = job.items(todo)
        for sid, reason in failed.items():
            writer.add_failed(sid, reason)
        logger.info("%s", job.describe_start(len(items), len(ids) - len(todo), len(failed)))
        n_embedded, n_truncated, loop_seconds = _batch_loop(job, items, writer, failed, options)
    if n_truncated:
        logger.warning(
            "%d of %d reports were longer than %s word pieces and were truncated",
            n_truncated,
            n_embedded,
            job.provenance["preprocessing"].get("max_length"),
        )
    rate = n_embedded / loop_seconds if loop_seconds > 0 and n_embedded else 0.0
    summary = ExtractSummary(
        encoder_key=job.key,
        store=path,
        n_total=len(ids),
        n_skipped_existing=len(ids) - len(todo),
        n_embedded=n_embedded,
        failed=dict(failed),
        seconds=round(time.perf_counter() - started, 3),
        items_per_s=round(rate, 2),
        device=job.device,
        modality=job.modality,
        n_truncated=n_truncated,
        preprocessing=dict(job.provenance["preprocessing"]),
        backend=job.backend,
    )
    log_summary(summary)
    return summary


def _choose_backend(
    job: Job, ids: list[str], path: Path, options: ExtractOptions, features_root: Path
) -> BackendChoice:
    """The backend for this run, checked on a few of its pending inputs before any is stored."""
    from extract.backends.export import default_onnx_cache
    from extract.backends.select import N_CHECK_INPUTS, select_backend
    from pipeline.errors import StoreError
    from pipeline.store.feature_store import FeatureStore

    done: set[str] = set()
    stored = None
    if path.exists():
        try:
            store = FeatureStore(path)
        except StoreError:
            store = None  # the writer reports it (or repairs it from its parts) below
        if store is not None and len(store):
            done = set(store.ids.tolist())
            stored = dict(store.provenance.get("inference") or {})
            job.check_resume(store.provenance, [sid for sid in ids if sid not in done])
    preview, _ = job.items([sid for sid in ids if sid not in done][: 8 * N_CHECK_INPUTS])
    return select_backend(
        job,
        requested=options.backend,
        threads=options.threads,
        sample=job.sample(preview, N_CHECK_INPUTS),
        stored=stored,
        cache_dir=options.onnx_cache or default_onnx_cache(features_root),
    )


def _batch_loop(
    job: Job, items: list[Any], writer: StoreWriter, failed: dict[str, str],
    options: ExtractOptions,
) -> tuple[int, int, float]:
    """Embed ``items`` batch by batch into ``writer``; failures go into ``failed`` (and the store).

    Returns ``(n_embedded, n_truncated, loop seconds)``.
    """
    n_embedded = n_truncated = 0
    loop_start = time.perf_counter()
    bar = progress_bar(len(items), job.unit, job.key, options.progress)
    try:
        for n_batch, batch in enumerate(job.batches(items), start=1):
            for sid, reason in batch.failed:
                failed[sid] = reason
                writer.add_failed(sid, reason)
            if batch.ids:
                encoded = job.encode(batch.inputs)
                writer.add(batch.ids, encoded.arrays)
                n_embedded += len(batch.ids)
                n_truncated += encoded.n_truncated
            if n_batch % options.flush_every == 0:
                writer.flush()
            bar.update(len(batch.ids) + len(batch.failed))
    finally:
        bar.close()
    return n_embedded, n_truncated, time.perf_counter() - loop_start
