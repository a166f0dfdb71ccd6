"""Leakage audit of pre-read text: indication cells are not judged against the text-only ceiling;
the share of indications naming a label term is measured instead."""

from __future__ import annotations

import math

import pandas as pd

from classify.run import leakage
from pipeline.labels import LabelMask
from pipeline.labels.audit import label_term_audit
from tests.classify.conftest import make_cell


def _cell(store: str, auc: float):  # noqa: ANN202
    return make_cell("logistic", fusion="single", feature_set=store, stores=(store,),
                     modalities=("text",), seed=5, overrides={"roc_auc": auc})


def test_indication_store_is_pre_read_and_exempt_from_the_ceiling() -> None:
    assert leakage.is_pre_read_store("minilm@indication")
    assert leakage.is_pre_read_store("minilm@indication+masked")
    assert not leakage.is_pre_read_store("minilm@findings")
    assert not leakage.is_pre_read_store("minilm")
    indication = _cell("minilm@indication", 0.995)
    assert leakage.ceiling_warning((indication,), "mesh:report") is None
    assert leakage.text_only_ceiling((indication,)) is None
    report = _cell("minilm@findings", 0.995)
    warning = leakage.ceiling_warning((indication, report), "mesh:report")
    assert warning is not None and "minilm@findings" in warning
    assert "minilm@indication" not in warning


def test_term_audit_counts_texts_with_label_terms() -> None:
    mask = LabelMask("finding_vs_rest:pneumonia", ("pneumonia", "pleural effusion"), 0)
    audit = label_term_audit(["Rule out pneumonia.", "Chest pain", "", "f/u pleural  effusions",
                              "pneumonia? pleural effusion?"], mask)
    assert (audit.n_texts, audit.n_nonempty, audit.n_with_terms) == (5, 4, 3)
    assert math.isclose(audit.share, 0.75)
    assert audit.top_terms == (("pleural effusion", 2), ("pneumonia", 2))
    assert "3 of 4 non-empty indications (75.0%)" in audit.sentence()


def test_indication_audit_of_a_manifest_frame() -> None:
    frame = pd.DataFrame({"sample_id": ["a", "b"], "tags": ["cardiomegaly", "normal"],
                          "indication": ["known cardiomegaly", "cough"]})
    audit = leakage.indication_term_audit(frame, "normal_vs_abnormal")
    assert audit.n_with_terms == 1 and audit.top_terms[0][0] == "cardiomegaly"
    assert leakage.indication_term_audit(frame.drop(columns="indication"),
                                         "normal_vs_abnormal") is None


def test_a_full_report_store_fused_with_a_pre_read_store_is_not_exempt() -> None:
    """Issue 21.3: the exemption needs EVERY store pre-read; minilm + minilm@indication reads
    the full report and must be judged against the text-only ceiling."""
    fused = make_cell("logistic", fusion="concat", feature_set="text+indication",
                      stores=("minilm", "minilm@indication"), modalities=("text", "text"),
                      seed=6, overrides={"roc_auc": 0.995})
    assert leakage.is_text_only(fused)
    warning = leakage.ceiling_warning((fused,), "mesh:report")
    assert warning is not None and "text+indication" in warning
    assert not leakage.is_text_only(_cell("minilm@indication", 0.995))
