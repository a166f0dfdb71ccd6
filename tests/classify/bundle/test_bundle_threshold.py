"""Decision rules of a bundle: parsing, choice on out-of-fold predictions, application."""

from __future__ import annotations

import numpy as np
import pytest

from classify.bundle.threshold import ThresholdChoice, apply_threshold, choose_threshold, parse_rule
from pipeline.errors import ConfigError

# 10 rows: positives at p = .9 .8 .7 .4 ; negatives at p = .6 .35 .3 .2 .1 .05
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
P = np.array([.9, .8, .7, .4, .6, .35, .3, .2, .1, .05])


def test_parse_rules():
    assert parse_rule(None) == ("argmax", None)
    assert parse_rule("0.25") == ("fixed", 0.25)
    assert parse_rule(0.7) == ("fixed", 0.7)
    assert parse_rule("Youden") == ("youden", None)
    assert parse_rule("sensitivity=0.9") == ("sensitivity", 0.9)
    for bad in ("1.5", "0", "sensitivity=2", "best", "sensitivity=x"):
        with pytest.raises(ConfigError):
            parse_rule(bad)


def test_youden_max_f1_and_sensitivity_on_known_data():
    # cut .7: sens 3/4, spec 1 -> J .75 ; cut .4: sens 1, spec 5/6 -> J .833 (best)
    y = choose_threshold("youden", Y, P)
    assert y.value == pytest.approx(0.4) and y.oof_sensitivity == 1.0
    assert y.oof_specificity == pytest.approx(5 / 6)
    # F1 at .4: tp 4 fp 1 fn 0 -> 8/9 ; at .7: tp 3 fp 0 fn 1 -> 6/7 -> .4 wins
    assert choose_threshold("max_f1", Y, P).value == pytest.approx(0.4)
    # sensitivity >= .75: the highest cut keeping 3 of 4 positives is .7
    s = choose_threshold("sensitivity=0.75", Y, P)
    assert s.value == pytest.approx(0.7) and s.rule == "sensitivity=0.75"
    assert choose_threshold("sensitivity=1", Y, P).value == pytest.approx(0.4)


def test_rules_need_a_binary_model_and_two_classes():
    with pytest.raises(ConfigError, match="binary"):
        choose_threshold("youden", Y, P, n_classes=3)
    with pytest.raises(ConfigError, match="one class"):
        choose_threshold("youden", np.ones(4, bool), np.linspace(0, 1, 4))
    assert choose_threshold("argmax", n_classes=3).value is None


def test_apply_threshold():
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    assert apply_threshold(proba, ThresholdChoice(), positive=1).tolist() == [0, 1, 1]
    cut = ThresholdChoice("fixed", 0.75)
    assert apply_threshold(proba, cut, positive=1).tolist() == [0, 0, 1]
    assert apply_threshold(proba, ThresholdChoice("fixed", 0.35), positive=0).tolist() == [0, 0, 1]


def test_specificity_rule_as_in_the_operating_point_section():
    """Issue 21.6: `[operating_point] rule = "specificity=..."` exists, the bundle grammar lacked it."""
    assert parse_rule("specificity=0.9") == ("specificity", 0.9)
    with pytest.raises(ConfigError, match="specificity must be in"):
        parse_rule("specificity=1.5")
    # cut .4: one negative (.6) above -> spec 5/6; cut .35: spec 4/6; cut .7: spec 1
    s = choose_threshold("specificity=0.8", Y, P)
    assert s.value == pytest.approx(0.4) and s.rule == "specificity=0.8"
    assert s.oof_specificity == pytest.approx(5 / 6) and s.oof_sensitivity == 1.0
    assert choose_threshold("specificity=1", Y, P).value == pytest.approx(0.7)
