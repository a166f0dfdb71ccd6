"""The manifest table: validation, image path resolution, CSV + sidecar round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.dataset.build import build_manifest
from pipeline.errors import ConfigError, ManifestError
from pipeline.manifest import MANIFEST_COLUMNS, Manifest, load_manifest, save_manifest


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




# ----------------------------------------------------------------- schema 2: indication, comparison


def test_context_columns_default_to_empty_and_are_text_modes(tmp_path):
    df = _frame(2).drop(columns=["indication", "comparison"])
    m = Manifest("t", df, tmp_path)
    assert list(m.frame["indication"]) == ["", ""] and list(m.frame["comparison"]) == ["", ""]
    assert "indication" not in df.columns  # the caller's frame is not changed
    full = _frame(2, indication=["cough", ""], comparison=["none", "prior"])
    m = Manifest("t", full, tmp_path)
    assert m.text("indication").to_dict() == {"s0": "cough", "s1": ""}
    assert m.text("comparison").to_dict() == {"s0": "none", "s1": "prior"}
    assert m.text("both").to_dict() == {"s0": "f i", "s1": "f i"}  # report_text: the read only
    with pytest.raises(ConfigError, match="text mode 'history' is invalid"):
        m.text("history")


def test_an_old_manifest_says_how_to_rebuild_it(tmp_path, capsys):
    m = Manifest("old", _frame(3), tmp_path / "img", {"build": {
        "source": "openi_demo", "options": {"limit": 8, "one_per_report": True,
                                            "artifacts_root": "artifacts", "manifest_dir": "x"}}})
    csv = save_manifest(m, tmp_path / "old.csv")
    side = json.loads(csv.with_suffix(".json").read_text())
    assert side["schema_version"] == 2
    side["schema_version"] = 1  # as written before the indication/comparison columns
    csv.with_suffix(".json").write_text(json.dumps(side))
    pd.read_csv(csv, dtype=str).drop(columns=["indication", "comparison"]).to_csv(csv, index=False)
    with pytest.raises(ConfigError) as err:
        load_manifest(csv)
    msg = str(err.value)
    assert "schema 1" in msg and "indication and comparison" in msg
    assert "`pipeline data openi_demo --artifacts artifacts --limit 8 --one-per-report`" in msg
    from pipeline.cli import main

    code = main(["extract", "--manifest", str(csv), "--encoder", "tfidf_svd",
                 "--artifacts", str(tmp_path)])
    assert code == 2 and "pipeline data openi_demo" in capsys.readouterr().err  # not a KeyError
    side["schema_version"] = "two"
    csv.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ManifestError, match="schema_version 'two', not an integer"):
        load_manifest(csv)
