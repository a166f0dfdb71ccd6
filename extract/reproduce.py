"""Re-embed a new manifest exactly as a recorded store was made (used by ``pipeline predict``).

A model bundle's card records, for every store it reads, the store's key and provenance
(encoder, weights name and digest, text mode, masking, preprocessing). :func:`extract_request`
turns that record back into the arguments of :func:`extract.runner.run_extract`, and
:func:`extract_like` runs it on the new manifest. The caller must still compare the
resulting store's provenance with the record (``classify.bundle.predict.check_store``):
this module only chooses the arguments, it does not promise that this machine's weights
are the recorded ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

RANDOM_SUFFIX = "+random-init"
EQUALIZE_SUFFIX = "+eq"


@dataclass(frozen=True)
class ExtractRequest:
    """Arguments of ``run_extract`` that reproduce a recorded store."""

    encoder: str
    text_mode: str = "both"
    mask_labels: bool = False
    equalize: bool = False
    allow_random_weights: bool = False
    backend: str = "torch"
    label_mask: Any = field(default=None, compare=False)


def extract_request(record: Mapping[str, Any]) -> ExtractRequest:
    """The :class:`ExtractRequest` of a store record (``encoder_key``, ``modality``,
    ``weights_name``, ``preprocessing``; e.g. a model card's store entry)."""
    key = str(record["encoder_key"])
    pre = dict(record.get("preprocessing") or {})
    backend = str(record.get("backend") or "torch")
    if record.get("modality") == "image":
        equalize = key.endswith(EQUALIZE_SUFFIX)
        base = key.removesuffix(EQUALIZE_SUFFIX)
        random_init = base.endswith(RANDOM_SUFFIX)
        return ExtractRequest(base.removesuffix(RANDOM_SUFFIX), equalize=equalize,
                              allow_random_weights=random_init, backend=backend)
    if record.get("modality") != "text":
        raise ConfigError(f"store {key!r} has modality {record.get('modality')!r}; only image and "
                          "text stores can be re-embedded")
    from extract.encoders import TEXT_ENCODERS

    base = key.split("@", 1)[0]
    weights = str(record.get("weights_name", ""))
    if base in TEXT_ENCODERS:
        spec = base
    elif weights.startswith("hf:"):  # hf:<model>[-pooling] keys are slugs; the weights name is not
        spec = weights
        pooling = pre.get("pooling")
        if base.endswith(f"-{pooling}") and pooling:
            spec += f"#{pooling}"
    else:
        raise ConfigError(f"cannot tell which text encoder made store {key!r} "
                          f"(weights {weights!r}); embed the manifest with it by hand")
    mask = None
    if record.get("mask"):  # the terms the store was masked with (a model card records them)
        from pipeline.labels import LabelMask

        m = record["mask"]
        mask = LabelMask(str(m["rule"]), tuple(m["terms"]), int(m["vocabulary_size"]))
    return ExtractRequest(spec, text_mode=str(pre.get("text_mode", "both")),
                          mask_labels=bool(pre.get("masked", False)), backend=backend,
                          label_mask=mask)


def extract_like(manifest: Any, record: Mapping[str, Any], features_root: str | Path,
                 **options: Any) -> Any:
    """Build or extend ``manifest``'s store for ``record`` with ``run_extract``; returns its
    :class:`~extract.runner.ExtractSummary`. ``options`` go to ``run_extract`` (device,
    batch_size, num_workers, progress, lock_timeout, ...)."""
    from extract.runner import run_extract

    req = extract_request(record)
    return run_extract(manifest, req.encoder, features_root, text_mode=req.text_mode,
                       mask_labels=req.mask_labels, label_mask=req.label_mask,
                       equalize=req.equalize,
                       allow_random_weights=req.allow_random_weights, backend=req.backend,
                       **options)
