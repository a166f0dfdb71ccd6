"""`pipeline fit-final` and `pipeline predict` through the CLI: exit codes 0 / 2 / 3 and what is printed.

Extraction is replaced by a stand-in that writes the new data set's stores (the toy
encoders do not exist); the real-encoder path is the slow test in test_predict_end_to_end.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipeline import cli
from pipeline.manifest import Manifest, save_manifest
from pipeline.store.feature_store import StoreWriter, store_path
from tests.classify.conftest import N, toy_labels, write_manifest, write_store


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Toy stores + manifest + experiment under one artifacts root, classified once."""
    art = tmp_path_factory.mktemp("art")
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    rng = np.random.default_rng(1)
    img = rng.normal(size=(N, 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    txt = rng.normal(size=(N, 6)).astype(np.float32)
    write_store(art / "features", "img", "image", ids, img)
    write_store(art / "features", "txt", "text", ids, txt)
    manifest = write_manifest(art, ids, y)
    toml = art / "toy.toml"
    toml.write_text(
        f'name = "toy"\ndataset = "toyset"\nmanifest = "{manifest}"\npositive_label = "abnormal"\n'
        'stores = ["img", "txt"]\nfusions = ["single", "concat"]\nclassifiers = ["logistic"]\n'
        "n_jobs = 1\n[feature_sets]\nimage = [\"img\"]\nfused = [\"img\", \"txt\"]\n"
        "[cv]\nfolds = 3\nrepeats = 1\nseed = 0\n")
    assert cli.main(["classify", "--config", str(toml), "--artifacts", str(art)]) == 0
    return {"art": art, "toml": toml}


def _fit(project, capsys, *extra):
    code = cli.main(["fit-final", "--config", str(project["toml"]), "--artifacts",
                     str(project["art"]), *extra])
    return code, capsys.readouterr()


def _new_manifest(art: Path, name: str, n: int = 20) -> Path:
    ids = [f"n{i:03d}" for i in range(n)]
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": ids, "image_path": [f"{s}.png" for s in ids],
        "report_id": ids, "findings": "", "impression": "", "report_text": "", "tags": "",
        "label": "", "label_source": "", "view": "PA"})
    return save_manifest(Manifest(name, frame, art / "newimages", {}),
                         art / "manifests" / f"{name}.csv")


@pytest.fixture
def fake_extract(monkeypatch):
    """Replace extract.reproduce.extract_like; ids in ``missing`` fail like absent images."""
    state = SimpleNamespace(missing=set(), calls=[])

    def extract_like(manifest, record, features_root, **options):
        state.calls.append(record["encoder_key"])
        prov = {k: record[k] for k in ("encoder_key", "modality", "architecture", "weights_name",
                                       "weights_sha256", "dim", "preprocessing", "layers")}
        path = store_path(features_root, manifest.name, record["encoder_key"])
        ids = [s for s in manifest.ids if s not in state.missing]
        rng = np.random.default_rng(0)
        with StoreWriter(path, prov) as w:
            w.add(ids, {"X": rng.normal(size=(len(ids), prov["dim"])).astype(np.float32)})
            for s in state.missing:
                w.add_failed(s, f"image file not found: {s}.png")
        failed = {s: "image file not found" for s in state.missing}
        return SimpleNamespace(store=path, failed=failed,
                               render=lambda: f"{record['encoder_key']}: {len(failed)} failed")

    import extract.reproduce

    monkeypatch.setattr(extract.reproduce, "extract_like", extract_like)
    return state


def test_fit_final_best_prints_the_bundle_and_its_evidence(project, capsys):
    code, cap = _fit(project, capsys, "--best", "--feature-set", "fused", "--name", "best")
    assert code == 0, cap.err
    assert "model bundle" in cap.out and "fused/concat/smote/logistic" in cap.out
    assert "roc_auc" in cap.out and "95% CI" in cap.out
    assert (project["art"] / "models" / "best" / "model.skops").is_file()


def test_fit_final_unknown_cell_exits_2_with_a_hint(project, capsys):
    code, cap = _fit(project, capsys, "--cell", "fused/concat/smote/logistik")
    assert code == 2
    assert "Did you mean 'fused/concat/smote/logistic'" in cap.err


def test_predict_unlabelled_manifest_exits_0(project, capsys, fake_extract):
    assert _fit(project, capsys, "--cell", "fused/concat/smote/logistic", "--name", "u",
                "--force")[0] == 0
    manifest = _new_manifest(project["art"], "unlabelled")
    out = project["art"] / "u.csv"
    code = cli.main(["predict", "--model", str(project["art"] / "models" / "u"), "--manifest",
                     str(manifest), "--out", str(out), "--artifacts", str(project["art"])])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert fake_extract.calls == ["img", "txt"]
    assert "20 samples, 20 predicted, 0 failed" in cap.out
    assert "no labels" in cap.out
    assert len(pd.read_csv(out)) == 20


def test_predict_with_missing_images_exits_3_listing_them(project, capsys, fake_extract):
    assert _fit(project, capsys, "--cell", "fused/concat/smote/logistic", "--name", "m",
                "--force")[0] == 0
    fake_extract.missing = {"n002", "n007"}
    manifest = _new_manifest(project["art"], "missing")
    code = cli.main(["predict", "--model", str(project["art"] / "models" / "m"), "--manifest",
                     str(manifest), "--artifacts", str(project["art"])])
    cap = capsys.readouterr()
    assert code == 3
    assert "FAILED n002: img: image file not found: n002.png" in cap.out
    assert "FAILED n007" in cap.out
    table = pd.read_csv(project["art"] / "predictions" / "m" / "missing.csv",
                        keep_default_na=False)
    assert len(table) == 20
    assert table.set_index("sample_id").loc["n007", "status"] == "failed"


def test_predict_with_a_tampered_bundle_exits_2_before_any_extraction(project, capsys,
                                                                      fake_extract):
    assert _fit(project, capsys, "--cell", "image/single/smote/logistic", "--name", "x",
                "--force")[0] == 0
    card = project["art"] / "models" / "x" / "model_card.json"
    doc = json.loads(card.read_text())
    doc["stores"][0]["weights_sha256"] = "1" * 8  # point the model at other weights
    card.write_text(json.dumps(doc))
    code = cli.main(["predict", "--model", str(card.parent), "--manifest",
                     str(_new_manifest(project["art"], "tampered")), "--artifacts", str(project["art"])])
    cap = capsys.readouterr()
    assert code == 2
    assert "modified after it was written" in cap.err
    assert fake_extract.calls == []
