"""Store kinds: embedding stores (finite float32 vectors) and tabular stores (typed columns, NaN = missing).

A store's provenance says which kind it is (``kind``; stores written before kinds existed
have none and are embedding stores):

``embedding``  every value finite (a NaN is damage, or an encoder failure recorded as such).
``tabular``    one column of ``X`` per declared column, in order, described in provenance
               ``columns``: ``[{"name": ..., "type": "numeric"}, {"name": ..., "type":
               "categorical", "categories": [...]}, ...]``. Numeric values are floats; a
               categorical value is the 0-based code of its category in that list. NaN marks a
               missing value in either type; infinities are never allowed. Imputation and
               encoding happen inside CV folds in classify, never in the store.

:func:`value_problems` is the one definition of a valid row, used by the writer (rows are
refused) and by the verification on open (a stored bad row is damage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EMBEDDING = "embedding"
TABULAR = "tabular"
KINDS = (EMBEDDING, TABULAR)
NUMERIC = "numeric"
CATEGORICAL = "categorical"
COLUMN_TYPES = (NUMERIC, CATEGORICAL)
#: Provenance keys that a kind adds to the compatibility check of an append.
KIND_KEYS = ("kind", "columns")


@dataclass(frozen=True)
class Column:
    """One declared column of a tabular store."""

    name: str
    type: str
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == CATEGORICAL:
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True)
class TableSchema:
    """The declared columns of a tabular store, in ``X`` column order."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def width(self) -> int:
        return len(self.columns)

    def to_provenance(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.columns]

    @classmethod
    def from_provenance(cls, raw: Any) -> TableSchema:
        """Parse provenance ``columns``; ValueError saying what is wrong."""
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"'columns' is {raw!r}, not a non-empty list of column declarations")
        cols, seen = [], set()
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise ValueError(f"column {i} is {item!r}, not an object with name and type")
            name, typ = item.get("name"), item.get("type")
            if not isinstance(name, str) or not name:
                raise ValueError(f"column {i} has no name")
            if name in seen:
                raise ValueError(f"column {name!r} is declared twice")
            seen.add(name)
            if typ not in COLUMN_TYPES:
                raise ValueError(f"column {name!r} has type {typ!r}, not one of "
                                 f"{', '.join(COLUMN_TYPES)}")
            cats: tuple[str, ...] = ()
            if typ == CATEGORICAL:
                raw_cats = item.get("categories")
                if (not isinstance(raw_cats, list) or not raw_cats
                        or not all(isinstance(c, str) for c in raw_cats)
                        or len(set(raw_cats)) != len(raw_cats)):
                    raise ValueError(f"categorical column {name!r} needs a non-empty list of "
                                     f"distinct category names, got {raw_cats!r}")
                cats = tuple(raw_cats)
            cols.append(Column(name, typ, cats))
        return cls(tuple(cols))


def store_kind(provenance: Mapping[str, Any]) -> str:
    """The kind of a store from its provenance (``embedding`` when it declares none)."""
    return str(provenance.get("kind") or EMBEDDING)


def kind_problem(provenance: Mapping[str, Any]) -> str | None:
    """What is wrong with the kind declaration of ``provenance`` (None when it is valid)."""
    kind = store_kind(provenance)
    if kind not in KINDS:
        return f"store kind {kind!r} is not one of {', '.join(KINDS)}"
    if kind == EMBEDDING:
        return None
    try:
        schema = TableSchema.from_provenance(provenance.get("columns"))
    except ValueError as exc:
        return f"tabular store declares invalid columns: {exc}"
    if schema.width != provenance.get("dim"):
        return f"tabular store declares {schema.width} columns but dim {provenance.get('dim')!r}"
    if provenance.get("layers"):
        return "a tabular store has no extra layers"
    return None


def table_schema(provenance: Mapping[str, Any]) -> TableSchema | None:
    """The column schema of a tabular store's provenance (None for an embedding store)."""
    if store_kind(provenance) != TABULAR:
        return None
    return TableSchema.from_provenance(provenance.get("columns"))


def value_problems(block: np.ndarray, provenance: Mapping[str, Any]) -> list[str | None]:
    """Per row of ``block`` (main matrix rows of a store of this provenance): None when the
    row is valid, else why not. Embedding: all values finite. Tabular: no infinity, and each
    categorical value NaN or an integer code of a declared category."""
    block = np.asarray(block, dtype=np.float64)
    if block.ndim != 2:
        raise ValueError(f"rows must be a 2-D matrix, got shape {block.shape}")
    out: list[str | None] = [None] * block.shape[0]
    schema = table_schema(provenance)
    if schema is None:
        for r in np.flatnonzero(~np.isfinite(block).all(axis=1)):
            out[r] = "NaN/inf values"
        return out
    for r in np.flatnonzero(np.isinf(block).any(axis=1)):
        out[r] = f"an infinite value in column {schema.names[int(np.flatnonzero(np.isinf(block[r]))[0])]!r}"
    for j, col in enumerate(schema.columns[: block.shape[1]]):
        if col.type != CATEGORICAL:
            continue
        v = block[:, j]
        ok = np.isnan(v) | ((v == np.round(v)) & (v >= 0) & (v < len(col.categories)))
        for r in np.flatnonzero(~ok):
            out[r] = out[r] or (f"column {col.name!r} holds {float(v[r])!r}, not a code of its "
                                f"{len(col.categories)} categories")
    return out


def first_bad_rows(block: np.ndarray, provenance: Mapping[str, Any], limit: int = 10
                   ) -> list[tuple[int, str]]:
    """``(row, problem)`` of the first ``limit`` invalid rows of ``block`` (see :func:`value_problems`)."""
    return [(r, p) for r, p in enumerate(value_problems(block, provenance)) if p][:limit]


def compat_extra(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The kind keys present in ``provenance`` (they must match for an append); ``{}`` for
    stores that declare no kind, so their compatibility view is unchanged."""
    return {k: provenance[k] for k in KIND_KEYS if k in provenance}


def kind_summary(provenance: Mapping[str, Any]) -> str:
    """Short description for listings: ``embedding`` or ``tabular (3 numeric, 1 categorical)``."""
    schema = table_schema(provenance)
    if schema is None:
        return EMBEDDING
    n_cat = sum(c.type == CATEGORICAL for c in schema.columns)
    return f"tabular ({schema.width - n_cat} numeric, {n_cat} categorical)"


def columns_from(names: Sequence[str], types: Sequence[str],
                 categories: Mapping[str, Sequence[str]] | None = None) -> TableSchema:
    """A :class:`TableSchema` from parallel name/type lists (categories for categoricals)."""
    cats = categories or {}
    return TableSchema(tuple(Column(n, t, tuple(cats.get(n, ())) if t == CATEGORICAL else ())
                             for n, t in zip(names, types, strict=True)))
