"""Nested tuning: a hyper-parameter search inside the outer training fold, grouped by patient.

For one outer split of a tuned cell (``[tuning]``, see :mod:`classify.options`) the
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from classify.evaluate import higher_is_better, score_fold
from classify.results import CellResult, CellSpec
from classify.search_spaces import param_value
from pipeline.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SEARCHES = ("halving", "random", "optuna")


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


def _distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    from scipy import stats as sps

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            out[name] = [param_value(spec, v) for v in spec]
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
    pipeline, the chosen values by space name (JSON-able) and the best mean inner score.
    """
    space = dict(config["space"])
    pipe = build()
    names = pipeline_names(pipe, space)
    splits = inner_splits(y, groups, int(config["inner_folds"]), seed)
    scorer = make_scorer(str(config["metric"]), positive, n_classes)
    search, budget = str(config["search"]), int(config["budget"])
    if search == "optuna":
        best, score = _optuna(pipe, X, y, splits, scorer, space, names, budget, seed)
    else:
        best, score = _sklearn(search, pipe, X, y, splits, scorer, space, names, budget, seed)
    chosen = {k: _jsonable(best[names[k]]) for k in space}
    return best, chosen, float(score)


def _sklearn(search: str, pipe: Any, X: np.ndarray, y: np.ndarray, splits: list, scorer: Any,
             space: Mapping[str, Any], names: Mapping[str, str], budget: int, seed: int
             ) -> tuple[dict[str, Any], float]:
    dists = {names[k]: v for k, v in _distributions(space).items()}
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


# ----------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class TuningSummary:
    """Tuned cells against their default twins (same cell without ``[tuning]``).

    Attributes:
        metric: compared metric (the report's primary metric).
        table: one row per tuned cell: ``cell, default, search, budget, inner_folds,
            mean_default, mean_tuned, diff`` (tuned - default), ``nb_p`` (Nadeau-Bengio
            corrected t-test), ``p_tuned_better, p_equivalent, p_default_better, decision``
            (Bayesian correlated t-test with the ROPE), ``tuning_seconds`` (all outer folds),
            ``fit_seconds_default, fit_seconds_tuned``.
        chosen: one row per (tuned cell, outer split): ``cell, repeat, fold, inner_score,
            params`` (JSON) — the spread of the chosen parameters is information.
        spread: one row per (tuned cell, parameter): ``cell, param, values`` (a summary of the
            values chosen over the outer folds).
    """

    metric: str
    table: pd.DataFrame = field(hash=False)
    chosen: pd.DataFrame = field(hash=False)
    spread: pd.DataFrame = field(hash=False)


def _spread(values: list[Any]) -> str:
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) == len(values) and len(set(nums)) > 3:
        a = np.asarray(nums, float)
        return f"median {np.median(a):.4g} [{a.min():.4g}-{a.max():.4g}]"
    shown = [f"{v:.4g}" if isinstance(v, float) else json.dumps(v) for v in values]
    counts = pd.Series(shown).value_counts()
    return ", ".join(f"{k} x{n}" for k, n in counts.items())


def summarise_tuning(cells: Sequence[CellResult], metric: str, *, test_train_ratio: float,
                     rope: float = 0.01, decision_probability: float = 0.95
                     ) -> TuningSummary | None:
    """Tuned vs default per tuned cell (None when no cell is tuned)."""
    from classify.stats import compare_cells

    by_id = {_untuned_id(c.spec): c for c in cells if "tuning" not in c.spec.params}
    rows, chosen, spread = [], [], []
    for c in cells:
        t = c.spec.params.get("tuning")
        if not t:
            continue
        folds = c.folds
        per_fold = [json.loads(p) for p in folds.get("tuned_params", pd.Series(dtype=str))]
        for (_, f), p in zip(folds.iterrows(), per_fold, strict=True):
            chosen.append({"cell": c.label, "repeat": int(f["repeat"]), "fold": int(f["fold"]),
                           "inner_score": float(f.get("tuning_score", np.nan)),
                           "params": json.dumps(p, sort_keys=True)})
        for name in t["space"]:
            spread.append({"cell": c.label, "param": name,
                           "values": _spread([p.get(name) for p in per_fold])})
        row = {"cell": c.label, "default": "", "search": t["search"], "budget": t["budget"],
               "inner_folds": t["inner_folds"], "tuning_seconds":
               float(folds["tuning_seconds"].sum()) if "tuning_seconds" in folds else np.nan,
               "fit_seconds_tuned": c.fit_seconds}
        default = by_id.get(_untuned_id(c.spec))
        if default is not None:
            cmp = compare_cells([c, default], metric, test_train_ratio=test_train_ratio,
                                rope=rope, decision_probability=decision_probability)
            r = cmp.pairwise.iloc[0]
            row.update(default=default.label, mean_default=r["mean_b"], mean_tuned=r["mean_a"],
                       diff=r["mean_diff"], nb_p=r["nb_p"], p_tuned_better=r["p_a_better"],
                       p_equivalent=r["p_equivalent"], p_default_better=r["p_b_better"],
                       decision={"A better": "tuned better", "B better": "default better"}.get(
                           r["decision"], r["decision"]),
                       fit_seconds_default=default.fit_seconds)
        rows.append(row)
    if not rows:
        return None
    cols = ["cell", "default", "search", "budget", "inner_folds", "mean_default", "mean_tuned",
            "diff", "nb_p", "p_tuned_better", "p_equivalent", "p_default_better", "decision",
            "tuning_seconds", "fit_seconds_default", "fit_seconds_tuned"]
    return TuningSummary(metric=metric, table=pd.DataFrame(rows).reindex(columns=cols),
                         chosen=pd.DataFrame(chosen), spread=pd.DataFrame(spread))


def _untuned_id(spec: CellSpec) -> str:
    d = spec.to_dict()
    d["params"] = {k: v for k, v in d["params"].items() if k != "tuning"}
    return json.dumps(d, sort_keys=True, default=str)
