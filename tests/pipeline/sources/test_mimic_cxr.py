"""MIMIC-CXR-JPG source on a release generated in the published layout, defects included."""

from __future__ import annotations

import gzip
import logging

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.dataset.build import build_manifest
from pipeline.errors import ConfigError
from pipeline.sources.mimic_cxr import parse_report_sections
from tests.pipeline.sources.mimic_release import CHEXPERT, Release


def _build(rel: Release, tmp_path, **options):
    return build_manifest(
        "mimic_cxr", metadata_csv=rel.metadata_csv, labels_csv=rel.labels_csv,
        reports_dir=rel.reports_dir, manifest_dir=tmp_path / "m", **options,
    )


def _dropped(tmp_path, name="mimic_cxr") -> pd.DataFrame:
    return pd.read_csv(tmp_path / "m" / f"{name}.dropped.csv", dtype=str, keep_default_na=False)


def _study_rows(m, study: str) -> pd.DataFrame:
    return m.frame[m.frame["report_id"] == f"s{study}"]


def test_every_missing_item_is_counted_per_row_and_study_and_listed_by_id(mimic_release, tmp_path):
    rel = mimic_release
    m = _build(rel, tmp_path, label_rule="finding_vs_rest:pneumonia")
    dropped = m.meta["dropped"]
    assert dropped["missing_report"] == 2 * len(rel.missing_report) == 4
    assert dropped["missing_labels"] == 2 * len(rel.missing_labels) == 4
    assert m.meta["dropped_studies"] == {"missing_report": 2, "missing_labels": 2}
    assert dropped["label_row_without_images"] == 1
    listed = _dropped(tmp_path)
    for study in rel.missing_report:
        ids = listed[listed["reason"] == "missing_report"]
        assert set(rel.images_of_study[study]) <= set(ids["id"])
        assert (ids["detail"].str.endswith(".txt")).all() and study in " ".join(ids["detail"])
    assert set(listed.loc[listed["reason"] == "missing_labels", "id"]) == {
        d for s in rel.missing_labels for d in rel.images_of_study[s]}
    orphan = listed[listed["reason"] == "label_row_without_images"]
    assert orphan[["id", "level"]].values.tolist() == [[rel.label_rows_without_images[0], "study"]]
    assert len(m) + 8 == rel.n_images  # every image row is kept or listed
    assert m.frame["patient_id"].str.fullmatch(r"1\d{7}").all()
    assert m.frame["image_path"].str.fullmatch(r"files/p1\d/p1\d{7}/s5\d{7}/[0-9a-f-]{44}\.jpg").all()


