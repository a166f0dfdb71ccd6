"""MIMIC-CXR-JPG source: metadata + CheXpert labels + report files."""

from __future__ import annotations

import pandas as pd

from pipeline.build import build_manifest
from pipeline.sources.mimic_cxr import parse_report_sections


def test_mimic_builder(tmp_path):
    files = tmp_path / "files" / "p10"
    for subject, study, text in [
        ("10000001", "50000001", "FINDINGS: Heart is enlarged.\nIMPRESSION: Cardiomegaly."),
        ("10000002", "50000002", "The lungs are clear."),
    ]:
        (files / f"p{subject}").mkdir(parents=True, exist_ok=True)
        (files / f"p{subject}" / f"s{study}.txt").write_text(text)
    pd.DataFrame(
        {
            "dicom_id": ["d1", "d2", "d3", "d4"],
            "subject_id": ["10000001", "10000001", "10000002", "10000003"],
            "study_id": ["50000001", "50000001", "50000002", "50000003"],
            "ViewPosition": ["PA", "LATERAL", "AP", "PA"],
        }
    ).to_csv(tmp_path / "meta.csv", index=False)
    pd.DataFrame(
        {
            "subject_id": ["10000001", "10000002"],
            "study_id": ["50000001", "50000002"],
            "Cardiomegaly": ["1.0", ""],
            "No Finding": ["", "1.0"],
            "Pleural Effusion": ["-1.0", ""],
        }
    ).to_csv(tmp_path / "chexpert.csv", index=False)
    m = build_manifest(
        "mimic_cxr",
        metadata_csv=tmp_path / "meta.csv",
        labels_csv=tmp_path / "chexpert.csv",
        reports_dir=tmp_path,
        manifest_dir=tmp_path / "m",
        frontal_only=True,
    )
    assert m.ids == ["d1", "d3"]
    assert m.meta["dropped"] == {"missing_report": 1, "not_frontal": 1}
    row = m.frame.set_index("sample_id").loc["d1"]
    assert (row["findings"], row["impression"]) == ("Heart is enlarged.", "Cardiomegaly.")
    assert (
        row["tags"] == "cardiomegaly"
        and row["label"] == "abnormal"
        and row["patient_id"] == "10000001"
    )
    assert (
        row["image_path"] == "files/p10/p10000001/s50000001/d1.jpg"
        and row["label_source"] == "chexpert:report"
    )
    assert m.meta["source_dataset"] == "mimic_cxr"
    ones = build_manifest(
        "mimic_cxr",
        metadata_csv=tmp_path / "meta.csv",
        labels_csv=tmp_path / "chexpert.csv",
        reports_dir=tmp_path,
        manifest_dir=tmp_path / "m",
        uncertain="positive",
        name="u1",
    )
    assert ones.frame.set_index("sample_id").loc["d1", "tags"] == "cardiomegaly;effusion"


def test_parse_report_sections():
    assert parse_report_sections("EXAM: chest\nFINDINGS:\n a  b\nIMPRESSION: c") == ("a b", "c")
    assert parse_report_sections("no headings here") == ("no headings here", "")


