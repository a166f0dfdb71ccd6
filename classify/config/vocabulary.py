"""The names a configuration may use, and their validation: searches, calibrations, threshold
rules, block-subset ablation modes.

They live in config/ so that the parsers of an experiment never import run/ or analysis/;
those packages read the vocabularies from here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Mapping, Sequence

from pipeline.errors import ConfigError

#: Hyper-parameter searches of ``[tuning] search``.
SEARCHES = ("halving", "random", "optuna")
#: Calibration methods of ``[operating_point] calibration``.
CALIBRATIONS = ("none", "sigmoid", "isotonic")
#: Values of the experiment's ``ablation`` key.
ABLATION_MODES = ("leave_one_out", "all_subsets")
_RULE = re.compile(r"^(max_f1|youden|(sensitivity|specificity)\s*=\s*(0?\.\d+|1(\.0+)?))$")


def check_rule(rule: str) -> str:
    """The normalised threshold rule (``max_f1``, ``youden``, ``sensitivity=0.9``, ...)."""
    m = _RULE.match(str(rule).strip().lower())
    if not m:
        raise ConfigError(f"operating_point.rule {rule!r}: use 'max_f1', 'youden', "
                          "'sensitivity=0.90' or 'specificity=0.90'")
    return m.group(1) if m.group(2) is None else f"{m.group(2)}={float(m.group(3)):g}"


def check_mode(value: object, src: str) -> str | None:
    """The validated ``ablation`` value of an experiment (None when absent)."""
    if value is None:
        return None
    if value not in ABLATION_MODES:
        raise ConfigError(f"{src}: 'ablation' must be one of {', '.join(map(repr, ABLATION_MODES))}"
                          f", got {value!r}")
    return str(value)


def subset_name(feature_set: str, kept: Sequence[str]) -> str:
    return f"{feature_set}[{'+'.join(kept)}]"


def is_subset_feature_set(name: str, feature_sets: Collection[str]) -> bool:
    """True for a name made by :func:`subset_name` from one of ``feature_sets``."""
    head, bracket, rest = str(name).partition("[")
    return bool(bracket) and rest.endswith("]") and head in feature_sets


def subset_feature_sets(feature_sets: Mapping[str, tuple[str, ...]], mode: str | None
                        ) -> dict[str, tuple[str, ...]]:
    """``feature_sets`` plus the subsets ``mode`` asks for (order: each set, then its subsets)."""
    out = dict(feature_sets)
    if mode is None:
        return out
    if mode not in ABLATION_MODES:
        raise ConfigError(f"ablation mode {mode!r} is not one of {', '.join(ABLATION_MODES)}")
    have = {frozenset(v) for v in feature_sets.values()}
    for name, stores in feature_sets.items():
        n = len(stores)
        if n < 2:
            continue
        sizes = [n - 1] if mode == "leave_one_out" else range(n - 1, 0, -1)
        for k in sizes:
            for kept in itertools.combinations(stores, k):
                if frozenset(kept) in have:
                    continue
                have.add(frozenset(kept))
                out[subset_name(name, kept)] = tuple(kept)
    return out
