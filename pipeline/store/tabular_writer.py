"""Tables keyed by sample id -> validated matrices, and writing them as feature stores of either kind.

:func:`table_from_frame` turns a table (one row per sample, a ``sample_id`` column, numeric
and categorical columns, empty cells = missing) into a :class:`TableData`: a float matrix
with NaN for missing values and categorical values replaced by their code in the column's
sorted vocabulary (:mod:`pipeline.store.kinds`). :func:`write_store` writes ids + matrix
into a store through :class:`pipeline.store.feature_store.StoreWriter` (append-only by id, atomic, with a
content digest), for tabular tables and imported embeddings alike.

Every problem raises :class:`~pipeline.errors.DataError` (exit 2) naming the row (its line
in the file where there is one, and its sample id), the column and the fix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import DataError
from pipeline.store.kinds import CATEGORICAL, NUMERIC, TABULAR, TableSchema, columns_from

log = logging.getLogger(__name__)

ID_COLUMN = "sample_id"
_MISSING = {"", "na", "nan", "null", "none"}


@dataclass(frozen=True)
class TableData:
    """A validated table: ``values[i]`` is the row of ``ids[i]`` (NaN = missing)."""

    ids: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    schema: TableSchema

    @property
    def n_missing(self) -> dict[str, int]:
        return {n: int(np.isnan(self.values[:, j]).sum()) for j, n in enumerate(self.schema.names)}


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_store` did."""

    path: Path
    n_added: int
    n_already: int
    n_rows: int


def row_name(row: int, sample_id: Any, line_offset: int | None) -> str:
    """How a message names a row: ``line 7 (sample_id 'a')`` or ``row 5 (sample_id 'a')``."""
    where = f"line {row + line_offset}" if line_offset is not None else f"row {row}"
    return f"{where} (sample_id {str(sample_id)!r})"


def check_ids(ids: Sequence[Any], source: str, *, line_offset: int | None = None,
              known: Sequence[str] | None = None, known_name: str = "the manifest"
              ) -> tuple[str, ...]:
    """Sample ids as strings; DataError naming the row for an empty, duplicated or (with
    ``known``) unknown id."""
    out = []
    first: dict[str, int] = {}
    allowed = set(known) if known is not None else None
    for row, raw in enumerate(ids):
        sid = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw).strip()
        if not sid:
            raise DataError(f"{source}: {row_name(row, raw, line_offset)} has an empty sample_id; "
                            "every row needs the id of its manifest row")
        if sid in first:
            raise DataError(f"{source}: {row_name(row, sid, line_offset)} repeats the id of "
                            f"{row_name(first[sid], sid, line_offset)}; keep one row per sample")
        if allowed is not None and sid not in allowed:
            raise DataError(f"{source}: {row_name(row, sid, line_offset)} is not a sample of "
                            f"{known_name}; drop the row or import into the store of the "
                            "manifest it belongs to")
        first[sid] = row
        out.append(sid)
    return tuple(out)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in _MISSING


def _to_float(v: Any) -> float | None:
    """A number, NaN for a missing value, None for a value that is not numeric."""
    if _is_missing(v):
        return float("nan")
    if isinstance(v, bool | np.bool_):
        return float(v)
    try:
        out = float(str(v).strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return out


def _category(v: Any) -> str | None:
    return None if _is_missing(v) else str(v).strip()


def table_from_frame(frame: pd.DataFrame, *, source: str, id_column: str = ID_COLUMN,
                     numeric: Sequence[str] = (), categorical: Sequence[str] = (),
                     known_ids: Sequence[str] | None = None, line_offset: int | None = 2,
                     categories: Mapping[str, Sequence[str]] | None = None) -> TableData:
    """Validate ``frame`` (one row per sample) into a :class:`TableData`.

    Column types: those named in ``numeric``/``categorical``; every other column is numeric
    when all its non-missing values parse as numbers, else categorical (vocabulary: the
    sorted distinct values, unless ``categories`` gives it). Missing values are empty cells,
    NaN, ``NA``/``null``/``none``. ``line_offset`` maps a 0-based row to a file line (2 for a
    CSV with a header; None: say "row"). ``known_ids``: ids allowed (the manifest's).
    """
    if id_column not in frame.columns:
        raise DataError(f"{source} has no {id_column!r} column (columns: "
                        f"{', '.join(map(str, frame.columns[:12]))}); name the id column "
                        f"{id_column!r} or pass --id-column")
    ids = check_ids(frame[id_column].tolist(), source, line_offset=line_offset, known=known_ids)
    names = [str(c) for c in frame.columns if c != id_column]
    if not names:
        raise DataError(f"{source} has only the {id_column!r} column; a table needs at least "
                        "one value column")
    for flag, listed in (("numeric", numeric), ("categorical", categorical)):
        for c in listed:
            if c not in names:
                from pipeline.helpers import did_you_mean

                raise DataError(f"{source}: --{flag} column {c!r} is not in the table."
                                f"{did_you_mean(c, names)} Columns: {', '.join(names)}")
    both = set(numeric) & set(categorical)
    if both:
        raise DataError(f"{source}: column(s) {sorted(both)} are declared numeric and categorical")
    types, values, vocab = [], [], {}
    for name in names:
        col = frame[name].tolist()
        parsed = [_to_float(v) for v in col]
        bad = [i for i, v in enumerate(parsed) if v is None]
        declared = NUMERIC if name in numeric else CATEGORICAL if name in categorical else None
        typ = declared or (NUMERIC if not bad else CATEGORICAL)
        if typ == NUMERIC:
            if bad:
                r = bad[0]
                raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has the non-numeric "
                                f"value {col[r]!r} in numeric column {name!r}; fix the value, "
                                "leave the cell empty for a missing value, or declare the column "
                                "categorical")
            inf = [i for i, v in enumerate(parsed) if math.isinf(v)]
            if inf:
                r = inf[0]
                raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has an infinite "
                                f"value in column {name!r}; use a finite number or leave it empty")
            values.append(np.asarray(parsed, dtype=np.float64))
        else:
            cats = [_category(v) for v in col]
            given = list((categories or {}).get(name) or sorted({c for c in cats if c is not None}))
            if not given:
                raise DataError(f"{source}: categorical column {name!r} has no value in any row; "
                                "drop the column")
            code = {c: i for i, c in enumerate(given)}
            unknown = [i for i, c in enumerate(cats) if c is not None and c not in code]
            if unknown:
                r = unknown[0]
                raise DataError(f"{source}: {row_name(r, ids[r], line_offset)} has category "
                                f"{cats[r]!r} in column {name!r}, not one of {given}")
            values.append(np.array([np.nan if c is None else code[c] for c in cats],
                                   dtype=np.float64))
            vocab[name] = given
        types.append(typ)
    matrix = np.column_stack(values).astype(np.float32)
    return TableData(ids, matrix, columns_from(names, types, vocab))


