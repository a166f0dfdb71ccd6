"""The fusion registry and the shared base of every fusion transformer (block layout, checks).

A fusion addresses modalities through its ``blocks`` parameter:
``((name, start, stop), ...)`` column ranges (see :func:`classify.run.feature_sets.blocks_spec`);
``None`` means the whole matrix is one block named ``X``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from pipeline.errors import ConfigError
from pipeline.registry import Registry

FUSIONS: Registry[type] = Registry("fusion")

BlocksSpec = Sequence[tuple[str, int, int]] | None


def resolve_blocks(blocks: BlocksSpec, n_features: int) -> list[tuple[str, int, int]]:
    """The block layout as plain tuples, checked against the matrix width."""
    if blocks is None:
        return [("X", 0, n_features)]
    out = [(str(n), int(a), int(b)) for n, a, b in blocks]
    if not out or max(b for _, _, b in out) > n_features:
        raise ConfigError(
            f"fusion blocks {out} do not fit a matrix with {n_features} columns; "
            "build the pipeline with classify.models.cell_pipeline.build_pipeline"
        )
    return out


def int_seed(random_state: Any) -> int:
    """An int seed from ``random_state`` (None / int / RandomState, as scikit-learn accepts).

    An int is returned unchanged, so integer seeds give the same numbers as before.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class BlockFusion(TransformerMixin, BaseEstimator):
    """Shared helpers; subclasses define ``fit``, ``transform`` and ``_output_names``.

    ``fit`` starts with :meth:`_fit_X` (validates X and resets ``n_features_in_``, so a
    fitted instance can be refitted on X of another width); ``transform`` uses
    :meth:`_check_X` (X must have the fitted width).
    """

    def _fit_X(self, X: Any) -> np.ndarray:
        return validate_data(self, X, reset=True, dtype=np.float64)

    def _check_X(self, X: Any) -> np.ndarray:
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _blocks(self, X: np.ndarray) -> list[tuple[str, int, int]]:
        return resolve_blocks(self.blocks, X.shape[1])

    def _output_names(self) -> list[str]:
        raise NotImplementedError

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names that say where each column comes from.

        ``<block>__dim<j>`` for columns passed through, ``<block>__pc<j>`` / ``<block>__ic<j>``
        for PCA / FastICA components of a block, ``<fusion>__dim<j>`` for a fused space
        (``weighted_sum``, ``attention``).
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        return np.asarray(self._output_names(), dtype=object)
