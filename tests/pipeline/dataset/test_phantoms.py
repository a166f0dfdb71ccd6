from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.dataset.phantoms import (
    DEFAULT_SIZE,
    EFFECT_TAGS,
    P_ABSENT,
    P_FAINT,
    phantom_file_ok,
    phantom_seed,
    plan_phantom,
    render_phantom,
    write_phantoms,
)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties = 1/2)."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def test_seed_is_stable_across_processes():
    # sha256-based, so the value is fixed (Python's salted hash() would differ per process)
    assert phantom_seed("CXR1_1_IM-0001-3001") == phantom_seed("CXR1_1_IM-0001-3001")
    assert phantom_seed("CXR1_1_IM-0001-3001") == 1542128416430145712
    assert phantom_seed("a") != phantom_seed("b")


def test_render_shape_dtype_and_determinism():
    a = render_phantom("CXR42_IM-0001-1001", ["opacity", "effusion"])
    b = render_phantom("CXR42_IM-0001-1001", ["effusion", "opacity"])
    assert a.shape == (DEFAULT_SIZE, DEFAULT_SIZE) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_phantom("CXR43_IM-0001-1001", ["opacity", "effusion"]))
    assert a.std() > 20  # not a blank image


def test_tags_without_visual_effect_keep_the_image():
    base = render_phantom("CXR7_IM-1", [])
    assert np.array_equal(base, render_phantom("CXR7_IM-1", ["calcinosis", "normal"]))
    assert not np.array_equal(base, render_phantom("CXR7_IM-1", ["cardiomegaly"]))


def test_written_pngs_are_byte_identical_and_resumable(tmp_path):
    items = [(f"CXR{i}_IM", ["nodule"] if i % 2 else [], f"CXR{i}_IM.png") for i in range(6)]
    r1 = write_phantoms(items, tmp_path / "a")
    r2 = write_phantoms(items, tmp_path / "b")
    assert r1.written == r2.written == 6 and not r1.failed
    for _, _, name in items:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with Image.open(tmp_path / "a" / name) as im:
            assert im.mode == "L" and im.size == (256, 256)
    # resume: valid files are skipped, a truncated one is rewritten
    broken = tmp_path / "a" / items[0][2]
    broken.write_bytes(broken.read_bytes()[:100])
    assert not phantom_file_ok(broken)
    r3 = write_phantoms(items, tmp_path / "a")
    assert (r3.written, r3.skipped) == (1, 5)
    assert broken.read_bytes() == (tmp_path / "b" / items[0][2]).read_bytes()
    assert not list((tmp_path / "a").glob(".*.tmp"))


def test_about_15_percent_of_findings_are_weak():
    plans = [plan_phantom(f"id{i}", ["cardiomegaly", "opacity"]) for i in range(3000)]
    strengths = np.array([p.effects[e] for p in plans for e in ("cardiomegaly", "opacity")])
    assert abs((strengths == 0).mean() - P_ABSENT) < 0.02
    assert abs(((strengths > 0) & (strengths < 1)).mean() - P_FAINT) < 0.02
    assert plan_phantom("x", ["normal"]).effects == {}
    assert set(EFFECT_TAGS) >= {"opacity", "cardiomegaly", "effusion", "nodule", "atelectasis"}


def _heart_width_feature(img: np.ndarray) -> float:
    """Fraction of bright pixels in the lower-central band where the heart sits."""
    band = img[120:190, 60:200].astype(float)
    return float((band > np.percentile(img, 70)).mean())


def test_cardiomegaly_is_visible_but_imperfect():
    ids = [f"CXR{i}_IM-{i:04d}-1001" for i in range(100)]
    pos = np.array([_heart_width_feature(render_phantom(i, ["cardiomegaly"])) for i in ids[:50]])
    neg = np.array([_heart_width_feature(render_phantom(i, ["normal"])) for i in ids[50:]])
    auc = _auc(pos, neg)
    assert auc > 0.75, auc  # a crude hand feature separates the classes well above chance


def test_opacity_brightens_the_lung_fields():
    ids = [f"O{i}" for i in range(100)]

    def lung_mean(img):
        return float(
            np.concatenate([img[60:150, 40:100].ravel(), img[60:150, 156:216].ravel()]).mean()
        )

    pos = np.array([lung_mean(render_phantom(i, ["opacity"])) for i in ids[:50]])
    neg = np.array([lung_mean(render_phantom(i, [])) for i in ids[50:]])
    assert _auc(pos, neg) > 0.6
    # paired on the same anatomy, the effect is clearer
    paired = [
        lung_mean(render_phantom(i, ["opacity"])) - lung_mean(render_phantom(i, []))
        for i in ids[:50]
    ]
    assert np.mean(np.array(paired) > 0) > 0.8
