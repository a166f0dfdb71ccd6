"""extract.devices: device resolution and worker defaults."""

from __future__ import annotations

import pytest
import torch

from extract.devices import default_num_workers, resolve_device
from pipeline.errors import ConfigError


def test_auto_prefers_cuda_then_mps_then_cpu() -> None:
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"


def test_unusable_or_unknown_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available"):
            resolve_device("cuda")


def test_default_workers_between_1_and_4() -> None:
    assert 1 <= default_num_workers() <= 4
