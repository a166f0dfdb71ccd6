"""Learned attention fusion over modalities (torch inside ``fit`` only; numpy ``transform``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from classify.models.fusion.base import FUSIONS, BlockFusion, BlocksSpec, int_seed
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


@FUSIONS.register("attention", n_blocks="many", description="learned per-sample attention over modalities")
class AttentionFusion(BlockFusion):
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
        blocks: block layout (>= 2 blocks); None makes every column its own block.
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
        random_state: int | np.random.RandomState | None = 0,
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

        X, y = validate_data(self, X, y, reset=True, dtype=np.float64)
        self.blocks_ = (self._blocks(X) if self.blocks is not None
                        else [(f"x{j}", j, j + 1) for j in range(X.shape[1])])
        if len(self.blocks_) < 2:
            raise ConfigError(
                f"fusion 'attention' needs a feature set with >= 2 stores (got 1 block of "
                f"{X.shape[1]} feature(s)); use 'single' for one"
            )
        self.modality_names_ = np.array([b[0] for b in self.blocks_], dtype=object)
        self.classes_, y_code = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        seed = int_seed(self.random_state)
        self.scalers_ = []
        Xs = []
        for _, a, b in self.blocks_:
            mu = X[:, a:b].mean(axis=0)
            sd = X[:, a:b].std(axis=0)
            sd[sd < 1e-12] = 1.0
            self.scalers_.append((mu, sd))
            Xs.append(((X[:, a:b] - mu) / sd).astype(np.float32))

        tr_idx, va_idx = self._inner_split(y_code, seed)
        counts = np.bincount(y_code[tr_idx], minlength=n_classes).astype(np.float64)
        if self.class_weight == "balanced":
            cw = len(tr_idx) / (n_classes * np.maximum(counts, 1))
        else:
            cw = np.ones(n_classes)

        prev_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                state, info = self._train(torch, Xs, y_code, tr_idx, va_idx, cw, n_classes,
                                          seed)
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

    def _inner_split(self, y_code: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
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
            n_splits=1, test_size=n_val, random_state=seed
        )
        tr, va = next(sss.split(idx, y_code))
        return np.sort(tr), np.sort(va)

    def _train(self, torch, Xs, y_code, tr_idx, va_idx, cw, n_classes, seed):  # noqa: ANN001
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
        gen = torch.Generator().manual_seed(seed)
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

    def _output_names(self) -> list[str]:
        return [f"attention__dim{j}" for j in range(int(self.params_[0][0].shape[0]))]

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # fit learns from the labels
        return tags

