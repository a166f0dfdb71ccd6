"""`pipeline data csv` on a site export: column mapping, declared label source, heading split,
positive label, clinical columns as a tabular store, unlabelled cases and the data profile."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline import cli
from pipeline.dataset.build import build_manifest
from pipeline.errors import ConfigError, ManifestError
from pipeline.store.feature_store import FeatureStore

MAPPING = ("sample_id=Accession,patient_id=MRN,image_path=FilePath,report_text=ReportText,"
           "label=Finding")
REPORT = ("INDICATION: Shortness of breath.\nCOMPARISON: None.\n\nFINDINGS:\n{f}\n\n"
          "IMPRESSION:\n{i}")


@pytest.fixture
def export(tmp_path):
    rows = []
    for k in range(12):
        pos = k % 4 == 0
        rows.append({"MRN": f"M{k // 2}", "Accession": f"A{k:03d}", "FilePath": f"f/{k}.jpg",
                     "ReportText": REPORT.format(f="Enlarged heart." if pos else "Clear.",
                                                 i="Cardiomegaly." if pos else "Normal."),
                     "PatientAge": "" if k == 3 else str(40 + k), "PatientSex": "FM"[k % 2],
                     "Finding": "Yes" if pos else "No", "StudyDate": "2025-01-01"})
    rows[5]["Finding"] = ""
    path = tmp_path / "export.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_mapped_columns_split_sections_and_record_the_label_source(export, tmp_path):
    m = build_manifest("csv", path=export, columns=MAPPING, label_source="report",
                       positive_label="Yes", manifest_dir=tmp_path / "m", check_images=False)
    f = m.frame
    assert f["sample_id"].tolist()[:2] == ["A000", "A001"] and f["patient_id"].iloc[2] == "M1"
    assert f["indication"].iloc[0] == "Shortness of breath."
    assert f["findings"].iloc[0] == "Enlarged heart." and f["impression"].iloc[0] == "Cardiomegaly."
    assert f["report_text"].iloc[0] == "Enlarged heart. Cardiomegaly."  # the read only
    assert "Shortness" not in " ".join(f["report_text"])
    assert (f["label_source"] == "csv:report").all() and m.meta["label_source"] == "csv:report"
    assert m.meta["report_sections"]["indication"] == 12
    assert m.meta["positive_label"] == "Yes" and m.meta["dropped"] == {"label:missing": 1}
    assert {"MRN", "Accession", "StudyDate"} <= set(m.meta["csv_input"]["id_columns"])
    assert "ReportText" not in m.meta["csv_input"]["id_columns"]
    assert "MRN" in f.columns  # the export's own columns travel with every row


def test_label_source_column_is_used_not_silently_ignored(export, tmp_path):
    df = pd.read_csv(export, dtype=str, keep_default_na=False).assign(label_source="report")
    df.to_csv(export, index=False)
    m = build_manifest("csv", path=export, columns=MAPPING, manifest_dir=tmp_path / "m",
                       check_images=False)
    assert m.meta["label_source"] == "csv:report"
    with pytest.raises(ManifestError, match="label_source column says"):
        build_manifest("csv", path=export, columns=MAPPING, label_source="external",
                       manifest_dir=tmp_path / "m", check_images=False)


@pytest.mark.parametrize("columns, error, text", [
    ("sample_id=Accesion", ManifestError, "Did you mean 'Accession'"),
    ("sampleid=Accession", ConfigError, "not a manifest field"),
    ("sample_id", ConfigError, "not field=Column"),
])
def test_bad_mapping_names_the_column_and_the_fix(export, tmp_path, columns, error, text):
    with pytest.raises(error, match=text):
        build_manifest("csv", path=export, columns=columns, manifest_dir=tmp_path / "m")


def test_positive_label_must_be_a_value(export, tmp_path):
    with pytest.raises(ManifestError, match="'Ja' is not a value"):
        build_manifest("csv", path=export, columns=MAPPING, positive_label="Ja",
                       manifest_dir=tmp_path / "m", check_images=False)


def test_unlabelled_keeps_every_row(export, tmp_path):
    df = pd.read_csv(export, dtype=str, keep_default_na=False).drop(columns=["Finding"])
    df.to_csv(export, index=False)
    with pytest.raises(ConfigError, match="no labels"):
        build_manifest("csv", path=export, columns=MAPPING.rsplit(",", 1)[0],
                       manifest_dir=tmp_path / "m", check_images=False)
    m = build_manifest("csv", path=export, columns=MAPPING.rsplit(",", 1)[0], unlabelled=True,
                       manifest_dir=tmp_path / "m", check_images=False)
    assert len(m) == 12 and m.meta["dropped"] == {} and m.meta["unlabelled"] is True


def test_cli_writes_profile_and_clinical_store(export, tmp_path, capsys):
    (tmp_path / "f").mkdir()
    for k in range(12):
        if k != 7:  # one missing film
            (tmp_path / "f" / f"{k}.jpg").write_bytes(b"garbage" if k == 2 else _jpeg())
    art = tmp_path / "art"
    code = cli.main(["data", "csv", "--name", "site", "--path", str(export), "--image-root",
                     str(tmp_path), "--columns", MAPPING, "--label-source", "report",
                     "--positive-label", "Yes", "--tabular", "PatientAge,PatientSex",
                     "--artifacts", str(art)])
    shown = capsys.readouterr().out
    assert code == 0
    profile = json.loads((art / "manifests" / "site.profile.json").read_text())
    assert profile["classes"] == {"No": 8, "Yes": 3} and profile["n_patients"] == 6
    assert profile["images"]["missing"] == 1 and profile["images"]["unreadable"] == 1
    assert profile["images"]["missing_examples"] == ["A007"]
    assert profile["images"]["unreadable_examples"] == ["A002"]
    assert profile["sections"]["indication"] == 11
    assert "Yes=3 (27.3%)" in shown and "1 missing, 1 unreadable" in shown
    assert "report sections" in shown and "tabular store clinical" in shown
    store = FeatureStore(art / "features" / "site" / "clinical.h5")
    assert len(store) == 11 and store.provenance["missing_per_column"]["PatientAge"] == 1
    assert store.provenance["preprocessing"]["types"] == {"PatientAge": "numeric",
                                                           "PatientSex": "categorical"}


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 100).save(buf, format="JPEG")
    return buf.getvalue()


def test_report_labels_mask_the_label_columns_finding(tmp_path):
    """`--label-source report` with label=Cardiomegaly: `extract --mask-labels` hides the
    finding's terms (the CSV has no label rule to take them from)."""
    from extract.texts import manifest_label_mask

    path = tmp_path / "e.csv"
    pd.DataFrame({"Accession": ["a", "b"], "FilePath": ["a.jpg", "b.jpg"],
                  "ReportText": ["FINDINGS: Cardiomegaly.", "FINDINGS: Clear."],
                  "Cardiomegaly": ["Yes", "No"]}).to_csv(path, index=False)
    m = build_manifest("csv", path=path, label_source="report", manifest_dir=tmp_path / "m",
                       columns="sample_id=Accession,image_path=FilePath,report_text=ReportText,"
                               "label=Cardiomegaly", check_images=False)
    masked = manifest_label_mask(m).apply("Cardiomegaly. The heart is enlarged.")
    assert "cardiomegaly" not in masked.lower() and "[MASK]" in masked
    external = build_manifest("csv", path=path, manifest_dir=tmp_path / "x", check_images=False,
                              columns="sample_id=Accession,image_path=FilePath,label=Cardiomegaly")
    assert "mask_rule" not in external.meta
