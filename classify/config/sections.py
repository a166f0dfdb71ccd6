"""Optional experiment sections for a fair choice: ``[equivalence]``, ``[operating_point]``, ``[tuning]``.

Each section is parsed and validated here into a frozen dataclass that
:class:`classify.config.experiment.Experiment` carries. An experiment without these sections
gets the defaults, which change no cell key.

Example::

    [equivalence]
    rope = 0.01                       # or a table per metric: rope = {roc_auc = 0.01, brier = 0.005}
    decision_probability = 0.95

    [operating_point]                 # binary tasks; part of the cell key when present
    rule = "sensitivity=0.90"         # or "max_f1", "youden", "specificity=0.90"
    inner_folds = 3                   # inner CV of the training fold (grouped by patient)
    calibration = "none"              # or "sigmoid", "isotonic" (fitted on inner OOF rows)

    [tuning]                          # nested tuning: tuned cells next to the default ones
    enabled = true
    search = "random"                 # or "halving", "optuna"
    budget = 20                       # candidates (trials) per outer training fold
    inner_folds = 3
    metric = "roc_auc"                # what the inner search maximises
    # classifiers = ["logistic", "knn"]   # default: every classifier of the grid
    [tuning.space.logistic]           # optional: replaces the default space of logistic
    C = {low = 0.001, high = 10.0, log = true}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from classify.config.vocabulary import CALIBRATIONS, SEARCHES, check_rule
from pipeline.errors import ConfigError
from pipeline.helpers import did_you_mean


def check_keys(section: str, got: Mapping[str, Any], valid: set[str], src: str, *,
               quoted: bool = False) -> None:
    """ConfigError naming an unknown key of ``[section]`` (``""``: the top level) with a
    did-you-mean and the valid keys; ``quoted`` writes the key as ``section.'key'``."""
    for key in got:
        if key not in valid:
            where = (f"{section}." if section else "") + (repr(key) if quoted else str(key))
            raise ConfigError(
                f"{src}: unknown key {where}."
                f"{did_you_mean(key, sorted(valid))} Valid keys: {', '.join(sorted(valid))}."
            )


def number(value: Any, key: str, src: str, low: float, high: float) -> float:
    """``value`` as a float in ``[low, high]`` (ConfigError naming ``key`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{src}: {key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def table(value: Any, section: str, src: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{src}: [{section}] must be a table, got {value!r}")
    return value


@dataclass(frozen=True)
class EquivalenceConfig:
    """Practical equivalence: ROPE half-width (per metric) and the decision probability."""

    rope: float = 0.01
    rope_by_metric: Mapping[str, float] = field(default_factory=dict, hash=False)
    decision_probability: float = 0.95

    def rope_for(self, metric: str) -> float:
        return float(self.rope_by_metric.get(metric, self.rope))


def parse_equivalence(raw: Any, src: str, metrics: Mapping[str, bool]) -> EquivalenceConfig:
    """The ``[equivalence]`` section (``metrics``: the known metric names)."""
    raw = table(raw, "equivalence", src)
    check_keys("equivalence", raw, {"rope", "decision_probability"}, src)
    rope, by_metric = 0.01, {}
    value = raw.get("rope", 0.01)
    if isinstance(value, Mapping):
        for m, v in value.items():
            if m not in metrics:
                raise ConfigError(f"{src}: equivalence.rope.{m}: unknown metric."
                                  f"{did_you_mean(m, list(metrics))}")
            by_metric[str(m)] = number(v, f"equivalence.rope.{m}", src, 0.0, 1.0)
    else:
        rope = number(value, "equivalence.rope", src, 0.0, 1.0)
    p = number(raw.get("decision_probability", 0.95), "equivalence.decision_probability", src,
               0.5, 1.0)
    return EquivalenceConfig(rope=rope, rope_by_metric=by_metric, decision_probability=p)


#: The defaults of an experiment without ``[equivalence]``.
DEFAULT_EQUIVALENCE = EquivalenceConfig()


@dataclass(frozen=True)
class OperatingPointConfig:
    """``[operating_point]``: threshold rule, inner folds and calibration (see
    :mod:`classify.run.procedure.operating_point`)."""

    rule: str = "max_f1"
    inner_folds: int = 3
    calibration: str = "none"

    def key(self) -> dict[str, Any]:
        """What enters the cell key (every setting changes the scores)."""
        return {"rule": self.rule, "inner_folds": self.inner_folds,
                "calibration": self.calibration}


def parse_operating_point(raw: Any, src: str) -> OperatingPointConfig | None:
    """The ``[operating_point]`` section, or None when absent."""
    if raw is None:
        return None

    raw = table(raw, "operating_point", src)
    check_keys("operating_point", raw, {"rule", "inner_folds", "calibration"}, src)
    try:
        rule = check_rule(str(raw.get("rule", "max_f1")))
    except ConfigError as exc:
        raise ConfigError(f"{src}: {exc}") from None
    folds = raw.get("inner_folds", 3)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"{src}: operating_point.inner_folds must be an integer >= 2, "
                          f"got {folds!r}")
    cal = raw.get("calibration", "none")
    if cal not in CALIBRATIONS:
        raise ConfigError(f"{src}: operating_point.calibration {cal!r}: use one of "
                          f"{', '.join(CALIBRATIONS)}.{did_you_mean(cal, CALIBRATIONS)}")
    return OperatingPointConfig(rule=rule, inner_folds=folds, calibration=str(cal))


@dataclass(frozen=True)
class TuningConfig:
    """``[tuning]``: nested hyper-parameter search (see :mod:`classify.run.procedure.tuning`)."""

    search: str = "random"
    budget: int = 20
    inner_folds: int = 3
    metric: str = "roc_auc"
    classifiers: tuple[str, ...] | None = None
    space: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)

    def key(self, classifier: str, members: Any = None) -> dict[str, Any]:
        """What enters a tuned cell's key: method, budget, inner folds, metric, space."""
        from classify.config.search_spaces import resolve_space

        return {"search": self.search, "budget": self.budget, "inner_folds": self.inner_folds,
                "metric": self.metric, "space": resolve_space(classifier, self.space, members)}

    def tunes(self, classifier: str) -> bool:
        return self.classifiers is None or classifier in self.classifiers


def parse_tuning(raw: Any, src: str, metrics: Mapping[str, bool],
                 classifiers: tuple[str, ...]) -> TuningConfig | None:
    """The ``[tuning]`` section; None when absent or ``enabled = false``."""
    if raw is None:
        return None
    from classify.config.search_spaces import check_range, resolve_space

    raw = table(raw, "tuning", src)
    check_keys("tuning", raw, {"enabled", "search", "budget", "inner_folds", "metric",
                               "classifiers", "space"}, src)
    if not raw.get("enabled", True):
        return None
    search = raw.get("search", "random")
    if search not in SEARCHES:
        raise ConfigError(f"{src}: tuning.search {search!r}: use one of {', '.join(SEARCHES)}."
                          f"{did_you_mean(search, SEARCHES)}")
    ints = {}
    for key, default, low in (("budget", 20, 1), ("inner_folds", 3, 2)):
        v = raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{src}: tuning.{key} must be an integer >= {low}, got {v!r}")
        ints[key] = v
    metric = raw.get("metric", "roc_auc")
    if metric not in metrics:
        raise ConfigError(f"{src}: tuning.metric {metric!r} is not a metric."
                          f"{did_you_mean(metric, list(metrics))}")
    chosen = raw.get("classifiers")
    if chosen is not None:
        if not isinstance(chosen, list) or not all(c in classifiers for c in chosen):
            raise ConfigError(f"{src}: tuning.classifiers must list classifiers of the grid "
                              f"{list(classifiers)}, got {chosen!r}")
        chosen = tuple(chosen)
    space_raw = table(raw.get("space", {}), "tuning.space", src)
    space = {}
    for clf, params in space_raw.items():
        params = table(params, f"tuning.space.{clf}", src)
        space[str(clf)] = {k: check_range(k, v, f"{src}: tuning.space.{clf}")
                           for k, v in params.items()}
    config = TuningConfig(search=str(search), budget=ints["budget"],
                          inner_folds=ints["inner_folds"], metric=str(metric),
                          classifiers=chosen, space=space)
    for clf in classifiers:
        if config.tunes(clf):
            try:
                resolve_space(clf, space)
            except ConfigError as exc:
                raise ConfigError(f"{src}: {exc}") from None
    return config


# ----------------------------------------------------------------------------- [imbalance]
_IMBALANCE_KEYS = {"prevalence", "feature_sets", "fusions", "samplers", "classifiers", "seed"}


@dataclass(frozen=True)
class ImbalanceConfig:
    """The ``[imbalance]`` section: the prevalence sweep (:mod:`classify.analysis.prevalence_sweep`)."""

    prevalence: tuple[float, ...]
    feature_sets: tuple[str, ...] | None = None
    samplers: tuple[str, ...] | None = None
    classifiers: tuple[str, ...] | None = None
    seed: int | None = None
    fusions: tuple[str, ...] | None = None


def parse_imbalance(raw: Any, src: str) -> ImbalanceConfig | None:
    """Validate the ``[imbalance]`` table (None when absent); ConfigError naming the key."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{src}: [imbalance] must be a table, e.g. prevalence = [0.5, 0.2, 0.09]")
    check_keys("imbalance", raw, _IMBALANCE_KEYS, src, quoted=True)
    prev = raw.get("prevalence")
    if (not isinstance(prev, list) or not prev
            or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in prev)
            or not all(0 < float(p) < 1 for p in prev)):
        raise ConfigError(f"{src}: imbalance.prevalence must be a list of shares between 0 and 1 "
                          f"(exclusive), e.g. [0.5, 0.2, 0.09, 0.05]; got {prev!r}")
    values = tuple(sorted({float(p) for p in prev}, reverse=True))
    if len(values) != len(prev):
        raise ConfigError(f"{src}: imbalance.prevalence lists a value twice: {prev!r}")

    def names(key: str) -> tuple[str, ...] | None:
        v = raw.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{src}: imbalance.{key} must be a non-empty list of names, got {v!r}")
        return tuple(dict.fromkeys(v))

    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"{src}: imbalance.seed must be an integer >= 0, got {seed!r}")
    cfg = ImbalanceConfig(values, names("feature_sets"), names("samplers"), names("classifiers"),
                          seed, names("fusions"))
    from classify.models.classifiers import CLASSIFIERS
    from classify.models.fusion import FUSIONS
    from classify.models.samplers import SAMPLERS
    from pipeline.errors import UnknownNameError

    for key, reg in (("samplers", SAMPLERS), ("classifiers", CLASSIFIERS), ("fusions", FUSIONS)):
        for i, n in enumerate(getattr(cfg, key) or ()):
            try:
                reg.get(n)
            except UnknownNameError as exc:
                raise ConfigError(f"{src}: imbalance.{key}[{i}]: {exc}") from None
    return cfg


@dataclass(frozen=True)
class HoldoutConfig:
    """``[holdout]``: a test set kept out of everything else (see :mod:`classify.run.holdout`).

    Exactly one of ``fraction`` (a share of the patients, drawn patient-grouped and stratified
    by label with ``seed``) and ``manifest`` (a manifest CSV whose samples AND patients are held
    out) is set.
    """

    fraction: float | None = None
    manifest: str | None = None
    seed: int | None = None

    def key(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "manifest": self.manifest, "seed": self.seed}


def parse_holdout(raw: Any, src: str) -> HoldoutConfig | None:
    """The ``[holdout]`` section, or None when absent."""
    if raw is None:
        return None
    raw = table(raw, "holdout", src)
    check_keys("holdout", raw, {"fraction", "manifest", "seed"}, src)
    if ("fraction" in raw) == ("manifest" in raw):
        raise ConfigError(f"{src}: [holdout] needs exactly one of fraction = 0.2 (a share of the "
                          "patients) or manifest = \"path.csv\" (ids to hold out)")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"{src}: holdout.seed must be an integer, got {seed!r}")
    if "manifest" in raw:
        if not isinstance(raw["manifest"], str) or not raw["manifest"].strip():
            raise ConfigError(f"{src}: holdout.manifest must be a path to a manifest CSV")
        return HoldoutConfig(manifest=raw["manifest"], seed=seed)
    return HoldoutConfig(fraction=number(raw["fraction"], "holdout.fraction", src, 0.01, 0.5),
                         seed=seed)
