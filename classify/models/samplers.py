"""Class-imbalance handling applied to training folds only.

Every cell pipeline has a :class:`FoldSampler` step (imblearn skips samplers at
predict time, so test rows are never resampled). It builds the registered
sampler when it is fitted, adapts ``k_neighbors`` to a small minority class,
and records the class counts before and after resampling (``counts_before_``,
``counts_after_``), which the benchmark logs and stores per training fold.

Registered samplers (``SAMPLERS``); each entry is a factory
``(random_state, k_neighbors, **params) -> object with fit_resample`` or None:

* ``none``             no resampling.
* ``smote`` (default)  SMOTE.
* ``borderline_smote`` Borderline-SMOTE (kind borderline-1).
* ``adasyn``           ADASYN.
* ``smote_tomek``      SMOTE then Tomek-link cleaning.
* ``random_under``     random undersampling of the majority class(es).
* ``class_weight``     no resampling; the classifier gets ``class_weight='balanced'``
                       (or the equivalent) where supported; see :mod:`classify.models.classifiers`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from pipeline.errors import ConfigError, DataError
from pipeline.registry import Registry

log = logging.getLogger(__name__)

SAMPLERS: Registry[Any] = Registry("sampler")
DEFAULT_SAMPLER = "smote"


def _no_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise TypeError(f"sampler {name!r} takes no parameters, got {sorted(params)}")


@SAMPLERS.register("none", uses_k=False, description="no resampling")
def _none(random_state: Any, **params: Any) -> None:
    _no_params("none", params)
    return None


@SAMPLERS.register("class_weight", uses_k=False, class_weight=True,
                   description="no resampling; balanced class weights in the classifier")
def _class_weight(random_state: Any, **params: Any) -> None:
    _no_params("class_weight", params)
    return None


@SAMPLERS.register("smote", uses_k=True, description="SMOTE oversampling")
def _smote(random_state: int, k_neighbors: int = 5, **params: Any) -> Any:
    from imblearn.over_sampling import SMOTE

    return SMOTE(k_neighbors=k_neighbors, random_state=random_state, **params)


@SAMPLERS.register("borderline_smote", uses_k=True, description="Borderline-SMOTE-1")
def _borderline(random_state: int, k_neighbors: int = 5, **params: Any) -> Any:
    from imblearn.over_sampling import BorderlineSMOTE

    return BorderlineSMOTE(k_neighbors=k_neighbors, random_state=random_state, **params)


@SAMPLERS.register("adasyn", uses_k=True, description="ADASYN oversampling")
def _adasyn(random_state: int, k_neighbors: int = 5, **params: Any) -> Any:
    from imblearn.over_sampling import ADASYN

    return ADASYN(n_neighbors=k_neighbors, random_state=random_state, **params)


@SAMPLERS.register("smote_tomek", uses_k=True, description="SMOTE + Tomek links")
def _smote_tomek(random_state: int, k_neighbors: int = 5, **params: Any) -> Any:
    from imblearn.combine import SMOTETomek
    from imblearn.over_sampling import SMOTE

    return SMOTETomek(
        smote=SMOTE(k_neighbors=k_neighbors, random_state=random_state),
        random_state=random_state,
        **params,
    )


@SAMPLERS.register("random_under", uses_k=False, description="random undersampling")
def _random_under(random_state: int, **params: Any) -> Any:
    from imblearn.under_sampling import RandomUnderSampler

    return RandomUnderSampler(random_state=random_state, **params)


def _counts(y: np.ndarray) -> dict[int, int]:
    vals, cnt = np.unique(y, return_counts=True)
    return {int(v): int(c) for v, c in zip(vals, cnt, strict=True)}


class FoldSampler(BaseEstimator):
    """imblearn-compatible sampler step that wraps a registered sampler.

    Args:
        method: name in ``SAMPLERS``.
        params: extra parameters of that sampler (``k_neighbors`` for the SMOTE family).
        random_state: seed.

    Fitted attributes (set by ``fit_resample``): ``n_features_in_``, ``counts_before_``,
    ``counts_after_`` (class code -> count), ``k_neighbors_`` (neighbours used, -1 if n/a),
    ``notes_`` (list of human-readable notes, e.g. k reduced).
    """

    def __init__(self, method: str = DEFAULT_SAMPLER, params: dict | None = None,
                 random_state: int | np.random.RandomState | None = 0) -> None:
        self.method = method
        self.params = params
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FoldSampler:
        self.fit_resample(X, y)
        return self

    def fit_resample(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        entry = SAMPLERS.entry(self.method)
        X, y = validate_data(self, X, y, reset=True, dtype="numeric")
        params = dict(self.params or {})
        self.counts_before_ = _counts(y)
        self.k_neighbors_ = -1
        self.notes_: list[str] = []
        if entry.meta.get("uses_k"):
            k = int(params.pop("k_neighbors", 5))
            counts = sorted(self.counts_before_.values())
            # minority classes to be oversampled: all but the largest one
            n_min = counts[0]
            if n_min < 2:
                raise DataError(
                    f"sampler {self.method!r}: a class has only {n_min} sample(s) in a training "
                    "fold, SMOTE-type samplers need >= 2; use fewer folds, merge rare classes in "
                    "the label rule, or use sampler 'random_under'/'class_weight'"
                )
            k_eff = min(k, n_min - 1)
            if k_eff < k:
                note = (f"sampler {self.method}: k_neighbors reduced {k} -> {k_eff} "
                        f"(smallest class has {n_min} training samples)")
                log.info(note)  # the run reports it once per cell (console and report)
                self.notes_.append(note)
            self.k_neighbors_ = k_eff
            params["k_neighbors"] = k_eff
        try:
            inner = entry.obj(random_state=self.random_state, **params)
        except TypeError as exc:
            raise ConfigError(f"sampler {self.method!r}: bad parameters {params} ({exc})") from None
        if inner is None:
            X_res, y_res = X, y
        else:
            try:
                X_res, y_res = inner.fit_resample(X, y)
            except (RuntimeError, ValueError) as exc:
                if self.method != "adasyn":
                    raise
                raise DataError(
                    f"sampler 'adasyn' failed on a training fold ({exc}); use sampler 'smote'"
                ) from exc
        self.counts_after_ = _counts(np.asarray(y_res))
        log.debug("sampler %s: class counts %s -> %s", self.method,
                  self.counts_before_, self.counts_after_)
        return X_res, y_res

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # class counts need the labels
        return tags


def check_training_folds(samplers: Any, labels: Any, test_fold: np.ndarray) -> None:
    """Raise :class:`DataError` before any fit when a SMOTE-type sampler in ``samplers`` would
    meet a training fold whose smallest class has fewer than 2 samples (``test_fold[r, i]`` =
    test fold of row ``i`` in repeat ``r``; ``labels`` are class names per row). Smaller
    minorities are handled in the fold by reducing ``k_neighbors`` (recorded as a note)."""
    needs_k = [m for m in samplers if SAMPLERS.meta(m).get("uses_k")]
    if not needs_k:
        return
    labels = np.asarray(labels).astype(str)
    classes = np.unique(labels)
    for r, tf in enumerate(np.asarray(test_fold)):
        for f in np.unique(tf):
            train = labels[tf != f]
            counts = {c: int((train == c).sum()) for c in classes}
            cls, n = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
            if n < 2:
                raise DataError(
                    f"sampler(s) {needs_k}: class {str(cls)!r} has only {n} sample(s) in the training part "
                    f"of repeat {r} fold {int(f)}; SMOTE-type samplers need >= 2 (k_neighbors >= 1). "
                    "Fix: lower cv.folds, merge rare classes in the label rule, or use sampler "
                    "'random_under', 'class_weight' or 'none'. Nothing was computed"
                )


def uses_class_weight(name: str) -> bool:
    """True if sampler ``name`` works by weighting classes in the classifier."""
    return bool(SAMPLERS.meta(name).get("class_weight", False))
