"""Shared fixtures for the extract tests: tiny generated images and small real manifests
(:class:`pipeline.manifest.Manifest`, validated like any other) built directly from rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.manifest import Manifest


def make_manifest(name: str, rows: list[dict[str, str]], root: Path,
                  meta: dict[str, Any] | None = None) -> Manifest:
    """A real, validated :class:`Manifest` from partial rows (other columns default)."""
    defaults = {"report_id": "", "findings": "", "impression": "", "report_text": "",
                "tags": "", "label": "normal", "label_source": "external", "view": ""}
    frame = pd.DataFrame([{**defaults, "patient_id": r["sample_id"], **r} for r in rows])
    return Manifest(name, frame, root, dict(meta or {}))


def make_cxr_like(seed: int, size: tuple[int, int] = (96, 80)) -> np.ndarray:
    """A smooth synthetic 'chest film': two dark lung fields on a bright body, plus noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 200.0)
    for cx in (0.3 * w, 0.7 * w):
        lung = ((xx - cx) / (0.18 * w)) ** 2 + ((yy - 0.5 * h) / (0.35 * h)) ** 2 < 1
        img[lung] = 50 + 10 * seed
    img += rng.normal(0, 12, size)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Six valid PNGs (s0..s5), one truncated PNG and one text file posing as a PNG."""
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    for i in range(6):
        Image.fromarray(make_cxr_like(i)).save(root / f"s{i}.png")
    good = (root / "s0.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "notes.png").write_text("this is a radiology note, not an image\n")
    return root


@pytest.fixture
def image_manifest(image_dir: Path) -> Manifest:
    rows = [
        {"sample_id": f"s{i}", "image_path": f"s{i}.png", "findings": "", "impression": ""}
        for i in range(6)
    ]
    rows += [
        {"sample_id": "trunc", "image_path": "truncated.png", "findings": "", "impression": ""},
        {"sample_id": "text", "image_path": "notes.png", "findings": "", "impression": ""},
        {"sample_id": "gone", "image_path": "missing.png", "findings": "", "impression": ""},
    ]
    return make_manifest("toy", rows, image_dir)


REPORTS = [
    ("r0", "The heart is enlarged. Cardiomegaly with mild edema.", "Cardiomegaly."),
    ("r1", "Lungs are clear. No pleural effusion or pneumothorax.", "No acute disease."),
    ("r2", "", "Normal chest."),
    ("r3", "Small right pleural effusion. Heart size normal.", "Right effusion."),
    ("r4", "Stable cardiomegaly. No focal consolidation.", ""),
]


@pytest.fixture
def text_manifest(tmp_path: Path) -> Manifest:
    rows = [
        {
            "sample_id": sid,
            "image_path": f"{sid}.png",
            "findings": f,
            "impression": imp,
            "report_text": " ".join(t for t in (f, imp) if t),
        }
        for sid, f, imp in REPORTS
    ]
    return make_manifest("reports", rows, tmp_path, {"label_rule": "finding_vs_rest:cardiomegaly"})


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch hub cache without any checkpoint (and no network use by the code)."""
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home
