"""The fixed (not learned) fusions: ``single``, ``concat`` and ``weighted_sum``.

* ``single``        one block as is (the feature set must have exactly one store, or pass
                    ``block``), or standardised and reduced like ``concat`` does per block.
* ``concat``        per-block standardisation (optional) and PCA/FastICA to ``n_components``
                    dims per block (optional), then concatenation.
* ``weighted_sum``  each block standardised, PCA-projected to a common ``dim``, scaled to unit
                    variance, then summed with fixed ``weights``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA, FastICA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from classify.models.fusion.base import FUSIONS, BlockFusion, BlocksSpec
from pipeline.errors import ConfigError


@FUSIONS.register("single", n_blocks="one", description="one modality (opt. standardise + PCA/ICA)")
class SingleFusion(BlockFusion):
    """One block, unchanged by default, or standardised and reduced like ``concat`` reduces
    each of its blocks.

    With ``reduce`` set to the ``concat`` fusion's setting, "image alone" and "image + text"
    see the same image representation, so the modality comparison differs only in the added
    block (the demo experiment does this: PCA 128 per block in both).

    Args:
        blocks: block layout; if it has several blocks, ``block`` must name one.
        block: name of the block to keep (default: the only block).
        reduce: ``None``/``"none"`` (the block as is), ``"pca"`` or ``"ica"`` (FastICA).
        n_components: dims kept when reducing (capped at the block's dim and n-1).
        standardize: z-score the block before reducing (only used with ``reduce``).
        random_state: seed of PCA/FastICA.
    """

    def __init__(
        self,
        blocks: BlocksSpec = None,
        block: str | None = None,
        reduce: str | None = None,
        n_components: int = 64,
        standardize: bool = True,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.blocks = blocks
        self.block = block
        self.reduce = reduce
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SingleFusion:
        X = self._fit_X(X)
        blocks = self._blocks(X)
        if self.block is None:
            if len(blocks) != 1:
                raise ConfigError(
                    f"fusion 'single' got {len(blocks)} blocks {[b[0] for b in blocks]}; use a "
                    "feature set with one store, or set params.fusion.single.block"
                )
            chosen = blocks[0]
        else:
            match = [b for b in blocks if b[0] == self.block]
            if not match:
                raise ConfigError(
                    f"fusion 'single': block {self.block!r} not in {[b[0] for b in blocks]}"
                )
            chosen = match[0]
        self.block_ = chosen[0]
        self.slice_ = (chosen[1], chosen[2])
        a, b = self.slice_
        self.reducer_ = _reducer(self.reduce, self.n_components, X.shape[0], b - a,
                                 self.random_state, fusion="single")
        self.scaler_ = None
        if self.reducer_ is not None:
            Xb = X[:, a:b]
            if self.standardize:
                self.scaler_ = StandardScaler().fit(Xb)
                Xb = self.scaler_.transform(Xb)
            self.reducer_.fit(Xb)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "slice_")
        X = self._check_X(X)
        Xb = X[:, self.slice_[0]:self.slice_[1]]
        if self.reducer_ is None:
            return Xb
        if self.scaler_ is not None:
            Xb = self.scaler_.transform(Xb)
        return self.reducer_.transform(Xb)

    def _output_names(self) -> list[str]:
        if self.reducer_ is not None:
            kind = {"pca": "pc", "ica": "ic"}[str(self.reduce)]
            return [f"{self.block_}__{kind}{j}" for j in range(int(self.reducer_.n_components))]
        a, b = self.slice_
        return [f"{self.block_}__dim{j}" for j in range(b - a)]


def _reducer(kind: str | None, k: int, n: int, dim: int, random_state: Any,
             fusion: str = "concat") -> Any:
    if kind is None or kind == "none":
        return None
    k = max(1, min(int(k), dim, n - 1))
    if kind == "pca":
        return PCA(n_components=k, random_state=random_state)
    if kind == "ica":
        return FastICA(
            n_components=k, random_state=random_state, whiten="unit-variance", max_iter=400, tol=1e-3
        )
    raise ConfigError(f"unknown reduce {kind!r} for fusion {fusion!r}; valid: none, pca, ica")


@FUSIONS.register("concat", n_blocks="many", description="concatenate (opt. standardise + PCA/ICA per block)")
class ConcatFusion(BlockFusion):
    """Concatenate blocks, optionally standardising and reducing each block first.

    Args:
        blocks: block layout.
        standardize: z-score each block (fitted on the training fold).
        reduce: ``None``/``"none"``, ``"pca"`` or ``"ica"`` (FastICA), applied per block.
        n_components: dims kept per block when reducing (capped at block dim and n-1).
        random_state: seed of PCA/FastICA.
    """

    def __init__(
        self,
        blocks: BlocksSpec = None,
        standardize: bool = True,
        reduce: str | None = None,
        n_components: int = 64,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.blocks = blocks
        self.standardize = standardize
        self.reduce = reduce
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> ConcatFusion:
        X = self._fit_X(X)
        self.blocks_ = self._blocks(X)
        self.steps_ = []
        for _, a, b in self.blocks_:
            Xb = X[:, a:b]
            scaler = StandardScaler().fit(Xb) if self.standardize else None
            if scaler is not None:
                Xb = scaler.transform(Xb)
            red = _reducer(self.reduce, self.n_components, X.shape[0], b - a, self.random_state)
            if red is not None:
                red.fit(Xb)
            self.steps_.append((scaler, red))
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "steps_")
        X = self._check_X(X)
        parts = []
        for (_, a, b), (scaler, red) in zip(self.blocks_, self.steps_, strict=True):
            Xb = X[:, a:b]
            if scaler is not None:
                Xb = scaler.transform(Xb)
            if red is not None:
                Xb = red.transform(Xb)
            parts.append(Xb)
        return np.hstack(parts)

    def _output_names(self) -> list[str]:
        kind = {"pca": "pc", "ica": "ic"}.get(str(self.reduce), "dim")
        out = []
        for (name, a, b), (_, red) in zip(self.blocks_, self.steps_, strict=True):
            k = (b - a) if red is None else int(red.n_components)
            out += [f"{name}__{kind}{j}" for j in range(k)]
        return out


@FUSIONS.register("weighted_sum", n_blocks="many", description="fixed-weight sum in a common PCA space")
class WeightedSumFusion(BlockFusion):
    """Project every block to a common dimension and sum with fixed weights.

    Each block is standardised, reduced by PCA to ``d = min(dim, smallest block dim, n-1)``
    and divided by its overall standard deviation (so a weight means a share of
    variance), then ``sum_m w_m z_m`` with ``w`` normalised to sum to 1.

    Args:
        blocks: block layout.
        weights: one weight per block (default equal weights).
        dim: common dimension.
        random_state: PCA seed.
    """

    def __init__(
        self,
        blocks: BlocksSpec = None,
        weights: Sequence[float] | None = None,
        dim: int = 64,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.blocks = blocks
        self.weights = weights
        self.dim = dim
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> WeightedSumFusion:
        X = self._fit_X(X)
        self.blocks_ = self._blocks(X)
        m = len(self.blocks_)
        w = np.ones(m) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (m,) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(
                f"fusion 'weighted_sum': weights {self.weights!r} must be {m} non-negative numbers "
                f"(one per block {[b[0] for b in self.blocks_]})"
            )
        self.weights_ = w / w.sum()
        d = max(1, min(int(self.dim), min(b - a for _, a, b in self.blocks_), X.shape[0] - 1))
        self.steps_ = []
        for _, a, b in self.blocks_:
            scaler = StandardScaler().fit(X[:, a:b])
            Z = scaler.transform(X[:, a:b])
            pca = PCA(n_components=d, random_state=self.random_state).fit(Z)
            scale = float(pca.transform(Z).std()) or 1.0
            self.steps_.append((scaler, pca, scale))
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "steps_")
        X = self._check_X(X)
        out = None
        for (_, a, b), (scaler, pca, scale), w in zip(
            self.blocks_, self.steps_, self.weights_, strict=True
        ):
            z = w * pca.transform(scaler.transform(X[:, a:b])) / scale
            out = z if out is None else out + z
        return out

    def _output_names(self) -> list[str]:
        return [f"weighted_sum__dim{j}" for j in range(int(self.steps_[0][1].n_components_))]
