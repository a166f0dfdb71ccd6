"""Encoder specs and the one store-key resolver (image names, text specs with mode and masking)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from extract.encoders.base import IMAGE_ENCODERS, POOLINGS, TEXT_ENCODERS, image_store_key
from extract.options import TEXT_MODES, ExtractOptions
from pipeline.errors import ConfigError, UnknownNameError
from pipeline.helpers import did_you_mean


@dataclass(frozen=True)
class TextSpec:
    """A parsed text-encoder spec, e.g. ``hf:emilyalsentzer/Bio_ClinicalBERT#cls@findings+masked``."""

    name: str
    model: str | None
    pooling: str | None
    mode: str
    masked: bool

    @property
    def base_key(self) -> str:
        key = self.name
        if self.model:
            key += "_" + _slug_model(self.model)
        if self.pooling:
            key += "-" + self.pooling
        return key

    @property
    def key(self) -> str:
        """Store key: ``minilm`` for (both, unmasked), else ``minilm@findings+masked`` etc."""
        suffix = "" if self.mode == "both" else f"@{self.mode}"
        if self.masked:
            suffix = f"@{self.mode}+masked"
        return self.base_key + suffix


def _slug_model(model: str) -> str:
    path = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or path.is_dir():
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", path.name or "model") + "-" + digest
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.replace("/", "--"))


def base_name(encoder: str) -> str:
    """The registry name of a spec: ``hf:bert#cls@findings`` -> ``hf``."""
    return encoder.split("@", 1)[0].split("#", 1)[0].split(":", 1)[0]


def parse_text_spec(
    spec: str, *, text_mode: str | None = None, mask_labels: bool | None = None
) -> TextSpec:
    """Parse ``<name>[:<model>][#<pooling>][@<mode>[+masked]]``; explicit arguments must agree."""
    head, _, tail = spec.partition("@")
    mode_in, plus, flag = tail.partition("+")
    if plus and flag != "masked":
        raise ConfigError(f"text encoder spec {spec!r}: only '+masked' may follow the mode")
    head, _, pooling = head.partition("#")
    name, _, model = head.partition(":")
    if name not in TEXT_ENCODERS:
        TEXT_ENCODERS.get(name)  # raises UnknownNameError listing the valid names
    mode = mode_in or (text_mode or "both")
    if mode_in and text_mode not in (None, "both", mode_in):
        raise ConfigError(
            f"text encoder spec {spec!r} says mode {mode_in!r} but text_mode={text_mode!r}; "
            "give the mode once (either in the spec after '@' or as --text-mode)"
        )
    if mode not in TEXT_MODES:
        raise ConfigError(f"text mode {mode!r} in {spec!r} is not one of {', '.join(TEXT_MODES)}")
    if pooling and pooling not in POOLINGS:
        raise ConfigError(f"pooling {pooling!r} in {spec!r} is not one of {', '.join(POOLINGS)}")
    meta = TEXT_ENCODERS.meta(name)
    if meta.get("needs_model") and not model:
        raise ConfigError(
            f"text encoder {name!r} needs a model: write '{name}:<hub name or local folder>', "
            f"e.g. 'hf:emilyalsentzer/Bio_ClinicalBERT' or 'hf:/path/to/bert#cls'"
        )
    if model and not meta.get("needs_model"):
        raise ConfigError(
            f"text encoder {name!r} takes no model argument (got {model!r}); use 'hf:{model}'"
        )
    if pooling and not meta.get("poolable"):
        raise ConfigError(
            f"text encoder {name!r} has fixed pooling; '#{pooling}' is only for hf models"
        )
    return TextSpec(name, model or None, pooling or None, mode, bool(flag) or bool(mask_labels))


def encoder_modality(encoder: str) -> str:
    """'image' or 'text' for an encoder spec; unknown names raise UnknownNameError (both lists)."""
    base = base_name(encoder)
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
    raise UnknownNameError(
        f"unknown encoder {encoder!r}.{did_you_mean(base, names)} Valid encoders: "
        f"{', '.join(names)} (see `pipeline list`)."
    )


def store_key(encoder: str, options: ExtractOptions, *, random_init: bool = False) -> str:
    """The store key of ``encoder`` run with ``options`` (the one place keys are derived).

    Image: ``<name>[+random-init][+eq]``; text: ``<spec base>[@<mode>[+masked]]``.
    """
    if encoder_modality(encoder) == "image":
        return image_store_key(encoder, random_init=random_init, equalize=options.equalize)
    return parse_text_spec(
        encoder, text_mode=options.text_mode, mask_labels=options.mask_labels
    ).key


def expected_store_key(encoder: str, options: ExtractOptions) -> str | None:
    """:func:`store_key` when it is knowable without building the model, else None (an image
    encoder whose weights are missing and random weights are not allowed: the build will
    raise :class:`MissingWeightsError` with the fix)."""
    if encoder_modality(encoder) == "text":
        return store_key(encoder, options)
    if IMAGE_ENCODERS.meta(encoder)["availability"]().available:
        return store_key(encoder, options)
    if options.allow_random_weights:
        return store_key(encoder, options, random_init=True)
    return None
