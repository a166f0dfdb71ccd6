from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.datasets import (
    DATASET_FORMATS,
    MANIFEST_COLUMNS,
    Manifest,
    build_manifest,
    build_openi,
    load_manifest,
    parse_report_sections,
    save_manifest,
)
from pipeline.errors import ConfigError, ManifestError, UnknownNameError
from pipeline.phantoms import phantom_file_ok

# ----------------------------------------------------------------- helpers


def _frame(n=3, **overrides) -> pd.DataFrame:
    rows = []
    for i in range(n):
        row = {c: "" for c in MANIFEST_COLUMNS}
        row.update(
            sample_id=f"s{i}",
            patient_id=f"p{i}",
            image_path=f"img/s{i}.png",
            report_id=f"r{i}",
            findings="f",
            impression="i",
            report_text="f i",
            tags="normal",
            label="normal",
            label_source="external",
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for col, values in overrides.items():
        df[col] = values
    return df


def _openi_xml(uid: str, images: list[str], major: list[str], findings="", impression="") -> str:
    mesh = "".join(f"<major>{m}</major>" for m in major)
    imgs = "".join(f'<parentImage id="{i}"><caption>x</caption></parentImage>' for i in images)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><eCitation><uId id="{uid}"/>'
        f"<MedlineCitation><Article><Abstract>"
        f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
        f'<AbstractText Label="IMPRESSION">{impression}</AbstractText>'
        f"</Abstract></Article></MedlineCitation><MeSH>{mesh}</MeSH>{imgs}</eCitation>"
    )


@pytest.fixture
def openi_dir(tmp_path) -> Path:
    d = tmp_path / "reports"
    d.mkdir()
    (d / "1.xml").write_text(
        _openi_xml("CXR1", ["CXR1_a", "CXR1_b"], ["normal"], "Lungs clear.", "Normal.")
    )
    (d / "2.xml").write_text(
        _openi_xml(
            "CXR2",
            ["CXR2_a"],
            ["Cardiomegaly/mild", "Pulmonary Atelectasis/base"],
            "Big heart.",
            "",
        )
    )
    (d / "3.xml").write_text(_openi_xml("CXR3", [], ["normal"], "x", "y"))  # no images
    (d / "4.xml").write_text(
        _openi_xml("CXR4", ["CXR4_a"], ["No Indexing"], "", "")
    )  # empty text, unlabelled
    (d / "5.xml").write_text("<eCitation><uId id='CXR5'>")  # truncated XML
    (d / "6.xml").write_text(_openi_xml("", ["CXR6_a"], ["normal"], "a", "b"))  # no uId
    (d / "10.xml").write_text(
        _openi_xml("CXR10", ["CXR10_a", "CXR10_b"], ["Opacity/lung"], "Opacity.", "")
    )
    return d


# ----------------------------------------------------------------- OpenI on the real reports


@pytest.fixture(scope="module")
def real_openi(openi_reports_tgz):
    return build_openi(reports=openi_reports_tgz)


def test_openi_parser_reads_all_real_reports(real_openi):
    meta = real_openi.extra_meta
    assert meta["n_reports"] == 3955
    assert meta["unparseable"] == {}
    frame = real_openi.frame
    assert frame["report_id"].nunique() == 3955 - real_openi.dropped["report_without_images"]
    assert real_openi.dropped == {"report_without_images": 104}
    assert len(frame) == 7470 and frame["sample_id"].is_unique
    assert (frame["image_path"] == frame["sample_id"] + ".png").all()
    assert (frame["patient_id"] == frame["report_id"]).all()
    assert (frame["label_source"] == "mesh:report").all()


