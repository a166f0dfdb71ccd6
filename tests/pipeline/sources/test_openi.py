"""OpenI source: the real shipped reports, small folders with defects, options, the embedded demo."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.dataset.build import build_manifest
from pipeline.dataset.phantoms import phantom_file_ok
from pipeline.manifest import load_manifest
from pipeline.sources.openi import build_openi

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
        "openi", reports=openi_reports_tgz, manifest_dir=tmp_path, drop_empty_text=True,
        check_images=False,
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
        "openi", reports=openi_dir, manifest_dir=tmp_path, image_root=tmp_path / "NLMCXR_png"
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



# ----------------------------------------------------------------- embedded demo


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
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



# ----------------------------------------------------------------- issue 16: views, ids, image root


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_real_openi_views_come_from_the_shipped_table(real_openi, openi_reports_tgz, tmp_path):
    """Without --view-csv the real release gets torchxrayvision's shipped view table, so
    `make openi` (frontal only, one per report) keeps frontal films; counts on 7,470 images."""
    views = real_openi.frame["view"].value_counts().to_dict()
    assert views == {"PA": 4718, "LATERAL": 1124, "": 1205, "AP": 423}
    assert "torchxrayvision" in real_openi.extra_meta["view_source"]
    frontal = build_manifest("openi", reports=openi_reports_tgz, manifest_dir=tmp_path,
                             name="frontal", frontal_only=True, one_per_report=True,
                             drop_empty_text=True, check_images=False)
    assert len(frontal) == 3577 and set(frontal.frame["view"]) == {"PA", "AP"}
    assert frontal.frame["report_id"].is_unique
    assert frontal.meta["dropped"] == {
        "report_without_images": 104, "view_unknown": 1205, "not_frontal": 1124,
        "extra_image_of_report": 1456, "empty_text": 22, "label:unlabelled": 86,
    }
    first = build_manifest("openi", reports=openi_reports_tgz, manifest_dir=tmp_path,
                           name="first", one_per_report=True, drop_empty_text=True,
                           check_images=False)
    assert first.frame["view"].value_counts().to_dict() == {"PA": 3271, "AP": 306, "LATERAL": 157}
    none = build_manifest("openi", reports=openi_reports_tgz, manifest_dir=tmp_path, name="none",
                          view_csv="none", limit=50, check_images=False)
    assert (none.frame["view"] == "").all() and none.meta["view_source"] == "none"


def test_openi_dropped_ids_are_written_next_to_the_manifest(openi_dir, tmp_path):
    m = build_manifest("openi", reports=openi_dir, manifest_dir=tmp_path / "m", one_per_report=True)
    dropped = pd.read_csv(tmp_path / "m" / "openi.dropped.csv", dtype=str, keep_default_na=False)
    assert list(dropped.columns) == ["id", "level", "reason", "detail"]
    by_reason = dropped.groupby("reason")["id"].apply(sorted).to_dict()
    assert by_reason == {
        "unparseable_xml": ["5.xml", "6.xml"],
        "report_without_images": ["CXR3"],
        "extra_image_of_report": ["CXR10_b", "CXR1_b"],
        "label:unlabelled": ["CXR4_a"],
    }
    # the counts in the sidecar are the same drops, and the first ids are kept for printing
    counts = dropped["reason"].value_counts().to_dict()
    assert counts == m.meta["dropped"]
    assert m.meta["dropped_examples"]["label:unlabelled"] == ["CXR4_a"]
    assert m.meta["dropped_file"] == "openi.dropped.csv"


def test_openi_wrong_image_root_exits_2_naming_an_expected_file(openi_dir, tmp_path, capsys):
    from pipeline.cli import main

    code = main(["data", "openi", "--reports", str(openi_dir), "--image-root", str(tmp_path),
                 "--artifacts", str(tmp_path / "art")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'CXR1_a.png'}" in err and "only 0 of" in err
    assert f"pass --image-root {tmp_path / 'NLMCXR_png'}" in err  # found one level down
    assert not (tmp_path / "art" / "manifests" / "openi.csv").exists()
    # the right root works, and a text-only manifest can skip the check
    assert main(["data", "openi", "--reports", str(openi_dir), "--artifacts", str(tmp_path / "art")]) == 0
    assert main(["data", "openi", "--reports", str(openi_dir), "--image-root", str(tmp_path / "x"),
                 "--skip-image-check", "--name", "text", "--artifacts", str(tmp_path / "art")]) == 0


def test_openi_indication_and_comparison_columns(real_openi):
    """INDICATION/COMPARISON are parsed into their own columns; report_text stays the read."""
    reports = real_openi.frame.drop_duplicates("report_id")
    assert (reports["indication"] != "").sum() == 3765  # 3,865 of all 3,955 reports; these have images
    assert (reports["comparison"] != "").sum() == 3252
    cxr1 = reports.set_index("report_id").loc["CXR1"]
    assert (cxr1["indication"], cxr1["comparison"]) == ("Positive TB test", "None.")
    assert cxr1["report_text"] == f"{cxr1['findings']} {cxr1['impression']}"
    assert not reports["report_text"].str.contains("Positive TB test").any()
