"""Promise 7: nothing is executed from data. No project module unpickles (pickle/joblib/
pandas.read_pickle/shelve/marshal), calls np.load without allow_pickle=False, torch.load
without weights_only=True, yaml.load without a safe loader, or eval/exec; a weights file
holding pickled code is refused, not run; manifest image paths stay under the dataset root
(absolute or '..' paths are rejected) unless absolute paths are explicitly allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.dataset.build import build_manifest
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR, ManifestError
from pipeline.manifest import load_manifest
from tests.reliability._cli import ROOT, write_csv_manifest

PACKAGES = ("pipeline", "extract", "classify", "benchmarks")
FORBIDDEN = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"),
    ("dill", "load"), ("dill", "loads"), ("joblib", "load"), ("shelve", "open"),
    ("marshal", "load"), ("marshal", "loads"), ("pd", "read_pickle"), ("pandas", "read_pickle"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"),
}


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
            bad.append(f"{where}: {f.id}()")
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)):
            continue
        mod, attr = f.value.id, f.attr
        if (mod, attr) in FORBIDDEN:
            bad.append(f"{where}: {mod}.{attr}")
        elif mod in ("np", "numpy") and attr == "load" and _kw(node, "allow_pickle") is not False:
            bad.append(f"{where}: np.load without allow_pickle=False")
        elif mod == "torch" and attr == "load" and _kw(node, "weights_only") is not True:
            bad.append(f"{where}: torch.load without weights_only=True")
        elif mod == "yaml" and attr == "load":
            bad.append(f"{where}: yaml.load (use yaml.safe_load)")
    return bad


def test_no_module_deserialises_code_from_files():
    files = [p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 20
    bad = [v for p in files for v in _violations(p)]
    assert not bad, "unsafe loading of user files:\n" + "\n".join(bad)


def test_the_scanner_catches_unsafe_calls(tmp_path: Path, monkeypatch):
    """The control: the scanner flags each unsafe form (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle, numpy as np, torch, joblib\n"
                   "pickle.load(f)\nnp.load(p)\nnp.load(p, allow_pickle=True)\n"
                   "torch.load(p)\njoblib.load(p)\neval(s)\n"
                   "np.load(p, allow_pickle=False)\ntorch.load(p, weights_only=True)\n")
    monkeypatch.setattr("tests.reliability.test_nothing_executed_from_data.ROOT", tmp_path)
    assert len(_violations(bad)) == 6


@pytest.fixture
def one_image_manifest(tmp_path: Path) -> Path:
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("L", (64, 64), 100).save(tmp_path / "img" / "a.png")
    Image.new("L", (64, 64), 30).save(tmp_path / "img" / "b.png")
    rows = [{"sample_id": s, "image_path": f"{s}.png", "label": s} for s in ("a", "b")]
    build_manifest("csv", path=write_csv_manifest(tmp_path / "src.csv", rows),
                   image_root=tmp_path / "img", name="w", artifacts_root=tmp_path)
    return tmp_path / "manifests" / "w.csv"


@pytest.mark.slow
def test_a_weights_file_with_pickled_code_is_refused_not_run(one_image_manifest: Path,
                                                             tmp_path: Path, monkeypatch, capsys):
    import torch

    from pipeline.cli import main

    marker = tmp_path / "PWNED"
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"conv.weight": Payload()}, hub / "mobilenet_v2-7ebf99e0.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    code = main(["extract", "--manifest", str(one_image_manifest), "--encoder", "mobilenet_v2",
                 "--no-progress", "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "not a plain PyTorch state dict" in err and "NOT loaded" in err
    assert str(hub / "mobilenet_v2-7ebf99e0.pth") in err
    assert not marker.exists(), "the pickled payload was executed"

    # the control: a genuine state dict in the same place loads (weights_only=True) and embeds
    from extract.torch_compat import ensure_torchvision

    ensure_torchvision()
    import torchvision.models as tvm

    torch.save(tvm.mobilenet_v2(weights=None).state_dict(), hub / "mobilenet_v2-7ebf99e0.pth")
    code = main(["extract", "--manifest", str(one_image_manifest), "--encoder", "mobilenet_v2",
                 "--num-workers", "0", "--no-progress", "--artifacts", str(tmp_path)])
    cap = capsys.readouterr()
    assert code == EXIT_OK, cap.err
    assert "2 embedded, 0 failed" in cap.out


@pytest.mark.parametrize("path", ["../outside.png", "img/../../outside.png", "/etc/passwd",
                                  "..\\outside.png", "C:\\data\\x.png"])
def test_image_paths_escaping_the_root_are_rejected(tmp_path: Path, capsys, path: str):
    from pipeline.cli import main

    rows = [{"sample_id": "ok", "image_path": "ok.png", "label": "a"},
            {"sample_id": "evil", "image_path": path, "label": "b"}]
    src = write_csv_manifest(tmp_path / "src.csv", rows)
    code = main(["data", "csv", "--path", str(src), "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "'evil'" in err and "allow_absolute_paths" in err
    assert not (tmp_path / "manifests").exists()


def test_escape_added_to_a_saved_manifest_is_rejected_on_load(tmp_path: Path, capsys):
    from pipeline.cli import main

    rows = [{"sample_id": s, "image_path": f"{s}.png", "label": s} for s in ("a", "b")]
    build_manifest("csv", path=write_csv_manifest(tmp_path / "src.csv", rows), name="m",
                   artifacts_root=tmp_path)
    csv = tmp_path / "manifests" / "m.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("b.png", "../../b.png"), encoding="utf-8")
    code = main(["extract", "--manifest", str(csv), "--encoder", "tfidf_svd",
                 "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "'b'" in err and "escape image_root" in err


def test_absolute_paths_work_only_when_explicitly_allowed(tmp_path: Path):
    target = tmp_path / "elsewhere" / "x.png"
    rows = [{"sample_id": "x", "image_path": str(target), "label": "a"},
            {"sample_id": "y", "image_path": "y.png", "label": "b"}]
    src = write_csv_manifest(tmp_path / "src.csv", rows)
    with pytest.raises(ManifestError, match="absolute"):
        build_manifest("csv", path=src, name="abs", artifacts_root=tmp_path)
    build_manifest("csv", path=src, name="abs", artifacts_root=tmp_path, allow_absolute_paths=True)
    m = load_manifest(tmp_path / "manifests" / "abs.csv")
    assert m.image_file("x") == target
    assert m.image_file("y") == tmp_path / "y.png"
