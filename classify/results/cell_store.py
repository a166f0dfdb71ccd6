"""On-disk cell results: ``<results>/<dataset>/cells/<cell_key>/``.

A cell directory holds plain tables only (no pickle):

* ``cell.json``      spec, key, configuration identities (store identities, split hash, seed,
                     label rule), classes, fit seconds, warnings, library versions.
* ``scores.csv``     long-form per-split scores (:data:`classify.results.types.SCORE_COLUMNS`).
* ``folds.csv``      per-split sizes and timings.
* ``counts.csv``     training-fold class counts before/after the sampler.
* ``attention.csv``  mean attention per store per split (attention fusion only).
* ``oof.npz``        out-of-fold predictions (``allow_pickle=False``): sample_id, repeat, fold,
                     y_true (class code), proba ``[n, n_classes]``, classes.
* ``SHA256SUMS``     SHA-256 of every other file (``sha256sum -c SHA256SUMS`` format), written
                     last, atomically and fsync'd, after all the files above were fsync'd.

The directory is written under a temporary name and renamed into place
(``os.replace``), so a cell is either complete or absent; a re-run computes
exactly the cells whose directory is missing.

Reading a cell (:func:`read_cell`) first checks it against ``SHA256SUMS`` (every listed
file present and unchanged, no unlisted file), then parses it. A cell that fails either
step raises :class:`CellDamagedError`; :func:`open_cell` then moves it to
``<results>/quarantine/`` (never deletes it) so the benchmark recomputes it. Cells written
before checksums existed have no ``SHA256SUMS`` and are treated the same way: nothing
vouches for their bytes, and recomputing is the only safe choice.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.results.types import CellResult, CellSpec
from pipeline.errors import PipelineError, is_os_fault, os_errno, os_faults, storage_error
from pipeline.helpers import atomic_write, file_sha256, fsync_dir, fsync_file
from pipeline.store.quarantine import QUARANTINE, move_aside

log = logging.getLogger(__name__)

CELL_FILE = "cell.json"
CHECKSUMS = "SHA256SUMS"
_ACCESS = (errno.EACCES, errno.EPERM)


class CellDamagedError(PipelineError):
    """A stored cell failed verification or could not be parsed (it must be recomputed)."""


def cells_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "cells"


def cell_dir(results_dir: Path, key: str) -> Path:
    return cells_dir(results_dir) / key


def has_cell(results_dir: Path, key: str) -> bool:
    """A folder exists for the cell (complete or damaged: :func:`open_cell` tells which)."""
    return cell_dir(results_dir, key).is_dir()


def quarantine_dir(results_dir: Path) -> Path:
    return Path(results_dir) / QUARANTINE


def write_checksums(folder: Path) -> Path:
    """fsync every file of ``folder``, then write its ``SHA256SUMS`` atomically (fsync'd)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS)
    for name in names:
        fsync_file(folder / name)
    lines = "".join(f"{file_sha256(folder / name)}  {name}\n" for name in names)
    return atomic_write(folder / CHECKSUMS, lines)


def verify_cell(path: Path) -> None:
    """Check a cell folder against its ``SHA256SUMS``; CellDamagedError saying what differs."""
    path = Path(path)
    sums = path / CHECKSUMS
    if not sums.is_file():
        raise CellDamagedError(f"no {CHECKSUMS} (written before results were verified, or "
                               "incomplete), so nothing vouches for its files")
    try:
        listed = {}
        for line in sums.read_text(encoding="utf-8").splitlines():
            digest, sep, name = line.partition("  ")
            if not sep or len(digest) != 64 or "/" in name or name in ("", ".", ".."):
                raise CellDamagedError(f"{CHECKSUMS} has a malformed line {line[:80]!r}")
            listed[name] = digest
        present = {p.name for p in path.iterdir() if p.name != CHECKSUMS}
        for name in sorted(set(listed) - present):
            raise CellDamagedError(f"{name} is missing")
        for name in sorted(present - set(listed)):
            raise CellDamagedError(f"{name} is not listed in {CHECKSUMS}")
        for name, digest in sorted(listed.items()):
            if file_sha256(path / name) != digest:
                raise CellDamagedError(f"{name} was changed after the cell was written "
                                       "(its SHA-256 differs from SHA256SUMS)")
    except (OSError, UnicodeDecodeError) as exc:
        if is_os_fault(exc) and os_errno(exc) in _ACCESS:
            raise storage_error(exc, "read the result cell", path) from exc
        raise CellDamagedError(f"cannot be read ({exc})") from exc


def _versions() -> dict[str, str]:
    import imblearn
    import scipy
    import sklearn

    out = {"numpy": np.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__,
           "imblearn": imblearn.__version__, "scipy": scipy.__version__}
    try:
        import xgboost

        out["xgboost"] = xgboost.__version__
    except ImportError:  # optional at read time
        pass
    return out


def oof_frame(sample_ids: np.ndarray, repeat: np.ndarray, fold: np.ndarray, y_true: np.ndarray,
              proba: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """The in-memory OOF table of :attr:`CellResult.oof` from its array form."""
    cls = np.asarray(classes, dtype=object)
    df = pd.DataFrame({
        "sample_id": np.asarray(sample_ids).astype(str),
        "repeat": repeat.astype(int),
        "fold": fold.astype(int),
        "y_true": cls[y_true.astype(int)],
        "y_pred": cls[proba.argmax(axis=1)],
    })
    for k, c in enumerate(classes):
        df[f"proba:{c}"] = proba[:, k]
    return df


def write_cell(results_dir: Path, result: CellResult, meta: Mapping[str, Any],
               classes: tuple[str, ...]) -> Path:
    """Write ``result`` atomically, ``SHA256SUMS`` last; ``meta`` = identities recorded in
    ``cell.json``. StorageError (exit 2) when the folder cannot be written."""
    final = cell_dir(results_dir, result.key)
    with os_faults("write the result cell", final):
        return _write_cell(final, result, meta, classes)


def _write_cell(final: Path, result: CellResult, meta: Mapping[str, Any],
                classes: tuple[str, ...]) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{result.key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    result.scores.to_csv(tmp / "scores.csv", index=False)
    result.folds.to_csv(tmp / "folds.csv", index=False)
    result.class_counts.to_csv(tmp / "counts.csv", index=False)
    if result.attention is not None:
        result.attention.to_csv(tmp / "attention.csv", index=False)
    oof = result.oof
    code = {c: i for i, c in enumerate(classes)}
    np.savez(
        tmp / "oof.npz",
        sample_id=oof["sample_id"].to_numpy().astype(str),
        repeat=oof["repeat"].to_numpy(dtype=np.int64),
        fold=oof["fold"].to_numpy(dtype=np.int64),
        y_true=oof["y_true"].map(code).to_numpy(dtype=np.int64),
        proba=oof[[f"proba:{c}" for c in classes]].to_numpy(dtype=np.float64),
        classes=np.asarray(classes).astype(str),
    )
    doc = {
        "key": result.key,
        "spec": result.spec.to_dict(),
        "classes": list(classes),
        "fit_seconds": result.fit_seconds,
        "warnings": list(result.warnings),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        **dict(meta),
    }
    (tmp / CELL_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    write_checksums(tmp)
    if final.exists():  # a concurrent run finished the same cell first; keep theirs
        shutil.rmtree(tmp)
        log.info("cell %s already stored by another run", result.key)
        return final
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def read_cell(results_dir: Path, key: str) -> CellResult:
    """Load a stored cell (status ``reused``) after checking it against ``SHA256SUMS``.

    CellDamagedError when it fails the check or cannot be parsed; StorageError when the
    system denies reading it."""
    d = cell_dir(results_dir, key)
    verify_cell(d)
    try:
        return _parse_cell(d, key)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError,
            zipfile.BadZipFile) as exc:
        if is_os_fault(exc) and os_errno(exc) in _ACCESS:
            raise storage_error(exc, "read the result cell", d) from exc
        raise CellDamagedError(f"cannot be parsed ({type(exc).__name__}: {exc})") from exc


def open_cell(results_dir: Path, key: str, *, quarantine: bool = True
              ) -> tuple[CellResult | None, str | None]:
    """``(cell, None)`` for a sound stored cell, ``(None, None)`` when none is stored, and
    ``(None, problem)`` for a damaged one, which is moved to quarantine when ``quarantine``
    (the problem then says where)."""
    if not has_cell(results_dir, key):
        return None, None
    try:
        return read_cell(results_dir, key), None
    except CellDamagedError as exc:
        problem = str(exc)
    if quarantine:
        moved = move_aside(cell_dir(results_dir, key), quarantine_dir(results_dir),
                           f"result cell {key} failed verification: {problem}")
        problem += f"; moved to {moved}"
    return None, problem


def _parse_cell(d: Path, key: str) -> CellResult:
    doc = json.loads((d / CELL_FILE).read_text())
    with np.load(d / "oof.npz", allow_pickle=False) as z:
        classes = tuple(z["classes"].tolist())
        oof = oof_frame(z["sample_id"], z["repeat"], z["fold"], z["y_true"], z["proba"], classes)
    att = pd.read_csv(d / "attention.csv") if (d / "attention.csv").exists() else None
    return CellResult(
        spec=CellSpec.from_dict(doc["spec"]),
        key=key,
        scores=pd.read_csv(d / "scores.csv"),
        oof=oof,
        class_counts=pd.read_csv(d / "counts.csv", dtype={"class": str}),
        folds=pd.read_csv(d / "folds.csv"),
        fit_seconds=float(doc["fit_seconds"]),
        attention=att,
        status="reused",
        path=d,
        warnings=tuple(doc.get("warnings", ())),
    )


def iter_cell_docs(results_dir: Path) -> Iterator[dict[str, Any]]:
    """``cell.json`` of every stored cell (for dry-run reasons)."""
    root = cells_dir(results_dir)
    if not root.is_dir():
        return
    for p in sorted(root.glob(f"*/{CELL_FILE}")):
        try:
            yield json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable cell record %s (ignored; delete the directory)", p)
