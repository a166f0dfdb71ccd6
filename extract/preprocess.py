"""Image preprocessing: any file PIL can read -> normalised float32 tensor [C, H, W].

Steps (all parameters live in :class:`PreprocessConfig` and are recorded in the
store provenance, so two stores made with different preprocessing never mix):

1. Read with PIL (never ``torchvision.io``: its C decoders are unavailable on the
   CPU-torch/CUDA-torchvision combination, see :mod:`extract.torch_compat`). The
   header is checked against a pixel limit *before* decoding (decompression bombs).
   A JPEG much larger than the target (MIMIC-CXR-JPG films are ~2,500 x 3,000 px) is
   decoded at reduced size by libjpeg's DCT scaling (``Image.draft``: 1/2, 1/4 or 1/8),
   keeping the short side >= ``jpeg_draft`` x ``size`` (default 4: a 2,500 px film is
   decoded at 1/2; measured embedding cosine vs full decode >= 0.999, where 1/4 and 1/8
   fall below it); the resize below is unchanged. ``jpeg_draft=0`` decodes every JPEG at
   full size. Other formats (PNG) are unaffected.
2. Convert any mode to 8-bit grayscale: 16/32-bit integer and float images
   (``I;16``, ``I``, ``F``; typical for DICOM-derived PNG/TIFF) are min-max scaled
   per image; images with alpha are composited on black; CMYK/palette/RGB go through
   PIL's luminance conversion. The EXIF orientation is applied.
3. Optional histogram equalisation (``PIL.ImageOps.equalize``).
4. Resize the short side to ``size`` and centre-crop ``size x size`` (chest films
   are near square, so little is cut, and the aspect ratio is kept).
5. Replicate to ``channels`` channels and normalise: ``(x/255 - mean) / std`` for
   ImageNet-style models, or the torchxrayvision scale ``x/255 * 2048 - 1024``.

:func:`load_image` never raises for a bad *file*; it returns an
:class:`ImageResult` whose ``reason`` says what is wrong (missing, zero-byte,
truncated, not an image, too large) so the runner can record it and go on.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MAX_PIXELS = 50_000_000  # ~7000 x 7000; chest films are at most ~4300 x 4300

_RESAMPLE = ("bilinear", "bicubic", "lanczos", "nearest")


@dataclass(frozen=True)
class PreprocessConfig:
    """Model-specific preprocessing; ``asdict(config)`` goes into the store provenance."""

    size: int = 224
    channels: int = 3
    scale: str = "meanstd"  # 'meanstd' -> (x/255-mean)/std ; 'xrv' -> x/255*2048-1024
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resample: str = "bilinear"
    equalize: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    resize: str = "short_side_center_crop"
    jpeg_draft: int = 4  # reduced-size JPEG decode keeps short side >= jpeg_draft*size; 0 = off

    def __post_init__(self) -> None:
        if self.scale not in ("meanstd", "xrv"):
            raise ValueError(f"scale must be 'meanstd' or 'xrv', got {self.scale!r}")
        if self.resample not in _RESAMPLE:
            raise ValueError(f"resample must be one of {_RESAMPLE}, got {self.resample!r}")
        if self.scale == "meanstd" and not (len(self.mean) == len(self.std) == self.channels):
            raise ValueError("mean and std need one value per channel")
        if self.size < 8 or self.channels not in (1, 3) or self.max_pixels <= 0:
            raise ValueError("size must be >= 8, channels 1 or 3, max_pixels > 0")
        if self.jpeg_draft < 0:
            raise ValueError(f"jpeg_draft must be >= 0 (0 = off), got {self.jpeg_draft}")

    def to_dict(self) -> dict[str, Any]:
        """The store's ``preprocessing`` provenance. ``jpeg_draft`` is left out (it is recorded
        as ``decode`` beside it) so that stores made before it existed stay compatible."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d.pop("jpeg_draft")
        return d

    def decode_dict(self) -> dict[str, Any]:
        """How images were decoded (store provenance ``decode``)."""
        return {"jpeg_draft": self.jpeg_draft, "png": "full decode"}

    def with_equalize(self, equalize: bool) -> PreprocessConfig:
        return replace(self, equalize=bool(equalize))


def draft_request(width: int, height: int, config: PreprocessConfig) -> tuple[int, int] | None:
    """The size to ask ``Image.draft`` for, or None when the image is not much larger than the
    target (short side < 2 x ``jpeg_draft`` x ``size``: libjpeg could not even halve it)."""
    if config.jpeg_draft <= 0:
        return None
    keep = config.jpeg_draft * config.size
    short = min(width, height)
    if short < 2 * keep:
        return None
    factor = keep / short
    return max(1, math.ceil(width * factor)), max(1, math.ceil(height * factor))


