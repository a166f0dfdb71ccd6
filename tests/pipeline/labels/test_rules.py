"""Label rules: spec parsing, each registered rule and its drop reasons."""

from __future__ import annotations

import re

import pytest

from pipeline.errors import ConfigError, UnknownNameError
from pipeline.labels import LABEL_RULES, LabelRule, apply_label_rule

# ----------------------------------------------------------------- specs


def test_from_spec_forms_are_equivalent():
    a = LabelRule.from_spec("finding_vs_rest:Cardiomegaly")
    b = LabelRule.from_spec("finding_vs_rest:finding=cardiomegaly")
    c = LabelRule.from_spec({"name": "finding_vs_rest", "params": {"finding": "CARDIOMEGALY"}})
    d = LabelRule.from_spec({"name": "finding_vs_rest", "finding": "Cardiomegaly"})
    assert a == b == c == d
    assert a.params["finding"] == "cardiomegaly"
    assert LabelRule.from_spec(a.spec) == a
    assert len({a, b, c, d}) == 1  # hashable, equal hash


def test_from_spec_coerces_and_defaults():
    rule = LabelRule.from_spec("top_k_multiclass:k=4,include_normal=yes")
    assert rule.params == {"k": 4, "include_normal": True}
    assert LabelRule.from_spec("top_k_multiclass:3").params == {"k": 3, "include_normal": False}
    assert LabelRule.from_spec("finding_vs_rest:Pleural Effusion").params["finding"] == "effusion"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("finding_vs_rest", "needs parameter 'finding'"),
        ("top_k_multiclass:k=abc", "not a valid int"),
        ("top_k_multiclass:k=1", "k >= 2"),
        ("normal_vs_abnormal:5", "cannot assign positional value"),
        ("finding_vs_rest:finding=x,colour=red", "unknown parameter"),
        ({"finding": "x"}, "has no 'name'"),
        ("", "not a string or mapping"),
    ],
)
def test_bad_specs_raise_config_error(spec, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        LabelRule.from_spec(spec)


def test_unknown_rule_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        LabelRule.from_spec("normal_vs_abnormall")
    msg = str(info.value)
    assert "normal_vs_abnormal" in msg and "top_k_multiclass" in msg
    assert set(LABEL_RULES.names()) == {"normal_vs_abnormal", "finding_vs_rest", "top_k_multiclass"}


# ----------------------------------------------------------------- rules

ROWS = [
    ["normal"],
    ["cardiomegaly", "opacity"],
    ["opacity"],
    ["no_indexing"],
    [],
    ["normal", "opacity"],
    ["effusion"],
    "cardiomegaly;effusion",  # ';'-joined manifest cell
    ["cardiomegaly"],
    ["opacity", "calcinosis"],
]


def test_normal_vs_abnormal():
    res = apply_label_rule("normal_vs_abnormal", ROWS)
    assert res.labels == (
        "normal",
        "abnormal",
        "abnormal",
        None,
        None,
        None,
        "abnormal",
        "abnormal",
        "abnormal",
        "abnormal",
    )
    assert dict(res.dropped) == {"unlabelled": 2, "conflicting_normal": 1}
    assert res.reasons[3] == "unlabelled" and res.reasons[5] == "conflicting_normal"
    assert res.counts == {"abnormal": 6, "normal": 1}


def test_finding_vs_rest():
    res = apply_label_rule("finding_vs_rest:Cardiomegaly", ROWS)
    assert res.classes == ("cardiomegaly", "other")
    assert [res.labels[i] for i in (0, 1, 2, 7, 8)] == [
        "other",
        "cardiomegaly",
        "other",
        "cardiomegaly",
        "cardiomegaly",
    ]
    assert dict(res.dropped) == {"unlabelled": 2}


def test_finding_vs_rest_unknown_finding_names_the_fix():
    with pytest.raises(ConfigError, match="never occurs.*most frequent: opacity"):
        apply_label_rule("finding_vs_rest:pneumothorax", ROWS)


def test_top_k_multiclass_counts_dropped_reasons():
    res = apply_label_rule("top_k_multiclass:k=2", ROWS)
    # frequencies: opacity 4, cardiomegaly 3, effusion 2, calcinosis 1
    assert res.classes == ("opacity", "cardiomegaly")
    assert (
        res.labels[2] == "opacity"
        and res.labels[8] == "cardiomegaly"
        and res.labels[9] == "opacity"
    )
    assert res.labels[1] is None and res.reasons[1] == "multiple_top_k_findings"
    assert res.reasons[6] == "no_top_k_finding" and res.reasons[0] == "no_top_k_finding"
    assert dict(res.dropped) == {
        "multiple_top_k_findings": 1,
        "no_top_k_finding": 2,
        "unlabelled": 2,
    }
    assert res.labels[7] == "cardiomegaly"  # effusion is not a class, so one class hit
    assert sum(res.dropped.values()) + sum(res.counts.values()) == len(ROWS)
    with_normal = apply_label_rule("top_k_multiclass:k=2,include_normal=true", ROWS)
    assert with_normal.classes == ("opacity", "cardiomegaly", "normal")
    assert with_normal.labels[0] == "normal"


def test_top_k_too_large():
    with pytest.raises(ConfigError, match="lower k"):
        apply_label_rule("top_k_multiclass:k=9", ROWS)



# ----------------------------------------------------------------- uncertain findings (CheXpert -1)


def test_uncertain_policies_for_each_rule():
    tags = [["cardiomegaly"], [], [], ["normal"], ["effusion"]]
    uncertain = [["effusion"], ["effusion"], [], [], []]

    def labels(rule, policy):
        return apply_label_rule(rule, tags, uncertain=uncertain, policy=policy).labels

    # finding_vs_rest: a read row with only uncertain mentions is 'other' under U-Zeros
    assert labels("finding_vs_rest:effusion", "zeros") == (
        "other", "other", None, "other", "effusion")
    assert labels("finding_vs_rest:effusion", "ones") == (
        "effusion", "effusion", None, "other", "effusion")
    assert labels("finding_vs_rest:effusion", "ignore") == (None, None, None, "other", "effusion")
    # normal_vs_abnormal: no positive finding and no 'normal' -> dropped as uncertain_only
    zeros = apply_label_rule("normal_vs_abnormal", tags, uncertain=uncertain, policy="zeros")
    assert zeros.labels == ("abnormal", None, None, "normal", "abnormal")
    assert zeros.reasons[1:3] == ("uncertain_only", "unlabelled")
    ignore = apply_label_rule("normal_vs_abnormal", tags, uncertain=uncertain, policy="ignore")
    assert ignore.labels == ("abnormal", None, None, "normal", "abnormal")
    assert ignore.dropped == {"uncertain": 1, "unlabelled": 1}
    # without uncertain information nothing changes: an empty row is unlabelled
    assert apply_label_rule("finding_vs_rest:effusion", tags).labels[1] is None
    with pytest.raises(ConfigError, match="uncertain policy 'maybe'"):
        apply_label_rule("normal_vs_abnormal", tags, uncertain=uncertain, policy="maybe")
