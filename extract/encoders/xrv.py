"""torchxrayvision's "all" DenseNet121 (trained on public CXR sets, OpenI and MIMIC included)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from extract.encoders.base import IMAGE_ENCODERS, Availability, ImageEncoder, Tap
from extract.encoders.weights import (
    RANDOM_INIT,
    file_sha256,
    offline_mode,
    random_fallback_message,
    seeded_init,
    state_dict_sha256,
)
from extract.preprocess import PreprocessConfig
from pipeline.errors import MissingWeightsError

logger = logging.getLogger(__name__)

XRV_ALL_TRAINED_ON = ["nih", "chexpert", "mimic", "padchest", "openi", "google", "rsna"]
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
        model = seeded_init(lambda: xrv.models.DenseNet(weights=None))
        weights_name, sha = RANDOM_INIT, state_dict_sha256(model)
        logger.warning("xrv_densenet121_all: weights file missing; using RANDOM weights")
    else:
        raise MissingWeightsError(
            f"weights for image encoder 'xrv_densenet121_all' are not cached: expected {path}. "
            f"Fix: download https://github.com/mlmed/torchxrayvision/releases/download/v1/"
            f"{_XRV_FILENAME} on a connected machine and copy it to {path}, or pass "
            f"allow_download=True where the internet is reachable."
            + random_fallback_message("xrv_densenet121_all")
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
