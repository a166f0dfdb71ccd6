"""Classifier zoo with defaults for high-dimensional frozen embeddings.

Each ``CLASSIFIERS`` entry is a factory ``(random_state, balanced, **params) ->
estimator``; ``balanced=True`` (sampler ``class_weight``) asks for class weighting.
Every estimator is seeded and single-threaded (parallelism is across cells x folds,
see :mod:`classify.run.benchmark`). ``params`` override the defaults listed here.

Defaults (inputs are standardised; ~1,700 dims, a few thousand rows):

* ``logistic``       L2 logistic regression, C=0.1 (strong-ish regularisation for d ~ n), lbfgs.
* ``knn``            15 neighbours, distance-weighted, cosine metric, brute force.
* ``knn_capped``     ``knn`` fitted on at most ``max_train_rows`` (default 20,000) training
                     rows, a class-stratified random subsample drawn with the cell's seed
                     (all rows when the fold is smaller). Brute-force kNN costs
                     n_train x n_test per prediction (growth ~n^2 over a CV grid); the cap
                     makes it linear in the test rows. The scalable option for large data sets
                     (docs/performance.md has its cost and its effect on scores).
* ``decision_tree``  min_samples_leaf=5 (a single tree is a weak baseline; kept for the
                     reference study's table).
* ``random_forest``  100 trees, max_features='sqrt', min_samples_leaf=2.
* ``xgboost``        100 rounds, depth 4, eta 0.1, subsample 0.8, colsample_bytree 0.3, hist
                     with max_bin=64 (5x faster than 256 bins on ~1,700 dims, same AUC here).
* ``gbdt``           sklearn HistGradientBoostingClassifier (binned histograms make it fast
                     on ~1,700 dims x ~4,000 rows): lr 0.1, up to 200 iterations with early
                     stopping on 10% of the training fold, max_features=0.3 per split,
                     63 bins, l2=1.0.
* ``mlp``            one hidden layer of 128, alpha=1e-3, Adam, early stopping.
* ``voting_soft``    soft vote (mean probabilities) of ``members`` (default logistic, knn, xgboost).
* ``voting_hard``    majority vote of ``members``; its ``predict_proba`` is the vote share
                     (used for ROC/PR AUC and Brier; not a calibrated probability).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import VotingClassifier
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted

from pipeline.errors import ConfigError
from pipeline.registry import Registry

log = logging.getLogger(__name__)

CLASSIFIERS: Registry[Any] = Registry("classifier")
DEFAULT_MEMBERS = ("logistic", "knn", "xgboost")


class _PredictsWithFittedEstimator:
    """``predict``/``predict_proba`` of a wrapper that fits a clone of ``estimator`` as ``estimator_``."""

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)


class BalancedWeights(_PredictsWithFittedEstimator, ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` with balanced per-sample weights (for models without class_weight)."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> BalancedWeights:
        self.estimator_ = clone(self.estimator)
        self.estimator_.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
        self.classes_ = self.estimator_.classes_
        return self


class CappedTrainingRows(_PredictsWithFittedEstimator, ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on at most ``max_rows`` training rows: a class-stratified random
    subsample (each class keeps its share, at least one row) drawn with ``random_state``;
    every row when there are no more than ``max_rows``."""

    def __init__(self, estimator: Any = None, max_rows: int = 20_000,
                 random_state: int | None = 0) -> None:
        self.estimator = estimator
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> CappedTrainingRows:
        y = np.asarray(y)
        if int(self.max_rows) < 2:
            raise ConfigError(f"max_train_rows must be >= 2, got {self.max_rows}")
        keep = slice(None)  # every row, X untouched
        if len(y) > int(self.max_rows):
            rng = np.random.default_rng(self.random_state)
            classes, counts = np.unique(y, return_counts=True)
            quota = np.maximum(1, np.floor(counts * int(self.max_rows) / len(y))).astype(int)
            keep = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(y == c), size=q, replace=False)
                for c, q in zip(classes, quota, strict=True)]))
        self.estimator_ = clone(self.estimator).fit(X[keep], y[keep])
        self.n_rows_used_ = len(y[keep])
        self.classes_ = self.estimator_.classes_
        return self


class VoteShareClassifier(VotingClassifier):
    """Hard-voting ensemble whose ``predict_proba`` is the (weighted) share of member votes.

    ``argmax`` of the vote share equals :meth:`VotingClassifier.predict` (ties go to the
    lowest class code in both). The shares are not calibrated probabilities.
    """

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        votes = self._predict(X)  # [n, n_members] encoded class codes
        weights = self._weights_not_none
        w = np.ones(votes.shape[1]) if weights is None else np.asarray(weights, dtype=float)
        share = np.zeros((votes.shape[0], len(self.classes_)))
        for m in range(votes.shape[1]):
            share[np.arange(votes.shape[0]), votes[:, m]] += w[m]
        return share / w.sum()


def _cw(balanced: bool) -> str | None:
    return "balanced" if balanced else None


