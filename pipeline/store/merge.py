"""Folding a store's part files into a new store file that atomically replaces the old one.

Called by :class:`pipeline.store.feature_store.StoreWriter` (under its lock) when it opens and when it
closes. Idempotent by sample id: rows already in the store are skipped, so a merge that
was killed after ``os.replace`` but before the parts were deleted adds nothing when run
again. The new file gets ``content_id`` and the SHA-256 ``content_digest``
(:mod:`pipeline.store.checks`) before it replaces the store.

A file in the parts folder that is not a readable part of this store (garbage, a
truncated copy, a stray file) is moved to the store folder's ``quarantine/`` with a
warning, and the merge proceeds without it. A readable part written with a different
encoder setup stops the merge (its rows belong to another store).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import (
    UNCLOSABLE_HDF5,
    StoreError,
    is_os_fault,
    os_errno,
    os_faults,
    storage_error,
)
from pipeline.helpers import fsync_dir, fsync_file
from pipeline.store.checks import StoreHeader, compute_digest
from pipeline.store.format import (
    MAIN,
    SCHEMA_VERSION,
    canonical,
    compat_view,
    content_id,
    layer_dataset,
    now,
    parts_dir,
    read_strings,
    row_digest,
    str_dataset,
)
from pipeline.store.quarantine import QUARANTINE, move_aside

log = logging.getLogger(__name__)

COPY_ROWS = 16384  # rows copied per chunk when merging (bounded memory)
_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)
_OTHER_SETUP = "other setup"


def _part_problem(part: Path, expected: str, dim: int, layers: Sequence[str]) -> str | None:
    """None for a usable part; :data:`_OTHER_SETUP`; or what makes it unusable."""
    try:
        with h5py.File(part, "r") as f:
            if f.attrs.get("provenance_json") != expected:
                return _OTHER_SETUP if "provenance_json" in f.attrs else "no provenance"
            n = len(read_strings(f, "ids"))
            for key in (MAIN, *layers):
                name = layer_dataset(key)
                if name not in f:
                    return f"no {name} matrix"
                data = f[name]
                if data.ndim != 2 or data.shape[0] != n or data.dtype.kind != "f":
                    return f"{name} has shape {data.shape} ({data.dtype}) for {n} ids"
            if f[MAIN].shape[1] != dim:
                return f"X is {f[MAIN].shape[1]} wide, not {dim}"
            if len(read_strings(f, "failed_ids")) != len(read_strings(f, "failed_reasons")):
                return "failed ids and reasons differ in length"
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        if is_os_fault(exc) and os_errno(exc) in _ACCESS:
            raise storage_error(exc, "read the part file", part) from exc
        return f"not a readable part file ({exc})"
    return None


def usable_parts(path: Path, provenance: dict[str, Any]) -> list[Path]:
    """The part files of ``path`` to merge, in order; anything else in the parts folder is
    moved to quarantine (stale ``*.tmp`` files of a killed flush are deleted)."""
    pdir = parts_dir(path)
    if not pdir.is_dir():
        return []
    expected = canonical(compat_view(provenance))
    good = []
    for item in sorted(pdir.iterdir()):
        if item.name.endswith(".tmp") and item.is_file():
            with os_faults("delete the unfinished part file", item):
                item.unlink()  # a part being written when a run was killed
            continue
        if item.name.startswith("part-") and item.name.endswith(".h5") and item.is_file():
            problem = _part_problem(item, expected, int(provenance["dim"]), provenance["layers"])
            if problem is None:
                good.append(item)
                continue
            if problem == _OTHER_SETUP:
                raise StoreError(
                    f"{item} was written by a run with a different encoder setup; delete "
                    f"{pdir} (its rows are lost) or re-run with the original setup"
                )
        else:
            problem = "not a part file of this store"
        move_aside(item, path.parent / QUARANTINE,
                   f"{item.name} in {pdir} is unusable ({problem}); the extraction went on "
                   "without it (its rows, if any, are embedded again)")
    return good


def merge_parts(path: Path, provenance: dict[str, Any], old: Any, parts: Sequence[Path]) -> int:
    """Write the store ``old`` (a FeatureStore or None) + ``parts`` to a new file replacing
    ``path``; returns the number of new rows. Deletes the parts folder afterwards."""
    layers = [MAIN, *provenance["layers"]]
    old_ids = list(old.ids) if old is not None else []
    seen = set(old_ids)
    failed = dict(old.failed) if old is not None else {}
    new_rows: list[tuple[Path, list[int], list[str]]] = []  # part, rows to take, their ids
    new_ids: list[str] = []
    with os_faults("read the part files in", parts_dir(path)):
        for part in parts:
            with h5py.File(part, "r") as f:
                take, take_ids = [], []
                for row, sid in enumerate(read_strings(f, "ids")):
                    if sid not in seen:
                        seen.add(sid)
                        take.append(row)
                        take_ids.append(sid)
                new_ids.extend(take_ids)
                failed.update(zip(read_strings(f, "failed_ids"), read_strings(f, "failed_reasons"),
                                  strict=True))
            new_rows.append((part, take, take_ids))
    failed = {k: v for k, v in failed.items() if k not in seen}
    all_ids = old_ids + new_ids
    prov = dict(provenance)
    prov.update(created=old.provenance.get("created") if old is not None else now(),
                updated=now(), versions=_versions(prov.get("versions")))

    tmp = path.with_name(path.name + f".merge-{os.getpid()}.tmp")
    _preflight(tmp, prov, layers, old, new_rows, len(all_ids))
    try:
        with os_faults("write the merged feature store", tmp):
            try:
                _write(tmp, prov, layers, old, old_ids, new_rows, all_ids, failed)
            except (OSError, RuntimeError) as exc:
                if is_os_fault(exc):
                    UNCLOSABLE_HDF5.append(exc)  # see pipeline.errors: never free its objects
                raise
            fsync_file(tmp)
            os.replace(tmp, path)
            fsync_dir(path.parent)
    finally:
        if tmp.exists():  # a failed write (e.g. a full disk) leaves nothing behind
            with contextlib.suppress(OSError):
                tmp.unlink()
    pdir = parts_dir(path)
    if pdir.is_dir():
        with os_faults("delete the merged part files in", pdir):
            shutil.rmtree(pdir)
    if new_ids:
        log.info("merged %d new rows into %s (%d rows in all)", len(new_ids), path, len(all_ids))
    return len(new_ids)


def _preflight(tmp: Path, prov: dict[str, Any], layers: list[str], old: Any, new_rows,
               n_rows: int) -> None:
    """Refuse a merge that cannot fit (free disk space, the process's file size limit) before
    HDF5 writes anything: HDF5 handles a failed write badly (see ``UNCLOSABLE_HDF5``)."""
    width = sum(_layer_width(k, prov, old, new_rows) for k in layers)
    need = int(n_rows * (4 * width + 64) * 1.05) + (64 << 10)
    free = shutil.disk_usage(tmp.parent).free
    if free < need:
        exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        raise storage_error(exc, f"write the merged feature store (about {need >> 20} MB "
                                 f"needed, {free >> 20} MB free) as", tmp)
    try:
        import resource
    except ImportError:  # not on Windows
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and limit < need:
        exc = OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(tmp))
        raise storage_error(exc, f"write the merged feature store (about {need >> 10} kB, the "
                                 f"file size limit is {limit >> 10} kB) as", tmp)


def _write(tmp: Path, prov: dict[str, Any], layers: list[str], old: Any, old_ids: list[str],
           new_rows: list[tuple[Path, list[int], list[str]]], all_ids: list[str],
           failed: dict[str, str]) -> None:
    acc = 0
    with h5py.File(tmp, "w") as out:
        str_dataset(out, "ids", all_ids)
        dsets = {}
        for key in layers:
            width = _layer_width(key, prov, old, new_rows)
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
                for start in range(0, len(old_ids), COPY_ROWS):
                    stop = min(start + COPY_ROWS, len(old_ids))
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
        str_dataset(out, "failed_ids", list(failed))
        str_dataset(out, "failed_reasons", list(failed.values()))
        stored = canonical(prov)
        out.attrs["provenance_json"] = stored
        out.attrs["schema_version"] = SCHEMA_VERSION
        cid = content_id(acc, len(all_ids))
        out.attrs["content_id"] = cid
        for key in ("encoder_key", "modality", "architecture", "weights_name", "dim"):
            out.attrs[key] = prov[key]
        out.flush()
        header = StoreHeader(SCHEMA_VERSION, json.loads(stored), cid, None)
        datasets = [layer_dataset(k) for k in layers]
        out.attrs["content_digest"] = compute_digest(tmp, out, header, all_ids, datasets, failed)


def _layer_width(key: str, prov: dict[str, Any], old: Any, new_rows) -> int:
    """Width of an extra layer: from the existing rows, else from the first new part."""
    if key == MAIN:
        return int(prov["dim"])
    if old is not None and len(old):
        with h5py.File(old.path, "r") as f:
            return int(f[layer_dataset(key)].shape[1])
    for part, take, _ids in new_rows:
        if take:
            with h5py.File(part, "r") as f:
                return int(f[layer_dataset(key)].shape[1])
    return 0


def _write_block(dsets, block: dict[str, np.ndarray], ids: Sequence[str], pos: int, acc: int) -> int:
    """Write rows at ``pos`` and fold their hashes into the order-independent ``content_id``."""
    n = len(ids)
    for key, data in block.items():
        dsets[key][pos : pos + n] = data
    keys = sorted(block)
    for row, sid in enumerate(ids):
        acc = (acc + row_digest(sid, (block[k][row] for k in keys))) % (1 << 128)
    return acc


def _versions(extra: dict[str, str] | None) -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__, "h5py": h5py.__version__}
    versions.update(extra or {})
    return versions
