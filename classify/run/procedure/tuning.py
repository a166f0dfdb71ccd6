"""Nested tuning: a hyper-parameter search inside the outer training fold, grouped by patient.

For one outer split of a tuned cell (``[tuning]``, see :mod:`classify.config.sections`) the
training rows are split again with StratifiedGroupKFold (``inner_folds``, by patient);
every candidate refits the WHOLE cell pipeline (fusion, scaler, sampler, classifier) on
each inner training part, so SMOTE never sees an inner validation row, and is scored on
the inner validation parts. The best candidate's parameters are returned; the caller
refits the pipeline with them on the whole training fold and scores the outer test fold,
which the search never sees. Search methods:

* ``random``  scikit-learn ``RandomizedSearchCV``, ``budget`` candidates;
* ``halving`` ``HalvingRandomSearchCV`` (successive halving over training rows, factor 3):
  ``budget`` candidates on a third of the rows, the best third of them on all rows;
* ``optuna``  Optuna's TPE sampler, ``budget`` trials (``pip install optuna``).

The search runs inside the (cell, split) task, so it uses the same joblib/Dask workers
as the grid.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from classify.config.search_spaces import param_value
from classify.config.vocabulary import SEARCHES
from classify.results.metrics import higher_is_better, score_fold
from pipeline.errors import ConfigError, DataError

log = logging.getLogger(__name__)



def inner_splits(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped, stratified inner folds of the training rows (at most one per patient group)."""
    k = min(int(n_folds), len(np.unique(groups)))
    if k < 2:
        raise DataError("nested tuning needs >= 2 patient groups in every training fold")
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros((len(y), 1)), y, groups))


def make_scorer(metric: str, positive: int | None, n_classes: int) -> Callable[..., float]:
    """``scorer(estimator, X, y)``: ``metric`` of :func:`score_fold`, larger is better."""
    sign = 1.0 if higher_is_better(metric) else -1.0

    def scorer(est: Any, X: np.ndarray, y: np.ndarray) -> float:
        if len(np.unique(y)) < 2:  # a subsample with one class: nothing to score
            return float("nan")
        proba = np.zeros((len(y), n_classes))
        proba[:, np.asarray(est.classes_, dtype=int)] = est.predict_proba(X)
        return sign * score_fold(np.asarray(y), proba, positive)[metric]

    return scorer


def pipeline_names(pipe: Any, space: Mapping[str, Any]) -> dict[str, str]:
    """Space parameter -> the pipeline's parameter name (``classifier__C``; through a
    sample-weight wrapper ``classifier__estimator__C``; voting ``classifier__knn__weights``)."""
    known = set(pipe.get_params(deep=True))
    out = {}
    for name in space:
        path = "classifier"
        for part in name.split("__"):
            for cand in (f"{path}__{part}", f"{path}__estimator__{part}"):
                if cand in known or any(k.startswith(cand + "__") for k in known):
                    path = cand
                    break
            else:
                raise ConfigError(f"tuning: the classifier has no parameter {name!r}; check "
                                  f"[tuning.space] (parameters: "
                                  f"{', '.join(sorted(k for k in known if k.count('__') == 1))})")
        out[name] = path
    return out