@dataclass(frozen=True)
class ImageResult:
    """Outcome of loading one image: ``array`` [C, H, W] float32, or a failure ``reason``."""

    array: np.ndarray | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def to_gray8(img: Any) -> Any:
    """Convert a PIL image of any mode to 8-bit grayscale (mode 'L')."""
    from PIL import Image

    mode = img.mode
    if mode == "L":
        return img
    if mode in ("I", "F") or mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if hi > lo:
            scaled = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / (hi - lo))
        else:
            scaled = np.zeros_like(arr)
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if "A" in mode or mode == "PA" or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if mode == "CMYK":
        return img.convert("RGB").convert("L")
    return img.convert("L")


def gray8_to_array(gray: Any, config: PreprocessConfig) -> np.ndarray:
    """Equalise, resize+crop and normalise an 8-bit grayscale PIL image -> [C, H, W] float32."""
    from PIL import Image, ImageOps

    if config.equalize:
        gray = ImageOps.equalize(gray)
    resample = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "nearest": Image.Resampling.NEAREST,
    }[config.resample]
    w, h = gray.size
    s = config.size
    scale = s / min(w, h)
    nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
    gray = gray.resize((nw, nh), resample=resample)
    left, top = (nw - s) // 2, (nh - s) // 2
    gray = gray.crop((left, top, left + s, top + s))
    x = np.asarray(gray, dtype=np.float32) / 255.0
    if config.scale == "xrv":
        x = x * 2048.0 - 1024.0
        return np.ascontiguousarray(np.repeat(x[None], config.channels, axis=0))
    mean = np.asarray(config.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(config.std, dtype=np.float32)[:, None, None]
    # Broadcasting the grey channel against the per-channel mean/std gives exactly the
    # values of repeating it first (the same float32 operations), without the copy.
    out = x[None] - mean
    out /= std
    return out


def load_image(path: str | Path, config: PreprocessConfig) -> ImageResult:
    """Read and preprocess one image file; failures come back as ``ImageResult.reason``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ImageResult(None, f"missing: image file {path} does not exist")
    except OSError as exc:
        return ImageResult(None, f"unreadable: {path}: {exc}")
    if not path.is_file():
        return ImageResult(None, f"not a file: {path} is a directory or special file")
    if size == 0:
        return ImageResult(None, f"zero-byte: image file {path} is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces PIL's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > config.max_pixels:
                    return ImageResult(
                        None,
                        f"too large: {path} is {w}x{h} = {w * h} pixels > limit "
                        f"{config.max_pixels} (raise max_pixels if the file is trusted)",
                    )
                if w < 1 or h < 1:
                    return ImageResult(None, f"not an image: {path} has size {w}x{h}")
                if img.format == "JPEG":
                    request = draft_request(w, h, config)
                    if request is not None:
                        img.draft(img.mode, request)  # DCT-domain downscale; same mode
                img.load()
                ImageOps.exif_transpose(img, in_place=True)  # no copy when already upright
                gray = to_gray8(img)
        return ImageResult(gray8_to_array(gray, config))
    except UnidentifiedImageError:
        return ImageResult(None, f"not an image: PIL cannot identify {path}")
    except Image.DecompressionBombError as exc:
        return ImageResult(None, f"too large: {path}: {exc}")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        kind = (
            "truncated" if ("truncat" in text.lower() or isinstance(exc, EOFError)) else "corrupt"
        )
        return ImageResult(None, f"{kind}: cannot decode {path}: {type(exc).__name__}: {text}")


class ImageDataset:
    """Map-style dataset of ``(sample_id, path)`` pairs for ``torch.utils.data.DataLoader``.

    Items are ``(sample_id, array_or_None, reason_or_None)``; use :func:`collate_images`.
    It only needs numpy + PIL, so DataLoader workers never import torchvision.
    """

    def __init__(self, items: list[tuple[str, str]], config: PreprocessConfig) -> None:
        self.items = list(items)
        self.config = config

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | None, str | None]:
        sample_id, path = self.items[index]
        result = load_image(path, self.config)
        return sample_id, result.array, result.reason


def collate_images(
    batch: list[tuple[str, np.ndarray | None, str | None]],
) -> tuple[list[str], Any, list[tuple[str, str]]]:
    """-> (ok ids, float32 tensor [n, C, H, W] or None, [(failed id, reason), ...])."""
    import torch

    ok_ids = [sid for sid, arr, _ in batch if arr is not None]
    failed = [(sid, str(reason)) for sid, arr, reason in batch if arr is None]
    arrays = [arr for _, arr, _ in batch if arr is not None]
    tensor = torch.from_numpy(np.stack(arrays)) if arrays else None
    return ok_ids, tensor, failed