@CLASSIFIERS.register("logistic", class_weight=True)
def logistic(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    kw = dict(C=0.1, max_iter=2000, tol=1e-4, random_state=random_state,
              class_weight=_cw(balanced))
    return LogisticRegression(**{**kw, **params})


@CLASSIFIERS.register("knn", class_weight=False)
def knn(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    kw = dict(n_neighbors=15, weights="distance", metric="cosine", algorithm="brute", n_jobs=1)
    return KNeighborsClassifier(**{**kw, **params})


@CLASSIFIERS.register("knn_capped", class_weight=False)
def knn_capped(random_state: int = 0, balanced: bool = False, max_train_rows: int = 20_000,
               **params: Any) -> Any:
    return CappedTrainingRows(knn(random_state, balanced, **params), max_rows=max_train_rows,
                              random_state=random_state)


@CLASSIFIERS.register("decision_tree", class_weight=True)
def decision_tree(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    kw = dict(min_samples_leaf=5, random_state=random_state, class_weight=_cw(balanced))
    return DecisionTreeClassifier(**{**kw, **params})


@CLASSIFIERS.register("random_forest", class_weight=True)
def random_forest(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    kw = dict(n_estimators=100, max_features="sqrt", min_samples_leaf=2, n_jobs=1,
              random_state=random_state, class_weight=_cw(balanced))
    return RandomForestClassifier(**{**kw, **params})


@CLASSIFIERS.register("xgboost", class_weight=True)
def xgboost(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from xgboost import XGBClassifier

    kw = dict(n_estimators=100, max_depth=4, learning_rate=0.1, subsample=0.8,
              colsample_bytree=0.3, tree_method="hist", max_bin=64, n_jobs=1,
              random_state=random_state,
              eval_metric="logloss")
    est = XGBClassifier(**{**kw, **params})
    return BalancedWeights(est) if balanced else est


@CLASSIFIERS.register("gbdt", class_weight=True)
def gbdt(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    kw = dict(learning_rate=0.1, max_iter=200, early_stopping=True, validation_fraction=0.1,
              n_iter_no_change=10, max_features=0.3, max_bins=63, l2_regularization=1.0,
              random_state=random_state, class_weight=_cw(balanced))
    return HistGradientBoostingClassifier(**{**kw, **params})


@CLASSIFIERS.register("mlp", class_weight=True)
def mlp(random_state: int = 0, balanced: bool = False, **params: Any) -> Any:
    from sklearn.neural_network import MLPClassifier

    kw = dict(hidden_layer_sizes=(128,), alpha=1e-3, batch_size=128, learning_rate_init=1e-3,
              max_iter=200, early_stopping=True, n_iter_no_change=10, random_state=random_state)
    est = MLPClassifier(**{**kw, **params})
    return BalancedWeights(est) if balanced else est


def _members(members: Sequence[str], random_state: int, balanced: bool,
             member_params: dict | None) -> list[tuple[str, Any]]:
    out = []
    member_params = member_params or {}
    for name in members:
        if name.startswith("voting"):
            raise ConfigError(f"voting members cannot include {name!r}; use base classifiers")
        out.append((name, build_classifier(name, random_state=random_state, balanced=balanced,
                                           **member_params.get(name, {}))))
    if len(out) < 2:
        raise ConfigError(f"voting needs >= 2 members, got {list(members)}")
    return out


@CLASSIFIERS.register("voting_soft", class_weight=True)
def voting_soft(random_state: int = 0, balanced: bool = False, members: Sequence[str] = DEFAULT_MEMBERS,
                member_params: dict | None = None, **params: Any) -> Any:
    return VotingClassifier(_members(members, random_state, balanced, member_params),
                            voting="soft", n_jobs=1, **params)


@CLASSIFIERS.register("voting_hard", class_weight=True)
def voting_hard(random_state: int = 0, balanced: bool = False, members: Sequence[str] = DEFAULT_MEMBERS,
                member_params: dict | None = None, **params: Any) -> Any:
    return VoteShareClassifier(_members(members, random_state, balanced, member_params),
                               voting="hard", n_jobs=1, **params)


def classifier_parameters(name: str) -> list[str] | None:
    """The parameters classifier ``name`` accepts: its estimator's plus its factory's own;
    None when its estimator takes any keyword (xgboost passes native names to its booster)."""
    factory = CLASSIFIERS.get(name)
    est = factory(random_state=0, balanced=False)
    if isinstance(est, CappedTrainingRows):  # its factory passes the rest to the estimator
        est = est.estimator
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(type(est).__init__).parameters
           .values()):
        return None
    own = [p.name for p in inspect.signature(factory).parameters.values()
           if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD
                                           and p.name not in ("random_state", "balanced"))]
    return sorted(set(est.get_params(deep=False)) | set(own))


def build_classifier(name: str, *, random_state: int = 0, balanced: bool = False,
                     **params: Any) -> Any:
    """Instantiate classifier ``name``; ConfigError naming the unknown parameters (and, as a
    hint, the valid ones) on a bad one."""
    factory = CLASSIFIERS.get(name)
    if params:
        from classify.models.fusion import unknown_parameters_message

        valid = classifier_parameters(name)
        unknown = [k for k in params if valid is not None and k not in valid]
        if unknown:
            raise ConfigError(unknown_parameters_message(f"classifier {name!r}", unknown, valid))
    if balanced and not CLASSIFIERS.meta(name).get("class_weight"):
        # debug only: this runs once per fit (80 times for one cell of 5x2 splits x 8 fits);
        # the cell carries the caveat once as a note (cell_pipeline.spec_notes)
        log.debug("classifier %s does not support class weights; sampler 'class_weight' "
                  "has no effect on it", name)
    try:
        return factory(random_state=random_state, balanced=balanced, **params)
    except TypeError as exc:
        raise ConfigError(
            f"classifier {name!r}: bad parameter(s) {sorted(params)} ({exc}); see "
            f"classify/models/classifiers.py for its defaults"
        ) from None
