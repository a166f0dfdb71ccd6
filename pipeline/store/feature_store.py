"""HDF5 feature stores: the only contract between the extract and classify stages.

One file per (dataset, encoder key): ``<features_root>/<dataset>/<encoder_key>.h5``.

Inside the file
    ``ids``          UTF-8 strings, one per row (the sample ids, in stored order)
    ``X``            float32 ``[n, dim]``, chunked
    ``X@<layer>``    optional extra layers (multi-layer taps), same rows as ``X``
    ``failed_ids`` / ``failed_reasons``  items the encoder could not embed, and why
    attributes       provenance (encoder key, modality, architecture, weights name and
                     sha256, preprocessing, dim, training sets of the weights, library
                     versions, created/updated) as ``provenance_json``, ``schema_version``,
                     ``content_id`` (order-independent identity of the rows; feeds the cache
                     keys of classify) and ``content_digest`` (SHA-256 of everything a reader
                     uses); both are defined in :mod:`pipeline.store.checks`

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

How damage is caught
    Every open for reading checks attributes and shapes; classify, report and a resuming
    extract also recompute the content digest (``FeatureStore(path)``; seconds per GB),
    and ``pipeline verify`` does so on demand. Anything wrong is a :class:`StoreError`
    (exit 2) naming the file, the problem and the fix (``pipeline extract ... --rebuild``,
    which moves the damaged file to ``quarantine/`` and embeds everything again, or a
    backup). An unusable file in the parts folder is moved to ``quarantine/`` with a
    warning and the extraction resumes without it (:mod:`pipeline.store.merge`).

Store kinds (:mod:`pipeline.store.kinds`): embedding stores hold finite vectors; tabular
stores declare typed columns in provenance and allow NaN for a missing value.
Readers always select rows by sample id, never by position.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import (
    StoreError,
    StoreLockedError,
    is_os_fault,
    os_errno,
    os_faults,
    storage_error,
)
from pipeline.helpers import atomic_write
from pipeline.store.checks import (
    check_header,
    check_structure,
    identity_provenance,
    rebuild_fix,
    verify_content,
)
from pipeline.store.format import (
    COMPATIBILITY_KEYS,
    MAIN,
    SCHEMA_VERSION,
    canonical,
    compat_view,
    layer_dataset,
    parts_dir,
    read_strings,
    str_dataset,
)
from pipeline.store.kinds import KIND_KEYS, TableSchema, store_kind, table_schema, value_problems
from pipeline.store.merge import merge_parts, usable_parts
from pipeline.store.quarantine import QUARANTINE, move_aside

__all__ = [
    "COMPATIBILITY_KEYS", "MAIN", "SCHEMA_VERSION", "FeatureStore", "StoreWriter", "layer_dataset",
    "list_stores", "store_files", "store_path",
]

log = logging.getLogger(__name__)

_REQUIRED_KEYS = ("encoder_key", "modality", "architecture", "weights_name", "dim")


def store_path(features_root: str | os.PathLike, dataset: str, encoder_key: str) -> Path:
    """Where the store of ``encoder_key`` on ``dataset`` lives."""
    if not encoder_key or "/" in encoder_key or encoder_key.startswith("."):
        raise StoreError(
            f"invalid encoder key {encoder_key!r}: use letters, digits, '_', '-', '@', '+' only"
        )
    return Path(features_root) / dataset / f"{encoder_key}.h5"


class FeatureStore:
    """Read-only view of one feature store, checked on open.

    Opening checks the attributes (schema version, provenance JSON, content attributes) and
    the shapes (float matrices, one row per id, ``X`` as wide as the recorded dim, unique
    ids) and the store kind. With ``verify`` (the default) it also reads every row once:
    all values valid (finite; in a tabular store NaN marks a missing value),
    and the SHA-256 ``content_digest`` recomputed and compared with the recorded one (see
    :mod:`pipeline.store.checks`; seconds per GB). Any problem raises :class:`StoreError`
    (exit 2) naming the file, what is wrong and the fix; so do a missing file, an
    unreadable one, and a store written by a newer schema than this code understands.
    ``verify=False`` is for metadata only (``pipeline list``, compatibility checks).
    """

    def __init__(self, path: str | os.PathLike, *, verify: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            parts = parts_dir(self.path)
            if parts.is_dir() and any(parts.glob("part-*.h5")):
                raise StoreError(
                    f"{self.path} has unmerged parts from an interrupted extraction in {parts}; "
                    "run the same `pipeline extract` command again to finish it"
                )
            raise StoreError(
                f"feature store {self.path} does not exist; create it with `pipeline extract`"
            )
        self.verified = False
        try:
            with h5py.File(self.path, "r") as f:
                self._header = check_header(self.path, f.attrs)
                version = self._header.schema_version
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} uses store schema {version}, newer than this version of the "
                        f"pipeline understands ({SCHEMA_VERSION}); upgrade the pipeline to read it"
                    )
                if MAIN not in f:
                    raise StoreError(f"{self.path} is not a feature store (no 'X'); "
                                     f"{rebuild_fix(self.path)}")
                self._ids = read_strings(f, "ids")
                failed_ids, reasons = read_strings(f, "failed_ids"), read_strings(f, "failed_reasons")
                if len(failed_ids) != len(reasons):
                    raise StoreError(f"{self.path}: {len(failed_ids)} failed ids but {len(reasons)} "
                                     f"reasons. {rebuild_fix(self.path)}")
                self._failed = dict(zip(failed_ids, reasons, strict=True))
                self._datasets = [k for k in f.keys() if k == MAIN or k.startswith(MAIN + "@")]
                check_structure(self.path, f, self._header, self._ids, self._datasets)
                if verify:
                    self.verified = verify_content(self.path, f, self._header, self._ids,
                                                   self._datasets, self._failed)
        except StoreError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            if is_os_fault(exc) and os_errno(exc) not in (errno.EIO,):
                raise storage_error(exc, "read the feature store", self.path) from exc
            raise StoreError(
                f"cannot read feature store {self.path} ({exc}); delete it and re-run "
                "`pipeline extract` to rebuild it, or restore it from a backup"
            ) from exc
        self.provenance: dict[str, Any] = dict(self._header.provenance)
        self.provenance["schema_version"] = self._header.schema_version
        self.provenance["n_rows"] = len(self._ids)
        self._index: dict[str, int] | None = None

    def verify(self) -> bool:
        """Read every row: finite values and the recorded content digest (StoreError if not).

        False when the store predates content digests (nothing to compare with)."""
        with h5py.File(self.path, "r") as f:
            self.verified = verify_content(self.path, f, self._header, self._ids, self._datasets,
                                           self._failed)
        return self.verified

    @property
    def content_id(self) -> str:
        """Order-independent identity of the (id, vector) rows (``"<32 hex>-<n>"``); feeds
        :attr:`identity`. Read from ``content_sha256`` in stores written before the rename."""
        return self._header.content_id

    @property
    def content_digest(self) -> str | None:
        """``"sha256:<hex>"`` over the whole content, or None for stores that predate it."""
        return self._header.content_digest

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
    def kind(self) -> str:
        """``embedding`` or ``tabular`` (see :mod:`pipeline.store.kinds`)."""
        return store_kind(self.provenance)

    @property
    def schema(self) -> TableSchema | None:
        """The declared columns of a tabular store (None for an embedding store)."""
        return table_schema(self.provenance)

    @property
    def layers(self) -> list[str]:
        return sorted(d.split("@", 1)[1] for d in self._datasets if d != MAIN)

    @property
    def failed(self) -> dict[str, str]:
        return dict(self._failed)

    @property
    def identity(self) -> str:
        """Identity of the content: SHA-256 of the semantic provenance
        (:func:`identity_provenance`: no timestamps, versions or run diagnostics) and
        :attr:`content_id`. Classify's cell keys include it, so it must not change for the
        same rows (it does not depend on row order, on when the store was written, or on the
        float noise of the backend check)."""
        payload = canonical(identity_provenance(self.provenance)) + "|" + self.content_id
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

    Opening checks that an existing store was made with the same encoder setup, verifies
    its content (:meth:`FeatureStore.verify`) and finishes the merge of a killed run.
    ``rebuild=True`` first moves the existing store and its parts to ``quarantine/``.
    """

    def __init__(
        self, path: str | os.PathLike, provenance: dict[str, Any], lock_timeout: float = 0.0,
        *, rebuild: bool = False,
    ) -> None:
        missing = [k for k in _REQUIRED_KEYS if k not in provenance]
        if missing:
            raise ValueError(f"provenance lacks required keys {missing}")
        self.path = Path(path)
        self.provenance = dict(provenance)
        self.provenance.setdefault("layers", [])
        self.provenance["layers"] = sorted(self.provenance["layers"])
        self.lock_timeout = lock_timeout
        self.rebuild = rebuild
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

        lock_path = self.path.with_name(self.path.name + ".lock")
        with os_faults("create the store folder and its lock file", lock_path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(lock_path), timeout=self.lock_timeout)
            try:
                self._lock.acquire()
            except Timeout:
                self._lock = None
                raise StoreLockedError(
                    f"another process is writing {self.path} (lock {lock_path} is held); wait for "
                    "that `pipeline extract` to finish, or pass a lock timeout (`pipeline extract --lock-timeout SECONDS`) to wait for it"
                ) from None
            except BaseException:
                self._lock = None
                raise
        try:
            if self.rebuild:
                self._set_aside()
            existing = self._check_compatible()
            if existing is not None:
                existing.verify()  # never build on (or bless) a damaged store
            self._merge()  # finish the work of a run that was killed
            if self.path.exists():
                self._done = set(FeatureStore(self.path, verify=False).ids.tolist())
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
        problems = value_problems(mats[MAIN], self.provenance)
        for key, mat in mats.items():
            if key != MAIN:
                for r in np.flatnonzero(~np.isfinite(mat).all(axis=1)):
                    problems[r] = problems[r] or "NaN/inf values"
        for row, sid in enumerate(ids):
            if sid in self._done:
                continue
            if problems[row] is not None:
                what = ("encoder produced NaN/inf values" if problems[row] == "NaN/inf values"
                        else f"invalid row: {problems[row]}")
                self.add_failed(sid, what)
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
        """Make everything added so far durable as one atomic part file.

        The part is built in memory and written with plain file I/O (``atomic_write``), so a
        full disk raises a clean OSError instead of leaving HDF5 with a file it cannot close.
        """
        if not self._buffer_ids and not self._failed:
            return
        self._part_seq += 1
        name = f"part-{os.getpid()}-{datetime.now(UTC):%Y%m%d%H%M%S%f}-{self._part_seq:06d}.h5"
        final = parts_dir(self.path) / name
        with os_faults("write a part file of the feature store", final):
            atomic_write(final, self._part_bytes())
        self._buffer_ids, self._buffer, self._failed = [], {}, {}

    def _part_bytes(self) -> bytes:
        dim = int(self.provenance["dim"])
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.attrs["provenance_json"] = canonical(compat_view(self.provenance))
            str_dataset(f, "ids", self._buffer_ids)
            for key in (MAIN, *self.provenance["layers"]):
                rows = self._buffer.get(key, [])
                width = rows[0].shape[0] if rows else (dim if key == MAIN else 0)
                data = np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)
                f.create_dataset(layer_dataset(key), data=data)
            str_dataset(f, "failed_ids", list(self._failed))
            str_dataset(f, "failed_reasons", list(self._failed.values()))
        return buf.getvalue()

    # --- internals ----------------------------------------------------------------
    def _require_open(self) -> None:
        if self._lock is None:
            raise RuntimeError("StoreWriter must be used as a context manager (with ...)")

    def _check_compatible(self) -> FeatureStore | None:
        """The existing store (metadata only), refused when made with another encoder setup."""
        if not self.path.exists():
            return None
        existing = FeatureStore(self.path, verify=False)
        mine, theirs = compat_view(self.provenance), compat_view(existing.provenance)
        keys = [*COMPATIBILITY_KEYS, *(k for k in KIND_KEYS if k in mine or k in theirs)]
        diff = [k for k in keys if canonical(mine.get(k)) != canonical(theirs.get(k))]
        if diff:
            details = "; ".join(f"{k}: store has {theirs[k]!r}, this run {mine[k]!r}" for k in diff)
            raise StoreError(
                f"{self.path} was built with a different encoder setup ({details}). Use a new "
                "encoder key for this setup, or delete the store to rebuild it"
            )
        return existing

    def _set_aside(self) -> None:
        """``rebuild``: move the store and its parts to quarantine; start from nothing."""
        for item in (self.path, parts_dir(self.path)):
            if item.exists():
                move_aside(item, self.path.parent / QUARANTINE,
                           "set aside by `pipeline extract --rebuild`; the store is rebuilt")

    def _merge(self) -> None:
        """Fold all part files into the store, atomically; idempotent by sample id."""
        parts = usable_parts(self.path, self.provenance)
        old = FeatureStore(self.path, verify=False) if self.path.exists() else None
        if not parts and old is not None and old.content_digest is not None:
            pdir = parts_dir(self.path)
            if pdir.is_dir() and not any(pdir.iterdir()):
                pdir.rmdir()
            return
        merge_parts(self.path, self.provenance, old, parts)


def store_files(features_root: str | os.PathLike, dataset: str | None = None) -> list[Path]:
    """Paths of the store files under ``features_root`` (optionally of one dataset), sorted."""
    pattern = f"{dataset}/*.h5" if dataset else "*/*.h5"
    return sorted(p for p in Path(features_root).glob(pattern) if p.is_file())


def list_stores(features_root: str | os.PathLike, dataset: str | None = None, *,
                verify: bool = True) -> list[FeatureStore]:
    """Every store under ``features_root`` (optionally of one dataset), sorted by path;
    StoreError for the first one that is damaged (see :class:`FeatureStore`)."""
    return [FeatureStore(p, verify=verify) for p in store_files(features_root, dataset)]
