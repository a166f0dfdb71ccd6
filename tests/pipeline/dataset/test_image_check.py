"""The image existence check: counts, the 'almost none' threshold and the likely-root hint."""

from __future__ import annotations

from pathlib import Path

from pipeline.dataset.image_check import (
    MIN_FOUND_SHARE,
    check_images,
    likely_root,
    missing_images_message,
)


def _release(tmp_path: Path, n: int) -> list[str]:
    rels = [f"files/p10/p1000000{i}/s5000000{i}/d{i}.jpg" for i in range(n)]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return rels


def test_counts_and_threshold(tmp_path):
    rels = _release(tmp_path, 5)
    ok = check_images([f"d{i}" for i in range(6)], [*rels, "files/nope.jpg"], tmp_path)
    assert (ok.checked, ok.found, ok.missing, ok.missing_ids) == (6, 5, 1, ("d5",))
    assert not ok.almost_none_found and ok.summary()["missing_examples"] == ["files/nope.jpg"]
    wrong = check_images([f"d{i}" for i in range(5)], rels, tmp_path / "files")
    assert wrong.found == 0 and wrong.almost_none_found and MIN_FOUND_SHARE <= 0.05


def test_hint_finds_the_root_one_level_off(tmp_path):
    rels = _release(tmp_path, 2)
    too_deep = check_images(["a", "b"], rels, tmp_path / "files")
    assert likely_root(too_deep) == tmp_path
    msg = missing_images_message(too_deep, where="dataset 'x'", hint="a source hint")
    assert str(tmp_path / "files" / rels[0]) in msg and f"pass --image-root {tmp_path}." in msg
    assert "(a source hint.)" in msg and "--skip-image-check" in msg
    # images not downloaded at all: still the parent advice from the path layout
    empty = tmp_path / "other" / "empty" / "files"
    empty.mkdir(parents=True)
    msg = missing_images_message(check_images(["a"], rels[:1], empty), where="d")
    assert f"should be its parent {str(empty.parent)!r}" in msg
