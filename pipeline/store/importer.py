"""`pipeline import`: a matrix or table computed elsewhere -> a normal feature store with provenance.

Inputs (``--kind embedding``, the default):

* ``.npy`` (a numeric 2-D array) + ``--ids`` (a text file, one sample id per line, or a
  ``.npy`` of strings), row ``i`` is the sample of id ``i``;
* ``.npz`` with a numeric 2-D array (``X``/``embeddings``/``features``, or its only 2-D array)
  and ids (``ids``/``sample_id``, or ``--ids``);
* ``.parquet`` with a ``sample_id`` column and either one list column (the vector) or
  numeric columns (one per dimension);
* ``.csv`` with a ``sample_id`` column and one numeric column per dimension.

``--kind tabular`` reads a CSV or Parquet table (``sample_id`` + numeric and categorical
columns, empty = missing) into a tabular store (:mod:`pipeline.store.kinds`).

The store gets the usual guarantees (append-only by id, atomic, content digest) and its
provenance lists every import: source file name, SHA-256, format, shape, dtype, the note.
Re-importing a larger file adds only the new ids, so "re-run the batch when embeddings are
added" works for any embedding. Files are read without unpickling (``allow_pickle=False``).

Bad input raises :class:`~pipeline.errors.DataError` (exit 2) naming the row: an id not in
the manifest, a repeated id, a ragged row, a non-numeric value, NaN/inf in an embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, DataError
from pipeline.helpers import file_sha256
from pipeline.manifest import Manifest
from pipeline.store.format import now
from pipeline.store.kinds import EMBEDDING, TABULAR
from pipeline.store.tabular_writer import (
    WriteSummary,
    check_ids,
    row_name,
    table_from_frame,
    tabular_provenance,
    write_store,
)

log = logging.getLogger(__name__)

FORMATS = {".npy": "npy", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_MATRIX_KEYS = ("X", "embeddings", "features")
_ID_KEYS = ("ids", "sample_id", "sample_ids")


@dataclass(frozen=True)
class ImportRequest:
    """What to import: the file, the store key, and the labels that go into provenance."""

    path: Path
    key: str
    kind: str = EMBEDDING
    ids_path: Path | None = None
    modality: str | None = None
    model: str | None = None
    note: str = ""
    id_column: str = "sample_id"
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    rebuild: bool = False


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown file type {path.suffix!r}; import .npy (+ --ids), "
                          ".npz, .parquet or .csv")
    return fmt


def _load_npy(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays (e.g. ragged rows) need pickle: refused
        raise DataError(f"{path}: cannot be read without unpickling ({exc}); save a numeric 2-D "
                        "array (rows of equal length; ragged rows are not a matrix)") from None
    except OSError as exc:
        raise DataError(f"{path} is not a readable NumPy file ({exc})") from None


def _read_ids_file(path: Path) -> list[str]:
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path)
        if arr.ndim != 1 or arr.dtype.kind not in "USO":
            raise DataError(f"{path}: ids must be a 1-D array of strings, got {arr.dtype} "
                            f"{arr.shape}")
        return [str(v) for v in arr]
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _numeric_matrix(arr: Any, source: str, ids: Sequence[str], line_offset: int | None
                    ) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{source}: the matrix holds {arr.dtype} values, not numbers; save a "
                        "numeric 2-D array")
    if arr.ndim != 2:
        raise DataError(f"{source}: the matrix has shape {arr.shape}, not [rows, dims]")
    if arr.shape[0] != len(ids):
        raise DataError(f"{source}: {arr.shape[0]} matrix rows but {len(ids)} ids; give one id "
                        "per row, in row order")
    return arr


def _check_finite(X: np.ndarray, ids: Sequence[str], source: str, line_offset: int | None,
                  columns: Sequence[str] | None = None) -> None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(X, dtype=np.float64)).all(axis=1))
    if len(bad):
        r = int(bad[0])
        j = int(np.flatnonzero(~np.isfinite(np.asarray(X[r], dtype=np.float64)))[0])
        col = repr(columns[j]) if columns is not None else str(j)
        raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has a NaN/inf value in "
                        f"column {col} ({len(bad)} such row(s)); an embedding store holds finite "
                        "vectors only: fix or drop those rows (missing values belong in a "
                        "--kind tabular store)")


def _frame_matrix(frame: pd.DataFrame, id_column: str, source: str, line_offset: int | None,
                  known: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """ids + matrix from a table with an id column and numeric (or one list) columns."""
    if id_column not in frame.columns:
        raise DataError(f"{source} has no {id_column!r} column (columns: "
                        f"{', '.join(map(str, frame.columns[:12]))}); name the id column "
                        f"{id_column!r} or pass --id-column")
    ids = list(check_ids(frame[id_column].tolist(), source, line_offset=line_offset, known=known))
    values = frame.drop(columns=[id_column])
    if values.shape[1] == 0:
        raise DataError(f"{source} has no value columns besides {id_column!r}")
    if values.shape[1] == 1 and values.iloc[:, 0].map(lambda v: isinstance(v, (list, np.ndarray))).any():
        col = values.columns[0]
        rows = values[col].tolist()
        width = None
        for r, v in enumerate(rows):
            n = len(v) if isinstance(v, (list, np.ndarray)) else None
            if n is None:
                raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has no vector in "
                                f"list column {col!r}")
            width = n if width is None else width
            if n != width:
                raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} is ragged: its "
                                f"vector has {n} values, the first row's has {width}; every row "
                                "needs the same dimension")
        X = np.asarray([np.asarray(v, dtype=np.float64) for v in rows])
        _check_finite(X, ids, source, line_offset)
        return ids, X
    for col in values.columns:
        series = values[col]
        if series.dtype.kind in "biuf":
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy() & series.notna().to_numpy()
                             & (series.astype(str).str.strip() != "").to_numpy())
        if len(bad):
            r = int(bad[0])
            raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has the non-numeric "
                            f"value {series.iloc[r]!r} in column {col!r}; an embedding holds "
                            "numbers only")
        values[col] = parsed
    X = values.to_numpy(dtype=np.float64)
    empty = np.flatnonzero(np.isnan(X).any(axis=1))
    if len(empty) and isinstance(frame, pd.DataFrame) and line_offset is not None:
        r = int(empty[0])
        j = int(np.flatnonzero(np.isnan(X[r]))[0])
        raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} is ragged or incomplete: "
                        f"no value in column {values.columns[j]!r}; every row needs all "
                        f"{X.shape[1]} values (NaN is not allowed in an embedding store)")
    _check_finite(X, ids, source, line_offset, [str(c) for c in values.columns])
    return ids, X


def _read_csv(path: Path, *, as_text: bool) -> pd.DataFrame:
    try:
        if as_text:
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        return pd.read_csv(path, dtype={"sample_id": str})
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: ragged CSV ({exc}); every line needs the same number of "
                        "fields as the header") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV ({exc})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable Parquet file ({exc})") from None


def read_embedding(req: ImportRequest, known: Sequence[str]) -> tuple[list[str], np.ndarray, str]:
    """ids, float64 matrix and format of an embedding file (validated, see the module doc)."""
    path, fmt = req.path, _format(req.path)
    src = str(path)
    if fmt == "npy":
        if req.ids_path is None:
            raise ConfigError(f"{path}: a .npy matrix needs --ids (one sample id per line, in row "
                              "order)")
        ids = list(check_ids(_read_ids_file(req.ids_path), str(req.ids_path), line_offset=1,
                             known=known))
        X = _numeric_matrix(_load_npy(path), src, ids, None)
        _check_finite(X, ids, src, None)
        return ids, X, fmt
    if fmt == "npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise DataError(f"{path}: an array cannot be read without unpickling ({exc}); save "
                            "numeric arrays and string ids (ragged rows are not a matrix)") from None
        except OSError as exc:
            raise DataError(f"{path} is not a readable .npz file ({exc})") from None
        mkey = next((k for k in _MATRIX_KEYS if k in arrays), None)
        if mkey is None:
            two_d = [k for k, a in arrays.items() if a.ndim == 2]
            if len(two_d) != 1:
                raise DataError(f"{path}: cannot tell which array is the matrix ({sorted(arrays)});"
                                f" name it one of {', '.join(_MATRIX_KEYS)}")
            mkey = two_d[0]
        ikey = next((k for k in _ID_KEYS if k in arrays), None)
        if req.ids_path is not None:
            raw_ids = _read_ids_file(req.ids_path)
        elif ikey is not None:
            raw_ids = [str(v) for v in arrays[ikey]]
        else:
            raise DataError(f"{path}: no ids array ({', '.join(_ID_KEYS)}) and no --ids file")
        ids = list(check_ids(raw_ids, src, line_offset=None, known=known))
        X = _numeric_matrix(arrays[mkey], f"{src}[{mkey}]", ids, None)
        _check_finite(X, ids, src, None)
        return ids, X, fmt
    frame = _read_parquet(path) if fmt == "parquet" else _read_csv(path, as_text=False)
    ids, X = _frame_matrix(frame, req.id_column, src, 2 if fmt == "csv" else None, known)
    return ids, X, fmt


def _embedding_provenance(req: ImportRequest, manifest: Manifest, dim: int) -> dict[str, Any]:
    from pipeline.helpers import library_versions

    return {
        "encoder_key": req.key, "dataset": manifest.name, "modality": req.modality or "image",
        "kind": EMBEDDING, "architecture": "imported", "weights_name": req.model or "imported",
        "weights_sha256": None, "preprocessing": {"source": "import"}, "dim": int(dim),
        "layers": [], "trained_on": [], "versions": library_versions(("numpy", "h5py")),
    }


def run_import(req: ImportRequest, manifest: Manifest, features_root: Path) -> WriteSummary:
    """Validate ``req.path`` against ``manifest`` and write it to the store ``req.key``."""
    from pipeline.store.feature_store import store_path

    if not req.path.is_file():
        raise ConfigError(f"file to import {req.path} does not exist")
    if req.kind not in (EMBEDDING, TABULAR):
        raise ConfigError(f"--kind {req.kind!r} is not one of {EMBEDDING}, {TABULAR}")
    known = manifest.ids
    fmt = _format(req.path)
    if req.kind == TABULAR:
        if fmt not in ("csv", "parquet"):
            raise ConfigError(f"{req.path}: a tabular store is imported from .csv or .parquet")
        frame = (_read_csv(req.path, as_text=True) if fmt == "csv"
                 else _read_parquet(req.path))
        table = table_from_frame(frame, source=str(req.path), id_column=req.id_column,
                                 numeric=req.numeric, categorical=req.categorical,
                                 known_ids=known, line_offset=2 if fmt == "csv" else None)
        ids, X = list(table.ids), table.values
        prov = tabular_provenance(req.key, table, dataset=manifest.name,
                                  modality=req.modality or "tabular", architecture="imported",
                                  weights_name=req.model or "imported",
                                  preprocessing={"source": "import"})
        dtype = "table"
    else:
        if req.numeric or req.categorical:
            raise ConfigError("--numeric/--categorical apply to --kind tabular only")
        ids, X, fmt = read_embedding(req, known)
        dtype = str(np.asarray(X).dtype)
        prov = _embedding_provenance(req, manifest, X.shape[1])
    record = {"file": req.path.name, "sha256": file_sha256(req.path), "format": fmt,
              "shape": [len(ids), int(X.shape[1])], "dtype": dtype, "note": req.note,
              "imported": now()}
    prov["imports"] = [record]

    def amend(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return {**new, "imports": [*old.get("imports", []), record]}

    summary = write_store(store_path(features_root, manifest.name, req.key), prov, ids,
                          np.asarray(X, dtype=np.float32), rebuild=req.rebuild,
                          on_existing=amend)
    log.info("imported %s (%s, %d x %d, sha256 %s...) into %s: %d new rows", req.path.name, fmt,
             len(ids), X.shape[1], record["sha256"][:12], summary.path, summary.n_added)
    return summary
