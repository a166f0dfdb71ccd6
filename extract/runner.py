"""Batched, resumable extraction of one manifest with one encoder into one feature store.

:func:`run_extract` is what ``pipeline extract`` calls. It

- resolves the encoder (image or text registry) and its store key; text keys carry the
  text mode and masking (``minilm``, ``minilm@findings``, ``minilm@both+masked``) so each
  variant is its own store;
- opens a :class:`pipeline.store.StoreWriter` (file lock, provenance check) and embeds only
  ids not already in the store (failed ids are retried);
- images: a ``torch.utils.data.DataLoader`` decodes/preprocesses in worker processes
  (PIL, see :mod:`extract.preprocess`), ``pin_memory`` and autocast on CUDA,
  channels-last, ``torch.inference_mode``;
- texts: pending texts are sorted by length and embedded in batches (less padding);
- records per-item failures (missing/corrupt image, empty text) with a reason instead of
  stopping, flushes the store every ``flush_every`` batches (a killed run loses at most
  those batches; the default 1 loses only the batch in flight), shows a tqdm bar when
  stderr is a terminal, and returns a frozen :class:`ExtractSummary`.

Outputs are deterministic: encoders are frozen and in eval mode, preprocessing has
no randomness, and random-init weights (only with ``allow_random_weights``) are seeded.
"""

from __future__ import annotations

import difflib
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, ManifestError, PipelineError, UnknownNameError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractSummary:
    """Result of one :func:`run_extract` call.

    ``seconds`` is the whole call (model loading included); ``items_per_s`` is the
    embedding throughput of the batch loop only (``n_embedded / loop seconds``).
    ``failed`` holds this run's per-item failures (``sample_id -> reason``).
    """

    encoder_key: str
    store: Path
    n_total: int
    n_skipped_existing: int
    n_embedded: int
    failed: dict[str, str]
    seconds: float
    items_per_s: float
    device: str
    modality: str = "image"
    n_truncated: int = 0
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        """A short human-readable summary (what ``pipeline extract`` prints)."""
        lines = [
            f"{self.encoder_key} ({self.modality}) -> {self.store}",
            f"  {self.n_total} samples: {self.n_skipped_existing} already stored, "
            f"{self.n_embedded} embedded, {len(self.failed)} failed"
            + (f", {self.n_truncated} texts truncated" if self.n_truncated else ""),
            f"  {self.seconds:.1f} s, {self.items_per_s:.1f} items/s on {self.device}",
        ]
        shown = list(self.failed.items())[:10]
        lines += [f"  failed {sid}: {reason}" for sid, reason in shown]
        if len(self.failed) > len(shown):
            lines.append(f"  ... and {len(self.failed) - len(shown)} more (listed in the store)")
        return "\n".join(lines)

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def complete(self) -> bool:
        """True when every id of the (limited) manifest is now in the store."""
        return not self.failed


# --------------------------------------------------------------------------- helpers


