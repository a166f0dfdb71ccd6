"""Manifest building: option validation and the registered formats."""

from __future__ import annotations

import pytest

from pipeline.dataset.build import build_manifest
from pipeline.errors import ConfigError, UnknownNameError
from pipeline.sources import DATASET_FORMATS


def test_build_manifest_option_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="Valid names: csv, mimic_cxr, openi, openi_demo"):
        build_manifest("opnei")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colour'\]"):
        build_manifest("openi", reports=tmp_path, colour="red")
    with pytest.raises(ConfigError, match=r"needs option\(s\) \['reports'\]"):
        build_manifest("openi")
    assert set(DATASET_FORMATS.names()) == {"csv", "mimic_cxr", "openi", "openi_demo"}


