"""Per-task labels: label:<task> columns (positive/negative/uncertain/missing), tags, policies."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import ConfigError, ManifestError
from pipeline.labels.tasks import (
    labels_for_rule,
    manifest_policy,
    resolve_tasks,
    task_columns,
    task_labels,
    task_of_rule,
)


def _frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], **cols})


def test_label_column_values_missing_rows_left_out_with_reason():
    f = _frame(**{"label:effusion": ["1", "0", "", "NaN", "true", "other", "effusion", "1.0"]})
    got = task_labels(f, "effusion")
    assert got.labels == ("effusion", "other", "", "", "effusion", "other", "effusion",
                          "effusion")
    assert got.reasons[2] == got.reasons[3] == "label:effusion: missing"
    assert got.reasons[0] is None
    assert got.rule_id == "task:effusion|column:label:effusion|uncertain=zeros"


@pytest.mark.parametrize("policy, expected", [("zeros", "other"), ("ones", "effusion"),
                                              ("ignore", "")])
def test_uncertain_cells_follow_the_policy(policy, expected):
    got = task_labels(_frame(**{"label:effusion": ["-1", "1", "0"]}), "effusion", policy=policy)
    assert got.labels[0] == expected
    assert got.labels[1:] == ("effusion", "other")
    assert policy in got.rule_id  # a policy change changes the task's cell keys


def test_a_value_that_is_not_a_binary_label_names_the_row_and_column():
    f = _frame(**{"label:nodule": ["1", "maybe", "0"]})
    with pytest.raises(ManifestError, match=r"label:nodule.*s1='maybe'"):
        task_labels(f, "nodule", source="m.csv")


def test_labels_from_tags_and_uncertain_tags():
    f = _frame(tags=["cardiomegaly;effusion", "normal", "effusion", "", "no_indexing"],
               uncertain_tags=["", "", "", "cardiomegaly", ""])
    zeros = task_labels(f, "cardiomegaly", policy="zeros")
    assert zeros.labels == ("cardiomegaly", "other", "other", "other", "")
    assert zeros.reasons[4] == "task cardiomegaly: unlabelled"
    ones = task_labels(f, "cardiomegaly", policy="ones")
    assert ones.labels[3] == "cardiomegaly"
    ignore = task_labels(f, "cardiomegaly", policy="ignore")
    assert ignore.labels[3] == "" and "uncertain" in ignore.reasons[3]
    assert zeros.rule_id != ones.rule_id != ignore.rule_id


def test_a_finding_absent_from_the_tags_is_a_config_error():
    with pytest.raises(ConfigError, match="never occurs"):
        task_labels(_frame(tags=["normal", "effusion"]), "pneumothorax")


def test_all_means_every_label_column():
    f = _frame(**{"label:a": ["1"], "label:b_c": ["0"], "label": ["x"]})
    assert task_columns(f) == ("a", "b_c")
    assert resolve_tasks("all", f, "m.csv") == ("a", "b_c")
    with pytest.raises(ConfigError, match="no 'label:<task>' column"):
        resolve_tasks("all", _frame(tags=["x"]), "m.csv")


def test_rule_ids_round_trip_for_predict():
    f = _frame(**{"label:effusion": ["-1", "1"]})
    rule = task_labels(f, "effusion", policy="ones").rule_id
    assert task_of_rule(rule) == "effusion"
    assert task_of_rule("normal_vs_abnormal") is None
    assert labels_for_rule(f, rule).labels == ("effusion", "effusion")


def test_policy_default_is_the_manifests_and_may_be_set_per_task():
    assert manifest_policy({"uncertain_policy": "U-Ones"}) == "ones"
    assert manifest_policy({}) == "zeros"
    assert manifest_policy({"uncertain_policy": "U-Ones"}, "ignore") == "ignore"
    per_task = (("atelectasis", "ones"), ("edema", "ones"))
    assert manifest_policy({}, per_task, "atelectasis") == "ones"
    assert manifest_policy({}, per_task, "effusion") == "zeros"
    assert manifest_policy({"uncertain_policy": "U-Ignore"}, per_task, "effusion") == "ignore"


def test_all_on_a_chexpert_manifest_is_its_chexpert_findings():
    """MIMIC-CXR manifests carry CheXpert findings in tags + uncertain_tags, no label columns."""
    f = _frame(tags=["effusion;device", "normal", "cardiomegaly"],
               uncertain_tags=["", "edema", ""])
    assert resolve_tasks("all", f, "mimic.csv") == ("cardiomegaly", "edema", "effusion", "device")