def encoder_modality(encoder: str) -> str:
    """'image' or 'text' for an encoder spec; unknown names raise UnknownNameError (both lists)."""
    from extract.image_encoders import IMAGE_ENCODERS
    from extract.text_encoders import TEXT_ENCODERS

    base = encoder.split("@", 1)[0].split("#", 1)[0].split(":", 1)[0]
    if base in IMAGE_ENCODERS:
        if base != encoder:
            raise ConfigError(
                f"image encoder spec {encoder!r}: image encoders take no ':', '#' or '@' suffix; "
                f"use {base!r}"
            )
        return "image"
    if base in TEXT_ENCODERS:
        return "text"
    names = IMAGE_ENCODERS.names() + TEXT_ENCODERS.names()
    close = difflib.get_close_matches(base, names, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(
        f"unknown encoder {encoder!r}.{hint} Valid encoders: {', '.join(names)} "
        "(see `pipeline list`)."
    )


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def select_text(row: dict[str, Any], mode: str) -> str:
    """The text a row contributes in ``mode`` ('findings', 'impression', 'both').

    'both' is the manifest's ``report_text`` (findings + impression by contract, the same
    as ``Manifest.text('both')``); when that is empty, findings and impression are joined.
    Whitespace is normalised.
    """
    findings, impression = _clean(row.get("findings")), _clean(row.get("impression"))
    if mode == "findings":
        return findings
    if mode == "impression":
        return impression
    if mode != "both":
        raise ConfigError(f"text mode {mode!r} is not one of findings, impression, both")
    return _clean(row.get("report_text")) or " ".join(t for t in (findings, impression) if t)


def manifest_label_mask(manifest: Any) -> Any:
    """The :class:`pipeline.labels.LabelMask` of a manifest: its label rule's terms plus the
    terms of every tag of its own vocabulary the rule uses (``tags`` and ``mesh_major``
    columns, :func:`pipeline.labels.manifest_tag_vocabulary`), so that e.g. an OpenI report
    labelled 'abnormal' because of a 'Spine/degenerative' tag has 'spine'/'degenerative'
    masked too. Deterministic for a given manifest; its hash goes into store provenance."""
    spec = (manifest.meta or {}).get("label_rule")
    if not spec:
        raise ConfigError(
            f"mask_labels needs the label rule of manifest {manifest.name!r}, but its sidecar JSON "
            "has no 'label_rule'; rebuild the manifest with `pipeline data` (it records the rule) "
            "or run without --mask-labels"
        )
    from pipeline.labels import LabelMask, LabelRule, manifest_tag_vocabulary

    rule = LabelRule.from_spec(spec)
    classes = (manifest.meta or {}).get("label_classes")
    return LabelMask.for_rule(rule, classes, manifest_tag_vocabulary(manifest.frame))


def manifest_texts(
    manifest: Any, mode: str, masked: bool, label_mask: Any = None
) -> tuple[list[str], str | None]:
    """Texts of every manifest row (manifest order) and the label-rule spec used to mask
    (``label_mask`` defaults to :func:`manifest_label_mask`)."""
    frame = manifest.frame
    cols = [c for c in ("findings", "impression", "report_text") if c in frame.columns]
    if not cols:
        raise ManifestError(
            f"manifest {manifest.name!r} has none of the text columns findings/impression/"
            "report_text; rebuild it with `pipeline data` or add them to the CSV"
        )
    records = frame[cols].to_dict("records")
    texts = [select_text(r, mode) for r in records]
    if not masked:
        return texts, None
    mask = label_mask if label_mask is not None else manifest_label_mask(manifest)
    return [mask.apply(t) if t else t for t in texts], mask.rule


def warn_pretraining_overlap(manifest: Any, provenance: dict[str, Any]) -> str | None:
    """Log (WARNING) and return the pretraining-overlap message when the store's encoder was
    trained on the manifest's data-set family (``manifest.meta['source_dataset']``); None
    when there is no overlap or the family is unknown."""
    from pipeline.datasets import dataset_family, pretraining_overlap, pretraining_overlap_message

    meta = getattr(manifest, "meta", None) or {}
    family = dataset_family(meta)
    hits = pretraining_overlap(provenance.get("trained_on"), family)
    if not hits or family is None:
        return None
    msg = pretraining_overlap_message(
        str(provenance.get("encoder_key")),
        hits,
        dataset=str(manifest.name),
        family=family,
        modality=str(provenance.get("modality", "image")),
        synthetic_images=bool(meta.get("synthetic_images")),
    )
    logger.warning("%s", msg)
    return msg


def _sample_ids(manifest: Any, limit: int | None) -> list[str]:
    if "sample_id" not in manifest.frame.columns:
        raise ManifestError(f"manifest {manifest.name!r} has no 'sample_id' column; rebuild it")
    ids = [str(s) for s in manifest.frame["sample_id"].tolist()]
    if len(set(ids)) != len(ids):
        dups = sorted(sid for sid, n in Counter(ids).items() if n > 1)
        raise ManifestError(
            f"manifest {manifest.name!r} has duplicate sample_id values (e.g. {dups[:5]}); "
            "sample ids must be unique"
        )
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"limit must be >= 0, got {limit}")
        ids = ids[:limit]
    return ids


def _versions() -> dict[str, str]:
    import PIL
    import torch

    versions = {"torch": torch.__version__, "pillow": PIL.__version__}
    for mod in (
        "torchvision",
        "transformers",
        "sklearn",
        "efficientnet_lite_pytorch",
        "torchxrayvision",
    ):
        module = sys.modules.get(mod)
        if module is not None:
            versions[mod] = str(getattr(module, "__version__", "?"))
    return versions


