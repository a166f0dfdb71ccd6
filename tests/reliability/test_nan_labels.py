"""Issue 11, observation 5 (data side): labels written NaN / nan / NA / empty in a CSV manifest
are missing labels - dropped and counted by reason, never classes of their own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from pipeline.manifest import is_missing_label, load_manifest

HEADER = "sample_id,patient_id,image_path,findings,tags,label\n"
MISSING = {"s02": "NaN", "s03": "nan", "s04": "NA", "s05": "", "s06": " N/A ", "s07": "null"}


def _source(path: Path, labels: dict[str, str], tags: str = "opacity") -> Path:
    """Written by hand (not pandas), so the cells are exactly the strings a user typed."""
    lines = [f"{sid},p{sid},{sid}.png,text of {sid},{tags},{lab}" for sid, lab in labels.items()]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_nan_like_labels_are_dropped_and_counted_not_classes(tmp_path: Path, capsys):
    from pipeline.cli import main

    labels = {"s00": "pos", "s01": "neg", **MISSING, "s08": "pos", "s09": "neg", "s10": "Nancy"}
    src = _source(tmp_path / "src.csv", labels)
    code = main(["data", "csv", "--path", str(src), "--skip-image-check", "--name", "m",
                 "--artifacts", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    m = load_manifest(tmp_path / "manifests" / "m.csv")
    assert sorted(m.ids) == ["s00", "s01", "s08", "s09", "s10"]
    assert m.meta["label_classes"] == ["Nancy", "neg", "pos"]  # a real word that starts with 'nan'
    assert m.meta["dropped"] == {"label:missing": len(MISSING)}
    assert f"dropped {len(MISSING):>6}  label:missing" in out
    dropped = pd.read_csv(tmp_path / "manifests" / "m.dropped.csv", dtype=str,
                          keep_default_na=False)
    assert dict(zip(dropped["id"], dropped["detail"], strict=True)) == {
        sid: f"label cell {raw!r}" for sid, raw in MISSING.items()}


def test_only_nan_like_labels_exit_2_naming_the_column(tmp_path: Path, capsys):
    from pipeline.cli import main

    src = _source(tmp_path / "src.csv", MISSING)
    code = main(["data", "csv", "--path", str(src), "--skip-image-check", "--artifacts",
                 str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "has no labels" in err and "'label'" in err and "NaN-like" in err
    assert not (tmp_path / "manifests" / "csv.csv").exists()


def test_nan_like_tags_are_no_tags_under_a_label_rule(tmp_path: Path):
    from pipeline.dataset.build import build_manifest

    src = _source(tmp_path / "src.csv", {"a": "", "b": ""}, tags="NaN")
    with open(src, "a", encoding="utf-8") as fh:
        fh.write("c,pc,c.png,text,Cardiomegaly,\n")
    m = build_manifest("csv", path=src, label_rule="normal_vs_abnormal", check_images=False,
                       manifest_dir=tmp_path / "m")
    assert m.ids == ["c"] and m.meta["dropped"] == {"label:unlabelled": 2}


def test_is_missing_label():
    for value in (None, float("nan"), "", "  ", "NaN", "nan", "-nan", "NA", "n/a", "#N/A", "<NA>",
                  "NULL"):
        assert is_missing_label(value), value
    for value in ("0", "normal", "Nancy", "none", "na ive", 0, False):
        assert not is_missing_label(value), value
