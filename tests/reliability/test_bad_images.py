"""Promise 3: bad image files never stop a real `pipeline extract` run. Missing, zero-byte,
truncated (PNG, JPEG), non-image, directory and over-the-pixel-limit files are skipped with
their id and reason in the run summary, the log and the store's failed list; 16-bit, RGBA,
palette and CMYK images are converted and embedded; the exit status is 3 (partial)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.dataset.build import build_manifest
from pipeline.errors import EXIT_PARTIAL
from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import out, run, write_csv_manifest

# id -> expected reason prefix (None = must be embedded)
CASES = {
    "good_gray": None,
    "good_rgb_jpeg": None,
    "odd_16bit_png": None,
    "odd_rgba_png": None,
    "odd_palette_png": None,
    "odd_cmyk_jpeg": None,
    "bad_missing": "missing",
    "bad_zero_byte": "zero-byte",
    "bad_truncated_png": "truncated",
    "bad_truncated_jpeg": "truncated",
    "bad_not_an_image": "not an image",
    "bad_directory": "not a file",
    "bad_huge_header": "too large",
    "bad_over_limit": "too large",
}


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height pixels (a few bytes on disk, never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _write_images(root: Path) -> dict[str, str]:
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    gray = Image.fromarray(rng.integers(0, 255, (96, 80), dtype=np.uint8), mode="L")
    files = {sid: f"{sid}.png" for sid in CASES}
    files.update(good_rgb_jpeg="good_rgb_jpeg.jpg", odd_cmyk_jpeg="odd_cmyk_jpeg.jpg",
                 bad_truncated_jpeg="bad_truncated_jpeg.jpg", bad_not_an_image="bad_not_an_image.png")
    gray.save(root / files["good_gray"])
    gray.convert("RGB").save(root / files["good_rgb_jpeg"], quality=90)
    Image.fromarray(rng.integers(0, 65535, (64, 64), dtype=np.uint16)).save(root / files["odd_16bit_png"])
    assert Image.open(root / files["odd_16bit_png"]).mode.startswith("I")
    Image.new("RGBA", (64, 64), (200, 10, 10, 128)).save(root / files["odd_rgba_png"])
    gray.convert("P").save(root / files["odd_palette_png"])
    Image.new("CMYK", (64, 64), (0, 50, 100, 20)).save(root / files["odd_cmyk_jpeg"], format="JPEG")
    (root / files["bad_zero_byte"]).write_bytes(b"")
    png = _png_bytes(Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8), mode="L"))
    (root / files["bad_truncated_png"]).write_bytes(png[: len(png) // 2])
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8), mode="L").save(buf, "JPEG")
    (root / files["bad_truncated_jpeg"]).write_bytes(buf.getvalue()[: buf.tell() // 2])
    (root / files["bad_not_an_image"]).write_text("sample_id,label\nthis is a CSV, not an image\n")
    (root / files["bad_directory"]).mkdir()
    (root / files["bad_huge_header"]).write_bytes(_huge_png_header(100_000, 100_000))
    (root / files["bad_over_limit"]).write_bytes(_huge_png_header(8_000, 8_000))  # 64 MP > 50 MP
    return files


@pytest.fixture(scope="module")
def bad_image_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("bad_images")
    files = _write_images(tmp / "images")
    rows = [{"sample_id": sid, "image_path": files[sid], "label": "a" if i % 2 else "b",
             "findings": "text"} for i, sid in enumerate(CASES)]
    src = write_csv_manifest(tmp / "source.csv", rows)
    manifest = build_manifest("csv", path=src, image_root=tmp / "images", name="bad_images",
                              artifacts_root=tmp)
    csv = tmp / "manifests" / "bad_images.csv"
    assert len(manifest) == len(CASES)
    proc = run("extract", "--manifest", csv, "--encoder", "efficientnet_lite0", "--batch-size", 4,
               "--num-workers", 0, "--no-progress", "--artifacts", tmp)
    return tmp, proc


@pytest.mark.slow
def test_bad_images_are_skipped_with_reasons_and_exit_3(bad_image_run):
    tmp, proc = bad_image_run
    assert proc.returncode == EXIT_PARTIAL, out(proc)
    store = FeatureStore(tmp / "features" / "bad_images" / "efficientnet_lite0.h5")
    good = {sid for sid, why in CASES.items() if why is None}
    bad = {sid: why for sid, why in CASES.items() if why is not None}
    assert set(store.ids.tolist()) == good
    assert np.isfinite(store.read()).all()
    assert set(store.failed) == set(bad)
    for sid, why in bad.items():
        assert store.failed[sid].startswith(why), (sid, store.failed[sid])
        assert f"failed {sid}: {why}" in proc.stdout  # in the run summary
    assert f"{len(good)} embedded, {len(bad)} failed" in proc.stdout
    logs = list((tmp / "logs").glob("*-extract-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text(encoding="utf-8")
    assert "failed bad_truncated_png: truncated" in text
    assert "raise max_pixels" in store.failed["bad_over_limit"]  # our limit, says the fix


@pytest.mark.slow
def test_failed_images_are_retried_and_fixed_ones_are_added(bad_image_run):
    tmp, _ = bad_image_run
    from PIL import Image

    Image.new("L", (64, 64), 128).save(tmp / "images" / "bad_missing.png")  # the user fixes one
    proc = run("extract", "--manifest", tmp / "manifests" / "bad_images.csv", "--encoder",
               "efficientnet_lite0", "--batch-size", 4, "--num-workers", 0, "--no-progress",
               "--artifacts", tmp)
    assert proc.returncode == EXIT_PARTIAL, out(proc)
    store = FeatureStore(tmp / "features" / "bad_images" / "efficientnet_lite0.h5")
    assert "bad_missing" in set(store.ids.tolist()) and "bad_missing" not in store.failed
    n_bad = sum(why is not None for why in CASES.values()) - 1
    assert len(store.failed) == n_bad
    assert f"1 embedded, {n_bad} failed" in proc.stdout