class LogUniformInt:
    """Integers in ``[low, high]`` drawn log-uniformly (a ``log = true`` int range of
    ``[tuning.space]``): ``floor(loguniform(low, high + 1))``, so every integer is reachable and
    small values are as likely per decade as large ones. Has the ``rvs`` that
    ``RandomizedSearchCV`` / ``HalvingRandomSearchCV`` sample from."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = int(low), int(high)

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        from scipy import stats as sps

        x = sps.loguniform(self.low, self.high + 1).rvs(size=size, random_state=random_state)
        out = np.clip(np.floor(x), self.low, self.high).astype(int)
        return int(out) if np.ndim(out) == 0 else out


def search_distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Space name -> what the random / halving search samples (a list, or an object with
    ``rvs``); ``log`` is honoured for float AND integer ranges."""
    from scipy import stats as sps

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            out[name] = [param_value(spec, v) for v in spec]
        elif spec["type"] == "int" and spec.get("log"):
            out[name] = LogUniformInt(int(spec["low"]), int(spec["high"]))
        elif spec["type"] == "int":
            out[name] = sps.randint(int(spec["low"]), int(spec["high"]) + 1)
        elif spec["log"]:
            out[name] = sps.loguniform(spec["low"], spec["high"])
        else:
            out[name] = sps.uniform(spec["low"], spec["high"] - spec["low"])
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def tune_split(build: Callable[[], Any], X: np.ndarray, y: np.ndarray, groups: np.ndarray,
               config: Mapping[str, Any], *, positive: int | None, n_classes: int, seed: int
               ) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Search ``config["space"]`` on the training rows ``X, y`` (grouped by ``groups``).

    Returns ``(pipeline_params, chosen, inner_score)``: parameters to ``set_params`` on a fresh
    pipeline, the chosen values by space name (JSON-able) and the best mean inner score, in
    the metric's own units (a Brier score is positive; the search maximises its negative).
    """
    import tempfile

    from joblib import Memory

    space = dict(config["space"])
    pipe = build()
    names = pipeline_names(pipe, space)
    splits = inner_splits(y, groups, int(config["inner_folds"]), seed)
    scorer = make_scorer(str(config["metric"]), positive, n_classes)
    search, budget = str(config["search"]), int(config["budget"])
    with tempfile.TemporaryDirectory(prefix="cxr-tuning-") as cache:
        if all(path.startswith("classifier__") for path in names.values()):
            # only the classifier is searched: every candidate would refit the same prefix
            # (fusion, scaler, sampler) on the same inner training rows; fit it once per inner
            # training part and reuse it (same fitted steps, so the same scores)
            pipe.set_params(memory=Memory(cache, verbose=0))
        if search == "optuna":
            best, score = _optuna(pipe, X, y, splits, scorer, space, names, budget, seed)
        else:
            best, score = _sklearn(search, pipe, X, y, splits, scorer, space, names, budget,
                                   seed)
    chosen = {k: _jsonable(best[names[k]]) for k in space}
    sign = 1.0 if higher_is_better(str(config["metric"])) else -1.0  # undo the scorer's sign
    return best, chosen, sign * float(score)


def _sklearn(search: str, pipe: Any, X: np.ndarray, y: np.ndarray, splits: list, scorer: Any,
             space: Mapping[str, Any], names: Mapping[str, str], budget: int, seed: int
             ) -> tuple[dict[str, Any], float]:
    dists = {names[k]: v for k, v in search_distributions(space).items()}
    common = dict(scoring=scorer, cv=splits, refit=False, n_jobs=1, random_state=seed,
                  error_score="raise")
    if all(isinstance(v, list) for v in dists.values()):  # a finite grid: never oversample it
        budget = min(budget, math.prod(len(v) for v in dists.values()))
    if search == "random":
        from sklearn.model_selection import RandomizedSearchCV

        cv = RandomizedSearchCV(pipe, dists, n_iter=budget, **common)
    elif search == "halving":
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingRandomSearchCV

        # two rounds: every candidate on a third of the rows, the best third on all of them;
        # a candidate that cannot fit a third of the rows (e.g. more neighbours than rows)
        # scores NaN and is dropped (scikit-learn warns)
        n_rows = len(y)
        cv = HalvingRandomSearchCV(pipe, dists, n_candidates=budget, factor=3,
                                   min_resources=max(n_rows // 3, 1), max_resources=n_rows,
                                   **{**common, "error_score": np.nan})
    else:
        raise ConfigError(f"tuning.search {search!r}: use one of {', '.join(SEARCHES)}")
    cv.fit(X, y)
    return dict(cv.best_params_), float(cv.best_score_)


def _optuna(pipe: Any, X: np.ndarray, y: np.ndarray, splits: list, scorer: Any,
            space: Mapping[str, Any], names: Mapping[str, str], budget: int, seed: int
            ) -> tuple[dict[str, Any], float]:
    try:
        import optuna
    except ImportError:
        raise ConfigError("tuning.search = 'optuna' needs optuna: pip install -c constraints.txt "
                          "'cxr-fusion-pipeline[tuning]', or use search = 'random'") from None
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise

    def sample(trial: Any) -> dict[str, Any]:
        out = {}
        for k, spec in space.items():
            if isinstance(spec, list):
                i = trial.suggest_categorical(k, list(range(len(spec))))
                out[names[k]] = param_value(spec, spec[i])
            elif spec["type"] == "int":
                out[names[k]] = trial.suggest_int(k, int(spec["low"]), int(spec["high"]),
                                                  log=bool(spec["log"]))
            else:
                out[names[k]] = trial.suggest_float(k, float(spec["low"]), float(spec["high"]),
                                                    log=bool(spec["log"]))
        return out

    def objective(trial: Any) -> float:
        est = clone(pipe).set_params(**sample(trial))
        return float(np.mean(cross_val_score(est, X, y, cv=splits, scoring=scorer, n_jobs=1,
                                             error_score="raise")))

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=budget)
    return sample(optuna.trial.FixedTrial(study.best_params)), float(study.best_value)


def chosen_json(chosen: Mapping[str, Any]) -> str:
    """The chosen parameters of one fold as stored in ``folds.csv`` (sorted JSON)."""
    return json.dumps(dict(chosen), sort_keys=True)


