"""Fixtures of the reliability suite: a small real demo manifest, built once per session
with the real CLI (`pipeline data openi_demo --limit 60`, ~57 phantom images)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability._cli import out, run


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory: pytest.TempPathFactory, openi_reports_tgz: Path) -> Path:
    """CSV path of a ~57-row openi_demo manifest (images under its artifacts folder)."""
    root = tmp_path_factory.mktemp("demo")
    proc = run("data", "openi_demo", "--limit", 60, "--artifacts", root)
    assert proc.returncode == 0, out(proc)
    return root / "manifests" / "openi_demo.csv"

