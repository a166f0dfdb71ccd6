"""HDF5 feature stores: the only contract between the extract and classify stages.

One file per (dataset, encoder key): ``<features_root>/<dataset>/<encoder_key>.h5``.

Inside the file
    ``ids``          UTF-8 strings, one per row (the sample ids, in stored order)
    ``X``            float32 ``[n, dim]``, chunked
    ``X@<layer>``    optional extra layers (multi-layer taps), same rows as ``X``
    ``failed_ids`` / ``failed_reasons``  items the encoder could not embed, and why
    attributes       provenance (encoder key, modality, architecture, weights name and
                     sha256, preprocessing, dim, training sets of the weights, library
                     versions, created/updated), ``schema_version`` and ``content_sha256``

How a write is never left half-done
    A running extraction never touches the ``.h5`` file. Each :meth:`StoreWriter.flush`
    writes the rows embedded since the last flush to a *part file* in
    ``<store>.h5.parts/`` (written under a temporary name, then renamed: a part either
    exists whole or not at all). When the writer closes, and also when the next writer
    opens after a killed run, the parts are merged into a new file that atomically
    replaces the store (``os.replace``), after which the parts are deleted. Merging is
    idempotent by sample id (rows already in the store are skipped), so a kill at any
    point - mid-batch, mid-part, mid-merge, between replace and cleanup - loses at most
    the batch in flight and never duplicates a row or leaves an unreadable file.
    A file lock (``<store>.h5.lock``) admits one writer at a time.

Readers always select rows by sample id, never by position.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import StoreError, StoreLockedError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAIN = "X"
_COPY_ROWS = 16384  # rows copied per chunk when merging (bounded memory)
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
# Provenance keys that do not describe the content (left out of the identity hash).
_VOLATILE_KEYS = ("created", "updated", "versions", "content_sha256", "n_rows")
_REQUIRED_KEYS = ("encoder_key", "modality", "architecture", "weights_name", "dim")


def store_path(features_root: str | os.PathLike, dataset: str, encoder_key: str) -> Path:
    """Where the store of ``encoder_key`` on ``dataset`` lives."""
    if not encoder_key or "/" in encoder_key or encoder_key.startswith("."):
        raise StoreError(
            f"invalid encoder key {encoder_key!r}: use letters, digits, '_', '-', '@', '+' only"
        )
    return Path(features_root) / dataset / f"{encoder_key}.h5"


def layer_dataset(layer: str | None) -> str:
    """HDF5 dataset name of a layer: ``None``/``'X'`` is the main matrix."""
    return MAIN if layer in (None, MAIN) else f"{MAIN}@{layer}"


def _parts_dir(path: Path) -> Path:
    return path.with_name(path.name + ".parts")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _str_dataset(group: h5py.Group, name: str, values: Sequence[str]) -> None:
    group.create_dataset(
        name, data=np.asarray(list(values), dtype=object), dtype=h5py.string_dtype("utf-8")
    )


def _read_strings(group: h5py.Group, name: str) -> list[str]:
    if name not in group:
        return []
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in group[name][()]]


def _row_digest(sample_id: str, rows: Iterable[np.ndarray]) -> int:
    h = hashlib.sha256(sample_id.encode("utf-8"))
    for row in rows:
        h.update(np.ascontiguousarray(row, dtype="<f4").tobytes())
    return int.from_bytes(h.digest()[:16], "little")


class FeatureStore:
    """Read-only view of one feature store.

    Raises :class:`StoreError` when the file is missing, unreadable, or written by a
    newer schema than this code understands.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            parts = _parts_dir(self.path)
            if parts.is_dir() and any(parts.glob("part-*.h5")):
                raise StoreError(
                    f"{self.path} has unmerged parts from an interrupted extraction in {parts}; "
                    "run the same `pipeline extract` command again to finish it"
                )
            raise StoreError(
                f"feature store {self.path} does not exist; create it with `pipeline extract`"
            )
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                self._ids = _read_strings(f, "ids")
                self._failed = dict(
                    zip(_read_strings(f, "failed_ids"), _read_strings(f, "failed_reasons"), strict=True)
                )
                self._datasets = [k for k in f.keys() if k == MAIN or k.startswith(MAIN + "@")]
                shape = f[MAIN].shape if MAIN in f else None
        except (OSError, KeyError, ValueError) as exc:
            raise StoreError(
                f"cannot read feature store {self.path} ({exc}); delete it and re-run "
                "`pipeline extract` to rebuild it"
            ) from exc
        version = int(attrs.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} uses store schema {version}, newer than this version of the "
                f"pipeline understands ({SCHEMA_VERSION}); upgrade the pipeline to read it"
            )
        if shape is None or "provenance_json" not in attrs:
            raise StoreError(f"{self.path} is not a feature store (no 'X' or provenance); rebuild it")
        self.provenance: dict[str, Any] = json.loads(attrs["provenance_json"])
        self.provenance["schema_version"] = version
        self.provenance["content_sha256"] = str(attrs.get("content_sha256", ""))
        self.provenance["n_rows"] = len(self._ids)
        self._index: dict[str, int] | None = None
        if shape[0] != len(self._ids):
            raise StoreError(
                f"{self.path} is inconsistent: {shape[0]} rows but {len(self._ids)} ids; rebuild it"
            )

    # --- metadata -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, rows={len(self)}, dim={self.dim})"

    @property
    def ids(self) -> np.ndarray:
        return np.asarray(self._ids, dtype=object)

    @property
    def dim(self) -> int:
        return int(self.provenance["dim"])

    @property
    def encoder_key(self) -> str:
        return str(self.provenance["encoder_key"])

    @property
    def modality(self) -> str:
        return str(self.provenance["modality"])

    @property
    def layers(self) -> list[str]:
        return sorted(d.split("@", 1)[1] for d in self._datasets if d != MAIN)

    @property
    def failed(self) -> dict[str, str]:
        return dict(self._failed)

    @property
    def identity(self) -> str:
        """Content hash: provenance (minus timestamps and versions) + ids + vectors."""
        stable = {k: v for k, v in self.provenance.items() if k not in _VOLATILE_KEYS}
        payload = _canonical(stable) + "|" + self.provenance["content_sha256"]
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def has(self, ids: Sequence[str]) -> np.ndarray:
        index = self._id_index()
        return np.fromiter((i in index for i in ids), dtype=bool, count=len(ids))

    # --- data ---------------------------------------------------------------------
    def read(self, ids: Sequence[str] | None = None, layer: str | None = None) -> np.ndarray:
        """float32 rows for ``ids`` (in that order); all rows in stored order if None."""
        name = layer_dataset(layer)
        if name not in self._datasets:
            raise StoreError(
                f"{self.path} has no layer {layer!r}; available: {['X', *self.layers]}"
            )
        with h5py.File(self.path, "r") as f:
            data = f[name]
            if ids is None:
                return np.asarray(data[()], dtype=np.float32)
            index = self._id_index()
            missing = [i for i in ids if i not in index]
            if missing:
                shown = ", ".join(map(str, missing[:10]))
                raise StoreError(
                    f"{len(missing)} requested ids are not in {self.path} (e.g. {shown}); "
                    "run `pipeline extract` for them or drop them from the manifest"
                )
            rows = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
            if len(rows) == 0:
                return np.zeros((0, data.shape[1]), dtype=np.float32)
            if len(rows) > len(self) // 4:
                return np.asarray(data[()], dtype=np.float32)[rows]
            order = np.unique(rows)  # h5py fancy indexing needs increasing, unique indices
            block = np.asarray(data[order], dtype=np.float32)
            return block[np.searchsorted(order, rows)]

    def _id_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {sid: i for i, sid in enumerate(self._ids)}
        return self._index


