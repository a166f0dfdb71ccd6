"""Fusion transformers: turn a multi-block feature matrix into one vector per sample.

All are sklearn transformers fitted inside the CV fold (first step of the cell
pipeline), clone()-able, and address modalities through the ``blocks`` parameter:
``((name, start, stop), ...)`` column ranges (see :func:`classify.features.blocks_spec`).

Registered fusions (``FUSIONS``):

* ``single``        one block as is (the feature set must have exactly one store, or pass ``block``).
* ``concat``        per-block standardisation (optional) and PCA/FastICA to ``n_components``
                    dims per block (optional), then concatenation.
* ``weighted_sum``  each block standardised, PCA-projected to a common ``dim``, scaled to unit
                    variance, then summed with fixed ``weights``.
* ``attention``     learned attention over modalities (see :class:`AttentionFusion`); torch is
                    imported only inside ``fit``; ``transform`` is pure numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, FastICA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipeline.errors import ConfigError
from pipeline.registry import Registry

log = logging.getLogger(__name__)

FUSIONS: Registry[type] = Registry("fusion")

BlocksSpec = Sequence[tuple[str, int, int]] | None


def _resolve_blocks(blocks: BlocksSpec, n_features: int) -> list[tuple[str, int, int]]:
    if blocks is None:
        return [("X", 0, n_features)]
    out = [(str(n), int(a), int(b)) for n, a, b in blocks]
    if not out or max(b for _, _, b in out) > n_features:
        raise ConfigError(
            f"fusion blocks {out} do not fit a matrix with {n_features} columns; "
            "build the pipeline with classify.pipeline_factory.build_pipeline"
        )
    return out


class _BlockFusion(TransformerMixin, BaseEstimator):
    """Shared helpers; subclasses define ``fit`` and ``transform``."""

    def _blocks(self, X: np.ndarray) -> list[tuple[str, int, int]]:
        return _resolve_blocks(self.blocks, X.shape[1])

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-d feature matrix, got shape {X.shape}")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, fitted with {self.n_features_in_}")
        return X


@FUSIONS.register("single", n_blocks="one", description="one modality, unchanged")
class SingleFusion(_BlockFusion):
    """Pass one block through unchanged.

    Args:
        blocks: block layout; if it has several blocks, ``block`` must name one.
        block: name of the block to keep (default: the only block).
    """

    def __init__(self, blocks: BlocksSpec = None, block: str | None = None) -> None:
        self.blocks = blocks
        self.block = block

    def fit(self, X: Any, y: Any = None) -> SingleFusion:
        X = self._check_X(X)
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
        self.n_features_in_ = X.shape[1]
        self.slice_ = (chosen[1], chosen[2])
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "slice_")
        X = self._check_X(X)
        return X[:, self.slice_[0]:self.slice_[1]]


def _reducer(kind: str | None, k: int, n: int, dim: int, random_state: int) -> Any:
    if kind is None or kind == "none":
        return None
    k = max(1, min(int(k), dim, n - 1))
    if kind == "pca":
        return PCA(n_components=k, random_state=random_state)
    if kind == "ica":
        return FastICA(
            n_components=k, random_state=random_state, whiten="unit-variance", max_iter=400, tol=1e-3
        )
    raise ConfigError(f"unknown reduce {kind!r} for fusion 'concat'; valid: none, pca, ica")


@FUSIONS.register("concat", n_blocks="many", description="concatenate (opt. standardise + PCA/ICA per block)")
class ConcatFusion(_BlockFusion):
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
        random_state: int = 0,
    ) -> None:
        self.blocks = blocks
        self.standardize = standardize
        self.reduce = reduce
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> ConcatFusion:
        X = self._check_X(X)
        self.n_features_in_ = X.shape[1]
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


@FUSIONS.register("weighted_sum", n_blocks="many", description="fixed-weight sum in a common PCA space")
class WeightedSumFusion(_BlockFusion):
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
        random_state: int = 0,
    ) -> None:
        self.blocks = blocks
        self.weights = weights
        self.dim = dim
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> WeightedSumFusion:
        X = self._check_X(X)
        self.n_features_in_ = X.shape[1]
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


@FUSIONS.register("attention", n_blocks="many", description="learned per-sample attention over modalities")
class AttentionFusion(_BlockFusion):
    """Learned attention fusion (trained on the training fold only).

    Model: each block ``x_m`` (standardised) is projected ``z_m = W_m x_m + b_m`` to a
    common ``dim``; a per-modality score ``s_m = q_m . tanh(z_m) + c_m`` is computed per
    sample; ``a = softmax_m(s)``; the fused vector is ``sum_m a_m z_m``. A small
    classification head (dropout + linear) on the fused vector trains everything with
    (class-weighted) cross-entropy, Adam, on CPU, early-stopped on an inner stratified
    validation split of the training fold. Fully seeded; one torch thread, so results do
    not depend on the machine's core count.

    ``transform`` returns the fused vector (numpy only; no torch needed after fit).

    Fitted attributes: ``modality_names_``, ``modality_weights_`` (mean attention per
    modality over the training rows), ``n_epochs_`` (epochs run), ``best_val_loss_``.

    Args:
        blocks: block layout (>= 2 blocks).
        dim: common projection dimension.
        epochs: maximum epochs.
        batch_size, lr, weight_decay, dropout: optimisation settings.
        patience: epochs without validation-loss improvement before stopping.
        validation_fraction: share of the training fold held out for early stopping.
        class_weight: ``"balanced"`` or None (loss weighting inside the fusion only).
        random_state: seed of the split, initialisation and batching.
    """

    def __init__(
        self,
        blocks: BlocksSpec = None,
        dim: int = 64,
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        dropout: float = 0.2,
        patience: int = 10,
        validation_fraction: float = 0.15,
        class_weight: str | None = "balanced",
        random_state: int = 0,
    ) -> None:
        self.blocks = blocks
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.random_state = random_state

    # --- numpy forward (used by transform) --------------------------------------------
    def _project(self, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        zs, scores = [], []
        for (_, a, b), (mu, sd), (W, bias, q, c) in zip(
            self.blocks_, self.scalers_, self.params_, strict=True
        ):
            z = ((X[:, a:b] - mu) / sd) @ W.T + bias
            zs.append(z)
            scores.append(np.tanh(z) @ q + c)
        s = np.stack(scores, axis=1)
        s = s - s.max(axis=1, keepdims=True)
        att = np.exp(s)
        att /= att.sum(axis=1, keepdims=True)
        return zs, att

    def attention_weights(self, X: Any) -> np.ndarray:
        """Per-sample attention ``[n, n_modalities]`` (columns = ``modality_names_``)."""
        check_is_fitted(self, "params_")
        return self._project(self._check_X(X))[1]

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "params_")
        zs, att = self._project(self._check_X(X))
        return sum(att[:, [m]] * z for m, z in enumerate(zs))

    # --- training ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> AttentionFusion:
        import torch  # deliberately lazy: classify must not import torch at module import

        X = self._check_X(X)
        y = np.asarray(y)
        self.n_features_in_ = X.shape[1]
        self.blocks_ = self._blocks(X)
        if len(self.blocks_) < 2:
            raise ConfigError(
                "fusion 'attention' needs a feature set with >= 2 stores; use 'single' for one"
            )
        self.modality_names_ = np.array([b[0] for b in self.blocks_], dtype=object)
        self.classes_, y_code = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        self.scalers_ = []
        Xs = []
        for _, a, b in self.blocks_:
            mu = X[:, a:b].mean(axis=0)
            sd = X[:, a:b].std(axis=0)
            sd[sd < 1e-12] = 1.0
            self.scalers_.append((mu, sd))
            Xs.append(((X[:, a:b] - mu) / sd).astype(np.float32))

        tr_idx, va_idx = self._inner_split(y_code)
        counts = np.bincount(y_code[tr_idx], minlength=n_classes).astype(np.float64)
        if self.class_weight == "balanced":
            cw = len(tr_idx) / (n_classes * np.maximum(counts, 1))
        else:
            cw = np.ones(n_classes)

        prev_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.random_state))
                state, info = self._train(torch, Xs, y_code, tr_idx, va_idx, cw, n_classes)
        finally:
            torch.set_num_threads(prev_threads)
        self.params_ = state
        self.n_epochs_, self.best_val_loss_ = info
        self.modality_weights_ = self._project(X)[1].mean(axis=0)
        log.debug(
            "attention fusion: %d epochs, val loss %.4f, weights %s",
            self.n_epochs_, self.best_val_loss_,
            dict(zip(self.modality_names_, np.round(self.modality_weights_, 3), strict=True)),
        )
        return self

    def _inner_split(self, y_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.model_selection import StratifiedShuffleSplit

        idx = np.arange(len(y_code))
        n_val = int(round(self.validation_fraction * len(y_code)))
        if (
            self.validation_fraction <= 0
            or np.bincount(y_code).min() < 2
            or n_val < len(np.unique(y_code))
        ):
            log.info("attention fusion: no inner validation split (too few rows); fixed epochs")
            return idx, idx[:0]
        sss = StratifiedShuffleSplit(
            n_splits=1, test_size=n_val, random_state=self.random_state
        )
        tr, va = next(sss.split(idx, y_code))
        return np.sort(tr), np.sort(va)

    def _train(self, torch, Xs, y_code, tr_idx, va_idx, cw, n_classes):  # noqa: ANN001
        nn = torch.nn
        dims = [x.shape[1] for x in Xs]
        d = int(self.dim)

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.proj = nn.ModuleList([nn.Linear(k, d) for k in dims])
                self.q = nn.Parameter(torch.randn(len(dims), d) * 0.1)
                self.c = nn.Parameter(torch.zeros(len(dims)))
                self.drop = nn.Dropout(p)
                self.head = nn.Linear(d, n_classes)

            def forward(self, xs):  # noqa: ANN001
                zs = torch.stack([lin(x) for lin, x in zip(self.proj, xs, strict=True)], 1)
                s = (torch.tanh(zs) * self.q).sum(-1) + self.c
                att = torch.softmax(s, dim=1)
                fused = (att.unsqueeze(-1) * zs).sum(1)
                return self.head(self.drop(fused))

        p = float(self.dropout)
        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(cw, dtype=torch.float32))
        T = [torch.from_numpy(x) for x in Xs]
        Y = torch.from_numpy(y_code.astype(np.int64))
        gen = torch.Generator().manual_seed(int(self.random_state))
        tr = torch.from_numpy(tr_idx)
        va = torch.from_numpy(va_idx)
        best, best_state, bad, n_run = np.inf, None, 0, 0
        for epoch in range(1, int(self.epochs) + 1):
            n_run = epoch
            net.train()
            perm = tr[torch.randperm(len(tr), generator=gen)]
            for i in range(0, len(perm), int(self.batch_size)):
                bi = perm[i:i + int(self.batch_size)]
                opt.zero_grad()
                loss = loss_fn(net([t[bi] for t in T]), Y[bi])
                loss.backward()
                opt.step()
            if len(va) == 0:
                continue
            net.eval()
            with torch.no_grad():
                vl = float(loss_fn(net([t[va] for t in T]), Y[va]))
            if vl < best - 1e-6:
                best, bad = vl, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= int(self.patience):
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        sd = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()}
        params = [
            (sd[f"proj.{m}.weight"], sd[f"proj.{m}.bias"], sd["q"][m], float(sd["c"][m]))
            for m in range(len(dims))
        ]
        return params, (n_run, float(best) if np.isfinite(best) else float("nan"))


def build_fusion(
    name: str, blocks: BlocksSpec, *, random_state: int = 0, **params: Any
) -> BaseEstimator:
    """Instantiate fusion ``name`` for ``blocks`` with ``params`` (ConfigError on bad params)."""
    cls = FUSIONS.get(name)
    kwargs = dict(params)
    if "random_state" in cls().get_params():
        kwargs.setdefault("random_state", random_state)
    try:
        return cls(blocks=blocks, **kwargs)
    except TypeError:
        valid = sorted(set(cls().get_params()) - {"blocks"})
        raise ConfigError(
            f"fusion {name!r} got unknown parameter(s) {sorted(params)}; valid: {', '.join(valid)}"
        ) from None


def fusion_arity(name: str) -> str:
    """``"one"`` if fusion ``name`` takes a single store, ``"many"`` if it needs >= 2."""
    return str(FUSIONS.meta(name)["n_blocks"])
