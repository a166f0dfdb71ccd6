"""--text-mode indication: the pre-read clinical question gets its own store; empty ones fail with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extract.encoders import store_key
from extract.options import ExtractOptions
from extract.runner import run_extract, select_text
from pipeline.errors import ManifestError
from pipeline.store.feature_store import FeatureStore

from .conftest import make_manifest

ROWS = [
    ("c0", "Heart enlarged. Cardiomegaly.", "Chest pain and dyspnea."),
    ("c1", "Lungs are clear.", "XXXX-year-old female, cough."),
    ("c2", "Small effusion.", ""),
    ("c3", "No acute disease.", "Preoperative evaluation."),
]


@pytest.fixture
def context_manifest(tmp_path: Path):
    rows = [{"sample_id": sid, "image_path": f"{sid}.png", "findings": f, "report_text": f,
             "indication": ind, "comparison": ""} for sid, f, ind in ROWS]
    return make_manifest("ctx", rows, tmp_path, {"label_rule": "normal_vs_abnormal"})


def test_indication_store_key_and_text_selection() -> None:
    assert store_key("minilm", ExtractOptions(text_mode="indication")) == "minilm@indication"
    assert store_key("minilm", ExtractOptions(text_mode="indication", mask_labels=True)) == \
        "minilm@indication+masked"
    row = {"findings": "Cardiomegaly.", "report_text": "Cardiomegaly.",
           "indication": "  Rule out\n pneumonia "}
    assert select_text(row, "indication") == "Rule out pneumonia"


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_indication_store_embeds_the_indication_and_fails_empty_ones(context_manifest,
                                                                      tmp_path: Path) -> None:
    s = run_extract(context_manifest, "minilm", tmp_path, text_mode="indication")
    assert s.encoder_key == "minilm@indication"
    assert s.n_embedded == 3 and list(s.failed) == ["c2"]
    assert "INDICATION" in s.failed["c2"]
    store = FeatureStore(s.store)
    assert store.failed == {"c2": s.failed["c2"]}
    assert store.provenance["preprocessing"]["text_mode"] == "indication"
    # the indication, not the findings, was embedded: differs from the report store
    report = FeatureStore(run_extract(context_manifest, "minilm", tmp_path).store)
    assert not np.allclose(store.read(["c0"]), report.read(["c0"]), atol=1e-3)


def test_rows_without_an_indication_are_failed_not_dropped(tmp_path: Path) -> None:
    bare = make_manifest("bare", [{"sample_id": "a", "image_path": "a.png", "findings": "x",
                                   "report_text": "x"}], tmp_path)
    s = run_extract(bare, "minilm", tmp_path, text_mode="indication")
    assert s.n_embedded == 0 and "no INDICATION section" in s.failed["a"]


def test_texts_of_a_frame_without_the_column_name_the_fix() -> None:
    import pandas as pd

    from extract.texts import manifest_texts

    class Old:  # a table from before the column existed (a Manifest now adds it empty)
        name = "old"
        frame = pd.DataFrame({"findings": ["x"], "impression": [""], "report_text": ["x"]})

    with pytest.raises(ManifestError, match="rebuild it with `pipeline data`") as err:
        manifest_texts(Old(), "indication", False)
    assert err.value.exit_code == 2