def test_openi_spot_check_known_reports(real_openi):
    frame = real_openi.frame.set_index("sample_id")
    cxr1 = frame.loc[["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]]
    assert (cxr1["report_id"] == "CXR1").all()
    row = cxr1.iloc[0]
    assert row["findings"].startswith(
        "The cardiac silhouette and mediastinum size are within normal limits."
    )
    assert row["findings"].endswith("There is no evidence of pneumothorax.")
    assert row["impression"] == "Normal chest x-XXXX."
    assert row["tags"] == "normal" and row["mesh_major"] == "normal"
    assert row["report_text"] == row["findings"] + " " + row["impression"]
    cxr10 = frame.loc["CXR10_IM-0002-1001"]
    assert cxr10["mesh_major"] == "Calcified Granuloma/lung/upper lobe/right"
    assert cxr10["tags"] == "granuloma"
    assert cxr10["impression"] == "No acute cardiopulmonary process."
    assert "CXR10_IM-0002-2001" in frame.index


def test_openi_full_manifest_counts_every_dropped_row(openi_reports_tgz, tmp_path):
    m = build_manifest(
        "openi", reports=openi_reports_tgz, manifest_dir=tmp_path, drop_empty_text=True
    )
    dropped = m.meta["dropped"]
    assert dropped["report_without_images"] == 104
    assert dropped["label:unlabelled"] > 0 and dropped["empty_text"] > 0
    row_drops = sum(v for k, v in dropped.items() if k != "report_without_images")
    assert len(m) + row_drops == 7470
    assert set(m.frame["label"]) == {"normal", "abnormal"}
    assert m.meta["label_rule"] == "normal_vs_abnormal"
    assert (tmp_path / "openi.csv").is_file() and (tmp_path / "openi.json").is_file()


# ----------------------------------------------------------------- OpenI on a small folder


def test_openi_folder_records_unparseable_files(openi_dir, tmp_path, caplog):
    m = build_manifest(
        "openi", reports=openi_dir, manifest_dir=tmp_path, image_root=tmp_path / "png"
    )
    assert set(m.meta["unparseable"]) == {"5.xml", "6.xml"}
    assert "XML parse error" in m.meta["unparseable"]["5.xml"]
    assert "uId" in m.meta["unparseable"]["6.xml"]
    assert m.meta["dropped"] == {
        "label:unlabelled": 1,
        "report_without_images": 1,
        "unparseable_xml": 2,
    }
    assert m.ids == ["CXR1_a", "CXR1_b", "CXR2_a", "CXR10_a", "CXR10_b"]  # numeric report order
    assert m.frame.set_index("sample_id").loc["CXR2_a", "tags"] == "cardiomegaly;atelectasis"
    assert "5.xml" in caplog.text


def test_openi_options_one_per_report_and_empty_text(openi_dir, tmp_path):
    m = build_manifest(
        "openi",
        reports=openi_dir,
        manifest_dir=tmp_path,
        one_per_report=True,
        drop_empty_text=True,
        label_rule="finding_vs_rest:cardiomegaly",
    )
    assert m.ids == ["CXR1_a", "CXR2_a", "CXR10_a"]
    assert m.meta["dropped"]["extra_image_of_report"] == 2
    assert m.meta["dropped"]["empty_text"] == 1  # CXR4 is dropped before the label rule sees it
    assert "label:unlabelled" not in m.meta["dropped"]
    assert dict(zip(m.ids, m.frame["label"], strict=True)) == {
        "CXR1_a": "other",
        "CXR2_a": "cardiomegaly",
        "CXR10_a": "other",
    }


def test_openi_frontal_only_without_views_warns(openi_dir, tmp_path, caplog):
    m = build_manifest("openi", reports=openi_dir, manifest_dir=tmp_path, frontal_only=True)
    assert len(m) == 5
    assert any("no view information" in n for n in m.meta["notes"])
    assert "frontal_only requested" in caplog.text


def test_openi_frontal_only_with_view_csv(openi_dir, tmp_path):
    views = tmp_path / "views.csv"
    pd.DataFrame(
        {
            "imageid": ["CXR1_a", "CXR1_b", "CXR2_a", "CXR10_a"],
            "View Position": ["LL", "PA", "AP", None],
        }
    ).to_csv(views, index=False)
    m = build_manifest(
        "openi",
        reports=openi_dir,
        manifest_dir=tmp_path,
        view_csv=views,
        frontal_only=True,
        one_per_report=True,
    )
    assert m.ids == ["CXR1_b", "CXR2_a"]
    assert list(m.frame["view"]) == ["PA", "AP"]
    # CXR4_a/CXR10_a/CXR10_b have no view; CXR4 would later be unlabelled but is already gone
    assert m.meta["dropped"] == {
        "not_frontal": 1,
        "view_unknown": 3,
        "report_without_images": 1,
        "unparseable_xml": 2,
    }


# ----------------------------------------------------------------- validation


def test_duplicate_ids_are_listed(tmp_path):
    df = _frame(4, sample_id=["a", "b", "a", "b"])
    with pytest.raises(ManifestError, match=r"2 duplicate sample_id\(s\): 'a', 'b'"):
        Manifest("t", df, tmp_path)
    path = tmp_path / "in.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ManifestError, match="duplicate sample_id"):
        build_manifest("csv", path=path, manifest_dir=tmp_path / "m")


def test_empty_and_missing_columns(tmp_path):
    with pytest.raises(ManifestError, match="no rows"):
        Manifest("t", _frame(0), tmp_path)
    with pytest.raises(ManifestError, match=r"missing required column\(s\) \['label'\]"):
        Manifest("t", _frame(2).drop(columns=["label"]), tmp_path)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("../outside.png", "escapes image_root"),
        ("/etc/x.png", "is absolute"),
        ("img/../../x.png", "escapes image_root"),
    ],
)
def test_path_escape_is_rejected(tmp_path, bad, why):
    df = _frame(2, image_path=["ok/a.png", bad])
    with pytest.raises(ManifestError, match=f"'s1'.*{why}.*allow_absolute_paths=True"):
        Manifest("t", df, tmp_path)
    m = Manifest("t", df, tmp_path, {"allow_absolute_paths": True})
    assert m.image_file("s0") == tmp_path / "ok" / "a.png"


