"""extract.preprocess: odd image modes and per-item failure reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from extract.preprocess import ImageDataset, PreprocessConfig, collate_images, load_image, to_gray8
from pipeline.store.feature_store import FeatureStore

from .conftest import make_cxr_like

CFG = PreprocessConfig()


def _ok(path: Path, config: PreprocessConfig = CFG) -> np.ndarray:
    result = load_image(path, config)
    assert result.ok, result.reason
    assert result.array is not None
    assert result.array.shape == (config.channels, config.size, config.size)
    assert result.array.dtype == np.float32
    assert np.isfinite(result.array).all()
    return result.array


def test_16bit_png_is_min_max_scaled(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(1000, 4095, 64).astype(np.uint16), (48, 1))
    img = Image.fromarray(ramp)
    assert img.mode.startswith("I;16")
    img.save(tmp_path / "x16.png")
    with Image.open(tmp_path / "x16.png") as reread:
        gray = np.asarray(to_gray8(reread))
    assert gray.dtype == np.uint8
    assert gray.min() == 0 and gray.max() == 255  # 12-bit range stretched, not clipped at 255
    arr = _ok(tmp_path / "x16.png")
    raw = arr * np.array(CFG.std)[:, None, None] + np.array(CFG.mean)[:, None, None]
    assert np.allclose(raw[0], raw[1], atol=1e-5) and np.allclose(raw[1], raw[2], atol=1e-5)


def test_rgba_composites_transparent_pixels_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white ...
    rgba[:, 16:, 3] = 255  # ... but only the right half is opaque
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as img:
        gray = np.asarray(to_gray8(img))
    assert gray[:, :16].max() == 0 and gray[:, 16:].min() == 255
    _ok(tmp_path / "a.png")


@pytest.mark.parametrize(
    "mode,suffix", [("CMYK", "jpg"), ("P", "png"), ("L", "png"), ("1", "png"), ("RGB", "jpg")]
)
def test_other_modes_load(tmp_path: Path, mode: str, suffix: str) -> None:
    img = Image.fromarray(make_cxr_like(3)).convert("RGB").convert(mode)
    img.save(tmp_path / f"x.{suffix}")
    arr = _ok(tmp_path / f"x.{suffix}")
    assert arr.std() > 0  # content survived the conversion


def test_float_tiff_and_constant_image(tmp_path: Path) -> None:
    Image.fromarray(np.linspace(-3, 3, 40 * 50, dtype=np.float32).reshape(40, 50)).save(
        tmp_path / "f.tif"
    )
    _ok(tmp_path / "f.tif")
    Image.fromarray(np.full((30, 30), 7, dtype=np.uint16)).save(tmp_path / "c.png")
    _ok(tmp_path / "c.png")  # constant image: no division by zero


def test_normalisation_and_resize(tmp_path: Path) -> None:
    Image.fromarray(np.full((100, 300), 255, dtype=np.uint8)).save(tmp_path / "w.png")
    arr = _ok(tmp_path / "w.png")  # wide image: short side to 224, centre crop
    expected = (1.0 - np.array(CFG.mean)) / np.array(CFG.std)
    assert np.allclose(arr[:, 100, 100], expected, atol=1e-5)
    xrv = PreprocessConfig(channels=1, scale="xrv", mean=(0.0,), std=(1.0,), size=64)
    assert np.allclose(_ok(tmp_path / "w.png", xrv), 1024.0)


def test_equalize_changes_low_contrast_image(tmp_path: Path) -> None:
    low = (100 + make_cxr_like(1) // 16).astype(np.uint8)  # narrow grey range
    Image.fromarray(low).save(tmp_path / "low.png")
    plain = _ok(tmp_path / "low.png")
    eq = _ok(tmp_path / "low.png", CFG.with_equalize(True))
    assert eq.std() > 2 * plain.std()


def test_failures_come_back_as_reasons(tmp_path: Path) -> None:
    Image.fromarray(make_cxr_like(0)).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "note.png").write_text("not an image")
    cases = {
        "missing.png": "missing",
        "empty.png": "zero-byte",
        "cut.png": "truncated",
        "note.png": "not an image",
    }
    for name, prefix in cases.items():
        result = load_image(tmp_path / name, CFG)
        assert not result.ok and result.array is None
        assert result.reason.startswith(prefix), result.reason
        assert name in result.reason  # names the file
    big = load_image(tmp_path / "good.png", PreprocessConfig(max_pixels=100))
    assert big.reason.startswith("too large") and "max_pixels" in big.reason
    assert load_image(tmp_path, CFG).reason.startswith("not a file")


def test_dataset_and_collate_split_ok_and_failed(tmp_path: Path) -> None:
    Image.fromarray(make_cxr_like(0)).save(tmp_path / "a.png")
    Image.fromarray(make_cxr_like(1)).save(tmp_path / "b.png")
    ds = ImageDataset(
        [
            ("a", str(tmp_path / "a.png")),
            ("x", str(tmp_path / "x.png")),
            ("b", str(tmp_path / "b.png")),
        ],
        CFG,
    )
    ok_ids, tensor, failed = collate_images([ds[i] for i in range(len(ds))])
    assert ok_ids == ["a", "b"]
    assert tuple(tensor.shape) == (2, 3, 224, 224)
    assert [sid for sid, _ in failed] == ["x"] and failed[0][1].startswith("missing")
    assert collate_images([ds[1]])[1] is None


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        PreprocessConfig(scale="zscore")
    with pytest.raises(ValueError):
        PreprocessConfig(channels=3, mean=(0.5,), std=(0.5,))
    assert PreprocessConfig().to_dict()["mean"] == list(CFG.mean)


def test_large_jpeg_is_decoded_at_reduced_size_and_png_is_not(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from PIL import JpegImagePlugin

    from extract.preprocess import draft_request

    film = make_cxr_like(0, (600, 520))
    Image.fromarray(film).save(tmp_path / "film.jpg", quality=95)
    Image.fromarray(film).save(tmp_path / "film.png")
    calls = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        calls.append((mode, size))
        return real(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    cfg = PreprocessConfig(size=32)  # jpeg_draft 4: keep the short side >= 128 px
    draft = _ok(tmp_path / "film.jpg", cfg)
    assert calls == [("L", (128, 148))]  # libjpeg then decodes at 1/4: 130 x 150
    full = _ok(tmp_path / "film.jpg", replace(cfg, jpeg_draft=0))
    assert len(calls) == 1
    assert np.abs(draft - full).mean() < 0.02 and not np.array_equal(draft, full)
    png = _ok(tmp_path / "film.png", cfg)  # PNG: the unchanged full-size path
    np.testing.assert_array_equal(png, _ok(tmp_path / "film.png", replace(cfg, jpeg_draft=0)))
    assert len(calls) == 1
    assert draft_request(300, 250, cfg) is None  # not much larger than the target: full decode
    assert draft_request(2500, 3000, PreprocessConfig()) == (896, 1076)
    assert "jpeg_draft" not in cfg.to_dict() and cfg.decode_dict()["jpeg_draft"] == 4
    with pytest.raises(ValueError):
        PreprocessConfig(jpeg_draft=-1)


def test_resuming_a_jpeg_store_with_another_decode_setting_is_refused(tiny_encoders, tmp_path):
    from extract.runner import run_extract
    from pipeline.errors import ConfigError

    from .conftest import make_manifest

    for i in range(3):
        Image.fromarray(make_cxr_like(i, (700, 600))).save(tmp_path / f"f{i}.jpg", quality=95)
    rows = [{"sample_id": f"f{i}", "image_path": f"f{i}.jpg"} for i in range(3)]
    manifest = make_manifest("films", rows, tmp_path)
    opts = dict(num_workers=0, backend="torch", onnx_cache=tmp_path / "onnx")
    first = run_extract(manifest, "tiny_plain", tmp_path / "f", limit=1, jpeg_draft=0, **opts)
    assert FeatureStore(first.store).provenance["decode"]["jpeg_draft"] == 0
    with pytest.raises(ConfigError, match="--jpeg-draft 0"):
        run_extract(manifest, "tiny_plain", tmp_path / "f", **opts)  # default 4: refused
    again = run_extract(manifest, "tiny_plain", tmp_path / "f", jpeg_draft=0, **opts)
    assert again.n_embedded == 2
