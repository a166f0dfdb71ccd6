"""Deterministic digital chest-X-ray phantoms for the embedded demo data set.

The demo pairs each real OpenI report with a *synthetic* frontal chest image
(256x256, 8-bit grayscale PNG) rendered from the image id and the report's
normalised finding tags. The image carries a real but imperfect signal:

* anatomy: body, two lung fields cut by diaphragm domes, mediastinum + spine,
  cardiac silhouette, posterior ribs, low-frequency texture and pixel noise;
* nuisance (every image): exposure gain/gamma, rotation, shift, scale, noise level,
  a normal range of heart sizes, and a ~5 % chance of a faint distractor blob;
* findings (from tags, see :data:`EFFECT_TAGS`): lung opacity patches, enlarged
  cardiac silhouette, basal fluid with costophrenic blunting, small nodules or a
  mass, plate-like atelectasis lines, perihilar haze, hyper/hypo-inflated lungs.
  Each present effect is rendered faint with probability 7.5 % and not at all with
  probability 7.5 % (~15 % weak), so the labels are learnable but not trivially.

Everything is drawn from ``numpy.random.default_rng`` seeded with a SHA-256 of
``'phantom-v<N>:' + image_id`` (never Python's salted ``hash``); anatomy/nuisance
use their own stream, so the same id with other tags keeps the same anatomy.
Identical (id, tags) give byte-identical PNGs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

PHANTOM_VERSION = 1
DEFAULT_SIZE = 256
#: Probability that a present finding is rendered faintly / not at all.
P_FAINT = 0.075
P_ABSENT = 0.075
FAINT_FACTOR = 0.3
P_DISTRACTOR = 0.05

#: Rendered effect -> the normalised finding tags (pipeline.labels) that trigger it.
EFFECT_TAGS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "opacity": frozenset(
            {"opacity", "pneumonia", "consolidation", "infiltrate", "airspace_disease", "density"}
        ),
        "cardiomegaly": frozenset({"cardiomegaly", "enlarged_cardiomediastinum"}),
        "effusion": frozenset({"effusion"}),
        "nodule": frozenset({"nodule", "granuloma", "lung_lesion"}),
        "mass": frozenset({"mass"}),
        "atelectasis": frozenset({"atelectasis"}),
        "haze": frozenset({"edema", "congestion", "interstitial_disease", "fibrosis"}),
        "hyperinflation": frozenset({"hyperinflation", "emphysema", "copd"}),
        "hypoinflation": frozenset({"hypoinflation"}),
    }
)
_EFFECT_ORDER = tuple(EFFECT_TAGS)


@dataclass(frozen=True)
class PhantomPlan:
    """What will be drawn for one image: effect name -> strength (1 full, <1 faint, 0 absent)."""

    image_id: str
    seed: int
    effects: Mapping[str, float] = field(default_factory=dict)
    distractor: bool = False

    @property
    def rendered(self) -> tuple[str, ...]:
        return tuple(name for name, s in self.effects.items() if s > 0)


@dataclass(frozen=True)
class PhantomBatchResult:
    """Outcome of :func:`write_phantoms`."""

    out_dir: Path
    written: int
    skipped: int
    failed: Mapping[str, str]
    seconds: float


def phantom_seed(image_id: str) -> int:
    """Stable 64-bit seed from the image id (SHA-256, independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256(f"phantom-v{PHANTOM_VERSION}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def plan_phantom(image_id: str, tags: Iterable[str] = ()) -> PhantomPlan:
    """Decide which finding effects are drawn and how strongly (deterministic)."""
    seed = phantom_seed(image_id)
    rng = np.random.default_rng([seed, 1])
    tagset = set(tags)
    effects: dict[str, float] = {}
    for name in _EFFECT_ORDER:
        u = rng.random()  # drawn for every effect so plans stay aligned across tag sets
        if not (EFFECT_TAGS[name] & tagset):
            continue
        if u < P_ABSENT:
            effects[name] = 0.0
        elif u < P_ABSENT + P_FAINT:
            effects[name] = FAINT_FACTOR
        else:
            effects[name] = 1.0
    distractor = bool(rng.random() < P_DISTRACTOR)
    return PhantomPlan(image_id, seed, MappingProxyType(effects), distractor)


def _ramp(z: np.ndarray, width: float) -> np.ndarray:
    """Soft step: 0 for z << 0, 1 for z >> 0, linear over ``width``."""
    return np.clip(0.5 + z / width, 0.0, 1.0)


def _ellipse(x, y, cx, cy, rx, ry, edge=0.04):
    """Soft-edged ellipse mask (1 inside); ``edge`` is the ramp width in grid units."""
    dx = (x - cx) * (1.0 / rx)
    dy = (y - cy) * (1.0 / ry)
    d = np.sqrt(dx * dx + dy * dy)
    return _ramp(1.0 - d, edge / min(rx, ry) + 1e-6)


def _blob(x, y, cx, cy, r):
    return np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * r * r)))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    lo, hi = float(small.min()), float(small.max())
    img = Image.fromarray(((small - lo) / (hi - lo + 1e-9) * 255).astype(np.uint8))
    big = np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return (big - big.mean()) / (big.std() + 1e-6)


