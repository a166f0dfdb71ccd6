"""torchvision ImageNet models (ResNet, VGG, DenseNet, MobileNet, EfficientNet-B0) from the hub cache."""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract.encoders.base import IMAGE_ENCODERS, Availability, ImageEncoder, Tap
from extract.encoders.weights import (
    RANDOM_INIT,
    file_sha256,
    load_weights_file,
    offline_mode,
    random_fallback_message,
    seeded_init,
    state_dict_sha256,
    torch_hub_checkpoints,
)
from extract.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig
from pipeline.errors import MissingWeightsError

logger = logging.getLogger(__name__)


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
        model = seeded_init(lambda: builder(weights=None))
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
            + random_fallback_message(arch.name)
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
