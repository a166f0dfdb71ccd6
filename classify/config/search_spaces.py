"""Hyper-parameter search spaces of the classifiers: defaults per classifier, overridable.

A space maps a parameter to a range, written in the experiment file as::

    [tuning.space.logistic]
    C = {low = 0.001, high = 10.0, log = true}          # float (log-uniform)
    [tuning.space.knn]
    n_neighbors = {low = 3, high = 50, type = "int"}    # integer (uniform)
    weights = ["uniform", "distance"]                   # categorical

An override replaces the whole default space of that classifier. Voting classifiers
tune their members: parameter ``logistic__C`` is member ``logistic``'s ``C``. The
resolved space (plain JSON) is part of a tuned cell's key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classify.models.classifiers import DEFAULT_MEMBERS
from pipeline.errors import ConfigError

#: Default spaces (JSON form): list = categorical, dict = numeric range.
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "logistic": {"C": {"low": 1e-3, "high": 10.0, "log": True}},
    "knn": {"n_neighbors": {"low": 3, "high": 50, "type": "int"},
            "weights": ["uniform", "distance"]},
    "decision_tree": {"max_depth": {"low": 2, "high": 20, "type": "int"},
                      "min_samples_leaf": {"low": 1, "high": 20, "type": "int"}},
    "random_forest": {"max_features": ["sqrt", "log2", 0.1, 0.3],
                      "min_samples_leaf": {"low": 1, "high": 10, "type": "int"}},
    "xgboost": {"max_depth": {"low": 2, "high": 8, "type": "int"},
                "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                "n_estimators": {"low": 50, "high": 300, "type": "int"}},
    "gbdt": {"learning_rate": {"low": 0.01, "high": 0.3, "log": True},
             "max_leaf_nodes": {"low": 7, "high": 63, "type": "int"},
             "l2_regularization": {"low": 1e-3, "high": 10.0, "log": True}},
    "mlp": {"hidden_layer_sizes": [[64], [128], [256]],
            "alpha": {"low": 1e-5, "high": 1e-1, "log": True}},
}
VOTING = ("voting_soft", "voting_hard")
_RANGE_KEYS = {"low", "high", "log", "type"}


def check_range(name: str, spec: Any, where: str) -> dict[str, Any] | list[Any]:
    """One parameter range in JSON form, validated (ConfigError naming ``where``)."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}.{name}: an empty list of choices")
        return list(spec)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}.{name} must be a list of choices or a table "
                          f"{{low, high, log, type}}, got {spec!r}")
    bad = set(spec) - _RANGE_KEYS
    if bad or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}.{name}: needs low and high (optional log, type = \"int\" or "
                          f"\"float\"); got keys {sorted(spec)}")
    kind = spec.get("type", "int" if all(isinstance(spec[k], int) and not isinstance(
        spec[k], bool) for k in ("low", "high")) and not spec.get("log") else "float")
    if kind not in ("int", "float"):
        raise ConfigError(f"{where}.{name}.type must be \"int\" or \"float\", got {kind!r}")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) \
            or not low < high or (spec.get("log") and low <= 0):
        raise ConfigError(f"{where}.{name}: needs numbers low < high (low > 0 with log), got "
                          f"{low!r}, {high!r}")
    return {"low": low, "high": high, "log": bool(spec.get("log", False)), "type": kind}


def resolve_space(classifier: str, overrides: Mapping[str, Mapping[str, Any]],
                  members: Sequence[str] | None = None) -> dict[str, Any]:
    """The search space of ``classifier`` (JSON form, sorted), overrides first.

    Raises ConfigError when the classifier has no space at all.
    """
    where = f"tuning.space.{classifier}"
    if classifier in overrides:
        raw = dict(overrides[classifier])
    elif classifier in VOTING:
        raw = {}
        for m in members or DEFAULT_MEMBERS:
            sub = overrides.get(m, DEFAULT_SPACES.get(m, {}))
            raw.update({f"{m}__{k}": v for k, v in sub.items()})
    else:
        raw = dict(DEFAULT_SPACES.get(classifier, {}))
    if not raw:
        raise ConfigError(f"classifier {classifier!r} has no default search space; give one in "
                          f"[{where}] or leave it out of tuning.classifiers")
    return {k: check_range(k, raw[k], where) for k in sorted(raw)}


def param_value(spec: Mapping[str, Any] | list[Any], value: Any) -> Any:
    """A sampled value as the estimator wants it (lists of a categorical become tuples)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(spec, Mapping) and spec["type"] == "int":
        return int(round(value))
    return value
