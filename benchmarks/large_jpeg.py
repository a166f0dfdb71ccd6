"""Large-film JPEG decoding: reduced-size (draft) decode vs full decode, speed per core and cosine.

Synthetic films: phantoms (``pipeline.dataset.phantoms``) rendered at 3,000 px, cropped to
2,500 x 3,000 (MIMIC-CXR-JPG size) and saved as baseline JPEG at quality 95 (the
MIMIC-CXR-JPG setting). Both paths run :func:`extract.preprocess.load_image` in this one
process (one core), interleaved, best of k; only ``jpeg_draft`` differs (0 = full decode).
The embeddings of both decodes (EfficientNet-Lite0, the same backend) are compared by
cosine per image.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILM_W, FILM_H = 2500, 3000
QUALITY = 95


@dataclass(frozen=True)
class JpegResult:
    """Per-core decode+preprocess rates and the embedding agreement of draft vs full decode.

    ``decode_ms`` is the bare libjpeg decode per film at scale 1 and 1/8 (the entropy
    decoding floor that no DCT scaling removes)."""

    n_films: int
    mb_per_film: float
    full_img_s: float
    draft_img_s: float
    decoded_size: tuple[int, int]
    min_cosine: dict[str, float]
    decode_ms: dict[str, float]

    @property
    def speedup(self) -> float:
        return self.draft_img_s / self.full_img_s


def make_films(folder: Path, n: int) -> list[Path]:
    """``n`` synthetic 2,500 x 3,000 JPEG films from phantoms (made once, reused)."""
    from PIL import Image

    from pipeline.dataset.phantoms import render_phantom

    folder.mkdir(parents=True, exist_ok=True)
    tags = (("cardiomegaly",), ("opacity",), (), ("effusion",))
    paths = []
    for k in range(n):
        path = folder / f"film-{k:03d}.jpg"
        if not path.is_file():
            img = render_phantom(f"bench-film-{k}", tags[k % len(tags)], size=FILM_H)
            left = (FILM_H - FILM_W) // 2
            Image.fromarray(img[:, left : left + FILM_W]).save(path, quality=QUALITY)
        paths.append(path)
    return paths


def measure(folder: Path, n: int, repeats: int, encoder: Any) -> JpegResult:
    """Time both decodes (interleaved, best of ``repeats``) and compare their embeddings."""
    import torch
    from PIL import Image

    from extract.preprocess import draft_request, load_image

    paths = make_films(folder, n)
    draft_cfg = encoder.preprocess
    full_cfg = dataclasses.replace(draft_cfg, jpeg_draft=0)
    best = {"full": float("inf"), "draft": float("inf"), "1": float("inf"), "1/8": float("inf")}
    for _ in range(max(1, repeats)):
        for name, cfg in (("full", full_cfg), ("draft", draft_cfg)):
            t0 = time.perf_counter()
            for p in paths:
                load_image(p, cfg)
            best[name] = min(best[name], time.perf_counter() - t0)
        for name, request in (("1", None), ("1/8", (FILM_W // 8, FILM_H // 8))):
            t0 = time.perf_counter()
            for p in paths:
                with Image.open(p) as img:
                    if request:
                        img.draft(img.mode, request)
                    img.load()
            best[name] = min(best[name], time.perf_counter() - t0)
    decode_ms = {f"decode {k}": 1000 * best[k] / len(paths) for k in ("1", "1/8")}
    full = np.stack([load_image(p, full_cfg).array for p in paths])
    draft = np.stack([load_image(p, draft_cfg).array for p in paths])
    a = encoder.encode(torch.from_numpy(full))
    b = encoder.encode(torch.from_numpy(draft))
    from extract.backends.verify import row_cosines

    cos = {k: float(row_cosines(a[k], b[k]).min()) for k in a}
    with Image.open(paths[0]) as img:
        req = draft_request(*img.size, draft_cfg)
        if req is not None:
            img.draft(img.mode, req)
        size = img.size
    mb = float(np.mean([p.stat().st_size for p in paths])) / 1e6
    return JpegResult(len(paths), mb, len(paths) / best["full"], len(paths) / best["draft"],
                      size, cos, decode_ms)
