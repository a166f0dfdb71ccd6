"""Data-set families: one normalised name per public data set, and the pretraining-overlap check.

A manifest's *family* is the public data set its rows come from, in the normalised names
encoder metadata uses for pretraining sets (``trained_on``). Two names of one family
(``openi_demo`` and ``openi``; ``mimic`` and ``MIMIC-CXR``) compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: normalised alias -> family. Keys are lower case with '-', ' ' and '.' read as '_'.
DATASET_FAMILY_ALIASES: dict[str, str] = {
    "openi": "openi", "open_i": "openi", "openi_demo": "openi", "iu_xray": "openi",
    "iu": "openi", "indiana": "openi", "nlmcxr": "openi",
    "mimic": "mimic_cxr", "mimic_cxr": "mimic_cxr", "mimic_cxr_jpg": "mimic_cxr",
    "mimic_iii": "mimic_iii", "mimiciii": "mimic_iii",
    "nih": "nih", "chestx_ray14": "nih", "chestxray14": "nih", "chestx_ray8": "nih",
    "nih_cxr14": "nih", "chexpert": "chexpert", "padchest": "padchest", "rsna": "rsna",
    "google": "google", "vindr": "vindr", "vindr_cxr": "vindr", "siim": "siim",
    "imagenet": "imagenet",
}


def normalize_dataset_name(name: Any) -> str:
    """Family of a data-set name (``'MIMIC-CXR'`` -> ``'mimic_cxr'``, ``'openi_demo'`` ->
    ``'openi'``); an unknown name comes back normalised (lower case, ``'_'`` separators)."""
    key = re.sub(r"[\s.\-]+", "_", str(name or "").strip().lower()).strip("_")
    return DATASET_FAMILY_ALIASES.get(key, key)


def dataset_family(meta: Mapping[str, Any] | None, name: str | None = None) -> str | None:
    """Family of a manifest: ``meta['source_dataset']``; for manifests built before that
    key existed, the registered format it was built from (``meta['build']['source']``),
    except ``csv`` (unknown). ``name`` is NOT used: a user-chosen manifest name says
    nothing reliable about the data. None = unknown."""
    meta = meta or {}
    fam = meta.get("source_dataset")
    if fam:
        return normalize_dataset_name(fam)
    source = str((meta.get("build") or {}).get("source") or "")
    if source and source != "csv" and normalize_dataset_name(source) in set(
        DATASET_FAMILY_ALIASES.values()
    ):
        return normalize_dataset_name(source)
    return None


def pretraining_overlap(trained_on: Any, family: str | None) -> list[str]:
    """Entries of an encoder's ``trained_on`` that name the data-set ``family``."""
    if not family:
        return []
    fam = normalize_dataset_name(family)
    return [str(t) for t in (trained_on or ()) if normalize_dataset_name(t) == fam]


def pretraining_overlap_message(
    encoder_key: str,
    hits: list[str],
    *,
    dataset: str,
    family: str,
    modality: str = "image",
    synthetic_images: bool = False,
) -> str:
    """The pretraining-overlap warning used by extraction and by the classify report."""
    head = (
        f"pretraining overlap: encoder {encoder_key} was trained on {', '.join(hits)}, the "
        f"data set family ({family}) of manifest {dataset!r}"
    )
    if synthetic_images and modality == "image":
        return head + (
            "; this manifest's images are synthetic phantoms, not the real radiographs the "
            "weights were trained on, so no evaluated image was seen in pretraining (the "
            "overlap is nominal here); on the real images its scores would be optimistic"
        )
    return head + (
        "; the weights may have seen these very samples and their labels, so its scores are "
        "optimistic (use an encoder not trained on this data set for a fair estimate)"
    )