def _progress(total: int, unit: str, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar on a terminal; elsewhere (CI, log files) a log line every ~10%."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else bool(enabled)
    if show or enabled is False:
        return tqdm(
            total=total, unit=unit, desc=desc, disable=not show, dynamic_ncols=True, leave=False
        )
    return _LoggedProgress(total, unit, desc)


class _LoggedProgress:
    """Minimal stand-in for a tqdm bar that logs progress with items/s."""

    def __init__(self, total: int, unit: str, desc: str) -> None:
        self.total, self.unit, self.desc = total, unit, desc
        self.done, self._next = 0, max(1, total // 10)
        self._t0 = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if self.done >= self._next or self.done >= self.total:
            rate = self.done / max(time.perf_counter() - self._t0, 1e-9)
            logger.info("%s: %d/%d %s (%.1f %s/s)", self.desc, self.done, self.total, self.unit, rate, self.unit)
            self._next = self.done + max(1, self.total // 10)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- entry point


def run_extract(
    manifest: Any,
    encoder: str,
    features_root: str | Path,
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "auto",
    text_mode: str = "both",
    mask_labels: bool = False,
    allow_random_weights: bool = False,
    allow_download: bool = False,
    limit: int | None = None,
    equalize: bool = False,
    flush_every: int = 1,
    progress: bool | None = None,
    channels_last: bool = True,
    lock_timeout: float = 0.0,
    rebuild: bool = False,
) -> ExtractSummary:
    """Embed the rows of ``manifest`` with ``encoder`` into ``<features_root>/<dataset>/<key>.h5``.

    ``encoder`` is an image encoder name (``efficientnet_lite0``) or a text spec
    (``minilm``, ``hf:<model>[#cls]``, ``tfidf_svd``; the text mode may also be given as
    ``@findings``). ``limit`` embeds only the first ``limit`` manifest rows.
    ``equalize`` applies histogram equalisation (its own store key, ``<name>+eq``).
    ``num_workers=None`` uses min(4, CPUs) DataLoader workers for images.
    ``progress=None`` shows a bar only when stderr is a terminal. ``channels_last``
    (default on) runs convolutions in NHWC layout, faster on CPU and CUDA alike.
    ``rebuild`` moves an existing store (e.g. a damaged one) to quarantine and embeds all rows.
    """
    if batch_size < 1 or flush_every < 1:
        raise ConfigError(
            f"batch_size and flush_every must be >= 1 (got {batch_size}, {flush_every})"
        )
    started = time.perf_counter()
    modality = encoder_modality(encoder)
    ids = _sample_ids(manifest, limit)
    kwargs = dict(
        batch_size=batch_size,
        device=device,
        allow_download=allow_download,
        flush_every=flush_every,
        progress=progress,
        lock_timeout=lock_timeout,
        rebuild=rebuild,
        started=started,
    )
    if modality == "image":
        if mask_labels or text_mode not in (None, "both"):
            logger.warning(
                "text_mode/mask_labels do not apply to image encoder %r; ignored", encoder
            )
        return _run_image(
            manifest,
            encoder,
            Path(features_root),
            ids,
            num_workers=num_workers,
            allow_random_weights=allow_random_weights,
            equalize=equalize,
            channels_last=channels_last,
            **kwargs,
        )
    if allow_random_weights:
        logger.info("allow_random_weights has no effect on text encoder %r", encoder)
    return _run_text(
        manifest,
        encoder,
        Path(features_root),
        ids,
        text_mode=text_mode,
        mask_labels=mask_labels,
        **kwargs,
    )


def _finish(
    *,
    key: str,
    path: Path,
    modality: str,
    n_total: int,
    n_skipped: int,
    n_embedded: int,
    failed: dict[str, str],
    started: float,
    loop_seconds: float,
    device: str,
    n_truncated: int = 0,
    preprocessing: dict[str, Any] | None = None,
) -> ExtractSummary:
    seconds = time.perf_counter() - started
    rate = n_embedded / loop_seconds if loop_seconds > 0 and n_embedded else 0.0
    summary = ExtractSummary(
        encoder_key=key,
        store=path,
        n_total=n_total,
        n_skipped_existing=n_skipped,
        n_embedded=n_embedded,
        failed=dict(failed),
        seconds=round(seconds, 3),
        items_per_s=round(rate, 2),
        device=device,
        modality=modality,
        n_truncated=n_truncated,
        preprocessing=dict(preprocessing or {}),
    )
    logger.info(
        "extract %s -> %s: %d total, %d already stored, %d embedded, %d failed, %.1f s "
        "(%.1f %s/s on %s)%s",
        key,
        path,
        n_total,
        n_skipped,
        n_embedded,
        len(failed),
        seconds,
        rate,
        "images" if modality == "image" else "reports",
        device,
        f", {n_truncated} texts truncated" if n_truncated else "",
    )
    for sid, reason in list(failed.items())[:10]:
        logger.warning("failed %s: %s", sid, reason)
    if len(failed) > 10:
        logger.warning("... and %d more failures (see the store's failed list)", len(failed) - 10)
    return summary


def _run_image(
    manifest: Any,
    encoder: str,
    features_root: Path,
    ids: list[str],
    *,
    batch_size: int,
    num_workers: int | None,
    device: str,
    allow_random_weights: bool,
    allow_download: bool,
    equalize: bool,
    channels_last: bool,
    flush_every: int,
    progress: bool | None,
    lock_timeout: float,
    rebuild: bool,
    started: float,
) -> ExtractSummary:
    from torch.utils.data import DataLoader

    from extract.devices import configure_determinism, default_num_workers, resolve_device
    from extract.image_encoders import build_image_encoder
    from extract.preprocess import ImageDataset, collate_images
    from pipeline.store import StoreWriter, store_path

    dev = resolve_device(device)
    configure_determinism(dev)
    enc = build_image_encoder(
        encoder, allow_random_weights=allow_random_weights, allow_download=allow_download
    )
    if equalize:
        enc.preprocess = enc.preprocess.with_equalize(True)
    key = enc.key + ("+eq" if equalize else "")
    on_cuda = dev.startswith("cuda")
    enc.to(dev, channels_last=channels_last)  # faster on CPU too (measured ~1.5x, lite0)
    provenance = {
        "encoder_key": key,
        "dataset": manifest.name,
        **enc.describe(),
        "versions": _versions(),
    }
    warn_pretraining_overlap(manifest, provenance)
    path = store_path(features_root, manifest.name, key)
    failed: dict[str, str] = {}
    n_embedded = 0
    loop_seconds = 0.0
    with StoreWriter(path, provenance, lock_timeout=lock_timeout, rebuild=rebuild) as writer:
        done = writer.done_ids
        todo = [sid for sid in ids if sid not in done]
        n_skipped = len(ids) - len(todo)
        items: list[tuple[str, str]] = []
        for sid in todo:
            try:
                items.append((sid, str(manifest.image_file(sid))))
            except PipelineError as exc:  # e.g. a path escaping image_root
                failed[sid] = f"bad image path: {exc}"
                writer.add_failed(sid, failed[sid])
        workers = default_num_workers() if num_workers is None else max(0, int(num_workers))
        workers = min(workers, math.ceil(len(items) / batch_size))
        loader = DataLoader(
            ImageDataset(items, enc.preprocess),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate_images,
            pin_memory=on_cuda,
        )
        logger.info(
            "embedding %d images with %s on %s (batch %d, %d workers); %d already stored",
            len(items),
            key,
            dev,
            batch_size,
            workers,
            n_skipped,
        )
        loop_start = time.perf_counter()
        bar = _progress(len(items), "img", key, progress)
        try:
            for n_batch, (ok_ids, tensor, bad) in enumerate(loader, start=1):
                for sid, reason in bad:
                    failed[sid] = reason
                    writer.add_failed(sid, reason)
                if tensor is not None:
                    arrays = enc.encode(tensor, autocast=on_cuda)
                    writer.add(ok_ids, arrays)
                    n_embedded += len(ok_ids)
                if n_batch % flush_every == 0:
                    writer.flush()
                bar.update(len(ok_ids) + len(bad))
        finally:
            bar.close()
            loop_seconds = time.perf_counter() - loop_start
    return _finish(
        key=key,
        path=path,
        modality="image",
        n_total=len(ids),
        n_skipped=n_skipped,
        n_embedded=n_embedded,
        failed=failed,
        started=started,
        loop_seconds=loop_seconds,
        device=dev,
        preprocessing=provenance["preprocessing"],
    )


def _run_text(
    manifest: Any,
    encoder: str,
    features_root: Path,
    ids: list[str],
    *,
    text_mode: str,
    mask_labels: bool,
    batch_size: int,
    device: str,
    allow_download: bool,
    flush_every: int,
    progress: bool | None,
    lock_timeout: float,
    rebuild: bool,
    started: float,
) -> ExtractSummary:
    from extract.devices import configure_determinism, resolve_device
    from extract.text_encoders import build_text_encoder, parse_text_spec
    from pipeline.store import StoreWriter, store_path

    spec = parse_text_spec(encoder, text_mode=text_mode, mask_labels=mask_labels)
    label_mask = manifest_label_mask(manifest) if spec.masked else None
    all_texts, rule_spec = manifest_texts(manifest, spec.mode, spec.masked, label_mask)
    by_id = dict(zip((str(s) for s in manifest.frame["sample_id"]), all_texts, strict=True))
    enc = build_text_encoder(spec, batch_size=batch_size, allow_download=allow_download)
    fitted = spec.name == "tfidf_svd"
    # Fit on the whole manifest (not just `limit` or the pending rows) so that re-runs
    # and resumed runs reproduce the same model; frozen neural encoders ignore fit().
    enc.fit([t for t in all_texts if t])
    dev = "cpu" if fitted else resolve_device(device)
    configure_determinism(dev)
    enc.to(dev)
    if not fitted:
        enc.autocast = dev.startswith("cuda")
    desc = enc.describe()
    desc["preprocessing"] = {
        **desc["preprocessing"],
        "text_mode": spec.mode,
        "masked": spec.masked,
        "label_rule": rule_spec,
        **(label_mask.provenance() if label_mask is not None else {}),
    }
    provenance = {
        "encoder_key": spec.key,
        "dataset": manifest.name,
        **desc,
        "versions": _versions(),
    }
    warn_pretraining_overlap(manifest, provenance)
    path = store_path(features_root, manifest.name, spec.key)
    failed: dict[str, str] = {}
    n_embedded = n_truncated = 0
    loop_seconds = 0.0
    with StoreWriter(path, provenance, lock_timeout=lock_timeout, rebuild=rebuild) as writer:
        done = writer.done_ids
        todo = [sid for sid in ids if sid not in done]
        n_skipped = len(ids) - len(todo)
        pending = []
        for sid in todo:
            if by_id[sid]:
                pending.append(sid)
            else:
                after = " after masking label terms" if spec.masked else ""
                failed[sid] = f"empty text: the report has no '{spec.mode}' text{after}"
                writer.add_failed(sid, failed[sid])
        pending.sort(key=lambda s: -len(by_id[s]))  # long first: similar lengths share a batch
        logger.info(
            "embedding %d reports with %s on %s (mode %s%s); %d already stored, %d empty",
            len(pending),
            spec.key,
            dev,
            spec.mode,
            ", label terms masked" if spec.masked else "",
            n_skipped,
            len(failed),
        )
        loop_start = time.perf_counter()
        bar = _progress(len(pending), "report", spec.key, progress)
        try:
            for n_batch, start in enumerate(range(0, len(pending), batch_size), start=1):
                batch_ids = pending[start : start + batch_size]
                result = enc.encode([by_id[s] for s in batch_ids])
                writer.add(batch_ids, {"X": np.asarray(result.X, dtype=np.float32)})
                n_embedded += len(batch_ids)
                n_truncated += result.n_truncated
                if n_batch % flush_every == 0:
                    writer.flush()
                bar.update(len(batch_ids))
        finally:
            bar.close()
            loop_seconds = time.perf_counter() - loop_start
    if n_truncated:
        logger.warning(
            "%d of %d reports were longer than %s word pieces and were truncated",
            n_truncated,
            n_embedded,
            desc["preprocessing"].get("max_length"),
        )
    return _finish(
        key=spec.key,
        path=path,
        modality="text",
        n_total=len(ids),
        n_skipped=n_skipped,
        n_embedded=n_embedded,
        failed=failed,
        started=started,
        loop_seconds=loop_seconds,
        device=dev,
        n_truncated=n_truncated,
        preprocessing=provenance["preprocessing"],
    )
