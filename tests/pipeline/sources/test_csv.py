"""Generic CSV source: defaults for missing columns, label column or label rule."""

from __future__ import annotations

import pandas as pd

from pipeline.dataset.build import build_manifest
from pipeline.manifest import load_manifest


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




def test_csv_without_images_warns_instead_of_failing(tmp_path):
    """A generic CSV may be text-only: no image found is a note (with the fix), not exit 2."""
    path = tmp_path / "in.csv"
    pd.DataFrame({"sample_id": ["a", "b"], "image_path": ["img/a.png", "img/b.png"],
                  "findings": ["x", "y"], "label": ["p", "n"]}).to_csv(path, index=False)
    m = build_manifest("csv", path=path, manifest_dir=tmp_path / "m")
    assert m.meta["image_check"]["found"] == 0
    assert any(str(tmp_path / "img" / "a.png") in n and "--image-root" in n for n in m.meta["notes"])
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    (tmp_path / "img" / "b.png").write_bytes(b"x")
    ok = build_manifest("csv", path=path, manifest_dir=tmp_path / "m")
    assert ok.meta["image_check"] == {"checked": 2, "found": 2, "missing": 0,
                                      "missing_examples": [], "seconds": ok.meta["image_check"]["seconds"]}
