"""Fold-safe preprocessing of tabular blocks: imputation with missing indicators, one-hot, scaling.

:class:`BlockPreprocessor` is the first step of a cell pipeline whose feature set holds a
tabular store (:mod:`pipeline.store.kinds`); it is fitted on the training rows of the split
only, like every other step, so no statistic of a test row reaches the model. Per tabular
block and column, in order:

* numeric: the value imputed with the training-fold median (0 when the column is missing in
  every training row), then standardised with the training-fold mean and standard deviation
  of the imputed values, followed by a 0/1 missing indicator;
* categorical: one-hot over the store's declared categories (the vocabulary is fixed in the
  store's provenance, never learned from rows), all zeros when missing, followed by a 0/1
  missing indicator.

Embedding blocks pass through unchanged (and must be finite). The output layout is known
before fitting (:meth:`BlockPreprocessor.output_blocks`), so the fusion that follows is
built for it; a missing indicator is always present, whether or not the training fold has
a missing value in that column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from classify.models.fusion.base import resolve_blocks
from pipeline.errors import ConfigError, DataError

#: ``((block name, ((column, "numeric"|"categorical", n_categories), ...)), ...)``
TablesSpec = Sequence[tuple[str, Sequence[tuple[str, str, int]]]] | None


def _tables(tables: TablesSpec) -> dict[str, tuple[tuple[str, str, int], ...]]:
    return {str(name): tuple((str(c), str(t), int(k)) for c, t, k in cols)
            for name, cols in (tables or ())}


def column_width(typ: str, n_categories: int) -> int:
    """Output columns of one input column: value (or one-hot) + missing indicator."""
    return (n_categories if typ == "categorical" else 1) + 1


class BlockPreprocessor(TransformerMixin, BaseEstimator):
    """Impute, encode and scale the tabular blocks of a multi-block matrix (see the module doc).

    Args:
        blocks: block layout ``((name, start, stop), ...)``; None = one block ``X``.
        tables: the column schema of every tabular block (blocks not listed are embeddings).
        scale: standardise imputed numeric columns (training-fold mean/std).

    Fitted attributes: ``medians_`` / ``means_`` / ``scales_`` (block name -> per numeric
    column arrays, NaN for categorical columns), ``n_features_in_``.
    """

    def __init__(self, blocks: Sequence[tuple[str, int, int]] | None = None,
                 tables: TablesSpec = None, scale: bool = True) -> None:
        self.blocks = blocks
        self.tables = tables
        self.scale = scale

    # --- layout -------------------------------------------------------------------
    def _layout(self, n_features: int) -> list[tuple[str, int, int]]:
        blocks = resolve_blocks(self.blocks, n_features)
        tables = _tables(self.tables)
        for name, a, b in blocks:
            if name in tables and len(tables[name]) != b - a:
                raise ConfigError(f"tabular block {name!r} is {b - a} columns wide but its schema "
                                  f"declares {len(tables[name])}")
        unknown = sorted(set(tables) - {n for n, _, _ in blocks})
        if unknown:
            raise ConfigError(f"tables name block(s) {unknown} that are not in the layout")
        return blocks

    def output_blocks(self, n_features: int | None = None) -> tuple[tuple[str, int, int], ...]:
        """The block layout of :meth:`transform`'s output (known before fitting)."""
        if n_features is None:
            if self.blocks is None:
                raise ConfigError("output_blocks needs n_features when blocks is None")
            n_features = max(b for _, _, b in self.blocks)
        tables = _tables(self.tables)
        out, pos = [], 0
        for name, a, b in self._layout(n_features):
            width = (sum(column_width(t, k) for _, t, k in tables[name]) if name in tables
                     else b - a)
            out.append((name, pos, pos + width))
            pos += width
        return tuple(out)

    # --- fit / transform ----------------------------------------------------------
    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        allow_nan = bool(_tables(self.tables))
        X = validate_data(self, X, reset=reset, dtype=np.float64,
                          ensure_all_finite="allow-nan" if allow_nan else True)
        if allow_nan:
            tables = _tables(self.tables)
            for name, a, b in self._layout(X.shape[1]):
                block = X[:, a:b]
                if name not in tables and not np.isfinite(block).all():
                    raise DataError(f"embedding block {name!r} holds NaN/inf values; only tabular "
                                    "blocks may have missing values")
                if name in tables and np.isinf(block).any():
                    raise DataError(f"tabular block {name!r} holds infinite values")
        return X

    def fit(self, X: Any, y: Any = None) -> BlockPreprocessor:
        X = self._validate(X, reset=True)
        tables = _tables(self.tables)
        self.medians_, self.means_, self.scales_ = {}, {}, {}
        for name, a, b in self._layout(X.shape[1]):
            if name not in tables:
                continue
            block = X[:, a:b]
            k = b - a
            med, mean, sd = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
            for j, (_, typ, _) in enumerate(tables[name]):
                if typ != "numeric":
                    continue
                seen = block[~np.isnan(block[:, j]), j]
                med[j] = float(np.median(seen)) if len(seen) else 0.0
                filled = np.where(np.isnan(block[:, j]), med[j], block[:, j])
                mean[j] = float(filled.mean()) if self.scale else 0.0
                s = float(filled.std()) if self.scale else 1.0
                sd[j] = s if s > 1e-12 else 1.0
            self.medians_[name], self.means_[name], self.scales_[name] = med, mean, sd
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "medians_")
        X = self._validate(X, reset=False)
        tables = _tables(self.tables)
        parts = []
        for name, a, b in self._layout(X.shape[1]):
            block = X[:, a:b]
            if name not in tables:
                parts.append(block)
                continue
            for j, (_, typ, n_cat) in enumerate(tables[name]):
                v = block[:, j]
                missing = np.isnan(v)
                if typ == "numeric":
                    filled = np.where(missing, self.medians_[name][j], v)
                    parts.append(((filled - self.means_[name][j]) / self.scales_[name][j])[:, None])
                else:
                    codes = np.where(missing, -1, v).astype(np.int64)
                    if ((codes < -1) | (codes >= n_cat)).any():
                        raise DataError(f"tabular block {name!r}: column {j} holds a category "
                                        f"code outside 0..{n_cat - 1}")
                    parts.append((codes[:, None] == np.arange(n_cat)[None, :]).astype(np.float64))
                parts.append(missing.astype(np.float64)[:, None])
        return np.hstack(parts) if parts else np.zeros((X.shape[0], 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<block>__<column>`` / ``<block>__<column>=<code>`` / ``<block>__<column>__missing``
        for tabular blocks, ``<block>__dim<j>`` for embedding blocks."""
        check_is_fitted(self, "medians_")
        _check_feature_names_in(self, input_features)
        tables = _tables(self.tables)
        names: list[str] = []
        for name, a, b in self._layout(self.n_features_in_):
            if name not in tables:
                names += [f"{name}__dim{j}" for j in range(b - a)]
                continue
            for col, typ, n_cat in tables[name]:
                names += ([f"{name}__{col}"] if typ == "numeric"
                          else [f"{name}__{col}={c}" for c in range(n_cat)])
                names.append(f"{name}__{col}__missing")
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = bool(_tables(self.tables))
        return tags
