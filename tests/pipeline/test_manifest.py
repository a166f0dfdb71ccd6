"""The manifest table: validation, image path resolution, CSV + sidecar round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.build import build_manifest
from pipeline.errors import ManifestError
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


