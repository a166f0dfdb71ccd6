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


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers():
    """In-process `pipeline.cli.main` calls install root log handlers; remove them after
    each test (they point at pytest's per-test capture streams and log files)."""
    import logging

    before = list(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