def test_image_file_resolves_under_root(tmp_path):
    m = Manifest("t", _frame(2, image_path=["img/./s0.png", "s1.png"]), tmp_path / "root")
    assert m.image_file("s0") == tmp_path / "root" / "img" / "s0.png"
    with pytest.raises(ManifestError, match="'nope' is not in manifest"):
        m.image_file("nope")


def test_save_load_roundtrip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = _frame(3)
    df.loc[1, "findings"] = 'multi\nline, "quoted"'
    df.loc[2, "view"] = ""
    m = Manifest(
        "demo", df, Path("data/images"), {"label_rule": "normal_vs_abnormal", "dropped": {"x": 1}}
    )
    csv = save_manifest(m, Path("manifests/demo.csv"))
    side = json.loads(csv.with_suffix(".json").read_text())
    assert side["image_root"] == "../data/images"  # relative to the sidecar: the tree can move
    back = load_manifest(csv.with_suffix(".json"))
    pd.testing.assert_frame_equal(back.frame, df)
    assert back.name == "demo" and back.meta["dropped"] == {"x": 1}
    assert back.image_root == Path("data/images")  # resolved against the sidecar folder
    assert back.label_rule is not None and back.label_rule.name == "normal_vs_abnormal"
    assert list(back.text("findings"))[1] == 'multi\nline, "quoted"'
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.csv")
    absolute = save_manifest(Manifest("abs", df, tmp_path / "imgs"), tmp_path / "m2" / "abs.csv")
    assert load_manifest(absolute).image_root == tmp_path / "imgs"


# ----------------------------------------------------------------- builders


def test_build_manifest_option_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="Valid names: csv, mimic_cxr, openi, openi_demo"):
        build_manifest("opnei")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colour'\]"):
        build_manifest("openi", reports=tmp_path, colour="red")
    with pytest.raises(ConfigError, match=r"needs option\(s\) \['reports'\]"):
        build_manifest("openi")
    assert set(DATASET_FORMATS.names()) == {"csv", "mimic_cxr", "openi", "openi_demo"}