class StoreWriter:
    """Append-only writer for one store; use as a context manager.

    >>> with StoreWriter(path, provenance) as w:           # doctest: +SKIP
    ...     todo = [i for i in ids if i not in w.done_ids]
    ...     w.add(batch_ids, {"X": vectors})
    ...     w.flush()

    Ids already in the store are skipped on :meth:`add` (append-only by id). Failed
    ids are recorded with a reason and retried by the next run.
    """

    def __init__(
        self, path: str | os.PathLike, provenance: dict[str, Any], lock_timeout: float = 0.0
    ) -> None:
        missing = [k for k in _REQUIRED_KEYS if k not in provenance]
        if missing:
            raise ValueError(f"provenance lacks required keys {missing}")
        self.path = Path(path)
        self.provenance = dict(provenance)
        self.provenance.setdefault("layers", [])
        self.provenance["layers"] = sorted(self.provenance["layers"])
        self.lock_timeout = lock_timeout
        self._lock = None
        self._buffer_ids: list[str] = []
        self._buffer: dict[str, list[np.ndarray]] = {}
        self._failed: dict[str, str] = {}
        self._done: set[str] = set()
        self._part_seq = 0
        self._n_added = 0

    # --- lifecycle ----------------------------------------------------------------
    def __enter__(self) -> StoreWriter:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = FileLock(str(lock_path), timeout=self.lock_timeout)
        try:
            self._lock.acquire()
        except Timeout:
            self._lock = None
            raise StoreLockedError(
                f"another process is writing {self.path} (lock {lock_path} is held); wait for "
                "that `pipeline extract` to finish, or pass a lock timeout (`pipeline extract --lock-timeout SECONDS`) to wait for it"
            ) from None
        try:
            self._check_compatible()
            self._merge()  # finish the work of a run that was killed
            if self.path.exists():
                self._done = set(FeatureStore(self.path).ids.tolist())
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            # Keep what was computed even when the run is interrupted by an error.
            self.flush()
            self._merge()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- writing ------------------------------------------------------------------
    @property
    def done_ids(self) -> set[str]:
        """Ids already embedded (merged or added in this session)."""
        return set(self._done)

    @property
    def n_added(self) -> int:
        return self._n_added

    def add(self, ids: Sequence[str], arrays: dict[str, np.ndarray]) -> None:
        """Buffer rows; ``arrays['X']`` is ``[len(ids), dim]``, other keys are layers."""
        self._require_open()
        if MAIN not in arrays:
            raise ValueError("arrays must contain the main matrix under key 'X'")
        expected = {MAIN, *self.provenance["layers"]}
        if set(arrays) != expected:
            raise ValueError(f"arrays keys {sorted(arrays)} != provenance layers {sorted(expected)}")
        ids = [str(i) for i in ids]
        mats = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        for key, mat in mats.items():
            if mat.ndim != 2 or mat.shape[0] != len(ids):
                raise ValueError(f"array {key!r} has shape {mat.shape}, expected ({len(ids)}, d)")
        if mats[MAIN].shape[1] != int(self.provenance["dim"]):
            raise ValueError(
                f"X has dim {mats[MAIN].shape[1]} but provenance says {self.provenance['dim']}"
            )
        finite = np.ones(len(ids), dtype=bool)
        for mat in mats.values():
            finite &= np.isfinite(mat).all(axis=1)
        for row, sid in enumerate(ids):
            if sid in self._done:
                continue
            if not finite[row]:
                self.add_failed(sid, "encoder produced NaN/inf values")
                continue
            self._done.add(sid)
            self._failed.pop(sid, None)
            self._buffer_ids.append(sid)
            for key, mat in mats.items():
                self._buffer.setdefault(key, []).append(mat[row])
            self._n_added += 1

    def add_failed(self, sample_id: str, reason: str) -> None:
        """Record that ``sample_id`` could not be embedded (kept in the store's failed list)."""
        self._require_open()
        if str(sample_id) not in self._done:
            self._failed[str(sample_id)] = str(reason)

    def flush(self) -> None:
        """Make everything added so far durable as one atomic part file."""
        if not self._buffer_ids and not self._failed:
            return
        parts = _parts_dir(self.path)
        parts.mkdir(parents=True, exist_ok=True)
        self._part_seq += 1
        name = f"part-{os.getpid()}-{datetime.now(UTC):%Y%m%d%H%M%S%f}-{self._part_seq:06d}.h5"
        final = parts / name
        tmp = parts / (name + ".tmp")
        dim = int(self.provenance["dim"])
        with h5py.File(tmp, "w") as f:
            f.attrs["provenance_json"] = _canonical(self._compat_view(self.provenance))
            _str_dataset(f, "ids", self._buffer_ids)
            for key in (MAIN, *self.provenance["layers"]):
                rows = self._buffer.get(key, [])
                width = rows[0].shape[0] if rows else (dim if key == MAIN else 0)
                data = np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)
                f.create_dataset(layer_dataset(key), data=data)
            _str_dataset(f, "failed_ids", list(self._failed))
            _str_dataset(f, "failed_reasons", list(self._failed.values()))
            f.flush()
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(parts)
        self._buffer_ids, self._buffer, self._failed = [], {}, {}

    # --- internals ----------------------------------------------------------------
    def _require_open(self) -> None:
        if self._lock is None:
            raise RuntimeError("StoreWriter must be used as a context manager (with ...)")

    @staticmethod
    def _compat_view(prov: dict[str, Any]) -> dict[str, Any]:
        return {k: prov.get(k) for k in COMPATIBILITY_KEYS}

    def _check_compatible(self) -> None:
        if not self.path.exists():
            return
        existing = FeatureStore(self.path).provenance
        mine, theirs = self._compat_view(self.provenance), self._compat_view(existing)
        diff = [k for k in COMPATIBILITY_KEYS if _canonical(mine[k]) != _canonical(theirs[k])]
        if diff:
            details = "; ".join(f"{k}: store has {theirs[k]!r}, this run {mine[k]!r}" for k in diff)
            raise StoreError(
                f"{self.path} was built with a different encoder setup ({details}). Use a new "
                "encoder key for this setup, or delete the store to rebuild it"
            )

    def _merge(self) -> None:
        """Fold all part files into the store, atomically; idempotent by sample id."""
        parts_dir = _parts_dir(self.path)
        for stale in parts_dir.glob("*.tmp") if parts_dir.is_dir() else ():
            stale.unlink()  # a part that was being written when a run was killed
        parts = sorted(parts_dir.glob("part-*.h5")) if parts_dir.is_dir() else []
        if not parts and self.path.exists():
            return
        expected = _canonical(self._compat_view(self.provenance))
        for part in parts:
            with h5py.File(part, "r") as f:
                if f.attrs.get("provenance_json") != expected:
                    raise StoreError(
                        f"{part} was written by a run with a different encoder setup; delete "
                        f"{parts_dir} (its rows are lost) or re-run with the original setup"
                    )
        layers = [MAIN, *self.provenance["layers"]]
        old = FeatureStore(self.path) if self.path.exists() else None
        old_ids = old._ids if old is not None else []
        seen = set(old_ids)
        failed = dict(old.failed) if old is not None else {}
        new_rows: list[tuple[Path, list[int], list[str]]] = []  # part, rows to take, their ids
        new_ids: list[str] = []
        for part in parts:
            with h5py.File(part, "r") as f:
                take, take_ids = [], []
                for row, sid in enumerate(_read_strings(f, "ids")):
                    if sid not in seen:
                        seen.add(sid)
                        take.append(row)
                        take_ids.append(sid)
                new_ids.extend(take_ids)
                failed.update(
                    zip(_read_strings(f, "failed_ids"), _read_strings(f, "failed_reasons"), strict=True)
                )
            new_rows.append((part, take, take_ids))
        failed = {k: v for k, v in failed.items() if k not in seen}
        all_ids = list(old_ids) + new_ids
        created = old.provenance.get("created") if old is not None else _now()

        tmp = self.path.with_name(self.path.name + f".merge-{os.getpid()}.tmp")
        acc = 0
        with h5py.File(tmp, "w") as out:
            _str_dataset(out, "ids", all_ids)
            dsets = {}
            for key in layers:
                width = self._layer_width(key, old, new_rows)
                dsets[key] = out.create_dataset(
                    layer_dataset(key),
                    shape=(len(all_ids), width),
                    maxshape=(None, None),
                    dtype=np.float32,
                    chunks=(max(1, min(len(all_ids) or 1, 1024)), max(1, width)),
                )
            pos = 0
            if old is not None:
                with h5py.File(old.path, "r") as src:
                    for start in range(0, len(old_ids), _COPY_ROWS):
                        stop = min(start + _COPY_ROWS, len(old_ids))
                        block = {k: src[layer_dataset(k)][start:stop] for k in layers}
                        acc = _write_block(dsets, block, old_ids[start:stop], pos, acc)
                        pos += stop - start
            for part, take, take_ids in new_rows:
                if not take:
                    continue
                with h5py.File(part, "r") as src:
                    block = {k: src[layer_dataset(k)][()][take] for k in layers}
                acc = _write_block(dsets, block, take_ids, pos, acc)
                pos += len(take)
            _str_dataset(out, "failed_ids", list(failed))
            _str_dataset(out, "failed_reasons", list(failed.values()))
            prov = dict(self.provenance)
            prov.update(created=created, updated=_now(), versions=_versions(prov.get("versions")))
            out.attrs["provenance_json"] = _canonical(prov)
            out.attrs["schema_version"] = SCHEMA_VERSION
            out.attrs["content_sha256"] = f"{acc:032x}-{len(all_ids)}"
            for key in ("encoder_key", "modality", "architecture", "weights_name", "dim"):
                out.attrs[key] = prov[key]
        _fsync_file(tmp)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        if parts_dir.is_dir():
            shutil.rmtree(parts_dir)
        if new_ids:
            log.info("merged %d new rows into %s (%d rows in all)", len(new_ids), self.path, len(all_ids))

    def _layer_width(self, key: str, old: FeatureStore | None, new_rows) -> int:
        """Width of an extra layer: from the existing rows, else from the first new part."""
        if key == MAIN:
            return int(self.provenance["dim"])
        if old is not None and len(old):
            with h5py.File(old.path, "r") as f:
                return int(f[layer_dataset(key)].shape[1])
        for part, take, _ids in new_rows:
            if take:
                with h5py.File(part, "r") as f:
                    return int(f[layer_dataset(key)].shape[1])
        return 0


def _write_block(dsets, block: dict[str, np.ndarray], ids: Sequence[str], pos: int, acc: int) -> int:
    """Write rows at ``pos`` and fold their digests into the order-independent hash."""
    n = len(ids)
    for key, data in block.items():
        dsets[key][pos : pos + n] = data
    keys = sorted(block)
    for row, sid in enumerate(ids):
        acc = (acc + _row_digest(sid, (block[k][row] for k in keys))) % (1 << 128)
    return acc


def _versions(extra: dict[str, str] | None) -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__, "h5py": h5py.__version__}
    versions.update(extra or {})
    return versions


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def list_stores(features_root: str | os.PathLike, dataset: str | None = None) -> list[FeatureStore]:
    """All readable stores under ``features_root`` (optionally of one dataset), sorted by path."""
    root = Path(features_root)
    pattern = f"{dataset}/*.h5" if dataset else "*/*.h5"
    return [FeatureStore(p) for p in sorted(root.glob(pattern))]
