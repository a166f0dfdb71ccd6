"""The `make predict` flow in miniature with the real encoders and the real CLI (slow).

openi_demo (60 reports) -> extract EfficientNet-Lite0 + MiniLM -> classify a tiny grid ->
fit-final the best fused cell without a held-out slice (the first 15 reports) -> predict
that slice (its stores are built by predict itself) -> the same slice with one image gone.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reliability._cli import out, run

pytestmark = pytest.mark.slow


def test_fit_final_then_predict_a_held_out_slice(demo_manifest, tmp_path):
    root = demo_manifest.parent.parent
    proc = run("data", "openi_demo", "--name", "slice", "--limit", 15, "--artifacts", root)
    assert proc.returncode == 0, out(proc)
    slice_csv = root / "manifests" / "slice.csv"
    proc = run("extract", "--manifest", demo_manifest, "--encoder", "efficientnet_lite0",
               "--encoder", "minilm", "--no-progress", "--artifacts", root, timeout=900)
    assert proc.returncode == 0, out(proc)
    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\ndataset = "openi_demo"\npositive_label = "abnormal"\n'
                    'stores = ["efficientnet_lite0", "minilm"]\nfusions = ["concat"]\n'
                    'classifiers = ["logistic"]\n[feature_sets]\nfused = ["efficientnet_lite0", '
                    '"minilm"]\n[cv]\nfolds = 3\nrepeats = 1\n[params.fusion.concat]\n'
                    'reduce = "pca"\nn_components = 8\n')
    proc = run("classify", "--config", toml, "--artifacts", root, timeout=600)
    assert proc.returncode == 0, out(proc)
    proc = run("fit-final", "--config", toml, "--best", "--feature-set", "fused", "--name", "m",
               "--exclude-manifest", slice_csv, "--artifacts", root)
    assert proc.returncode == 0, out(proc)
    assert "excluded from the fit" in proc.stdout

    proc = run("predict", "--model", root / "models" / "m", "--manifest", slice_csv,
               "--bootstrap", 50, "--no-progress", "--artifacts", root, timeout=900)
    assert proc.returncode == 0, out(proc)
    held = pd.read_csv(slice_csv, dtype=str, keep_default_na=False)
    pred = pd.read_csv(root / "predictions" / "m" / "slice.csv", keep_default_na=False)
    assert pred["sample_id"].tolist() == held["sample_id"].tolist()
    assert (pred["status"] == "ok").all() and pred["probability"].between(0, 1).all()
    assert "scores on the" in proc.stdout and "roc_auc" in proc.stdout
    assert (root / "features" / "slice" / "efficientnet_lite0.h5").is_file()

    broken = held.copy()
    broken.loc[3, "image_path"] = "no_such_image.png"
    missing_id = broken.loc[3, "sample_id"]
    from pipeline.manifest import load_manifest

    meta = load_manifest(slice_csv)
    from pipeline.manifest import Manifest, save_manifest

    bad_csv = save_manifest(Manifest("slice_broken", broken, meta.image_root, meta.meta),
                            root / "manifests" / "slice_broken.csv")
    proc = run("predict", "--model", root / "models" / "m", "--manifest", bad_csv,
               "--bootstrap", 0, "--no-progress", "--artifacts", root, timeout=900)
    assert proc.returncode == 3, out(proc)
    assert f"FAILED {missing_id}: efficientnet_lite0:" in proc.stdout
