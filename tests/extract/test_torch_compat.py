"""extract.torch_compat: torchvision + transformers import on a CPU-only torch."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from extract import torch_compat

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
def test_torchvision_and_transformers_import_in_a_fresh_interpreter() -> None:
    code = (
        "from extract.torch_compat import ensure_torchvision, import_transformers\n"
        "s = ensure_torchvision()\n"
        "import torchvision.models, torchvision.transforms\n"
        "t = import_transformers()\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "assert s.available\n"
        "assert s.has_ops or s.patched, s\n"
        "assert ensure_torchvision() == s\n"
        "m = torchvision.models.resnet18(weights=None)\n"
        "print('OK', s.patched, s.has_ops, t.__version__)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK")


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_importing_extract_modules_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "import extract, extract.runner, extract.encoders, extract.distributed, extract.jobs\n"
        "import extract.preprocess, extract.devices, extract.torch_compat\n"
        "heavy = [m for m in ('torch', 'torchvision', 'transformers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_missing_ops_error_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    err = RuntimeError("operator torchvision::nms does not exist")
    no_ops = types.SimpleNamespace(_has_ops=lambda: False)
    with_ops = types.SimpleNamespace(_has_ops=lambda: True)
    monkeypatch.setitem(sys.modules, "torchvision.extension", no_ops)
    assert torch_compat._is_missing_ops_error(err)
    assert not torch_compat._is_missing_ops_error(RuntimeError("CUDA driver too old"))
    monkeypatch.setitem(sys.modules, "torchvision.extension", with_ops)
    assert not torch_compat._is_missing_ops_error(err)  # ops present: a real bug, re-raise


def test_stub_only_installed_when_ops_missing() -> None:
    status = torch_compat.ensure_torchvision()
    stub = sys.modules.get("torchvision._meta_registrations")
    is_stub = getattr(stub, "__doc__", None) == torch_compat._STUB_DOC
    assert status.patched == is_stub
    assert not (status.patched and status.has_ops)
