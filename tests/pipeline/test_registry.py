"""The registry: defining a component registers it; a miss names the valid ones."""

from __future__ import annotations

import pytest

from pipeline.errors import EXIT_USER_ERROR, UnknownNameError
from pipeline.registry import Registry


def _registry() -> Registry:
    reg: Registry = Registry("image encoder")

    @reg.register("resnet50", dim=2048)
    def build_resnet50() -> str:
        return "r50"

    reg.add("vgg16", lambda: "vgg", dim=4096)
    return reg


def test_register_get_meta_and_sorted_iteration() -> None:
    reg = _registry()
    assert reg.get("resnet50")() == "r50" and reg.meta("vgg16") == {"dim": 4096}
    assert reg.names() == ["resnet50", "vgg16"] == [e.name for e in reg]
    assert "vgg16" in reg and "vgg19" not in reg and len(reg) == 2


def test_unknown_name_suggests_the_closest_and_lists_all() -> None:
    with pytest.raises(UnknownNameError) as err:
        _registry().get("resnet5")
    msg = str(err.value)
    assert "unknown image encoder 'resnet5'" in msg
    assert "Did you mean 'resnet50'?" in msg and "Valid names: resnet50, vgg16." in msg
    assert err.value.exit_code == EXIT_USER_ERROR


def test_a_name_is_registered_once() -> None:
    reg = _registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.add("vgg16", object)
