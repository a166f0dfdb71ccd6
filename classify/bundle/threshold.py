"""Decision threshold of a final model: parse a rule, choose it from out-of-fold predictions, apply it.

A threshold is a probability cut on the positive class of a binary model: a sample is
predicted positive when ``P(positive) >= threshold``. Rules (the same grammar on the
command line and in an experiment file):

* ``argmax``            no threshold: the class with the highest probability (the benchmark's
                        rule; the default).
* ``0.35``              a fixed number in (0, 1).
* ``max_f1``            the cut maximising F1 of the positive class,
* ``youden``            the cut maximising sensitivity + specificity - 1,
* ``sensitivity=0.90``  the highest cut whose sensitivity is still >= 0.90,
* ``specificity=0.90``  the lowest cut whose specificity is still >= 0.90 (as in
                        ``[operating_point]``),

the last four chosen on *out-of-fold* predictions (the chosen cell's saved CV
predictions: every row was predicted by a model that did not train on it), never on
rows the final model is evaluated on. Multiclass models always use ``argmax``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError

RULES = ("argmax", "max_f1", "youden", "sensitivity=<s>", "specificity=<s>",
         "<number in (0, 1)>")


@dataclass(frozen=True)
class ThresholdChoice:
    """The decision rule a bundle applies.

    Attributes:
        rule: ``argmax``, ``fixed``, ``max_f1``, ``youden`` or ``sensitivity=<s>``.
        value: the probability cut on the positive class (None for ``argmax``).
        source: where it came from (``default``, ``command line``, ``experiment file``).
        chosen_on: what data chose it (e.g. ``out-of-fold predictions of cell ... (n rows)``);
            empty for ``argmax`` and fixed values.
        oof_sensitivity, oof_specificity: the rule's operating point on those predictions.
    """

    rule: str = "argmax"
    value: float | None = None
    source: str = "default"
    chosen_on: str = ""
    oof_sensitivity: float | None = None
    oof_specificity: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> ThresholdChoice:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


def parse_rule(rule: str | float | None) -> tuple[str, float | None]:
    """``(rule name, parameter)`` of a rule spec; ConfigError listing the valid forms."""
    if rule is None:
        return "argmax", None
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return _fixed(float(rule), str(rule))
    text = str(rule).strip().lower()
    if text in ("argmax", "max_f1", "youden"):
        return text, None
    for kind in ("sensitivity", "specificity"):
        if text.startswith(f"{kind}="):
            try:
                s = float(text.split("=", 1)[1])
            except ValueError:
                s = math.nan
            if not 0 < s <= 1:
                raise ConfigError(f"threshold rule {rule!r}: {kind} must be in (0, 1], e.g. "
                                  f"'{kind}=0.90'")
            return kind, s
    try:
        return _fixed(float(text), str(rule))
    except ValueError:
        raise ConfigError(
            f"unknown threshold rule {rule!r}; valid: {', '.join(RULES)}"
        ) from None


def _fixed(value: float, spec: str) -> tuple[str, float]:
    if not 0 < value < 1:
        raise ConfigError(f"threshold {spec!r} must be a probability strictly between 0 and 1")
    return "fixed", value


def _rates(y_pos: np.ndarray, p: np.ndarray, cut: float) -> tuple[float, float]:
    pred = p >= cut
    pos, neg = y_pos.sum(), (~y_pos).sum()
    sens = float((pred & y_pos).sum() / pos) if pos else math.nan
    spec = float((~pred & ~y_pos).sum() / neg) if neg else math.nan
    return sens, spec


def choose_threshold(rule: str | float | None, y_pos: np.ndarray | None = None,
                     p_pos: np.ndarray | None = None, *, n_classes: int = 2,
                     source: str = "default", chosen_on: str = "") -> ThresholdChoice:
    """The :class:`ThresholdChoice` for ``rule``.

    Args:
        y_pos: bool, True where the out-of-fold row is of the positive class.
        p_pos: out-of-fold probability of the positive class, aligned with ``y_pos``.
        n_classes: a rule other than ``argmax`` needs a binary model.
    """
    name, param = parse_rule(rule)
    if name == "argmax":
        return ThresholdChoice(source=source)
    if n_classes != 2:
        raise ConfigError(f"threshold rule {rule!r} needs a binary model; this one has "
                          f"{n_classes} classes (multiclass models predict the argmax)")
    if name == "fixed":
        return ThresholdChoice("fixed", float(param), source)
    if y_pos is None or p_pos is None or len(y_pos) == 0:
        raise ConfigError(f"threshold rule {rule!r} needs out-of-fold predictions; none given")
    y_pos = np.asarray(y_pos, dtype=bool)
    p_pos = np.asarray(p_pos, dtype=np.float64)
    if y_pos.all() or not y_pos.any():
        raise ConfigError(f"threshold rule {rule!r}: the out-of-fold predictions hold one class only")
    cuts = np.unique(p_pos)
    sens = np.empty(len(cuts))
    spec = np.empty(len(cuts))
    for i, c in enumerate(cuts):
        sens[i], spec[i] = _rates(y_pos, p_pos, float(c))
    if name == "youden":
        best = int(np.argmax(sens + spec - 1))
        label = "youden"
    elif name == "max_f1":
        tp = sens * y_pos.sum()
        fp = (1 - spec) * (~y_pos).sum()
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + (y_pos.sum() - tp)), 0.0)
        best = int(np.argmax(f1))
        label = "max_f1"
    elif name == "sensitivity":  # the highest cut keeping it (sensitivity falls as it rises)
        ok = np.flatnonzero(sens >= param - 1e-12)
        best = int(ok.max())
        label = f"sensitivity={param:g}"
    else:  # specificity >= param: the lowest such cut (specificity rises with the cut)
        ok = np.flatnonzero(spec >= param - 1e-12)
        if not len(ok):  # even predicting nothing positive misses it: the highest cut
            ok = np.array([len(cuts) - 1])
        best = int(ok.min())
        label = f"specificity={param:g}"
    return ThresholdChoice(label, float(cuts[best]), source, chosen_on,
                           float(sens[best]), float(spec[best]))


def apply_threshold(proba: np.ndarray, choice: ThresholdChoice, positive: int | None) -> np.ndarray:
    """Predicted class codes: argmax, or ``P(positive) >= value`` for a binary threshold."""
    proba = np.asarray(proba, dtype=np.float64)
    if choice.value is None or positive is None or proba.shape[1] != 2:
        return proba.argmax(axis=1)
    other = 1 - positive
    return np.where(proba[:, positive] >= choice.value, positive, other)
