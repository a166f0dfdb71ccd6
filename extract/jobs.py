"""The modality-specific parts of an extraction (images, texts) that the one batch loop is given.

A job builds its encoder and store provenance, turns pending sample ids into items
(recording the ones that cannot even be attempted), yields batches of inputs and
encodes a batch into the arrays a store row holds. :mod:`extract.runner` does the rest
(store, resume, failures, flushing, progress) once for both modalities.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from extract.options import ExtractOptions
from pipeline.errors import ConfigError, PipelineError
from pipeline.helpers import library_versions

if TYPE_CHECKING:
    from pipeline.manifest import Manifest

logger = logging.getLogger(__name__)

#: Installed distributions whose versions go into a store's provenance.
EXTRACT_PACKAGES = (
    "torch",
    "torchvision",
    "pillow",
    "transformers",
    "tokenizers",
    "scikit-learn",
    "efficientnet-lite-pytorch",
    "torchxrayvision",
    "onnxruntime",
    "onnx",
)


@dataclass(frozen=True)
class Batch:
    """One batch from a job: ids whose ``inputs`` are ready, and ids that failed on the way."""

    ids: list[str]
    inputs: Any  # a float32 tensor [n, C, H, W] (images) or a list of texts
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Encoded:
    """What one batch became: the store arrays (``'X'`` + taps) and how many texts were cut."""

    arrays: dict[str, np.ndarray]
    n_truncated: int = 0


class Job(Protocol):
    """What the batch loop needs from a modality."""

    modality: str
    unit: str
    key: str
    device: str
    backend: str
    encoder: Any
    provenance: dict[str, Any]

    def items(self, todo: list[str]) -> tuple[list[Any], dict[str, str]]: ...

    def batches(self, items: list[Any]) -> Iterator[Batch]: ...

    def encode(self, inputs: Any) -> Encoded: ...

    def sample(self, items: list[Any], k: int) -> Any: ...

    def check_resume(self, stored: dict[str, Any], todo: list[str]) -> None: ...

    def describe_start(self, n_items: int, n_skipped: int, n_failed: int) -> str: ...


def _provenance(key: str, manifest: Manifest, described: dict[str, Any]) -> dict[str, Any]:
    return {
        "encoder_key": key,
        "dataset": manifest.name,
        **described,
        "versions": library_versions(EXTRACT_PACKAGES),
    }


def decode_workers(options: ExtractOptions, n_items: int, device: str) -> int:
    """DataLoader decode workers: ``options.num_workers`` when given; else 0 in a daemonic
    process (a Dask worker cannot start children); min(4, CPUs) on a GPU; on the CPU, where
    inference already uses every core, 0 up to 2 cores (decode in the loop's own process,
    one batch ahead in a thread, :mod:`extract.read_ahead`: measured on 2 cores with ONNX
    Runtime, 0 workers beat 1 and 2 on demo PNGs and on 2,500 x 3,000 JPEG films, since a
    worker process takes a core from the intra-op threads mid-operator) and a quarter of the
    cores (1-4) above that, so decode overlaps inference on cores it can spare; never more
    than there are batches."""
    from extract.backends.ort import available_cores
    from extract.devices import default_num_workers

    if options.num_workers is not None:
        workers = int(options.num_workers)
    elif multiprocessing.current_process().daemon:
        workers = 0
    elif device == "cpu":
        cores = available_cores()
        workers = 0 if cores <= 2 else max(1, min(4, cores // 4))
    else:
        workers = default_num_workers()
    return min(workers, math.ceil(n_items / options.batch_size))


class ImageJob:
    """Images: PIL decode/preprocess in DataLoader workers, a frozen hooked CNN, taps as layers."""

    modality = "image"
    unit = "img"
    backend = "torch"

    def __init__(self, manifest: Manifest, encoder: str, options: ExtractOptions) -> None:
        from extract.devices import configure_determinism, resolve_device
        from extract.encoders import build_image_encoder, store_key

        self.manifest, self.options = manifest, options
        self.device = resolve_device(options.device)
        configure_determinism(self.device)
        enc = build_image_encoder(
            encoder,
            allow_random_weights=options.allow_random_weights,
            allow_download=options.allow_download,
        )
        if options.equalize:
            enc.preprocess = enc.preprocess.with_equalize(True)
        enc.preprocess = dataclasses.replace(enc.preprocess, jpeg_draft=int(options.jpeg_draft))
        enc.to(self.device, channels_last=options.channels_last)  # faster on CPU too (~1.5x)
        self.encoder = enc
        self.key = store_key(encoder, options, random_init=enc.random_init)
        self.provenance = _provenance(self.key, manifest, enc.describe())
        self.workers = 0

    def items(self, todo: list[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
        items, failed = [], {}
        for sid in todo:
            try:
                items.append((sid, str(self.manifest.image_file(sid))))
            except PipelineError as exc:  # e.g. a path escaping image_root
                failed[sid] = f"bad image path: {exc}"
        return items, failed

    def batches(self, items: list[tuple[str, str]]) -> Iterator[Batch]:
        from torch.utils.data import DataLoader

        from extract.preprocess import ImageDataset, collate_images

        self.workers = decode_workers(self.options, len(items), self.device)
        if self.workers == 0:  # decode in this process, one batch ahead of the forward pass
            yield from self._read_ahead_batches(items)
            return
        loader = DataLoader(
            ImageDataset(items, self.encoder.preprocess),
            batch_size=self.options.batch_size,
            shuffle=False,
            num_workers=self.workers,
            collate_fn=collate_images,
            pin_memory=self.device.startswith("cuda"),
        )
        for ok_ids, tensor, bad in loader:
            yield Batch(ok_ids, tensor, bad)

    def _read_ahead_batches(self, items: list[tuple[str, str]]) -> Iterator[Batch]:
        import functools

        from extract.preprocess import ImageDataset, collate_images
        from extract.read_ahead import read_ahead

        dataset = ImageDataset(items, self.encoder.preprocess)
        size = self.options.batch_size

        def decode(start: int) -> tuple[list[str], Any, list[tuple[str, str]]]:
            return collate_images([dataset[i] for i in range(start, min(start + size, len(dataset)))])

        tasks = (functools.partial(decode, s) for s in range(0, len(dataset), size))
        for ok_ids, tensor, bad in read_ahead(tasks):
            yield Batch(ok_ids, tensor, bad)

    def encode(self, inputs: Any) -> Encoded:
        return Encoded(self.encoder.encode(inputs, autocast=self.device.startswith("cuda")))

    def check_resume(self, stored: dict[str, Any], todo: list[str]) -> None:
        """Refuse to add reduced-size-decoded JPEG rows to a store decoded otherwise (stores
        made before ``decode`` was recorded decoded every JPEG at full size)."""
        before = int((stored.get("decode") or {}).get("jpeg_draft", 0))
        now = self.encoder.preprocess.jpeg_draft
        if before == now:
            return
        frame = self.manifest.frame
        is_jpeg = frame["image_path"].astype(str).str.lower().str.endswith((".jpg", ".jpeg"))
        jpegs = frame.loc[is_jpeg & frame["sample_id"].astype(str).isin(set(todo)), "sample_id"]
        if len(jpegs):
            raise ConfigError(
                f"store {self.key} was decoded with jpeg_draft={before} and this run would decode "
                f"its JPEG images (e.g. sample {jpegs.iloc[0]!r}) with jpeg_draft={now}, which gives "
                f"slightly different vectors. Fix: pass --jpeg-draft {before} to resume it, or "
                "delete the store to rebuild it with the new setting"
            )

    def sample(self, items: list[tuple[str, str]], k: int) -> Any:
        """Up to ``k`` decoded images of ``items`` as one batch (None when none decodes)."""
        import torch

        from extract.preprocess import load_image

        arrays = []
        for _sid, path in items[: 4 * k]:
            result = load_image(path, self.encoder.preprocess)
            if result.ok:
                arrays.append(result.array)
            if len(arrays) == k:
                break
        return torch.from_numpy(np.stack(arrays)) if arrays else None

    def describe_start(self, n_items: int, n_skipped: int, n_failed: int) -> str:
        return (
            f"embedding {n_items} images with {self.key} on {self.device}, {self.backend} (batch "
            f"{self.options.batch_size}, {decode_workers(self.options, n_items, self.device)} "
            f"decode workers); "
            f"{n_skipped} already stored"
        )


class TextJob:
    """Report texts: mode selection and masking, length-sorted batches, a frozen text encoder."""

    modality = "text"
    unit = "report"

    def __init__(self, manifest: Manifest, encoder: str, options: ExtractOptions) -> None:
        from extract.devices import configure_determinism, resolve_device
        from extract.encoders import build_text_encoder, parse_text_spec
        from extract.texts import manifest_label_mask, manifest_texts

        self.options = options
        spec = parse_text_spec(encoder, text_mode=options.text_mode, mask_labels=options.mask_labels)
        self.spec = spec
        label_mask = None
        if spec.masked:  # the caller's terms (a model's) win over the manifest's
            label_mask = options.label_mask or manifest_label_mask(manifest)
        all_texts, rule_spec = manifest_texts(manifest, spec.mode, spec.masked, label_mask)
        self.by_id = dict(zip((str(s) for s in manifest.ids), all_texts, strict=True))
        enc = build_text_encoder(
            spec, batch_size=options.batch_size, allow_download=options.allow_download
        )
        self.fitted = is_fitted_text_encoder(spec.name)
        # Fit on the whole manifest (not just `limit` or the pending rows) so that re-runs
        # and resumed runs reproduce the same model; frozen neural encoders ignore fit().
        enc.fit([t for t in all_texts if t])
        self.device = "cpu" if self.fitted else resolve_device(options.device)
        configure_determinism(self.device)
        enc.to(self.device)
        if not self.fitted:
            enc.autocast = self.device.startswith("cuda")
        self.encoder = enc
        self.backend = "sklearn" if self.fitted else "torch"
        self.key = spec.key
        desc = enc.describe()
        desc["preprocessing"] = {
            **desc["preprocessing"],
            "text_mode": spec.mode,
            "masked": spec.masked,
            "label_rule": rule_spec,
            **(label_mask.provenance() if label_mask is not None else {}),
        }
        self.provenance = _provenance(self.key, manifest, desc)

    def items(self, todo: list[str]) -> tuple[list[str], dict[str, str]]:
        pending, failed = [], {}
        for sid in todo:
            if self.by_id[sid]:
                pending.append(sid)
            else:
                after = " after masking label terms" if self.spec.masked else ""
                what = ("no INDICATION section" if self.spec.mode == "indication"
                        else f"no '{self.spec.mode}' text")
                failed[sid] = f"empty text: the report has {what}{after}"
        pending.sort(key=lambda s: -len(self.by_id[s]))  # long first: similar lengths share a batch
        return pending, failed

    def batches(self, items: list[str]) -> Iterator[Batch]:
        size = self.options.batch_size
        for start in range(0, len(items), size):
            ids = items[start : start + size]
            yield Batch(ids, [self.by_id[s] for s in ids])

    def encode(self, inputs: Any) -> Encoded:
        result = self.encoder.encode(inputs)
        return Encoded({"X": np.asarray(result.X, dtype=np.float32)}, result.n_truncated)

    def check_resume(self, stored: dict[str, Any], todo: list[str]) -> None:
        """Texts have no decode setting: any store of the same key can be resumed."""

    def sample(self, items: list[str], k: int) -> list[str] | None:
        """The texts of the first ``k`` pending reports (None when there are none)."""
        return [self.by_id[s] for s in items[:k]] or None

    def describe_start(self, n_items: int, n_skipped: int, n_failed: int) -> str:
        masked = ", label terms masked" if self.spec.masked else ""
        return (
            f"embedding {n_items} reports with {self.key} on {self.device}, {self.backend} (mode "
            f"{self.spec.mode}{masked}); {n_skipped} already stored, {n_failed} empty"
        )


def is_fitted_text_encoder(name: str) -> bool:
    """True for text encoders fitted on the corpus (``fitted=True`` in the registry)."""
    from extract.encoders import TEXT_ENCODERS

    return name in TEXT_ENCODERS and bool(TEXT_ENCODERS.meta(name).get("fitted"))


def build_job(manifest: Manifest, encoder: str, options: ExtractOptions) -> Job:
    """The job for ``encoder``'s modality (unknown names raise UnknownNameError)."""
    from extract.encoders import encoder_modality

    if encoder_modality(encoder) == "image":
        if options.mask_labels or options.text_mode != "both":
            logger.warning(
                "text_mode/mask_labels do not apply to image encoder %r; ignored", encoder
            )
        return ImageJob(manifest, encoder, options)
    if options.allow_random_weights:
        logger.info("allow_random_weights has no effect on text encoder %r", encoder)
    return TextJob(manifest, encoder, options)