def test_csv_builder_defaults_and_label_rule(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "image_path": ["a.png", "b.png", "c.png"],
            "findings": ["x", "y", ""],
            "tags": ["Cardiomegaly", "normal", ""],
            "label": ["pos", "neg", ""],
        }
    ).to_csv(path, index=False)
    m = build_manifest("csv", path=path, manifest_dir=tmp_path / "m")
    assert m.ids == ["a", "b"] and m.meta["dropped"] == {"label:missing": 1}
    assert (
        list(m.frame["patient_id"]) == ["a", "b"] and (m.frame["label_source"] == "external").all()
    )
    assert any("no patient_id" in n for n in m.meta["notes"])
    assert m.meta["source_dataset"] is None  # unknown unless given
    given = build_manifest("csv", path=path, source_dataset="ChestX-ray14",
                           manifest_dir=tmp_path / "g")
    assert load_manifest(tmp_path / "g" / "csv.csv").meta["source_dataset"] == "nih"
    assert given.meta["source_dataset"] == "nih"
    ruled = build_manifest(
        "csv", path=path, manifest_dir=tmp_path / "m", label_rule="normal_vs_abnormal", name="ruled"
    )
    assert list(ruled.frame["label"]) == ["abnormal", "normal"] and ruled.meta["dropped"] == {
        "label:unlabelled": 1
    }
    assert (tmp_path / "m" / "ruled.csv").is_file()


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


# ----------------------------------------------------------------- embedded demo


def test_openi_demo_small(tmp_path, openi_reports_tgz):
    m = build_manifest("openi_demo", limit=40, artifacts_root=tmp_path, n_jobs=1)
    assert (tmp_path / "manifests" / "openi_demo.csv").is_file()
    assert m.image_root == tmp_path / "data" / "openi_demo" / "images"
    assert 30 <= len(m) <= 40 and m.frame["report_id"].is_unique
    assert (m.frame["view"] == "PA").all() and m.meta["synthetic_images"] is True
    assert any("synthetic phantoms" in n for n in m.meta["notes"])
    assert m.meta["label_source"] == "mesh:report" and m.meta["label_rule"] == "normal_vs_abnormal"
    assert m.meta["source_dataset"] == "openi"  # its family, not the manifest name
    assert m.meta["phantoms"]["written"] == len(m)
    assert all(phantom_file_ok(p) for p in m.image_files())
    # frontal image ids are preferred when the shipped metadata knows the view
    known = m.frame[m.frame["source_view"] != ""]
    assert (known["source_view"].isin(["PA", "AP"])).mean() > 0.9
    again = build_manifest("openi_demo", limit=40, artifacts_root=tmp_path, n_jobs=1)
    assert (
        again.meta["phantoms"]["already_valid"] == len(m) and again.meta["phantoms"]["written"] == 0
    )
    loaded = load_manifest(tmp_path / "manifests" / "openi_demo.csv")
    assert loaded.ids == m.ids and loaded.image_file(m.ids[0]).is_file()


# ----------------------------------------------------------------- data-set families


def test_dataset_family_and_pretraining_overlap():
    from pipeline.datasets import dataset_family, normalize_dataset_name, pretraining_overlap

    assert normalize_dataset_name("MIMIC-CXR") == normalize_dataset_name("mimic") == "mimic_cxr"
    assert normalize_dataset_name("openi_demo") == normalize_dataset_name("Open-I") == "openi"
    assert dataset_family({"source_dataset": "openi"}) == "openi"
    # manifests written before source_dataset existed: the registered format they came from
    assert dataset_family({"build": {"source": "openi_demo"}}) == "openi"
    assert dataset_family({"build": {"source": "csv"}}) is None
    assert dataset_family({}) is None
    trained_on = ["nih", "chexpert", "mimic", "padchest", "openi", "google", "rsna"]
    assert pretraining_overlap(trained_on, "openi") == ["openi"]
    assert pretraining_overlap(trained_on, "mimic_cxr") == ["mimic"]
    assert pretraining_overlap(["imagenet"], "openi") == []
    assert pretraining_overlap(trained_on, None) == []
    # no substring matching: 'mimic-iii' notes are not MIMIC-CXR
    assert pretraining_overlap(["mimic-iii"], "mimic_cxr") == []
