"""Shared test fixtures (small; data made in the test or taken from installed packages)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def openi_reports_tgz() -> Path:
    """The real NLMCXR_reports.tgz (3,955 OpenI reports) shipped inside torchxrayvision."""
    from pipeline.errors import ManifestError
    from pipeline.sources.openi import shipped_openi_reports

    try:
        return shipped_openi_reports()
    except ManifestError as exc:  # torchxrayvision not installed
        pytest.skip(str(exc))