def tabular_provenance(key: str, table: TableData, *, dataset: str, modality: str,
                       architecture: str, weights_name: str, preprocessing: Mapping[str, Any],
                       **extra: Any) -> dict[str, Any]:
    """Provenance of a tabular store of ``table`` (kind, columns, missing-value counts)."""
    from pipeline.helpers import library_versions

    return {
        "encoder_key": key, "dataset": dataset, "modality": modality, "kind": TABULAR,
        "columns": table.schema.to_provenance(), "dim": table.schema.width,
        "architecture": architecture, "weights_name": weights_name, "weights_sha256": None,
        "preprocessing": dict(preprocessing), "layers": [], "trained_on": [],
        "missing_per_column": table.n_missing,
        "versions": library_versions(("numpy", "pandas", "h5py")),
        **extra,
    }


def write_store(path: Path, provenance: dict[str, Any], ids: Sequence[str], matrix: np.ndarray,
                *, rebuild: bool = False, lock_timeout: float = 0.0,
                on_existing: Any = None) -> WriteSummary:
    """Append the rows of ``ids`` not stored yet to the store at ``path`` (created if absent).

    ``on_existing(old_provenance, provenance) -> provenance`` may amend the provenance from the store
    already on disk (e.g. append this import to its list); it runs only when rows are added.
    A row the store refuses (e.g. NaN in an embedding store) raises DataError naming it; the
    callers validate first, so this is a last line of defence.
    """
    from pipeline.store.feature_store import FeatureStore, StoreWriter
    from pipeline.store.format import canonical, compat_view
    from pipeline.store.kinds import first_bad_rows

    matrix = np.asarray(matrix, dtype=np.float32)
    bad = first_bad_rows(matrix, provenance, limit=1)
    if bad:
        r, problem = bad[0]
        raise DataError(f"{path.name}: row {r} (sample_id {ids[r]!r}) is invalid for a "
                        f"{provenance.get('kind', 'embedding')} store: {problem}")
    existing = None
    if path.exists() and not rebuild:
        existing = FeatureStore(path, verify=False)
    done = set(existing.ids.tolist()) if existing is not None else set()
    todo = [i for i, sid in enumerate(ids) if sid not in done]
    same_setup = existing is not None and (
        canonical(compat_view(existing.provenance)) == canonical(compat_view(provenance)))
    if not todo and same_setup:  # (another setup goes on to the writer, which refuses it)
        log.info("%s already holds all %d rows; nothing added", path, len(ids))
        return WriteSummary(path, 0, len(ids), len(existing))
    prov = dict(provenance)
    if existing is not None and on_existing is not None:
        prov = on_existing(existing.provenance, prov)
    with StoreWriter(path, prov, lock_timeout=lock_timeout, rebuild=rebuild) as writer:
        writer.add([ids[i] for i in todo], {"X": matrix[todo]})
        writer.flush()
        n_added = writer.n_added
    store = FeatureStore(path)
    log.info("wrote %d new rows to %s (%d rows in all)", n_added, path, len(store))
    return WriteSummary(path, n_added, len(ids) - len(todo), len(store))
