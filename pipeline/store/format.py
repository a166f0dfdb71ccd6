"""On-disk layout of a feature store: dataset names, string datasets, the row identity.

Shared by the reader (:mod:`pipeline.store.feature_store`), the checks (:mod:`pipeline.store.checks`) and
the merge (:mod:`pipeline.store.merge`); see :mod:`pipeline.store.feature_store` for the file format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = 1
MAIN = "X"
# Provenance keys that must match for new rows to be appended to an existing store.
COMPATIBILITY_KEYS = (
    "encoder_key",
    "modality",
    "architecture",
    "weights_name",
    "weights_sha256",
    "preprocessing",
    "dim",
    "layers",
)


def layer_dataset(layer: str | None) -> str:
    """HDF5 dataset name of a layer: ``None``/``'X'`` is the main matrix."""
    return MAIN if layer in (None, MAIN) else f"{MAIN}@{layer}"


def parts_dir(path: Path) -> Path:
    """Folder of the part files of the store at ``path``."""
    return path.with_name(path.name + ".parts")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): the form provenance is stored and compared in."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def compat_view(prov: dict[str, Any]) -> dict[str, Any]:
    """The provenance fields that must match for rows to be appended to a store
    (plus the store kind and columns where a store declares them, see
    :mod:`pipeline.store.kinds`)."""
    from pipeline.store.kinds import compat_extra

    return {**{k: prov.get(k) for k in COMPATIBILITY_KEYS}, **compat_extra(prov)}


def str_dataset(group: h5py.Group, name: str, values: Sequence[str]) -> None:
    group.create_dataset(
        name, data=np.asarray(list(values), dtype=object), dtype=h5py.string_dtype("utf-8")
    )


def read_strings(group: h5py.Group, name: str) -> list[str]:
    if name not in group:
        return []
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in group[name][()]]


def row_digest(sample_id: str, rows: Iterable[np.ndarray]) -> int:
    """128-bit hash of one (id, vectors) row; summed modulo 2**128 into ``content_id``."""
    h = hashlib.sha256(sample_id.encode("utf-8"))
    for row in rows:
        h.update(np.ascontiguousarray(row, dtype="<f4").tobytes())
    return int.from_bytes(h.digest()[:16], "little")


def content_id(acc: int, n_rows: int) -> str:
    """The ``content_id`` attribute from the summed row hashes."""
    return f"{acc:032x}-{n_rows}"
