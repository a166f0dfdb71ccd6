"""`pipeline classify` / `report` of a multi-task experiment, and fit-final / predict --task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.analysis.tasks import TASK_COLUMNS
from pipeline import cli
from pipeline.manifest import Manifest, save_manifest
from tests.classify.conftest import N, toy_labels, write_store


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Toy stores + a manifest with label:a and label:b, classified once through the CLI."""
    art = tmp_path_factory.mktemp("art")
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    rng = np.random.default_rng(1)
    y_b = rng.random(N) < 0.3
    img = rng.normal(size=(N, 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    txt = rng.normal(size=(N, 6)).astype(np.float32)
    txt[:, :2] += 1.5 * y_b[:, None]
    write_store(art / "features", "img", "image", ids, img)
    write_store(art / "features", "txt", "text", ids, txt)
    b = np.where(y_b, "1", "0").astype(object)
    b[:10] = ""
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": [f"p{i // 2:03d}" for i in range(N)],
        "image_path": [f"{s}.png" for s in ids], "report_id": ids, "findings": "",
        "impression": "", "report_text": "", "tags": "", "label": "", "label_source": "external",
        "view": "PA", "label:a": np.where(y, "1", "0"), "label:b": b})
    manifest = save_manifest(Manifest("toyset", frame, art / "images", {}),
                             art / "manifests" / "toyset.csv")
    toml = art / "multi.toml"
    toml.write_text(
        f'name = "multi"\ndataset = "toyset"\nmanifest = "{manifest}"\ntasks = "all"\n'
        'stores = ["img", "txt"]\nfusions = ["single", "concat"]\nsamplers = ["none"]\n'
        'classifiers = ["logistic"]\nn_jobs = 1\n'
        '[feature_sets]\nimage = ["img"]\ntext = ["txt"]\nfused = ["img", "txt"]\n'
        "[cv]\nfolds = 3\nrepeats = 2\nseed = 0\n")
    assert cli.main(["classify", "--config", str(toml), "--artifacts", str(art)]) == 0
    return {"art": art, "toml": toml, "manifest": manifest}


def test_report_writes_each_task_and_the_cross_task_page(project, capsys):
    art = project["art"]
    assert cli.main(["report", "--config", str(project["toml"]), "--artifacts", str(art)]) == 0
    out = capsys.readouterr().out
    assert "Cross-task answer of 'multi'" in out and "Holm" in out
    root = art / "reports" / "multi"
    table = pd.read_csv(root / "tables" / "tasks.csv", keep_default_na=False)
    assert list(table.columns) == list(TASK_COLUMNS)
    assert sorted(set(table.task)) == ["a", "b"] and len(table) == 6
    b = table[table.task == "b"].iloc[0]
    assert b.n == N - 10  # rows unknown for b left out of b only
    assert table[table.task == "a"].iloc[0].n == N
    assert (root / "figures" / "tasks_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    page = (root / "tasks.md").read_text()
    assert "| a |" in page and "(../multi-a/report.md)" in page
    assert (art / "reports" / "multi-a" / "report.html").is_file()
    assert (art / "reports" / "multi-b" / "report.md").is_file()
    assert len(pd.read_csv(root / "tables" / "tasks_verdicts.csv")) == 2


def test_classify_prints_each_task_and_the_answer_and_reuses_cells(project, capsys):
    assert cli.main(["classify", "--config", str(project["toml"]), "--artifacts",
                     str(project["art"])]) == 0
    out = capsys.readouterr().out
    assert "== task a" in out and "== task b" in out
    assert "0 to compute" in out or "computed 0" in out or "reused" in out
    assert "Cross-task answer" in out


def test_fit_final_needs_a_task_and_predict_checks_it(project, capsys):
    art = project["art"]
    base = ["fit-final", "--config", str(project["toml"]), "--artifacts", str(art), "--best"]
    assert cli.main(base) == 2
    assert "--task" in capsys.readouterr().err
    assert cli.main([*base, "--task", "c"]) == 2
    assert "not one of its tasks" in capsys.readouterr().err
    assert cli.main([*base, "--task", "b", "--name", "mb"]) == 0
    capsys.readouterr()
    card = (art / "models" / "mb" / "model_card.json").read_text()
    assert '"positive_label": "b"' in card and "task:b|" in card
    code = cli.main(["predict", "--model", str(art / "models" / "mb"), "--manifest",
                     str(project["manifest"]), "--artifacts", str(art), "--task", "a"])
    assert code == 2
    assert "fitted for task 'b', not task 'a'" in capsys.readouterr().err
    new = _new_manifest(art)
    out_csv = art / "pred_b.csv"
    code = cli.main(["predict", "--model", str(art / "models" / "mb"), "--manifest", str(new),
                     "--artifacts", str(art), "--task", "b", "--out", str(out_csv),
                     "--bootstrap", "0"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "scores on the 16 labelled samples" in cap.out  # label:b of the new rows


def _new_manifest(art):
    ids = [f"n{i:03d}" for i in range(20)]
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": ids, "image_path": [f"{s}.png" for s in ids],
        "report_id": ids, "findings": "", "impression": "", "report_text": "", "tags": "",
        "label": "", "label_source": "", "view": "PA",
        "label:b": ["1", "0", "0", "1", ""] * 4})
    return save_manifest(Manifest("newset", frame, art / "newimages", {}),
                         art / "manifests" / "newset.csv")


@pytest.fixture(autouse=True)
def _fake_extract(monkeypatch):
    """predict re-embeds new data; the toy encoders do not exist, so write random stores."""
    from types import SimpleNamespace

    import extract.reproduce
    from pipeline.store.feature_store import StoreWriter, store_path

    def extract_like(manifest, record, features_root, **options):
        prov = {k: record[k] for k in ("encoder_key", "modality", "architecture", "weights_name",
                                       "weights_sha256", "dim", "preprocessing", "layers")}
        path = store_path(features_root, manifest.name, record["encoder_key"])
        with StoreWriter(path, prov) as w:
            w.add(manifest.ids, {"X": np.random.default_rng(0).normal(
                size=(len(manifest.ids), prov["dim"])).astype(np.float32)})
        return SimpleNamespace(store=path, failed={}, render=lambda: "extracted")

    monkeypatch.setattr(extract.reproduce, "extract_like", extract_like)
