"""Checks of a feature store file: its attributes, its shape, and the streamed SHA-256 content digest.

Two values describe a store's content; both are file attributes written when the store is
finalised (:meth:`pipeline.store.feature_store.StoreWriter` merging its parts):

``content_id``  (called ``content_sha256`` in stores written before it was renamed; read from
    either name.) ``"<32 hex>-<n rows>"``: the sum modulo 2**128 of SHA-256(id + row bytes of
    every layer) over the rows, i.e. an *order-independent* identity of the (id, vector) rows.
    It is not a checksum of the file; it feeds the store identity, and through it the cache
    keys of classify's cells, so it must stay the same for the same rows.
``content_digest``  ``"sha256:<64 hex>"``: a real SHA-256 over everything a reader uses:
    a canonical JSON header (schema version, the provenance, ``content_id``, row count, the
    name and shape of every matrix, the failed ids and reasons), followed by one SHA-256 per
    section (the ids in stored order, each as 4-byte little-endian length + UTF-8 bytes; then
    ``X`` and each ``X@<layer>`` in name order, as little-endian float32 rows). Sections are
    hashed separately so one pass over row blocks covers every matrix; memory is bounded by
    :data:`BLOCK_BYTES`.

:func:`check_header` and :func:`check_structure` are cheap (attributes and shapes);
:func:`verify_content` reads every row once (finite values, then the digest). Every problem
raises :class:`~pipeline.errors.StoreError` (exit 2) naming the file, what is wrong and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import StoreError
from pipeline.store.kinds import TABULAR, kind_problem, store_kind, value_problems

log = logging.getLogger(__name__)

# Provenance keys that do not describe the content (left out of the identity hash).
_VOLATILE_KEYS = ("created", "updated", "versions", "content_sha256", "n_rows")
#: Keys of the ``inference`` record that describe one run, not the content: the torch-vs-ONNX
#: check figures (they vary from run to run by float noise), the thread count, why the
#: backend was picked and whether the run resumed. Kept in the provenance (and under the
#: content digest), left out of the identity: re-extracting the same rows gives the same
#: identity, so cached cells stay valid and two sites can tell they hold the same store.
RUN_DIAGNOSTIC_KEYS = ("check", "threads", "reason", "requested", "resumed_from")


def identity_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """The part of a store's provenance that enters its identity: everything but timestamps,
    versions, row counts and the run diagnostics of :data:`RUN_DIAGNOSTIC_KEYS`."""
    stable = {k: v for k, v in provenance.items() if k not in _VOLATILE_KEYS}
    inference = stable.get("inference")
    if isinstance(inference, dict):
        stable["inference"] = {k: v for k, v in inference.items()
                               if k not in RUN_DIAGNOSTIC_KEYS}
    return stable


DIGEST_ALGORITHM = "sha256"
BLOCK_BYTES = 32 << 20  # rows read per step: about 32 MB over all matrices
_MAGIC = b"cxr-feature-store-digest/1\n"
_REQUIRED = ("encoder_key", "modality", "dim")


def rebuild_fix(path: Path, provenance: dict[str, Any] | None = None) -> str:
    """The fix sentence of a damaged store: re-extract it, or restore it from a backup."""
    prov = provenance or {}
    enc = prov.get("encoder_key") or path.stem
    if prov.get("architecture") == "imported":
        return (f"Fix: import the source file again with `pipeline import <file> --manifest <the "
                f"manifest> --key {enc} --rebuild`, or restore {path.name} from a backup")
    if prov.get("architecture") == "manifest-context":
        return (f"Fix: write it again with `pipeline tabular --manifest <the manifest> "
                f"--from-manifest {(prov.get('preprocessing') or {}).get('builder', enc)} --key "
                f"{enc} --rebuild`, or restore {path.name} from a backup")
    return (f"Fix: re-extract it with `pipeline extract --manifest <the manifest> --encoder {enc} "
            f"--rebuild` (the damaged file is moved aside, not deleted), or restore {path.name} "
            "from a backup")


def _bad(path: Path, what: str, provenance: dict[str, Any] | None = None) -> StoreError:
    return StoreError(f"feature store {path} is damaged: {what}. {rebuild_fix(path, provenance)}")


@dataclass(frozen=True)
class StoreHeader:
    """The validated attributes of a store file."""

    schema_version: int
    provenance: dict[str, Any]
    content_id: str
    content_digest: str | None


def check_header(path: Path, attrs: Any) -> StoreHeader:
    """Validate ``schema_version``, ``provenance_json`` and the content attributes.

    Never unpickles anything: ``provenance_json`` must be UTF-8 JSON text holding an object.
    """
    raw_version = attrs.get("schema_version", 0)
    if isinstance(raw_version, bool | np.bool_) or not isinstance(raw_version, int | np.integer):
        raise _bad(path, f"attribute schema_version is {raw_version!r} ({type(raw_version).__name__}),"
                         " not an integer")
    if "provenance_json" not in attrs:
        raise StoreError(f"{path} is not a feature store (no provenance); {rebuild_fix(path)}")
    raw = attrs["provenance_json"]
    if isinstance(raw, bytes | np.bytes_):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(path, "attribute provenance_json is binary data, not UTF-8 JSON text") from None
    if not isinstance(raw, str):
        raise _bad(path, f"attribute provenance_json holds a {type(raw).__name__}, not JSON text")
    try:
        provenance = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"attribute provenance_json is not valid JSON ({exc})") from None
    if not isinstance(provenance, dict):
        raise _bad(path, f"attribute provenance_json holds a JSON {type(provenance).__name__}, "
                         "not an object of provenance fields")
    missing = [k for k in _REQUIRED if k not in provenance]
    if missing:
        raise _bad(path, f"provenance lacks {missing}")
    dim = provenance["dim"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
        raise _bad(path, f"provenance dim is {dim!r}, not a non-negative integer")
    problem = kind_problem(provenance)
    if problem:
        raise _bad(path, problem, provenance)
    content_id = attrs.get("content_id", attrs.get("content_sha256", ""))
    digest = attrs.get("content_digest")
    for name, value in (("content_id", content_id), ("content_digest", digest)):
        if value is not None and not isinstance(value, str):
            raise _bad(path, f"attribute {name} is {value!r}, not text", provenance)
    return StoreHeader(int(raw_version), provenance, content_id, digest)


def check_structure(path: Path, f: h5py.File, header: StoreHeader, ids: Sequence[str],
                    datasets: Sequence[str]) -> None:
    """Shapes and types: one float matrix per layer, as many rows as ids, ``X`` as wide as the
    recorded dim, ids unique."""
    prov = header.provenance
    for name in datasets:
        data = f[name]
        if data.ndim != 2:
            raise _bad(path, f"{name} has shape {data.shape}, not [rows, dim]", prov)
        if data.dtype.kind != "f":
            raise _bad(path, f"{name} holds {data.dtype} values, not float32 vectors", prov)
        if data.shape[0] != len(ids):
            raise _bad(path, f"{name} has {data.shape[0]} rows but there are {len(ids)} ids", prov)
    width = f["X"].shape[1]
    if width != prov["dim"]:
        kind = "narrower" if width < prov["dim"] else "wider"
        raise _bad(path, f"X is {width} values wide, {kind} than the recorded dim {prov['dim']}",
                   prov)
    if len(set(ids)) != len(ids):
        dups = [i for i, n in Counter(ids).items() if n > 1]
        shown = ", ".join(map(repr, dups[:5]))
        raise _bad(path, f"{len(dups)} sample id(s) appear more than once (e.g. {shown})", prov)


def _header_bytes(f: h5py.File, header: StoreHeader, ids: Sequence[str],
                  datasets: Sequence[str], failed: dict[str, str]) -> bytes:
    doc = {
        "schema_version": header.schema_version,
        "provenance": header.provenance,
        "content_id": header.content_id,
        "n_rows": len(ids),
        "datasets": {name: list(f[name].shape) for name in sorted(datasets)},
        "failed": sorted([k, v] for k, v in failed.items()),
    }
    return _MAGIC + json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"


def compute_digest(path: Path, f: h5py.File, header: StoreHeader, ids: Sequence[str],
                   datasets: Sequence[str], failed: dict[str, str]) -> str:
    """``"sha256:<hex>"`` of the open store (see the module docstring); also checks that every
    value is valid (finite in an embedding store; NaN = missing allowed in a tabular one, see
    :func:`pipeline.store.kinds.value_problems`) and names the rows that are not."""
    names = sorted(datasets)
    sections = {"ids": hashlib.sha256()}
    for sid in ids:
        raw = sid.encode("utf-8")
        sections["ids"].update(len(raw).to_bytes(4, "little") + raw)
    for name in names:
        sections[name] = hashlib.sha256()
    width = sum(int(f[name].shape[1]) for name in names) or 1
    step = max(1, BLOCK_BYTES // (4 * width))
    bad_rows: dict[str, list[int]] = {}
    reasons: dict[int, str | None] = {}
    tabular = store_kind(header.provenance) == TABULAR
    for start in range(0, len(ids), step):
        stop = min(start + step, len(ids))
        for name in names:
            block = np.asarray(f[name][start:stop], dtype="<f4")
            if name == "X" and tabular:
                problems = value_problems(block, header.provenance)
                bad = np.array([p is not None for p in problems], dtype=bool)
                for r in np.flatnonzero(bad):
                    reasons.setdefault(start + int(r), problems[r])
            else:
                bad = ~np.isfinite(block).all(axis=1)
            if bad.any():
                bad_rows.setdefault(name, []).extend((start + np.flatnonzero(bad)).tolist())
            sections[name].update(np.ascontiguousarray(block).data)
    if bad_rows:
        name, rows = next(iter(bad_rows.items()))
        shown = ", ".join(ids[r] for r in rows[:10])
        if tabular and name == "X":
            raise _bad(path, f"{len(rows)} row(s) of tabular {name} hold invalid values (id "
                             f"{ids[rows[0]]}: {reasons[rows[0]]}; ids {shown}); a tabular store "
                             "only ever receives valid rows, so the file was changed after it was "
                             "written", header.provenance)
        raise _bad(path, f"{len(rows)} row(s) of {name} hold NaN/inf values (ids {shown}); a "
                         "store only ever receives finite vectors, so the file was changed after "
                         "it was written", header.provenance)
    total = hashlib.sha256(_header_bytes(f, header, ids, datasets, failed))
    for key in ("ids", *names):
        total.update(sections[key].digest())
    return f"{DIGEST_ALGORITHM}:{total.hexdigest()}"


def verify_content(path: Path, f: h5py.File, header: StoreHeader, ids: Sequence[str],
                   datasets: Sequence[str], failed: dict[str, str]) -> bool:
    """Recompute the digest and compare it with the recorded one.

    Returns False (and logs a warning) for a store written before digests existed: its rows
    are still checked, but silent changes cannot be detected until it is re-finalised.
    """
    actual = compute_digest(path, f, header, ids, datasets, failed)
    if header.content_digest is None:
        log.warning("feature store %s has no content digest (written by an earlier version), so "
                    "changes to its bytes cannot be detected; run the same `pipeline extract` "
                    "once to add one (nothing is re-embedded)", path)
        return False
    if actual != header.content_digest:
        raise _bad(path, f"its content does not match the digest recorded when it was written "
                         f"(recorded {header.content_digest[:19]}..., now {actual[:19]}...): "
                         "bytes were changed on disk", header.provenance)
    return True