def test_wrong_reports_dir_exits_2_naming_the_folder_and_pattern(mimic_release, tmp_path, capsys):
    rel = mimic_release
    code = main(["data", "mimic_cxr", "--metadata-csv", str(rel.metadata_csv), "--labels-csv",
                 str(rel.labels_csv), "--reports-dir", str(rel.root), "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--reports-dir {str(rel.root)!r}" in err
    assert "files/pNN/pNNNNNNNN/sNNNNNNNN.txt" in err and "mimic-cxr-reports" in err


def test_some_missing_reports_are_named_with_folder_and_pattern(mimic_release, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        m = _build(mimic_release, tmp_path)
    note = next(n for n in m.meta["notes"] if "no report file" in n)
    assert f"2 of 24 studies have no report file under {str(mimic_release.reports_dir)!r}" in note
    assert "files/pNN/pNNNNNNNN/sNNNNNNNN.txt" in note and note.split(" (")[0] in caplog.text


def test_sections_of_every_report_layout(mimic_release, tmp_path):
    rel = mimic_release
    m = _build(rel, tmp_path, label_rule="finding_vs_rest:pneumonia")
    seen = set()
    for study, layout in rel.layouts.items():
        rows = _study_rows(m, study)
        if rows.empty:
            continue
        row = rows.iloc[0]
        seen.add(layout)
        for text in (row["findings"], row["impression"]):
            assert "FINAL REPORT" not in text and "ndication" not in text
            assert "Preliminary" not in text  # the WET READ is not the final read
        assert row["impression"].endswith(".") and row["impression"][0].isupper()
        if layout == "no_findings":
            assert row["findings"] == ""
        else:
            assert row["findings"].endswith(".") and len(row["findings"]) > 30
        assert row["report_text"] == " ".join(p for p in (row["findings"], row["impression"]) if p)
    assert seen == {"upper", "mixed", "wet_read", "conclusion", "no_findings"}


def test_parse_report_sections_headings_any_case_and_spacing():
    assert parse_report_sections("EXAM: chest\nFINDINGS:\n a  b\nIMPRESSION: c") == ("a b", "c")
    assert parse_report_sections("no headings here") == ("no headings here", "")
    assert parse_report_sections(" Findings :\n\n  x.\n impression:   y.") == ("x.", "y.")
    assert parse_report_sections("FINAL REPORT\n INDICATION: z\n CONCLUSION: y.") == ("", "y.")
    # an unknown upper-case heading holds the read when there is no FINDINGS section
    assert parse_report_sections("HISTORY: cough\nPA AND LATERAL CHEST: clear.\nIMPRESSION: ok") == (
        "clear.", "ok")
    # 'Heart size: normal' inside the findings is text, not a heading
    assert parse_report_sections("FINDINGS: Lungs clear.\nHeart size: normal.") == (
        "Lungs clear. Heart size: normal.", "")


def _cells(rel: Release) -> pd.Series:
    with gzip.open(rel.labels_csv, "rt") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    return table[list(CHEXPERT)].stack()


@pytest.mark.parametrize(("policy", "expected"), [("zeros", "other"), ("ones", "pneumonia"),
                                                  ("ignore", None)])
def test_uncertain_policies_are_selectable_and_recorded(mimic_release, tmp_path, policy, expected):
    """A study whose only mentions are -1 (Pneumonia, Atelectasis): U-Zeros -> 'other' (the
    rule's "else other", not 'unlabelled'), U-Ones -> 'pneumonia', U-Ignore -> dropped."""
    rel = mimic_release
    m = _build(rel, tmp_path, label_rule="finding_vs_rest:pneumonia", uncertain=policy,
               name=policy, check_images=False)
    labels = {s: set(_study_rows(m, s)["label"]) for s in rel.only_uncertain}
    if expected is None:
        assert labels == {s: set() for s in rel.only_uncertain}
        assert m.meta["dropped"]["label:uncertain"] == 2 * len(rel.only_uncertain)
    else:
        assert labels == {s: {expected} for s in rel.only_uncertain}
    assert m.meta["uncertain_policy"] == {"zeros": "U-Zeros", "ones": "U-Ones",
                                          "ignore": "U-Ignore"}[policy]
    assert m.meta["build"]["options"]["uncertain"] == policy
    cells = _cells(rel)
    assert m.meta["chexpert_values"] == {
        "positive": int((cells == "1.0").sum()), "negative": int((cells == "0.0").sum()),
        "uncertain": int((cells == "-1.0").sum()), "blank": int((cells == "").sum()), "other": 0}
    # studies with a certain label keep it under every policy (Atelectasis -1 is irrelevant here)
    assert (m.frame.loc[m.frame["tags"].str.contains("pneumonia"), "label"] == "pneumonia").all()


def test_uncertain_only_studies_and_normal_vs_abnormal(mimic_release, tmp_path):
    rel = mimic_release
    m = _build(rel, tmp_path, check_images=False)
    assert m.meta["dropped"]["label:uncertain_only"] == 2 * len(rel.only_uncertain)
    assert "label:unlabelled" not in m.meta["dropped"]
    ones = _build(rel, tmp_path, uncertain="U-Ones", name="ones", check_images=False)
    assert set(_study_rows(ones, rel.only_uncertain[0])["label"]) == {"abnormal"}


def test_uncertain_flag_on_the_cli(mimic_release, tmp_path, capsys):
    rel = mimic_release
    args = ["data", "mimic_cxr", "--metadata-csv", str(rel.metadata_csv), "--labels-csv",
            str(rel.labels_csv), "--reports-dir", str(rel.reports_dir), "--artifacts", str(tmp_path)]
    assert main([*args, "--uncertain", "positive"]) == 0
    out = capsys.readouterr().out
    assert "CheXpert cells (U-Ones): positive=" in out and "uncertain=" in out and "blank=" in out
    assert "dropped      4  missing_report  (2 studies; e.g." in out
    assert "dropped ids and reasons:" in out
    assert main([*args, "--uncertain", "sometimes"]) == 2
    assert "uncertain label policy 'sometimes' is invalid" in capsys.readouterr().err


def test_views_fall_back_to_the_code_meaning_and_axial_decubitus_are_not_frontal(mimic_release,
                                                                                  tmp_path):
    rel = mimic_release
    m = _build(rel, tmp_path, check_images=False)
    view = dict(zip(m.frame["sample_id"], m.frame["view"], strict=True))
    assert {view[d] for d in rel.blank_view if d in view} == {"AP"}
    assert {view[d] for d in rel.decubitus_or_axial if d in view} <= {"AP AXIAL", "PA LLD"}
    frontal = _build(rel, tmp_path, frontal_only=True, name="frontal", check_images=False)
    assert set(frontal.frame["view"]) == {"PA", "AP"}
    not_frontal = _dropped(tmp_path, "frontal").query("reason == 'not_frontal'")["id"]
    assert set(rel.decubitus_or_axial) & set(view) <= set(not_frontal)


def test_limit_keeps_the_first_n_studies(mimic_release, tmp_path):
    m = _build(mimic_release, tmp_path, limit=5, check_images=False)
    first5 = list(mimic_release.layouts)[:5]
    assert set(m.frame["report_id"].str[1:]) <= set(first5)
    assert m.meta["n_studies"] == 5
    rows = {k: v for k, v in m.meta["dropped"].items() if k != "label_row_without_images"}
    assert len(m) + sum(rows.values()) == 10  # 5 studies x 2 images, not 5 image rows
    assert m.meta["dropped"]["label_row_without_images"] == 1  # its subject was read


def test_official_split_column(mimic_release, tmp_path):
    m = _build(mimic_release, tmp_path, split="official", check_images=False)
    assert set(m.frame["split"]) <= {"train", "validate", "test"} and (m.frame["split"] != "").all()
    with gzip.open(mimic_release.split_csv, "rt") as fh:
        official = pd.read_csv(fh, dtype=str).set_index("dicom_id")["split"]
    assert (m.frame["split"].to_numpy() == official.loc[m.frame["sample_id"]].to_numpy()).all()
    assert m.meta["split_counts"] == m.frame["split"].value_counts().sort_index().to_dict()
    assert m.meta["split"]["file"] == str(mimic_release.split_csv)
    with pytest.raises(ConfigError, match="split='random'"):
        _build(mimic_release, tmp_path, split="random")


def test_wrong_image_root_exits_2_with_the_fix(mimic_release, tmp_path, capsys):
    rel = mimic_release
    # the --help example used to be files/: paths became files/files/...; now exit 2 with the fix
    code = main(["data", "mimic_cxr", "--metadata-csv", str(rel.metadata_csv), "--labels-csv",
                 str(rel.labels_csv), "--reports-dir", str(rel.reports_dir), "--image-root",
                 str(rel.root / "files"), "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(rel.root / "files" / "files" / "p10") in err
    assert f"pass --image-root {rel.root}" in err and "CONTAINS files/" in err


def test_missing_images_are_counted_named_and_kept_or_dropped(mimic_release, tmp_path, monkeypatch,
                                                              caplog):
    rel = mimic_release
    # the right root: the two missing images are counted, named and kept (or dropped on request)
    monkeypatch.setattr("pipeline.dataset.image_check.PROGRESS_FROM", 10)
    with caplog.at_level(logging.INFO):
        m = _build(rel, tmp_path, label_rule="finding_vs_rest:pneumonia")
    assert "checked" in caplog.text and "images" in caplog.text  # progress on "large" releases
    check = m.meta["image_check"]
    assert (check["missing"], check["found"]) == (2, len(m) - 2)
    assert set(m.frame["sample_id"]) >= set(rel.missing_images)
    assert any("2 of" in n and "--drop-missing-images" in n for n in m.meta["notes"])
    dropped = _build(rel, tmp_path, label_rule="finding_vs_rest:pneumonia", name="d",
                     drop_missing_images=True)
    assert dropped.meta["dropped"]["image_missing"] == 2 and len(dropped) == len(m) - 2
    assert set(_dropped(tmp_path, "d").query("reason == 'image_missing'")["id"]) == set(
        rel.missing_images)


def test_top_k_multiclass_says_how_many_studies_it_drops(mimic_release, tmp_path):
    m = _build(mimic_release, tmp_path, label_rule="top_k_multiclass:k=4", check_images=False)
    n = m.meta["dropped"]["label:multiple_top_k_findings"]
    note = next(x for x in m.meta["notes"] if "single-label" in x)
    assert f"{n} rows" in note and f"{len(set(m.frame['label']))} of the 4 classes remain" in note
    assert "finding_vs_rest:" in note and "one binary task per finding" in note


def test_small_plain_csv_release(tmp_path):
    """Plain (not gz) CSVs, subject ids of any length, the reports dir pointing at files/."""
    files = tmp_path / "files" / "p10"
    for subject, study, text in [
        ("10000001", "50000001", "FINDINGS: Heart is enlarged.\nIMPRESSION: Cardiomegaly."),
        ("10000002", "50000002", "The lungs are clear."),
    ]:
        (files / f"p{subject}").mkdir(parents=True, exist_ok=True)
        (files / f"p{subject}" / f"s{study}.txt").write_text(text)
    pd.DataFrame({
        "dicom_id": ["d1", "d2", "d3", "d4"],
        "subject_id": ["10000001", "10000001", "10000002", "10000003"],
        "study_id": ["50000001", "50000001", "50000002", "50000003"],
        "ViewPosition": ["PA", "LATERAL", "AP", "PA"],
    }).to_csv(tmp_path / "meta.csv", index=False)
    pd.DataFrame({
        "subject_id": ["10000001", "10000002"], "study_id": ["50000001", "50000002"],
        "Cardiomegaly": ["1.0", ""], "No Finding": ["", "1.0"], "Pleural Effusion": ["-1.0", ""],
    }).to_csv(tmp_path / "chexpert.csv", index=False)
    common = dict(metadata_csv=tmp_path / "meta.csv", labels_csv=tmp_path / "chexpert.csv",
                  manifest_dir=tmp_path / "m", check_images=False)
    m = build_manifest("mimic_cxr", reports_dir=tmp_path, frontal_only=True, **common)
    assert m.ids == ["d1", "d3"]
    assert m.meta["dropped"] == {"missing_report": 1, "not_frontal": 1}
    row = m.frame.set_index("sample_id").loc["d1"]
    assert (row["findings"], row["impression"]) == ("Heart is enlarged.", "Cardiomegaly.")
    assert (row["tags"], row["label"], row["patient_id"]) == ("cardiomegaly", "abnormal", "10000001")
    assert row["image_path"] == "files/p10/p10000001/s50000001/d1.jpg"
    assert row["label_source"] == "chexpert:report" and m.meta["source_dataset"] == "mimic_cxr"
    ones = build_manifest("mimic_cxr", reports_dir=tmp_path / "files", uncertain="positive",
                          name="u1", **common)
    assert ones.frame.set_index("sample_id").loc["d1", "tags"] == "cardiomegaly;effusion"


def test_indication_and_comparison_of_every_layout(mimic_release, tmp_path):
    m = _build(mimic_release, tmp_path, label_rule="finding_vs_rest:pneumonia", check_images=False)
    expected = {"upper": ("___F with cough // eval for pneumonia", "___"),
                "mixed": ("History: ___M with dyspnea", "None."),
                "wet_read": ("chest pain", ""), "conclusion": ("Fever.", ""),
                "no_findings": ("Line placement.", "")}
    for study, layout in mimic_release.layouts.items():
        rows = _study_rows(m, study)
        if not rows.empty:
            assert (rows.iloc[0]["indication"], rows.iloc[0]["comparison"]) == expected[layout]
            assert "cough" not in rows.iloc[0]["report_text"]
