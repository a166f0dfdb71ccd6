"""openi_context: the structured pre-read block derived from INDICATION/COMPARISON (sex, prior exam, keywords)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.dataset.context import (
    OPENI_KEYWORDS,
    has_comparison,
    keyword_flags,
    openi_context_frame,
    sex_from_text,
    write_context_store,
)
from pipeline.errors import ManifestError
from pipeline.manifest import Manifest
from pipeline.store.feature_store import FeatureStore


@pytest.mark.parametrize(("text", "sex"), [
    ("XXXX-year-old female shortness of breath.", "female"),
    ("XXXX-year-old male, chest pain.", "male"),
    ("XXXX year old woman with cough", "female"),
    ("Chest pain and dizziness", None),
    ("", None),
])
def test_sex_only_when_the_indication_states_it(text, sex) -> None:
    assert sex_from_text(text) == sex


def test_comparison_and_keyword_flags() -> None:
    assert has_comparison("None.") == 0.0 and has_comparison("None available") == 0.0
    assert has_comparison("No comparison chest x-XXXX.") == 0.0
    assert has_comparison("XXXX, XXXX") == 1.0
    assert has_comparison("Two views of the chest dated XXXX.") == 1.0
    assert math.isnan(has_comparison(""))
    flags = keyword_flags("XXXX-year-old male, shortness of breath, r/o pneumonia; pre-op.")
    assert flags["dyspnea"] == flags["infection_question"] == flags["rule_out"] == 1.0
    assert flags["preoperative"] == 1.0 and flags["chest_pain"] == 0.0
    assert keyword_flags("Fell down stairs, chest wall pain")["trauma"] == 1.0
    assert all(math.isnan(v) for v in keyword_flags("  ").values())
    assert set(flags) == set(OPENI_KEYWORDS)


def _manifest(tmp_path, **cols):  # noqa: ANN001, ANN202
    frame = pd.DataFrame({
        "sample_id": ["a", "b", "c"], "patient_id": ["a", "b", "c"],
        "image_path": ["a.png", "b.png", "c.png"], "report_id": ["a", "b", "c"],
        "findings": ["Cardiomegaly.", "Clear.", "Clear."], "impression": "", "report_text": "",
        "tags": ["cardiomegaly", "normal", "normal"], "label": ["abnormal", "normal", "normal"],
        "label_source": "mesh:report", "view": "PA", **cols})
    return Manifest("ctx", frame, tmp_path)


def test_store_is_tabular_and_never_reads_the_findings(tmp_path) -> None:
    m = _manifest(tmp_path, indication=["XXXX-year-old female, cough", "Chest pain", ""],
                  comparison=["None.", "XXXX", ""])
    s = write_context_store(m, "openi_context", tmp_path / "features")
    store = FeatureStore(s.path)
    assert store.kind == "tabular" and store.encoder_key == "openi_context"
    names = [c.name for c in store.schema.columns]
    assert names[:2] == ["sex", "has_comparison"] and "cardiomegaly" not in " ".join(names)
    X = store.read(["a", "b", "c"])
    sex, comp, cough, pain = (names.index(n) for n in ("sex", "has_comparison", "cough",
                                                        "chest_pain"))
    assert X[0, sex] == 0 and np.isnan(X[1, sex])  # female = code 0; not stated = missing
    assert (X[0, comp], X[1, comp]) == (0, 1) and np.isnan(X[2, comp])
    assert (X[0, cough], X[1, pain]) == (1, 1) and np.isnan(X[2, cough])
    prov = store.provenance
    assert prov["preprocessing"]["written_before_read"] is True
    assert prov["preprocessing"]["keywords"] == OPENI_KEYWORDS
    # same findings, different indications -> different rows: the read is not an input
    assert not np.array_equal(X[1], X[2], equal_nan=True)


def test_manifest_without_any_context_text_names_the_fix(tmp_path) -> None:
    frame = _manifest(tmp_path, indication="", comparison="").frame
    with pytest.raises(ManifestError, match="rebuild it with `pipeline data`"):
        openi_context_frame(frame)
    with pytest.raises(ManifestError, match="no 'indication' column"):
        openi_context_frame(frame.drop(columns=["indication"]))