def render_phantom(image_id: str, tags: Iterable[str] = (), size: int = DEFAULT_SIZE) -> np.ndarray:
    """Render the phantom for ``image_id`` with findings from ``tags`` -> uint8 [size, size]."""
    plan = plan_phantom(image_id, tags)
    arng = np.random.default_rng([plan.seed, 0])  # anatomy + nuisance stream
    frng = np.random.default_rng([plan.seed, 2])  # finding geometry stream
    # ---- nuisance geometry: rotation, shift, scale
    theta = float(np.deg2rad(np.clip(arng.normal(0.0, 2.5), -6.0, 6.0)))
    dx, dy = (float(t) for t in arng.uniform(-0.06, 0.06, size=2))
    scale = float(arng.uniform(0.92, 1.06))
    grid = max(16, size // 2)  # smooth anatomy is drawn at half resolution, then upsampled
    lin = np.linspace(-1.0, 1.0, grid, dtype=np.float32)
    u, v = np.meshgrid(lin, lin)
    c, s = np.cos(theta) / scale, np.sin(theta) / scale
    x = (u - dx) * c + (v - dy) * s
    y = (v - dy) * c - (u - dx) * s

    eff = plan.effects
    infl = 1.0 + 0.12 * eff.get("hyperinflation", 0.0) - 0.14 * eff.get("hypoinflation", 0.0)
    lung_ry = float(arng.uniform(0.55, 0.62)) * infl
    lung_rx = float(arng.uniform(0.26, 0.3))
    lung_cy = -0.12 + 0.35 * (infl - 1.0)
    heart_scale = float(arng.normal(1.0, 0.06)) * (1.0 + 0.32 * eff.get("cardiomegaly", 0.0))

    # ---- anatomy (x-ray convention: bright = dense)
    ax = np.abs(x)
    body = _ellipse(x, y, 0.0, 0.1, 0.93, 1.1, edge=0.06)
    # diaphragm domes: highest under each lung centre, lower at the costophrenic angles
    dome = lung_cy + 0.78 * lung_ry + 0.9 * (ax - 0.4) ** 2
    below = _ramp(y - dome, 0.03)
    lungs = np.zeros_like(x)
    for side in (-1.0, 1.0):
        cx = side * float(arng.uniform(0.36, 0.4))
        lungs = np.maximum(lungs, _ellipse(x, y, cx, lung_cy, lung_rx, lung_ry, edge=0.06))
    lungs *= 1.0 - below
    texture = _smooth_noise(arng, grid, 12)
    img = (0.1 + 0.45 * body) - lungs * (0.3 + 0.03 * texture)
    # posterior ribs: curved periodic bands, visible over the lungs
    phase = float(arng.uniform(0, 2 * np.pi))
    ribs = np.clip((np.sin((y * 4.2 - 0.9 * x * x) * (2 * np.pi) + phase) - 0.55) * 2.5, 0.0, 1.0)
    img += lungs * ribs * float(arng.uniform(0.05, 0.09))
    # mediastinum + spine
    mediast = _ramp(0.11 - np.abs(x - 0.01), 0.04) * _ramp(y + 0.85, 0.05) * (1.0 - below)
    img += mediast * np.maximum(0.62 - img, 0.0)
    img += 0.07 * _ramp(0.045 - ax, 0.02) * body
    # heart (patient's left = image right)
    hy = lung_cy + lung_ry * 0.5
    heart = _ellipse(x, y, 0.09, hy, 0.25 * heart_scale, 0.2 * (0.5 + 0.5 * heart_scale), edge=0.05)
    img += heart * np.maximum(0.7 - img, 0.0)
    # abdomen / diaphragm soft tissue
    img += below * body * (0.6 - img)

    # ---- findings
    lung_mask = lungs * (1.0 - heart) * (1.0 - mediast)
    dome_y = dome
    if eff.get("opacity", 0.0) > 0 or plan.distractor:
        amp_opac = eff.get("opacity", 0.0)
        n = int(frng.integers(1, 4)) if amp_opac > 0 else 1
        amp = amp_opac if amp_opac > 0 else FAINT_FACTOR * 0.6
        for _ in range(n):
            side = 1.0 if frng.random() < 0.5 else -1.0
            cx = side * frng.uniform(0.22, 0.5)
            cy = lung_cy + frng.uniform(-0.35, 0.5) * lung_ry
            r = frng.uniform(0.07, 0.17)
            img = img + amp * frng.uniform(0.16, 0.28) * _blob(x, y, cx, cy, r) * lung_mask
    if eff.get("effusion", 0.0) > 0:
        amp = eff["effusion"]
        sides = [(-1.0,), (1.0,), (-1.0, 1.0)][int(frng.integers(0, 3))]
        for side in sides:
            h = frng.uniform(0.12, 0.28)
            meniscus = dome_y - h - 0.5 * np.maximum(ax - 0.3, 0.0)
            fluid = _ramp(y - meniscus, 0.04) * _ramp(side * x, 0.05) * lung_mask
            img = img + amp * 0.3 * fluid
    if eff.get("nodule", 0.0) > 0:
        amp = eff["nodule"]
        for _ in range(int(frng.integers(1, 5))):
            cx = (1.0 if frng.random() < 0.5 else -1.0) * frng.uniform(0.2, 0.52)
            cy = lung_cy + frng.uniform(-0.6, 0.5) * lung_ry
            r = frng.uniform(0.018, 0.035)
            img = img + amp * 0.3 * _ellipse(x, y, cx, cy, r, r, edge=0.01) * lung_mask
    if eff.get("mass", 0.0) > 0:
        cx = (1.0 if frng.random() < 0.5 else -1.0) * frng.uniform(0.25, 0.45)
        cy = lung_cy + frng.uniform(-0.4, 0.3) * lung_ry
        r = frng.uniform(0.07, 0.11)
        img = img + eff["mass"] * 0.28 * _ellipse(x, y, cx, cy, r, r * 0.9, edge=0.02) * lung_mask
    if eff.get("atelectasis", 0.0) > 0:
        amp = eff["atelectasis"]
        for _ in range(int(frng.integers(1, 3))):
            side = 1.0 if frng.random() < 0.5 else -1.0
            x0 = side * frng.uniform(0.28, 0.45)
            y0 = lung_cy + frng.uniform(0.2, 0.6) * lung_ry
            slope = frng.uniform(-0.25, 0.25)
            band = _ramp(0.014 - np.abs(y - y0 - slope * (x - x0)), 0.01)
            band *= _ramp(0.16 - np.abs(x - x0), 0.04)
            img = img + amp * 0.22 * band * lung_mask
    if eff.get("haze", 0.0) > 0:
        hilum = _blob(x, y, -0.22, lung_cy + 0.05, 0.2) + _blob(x, y, 0.22, lung_cy + 0.05, 0.2)
        img = img + eff["haze"] * 0.12 * hilum * lung_mask

    # ---- noise, exposure, then upsample the 8-bit image
    img = img + 0.015 * _smooth_noise(arng, grid, 40)
    noise_sd = float(arng.uniform(0.008, 0.03))
    img = img + noise_sd * arng.standard_normal((grid, grid), dtype=np.float32)
    gain, gamma = float(arng.uniform(0.85, 1.15)), float(arng.uniform(0.8, 1.25))
    offset = float(arng.uniform(-0.04, 0.04))
    img = np.clip(img * gain + offset, 0.0, 1.0) ** gamma
    out = np.round(img * 255.0).astype(np.uint8)
    if grid != size:
        out = np.asarray(Image.fromarray(out).resize((size, size), Image.BILINEAR))
    return out


def phantom_file_ok(path: Path, size: int = DEFAULT_SIZE) -> bool:
    """True if ``path`` is a readable ``size``x``size`` 8-bit grayscale PNG."""
    try:
        with Image.open(path) as im:
            if im.format != "PNG" or im.mode != "L" or im.size != (size, size):
                return False
            im.verify()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def _write_chunk(items: Sequence[tuple[str, tuple[str, ...], str]], size: int, overwrite: bool):
    written = skipped = 0
    failed: dict[str, str] = {}
    for image_id, tags, path_str in items:
        path = Path(path_str)
        if not overwrite and path.exists() and phantom_file_ok(path, size):
            skipped += 1
            continue
        try:
            arr = render_phantom(image_id, tags, size)
            # Not pipeline.helpers.atomic_write on purpose: a phantom is derived data, checked by
            # phantom_file_ok on every reuse and re-rendered if torn, and an fsync per image made
            # writing them 3x slower (2.9 -> 8.8 ms per 256 px PNG, measured on the dev machine).
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
            os.replace(tmp, path)
            written += 1
        except OSError as exc:
            failed[image_id] = f"{type(exc).__name__}: {exc}"
    return written, skipped, failed


def write_phantoms(
    items: Iterable[tuple[str, Iterable[str], str | Path]],
    out_dir: str | Path | None = None,
    *,
    size: int = DEFAULT_SIZE,
    n_jobs: int = 1,
    overwrite: bool = False,
) -> PhantomBatchResult:
    """Render and write one PNG per ``(image_id, tags, filename)``.

    ``filename`` is relative to ``out_dir`` (or absolute). Resumable: an existing
    valid PNG is skipped unless ``overwrite``; writes are atomic (tmp + rename).
    ``n_jobs`` > 1 (or -1) renders in worker processes via joblib.
    """
    t0 = time.perf_counter()
    base = Path(out_dir) if out_dir is not None else Path(".")
    base.mkdir(parents=True, exist_ok=True)
    work = []
    for image_id, tags, name in items:
        path = base / name
        work.append((str(image_id), tuple(tags), str(path)))
    for parent in {Path(p).parent for _, _, p in work}:
        parent.mkdir(parents=True, exist_ok=True)
    n_workers = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    if n_workers == 1 or len(work) < 64:
        results = [_write_chunk(work, size, overwrite)]
    else:
        from joblib import Parallel, delayed

        n_chunks = n_workers * 4
        chunks = [work[i::n_chunks] for i in range(n_chunks)]
        results = Parallel(n_jobs=n_workers)(
            delayed(_write_chunk)(ch, size, overwrite) for ch in chunks
        )
    written = sum(r[0] for r in results)
    skipped = sum(r[1] for r in results)
    failed: dict[str, str] = {}
    for r in results:
        failed.update(r[2])
    seconds = time.perf_counter() - t0
    logger.info(
        "phantoms in %s: %d written, %d already valid, %d failed (%.1fs)",
        base,
        written,
        skipped,
        len(failed),
        seconds,
    )
    return PhantomBatchResult(base, written, skipped, MappingProxyType(failed), seconds)
