"""Shared synthetic fixtures for classify tests: tiny HDF5 stores + a manifest on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.manifest import Manifest, save_manifest
from pipeline.store import StoreWriter, store_path

DATASET = "toyset"
N = 120  # samples; 2 per patient -> 60 patients
POS_RATE = 0.38


def toy_labels(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.permutation(n)[: int(round(POS_RATE * n))]] = 1
    return y


def write_store(root: Path, key: str, modality: str, ids: list[str], X: np.ndarray,
                **prov_extra) -> Path:
    path = store_path(root, DATASET, key)
    prov = {"encoder_key": key, "modality": modality, "architecture": "toy",
            "weights_name": f"{key}-w", "weights_sha256": "0" * 8, "preprocessing": {},
            "dim": int(X.shape[1]), "dataset": DATASET, "trained_on": ["toyimagenet"],
            **prov_extra}
    with StoreWriter(path, prov) as w:
        w.add(ids, {"X": X})
    return path


def write_manifest(root: Path, ids: list[str], y: np.ndarray, *, extra_ids: int = 0) -> Path:
    """Manifest for ``ids`` (+ ``extra_ids`` rows that have no features)."""
    all_ids = list(ids) + [f"extra{i}" for i in range(extra_ids)]
    labels = ["abnormal" if v else "normal" for v in y] + ["normal"] * extra_ids
    n = len(all_ids)
    frame = pd.DataFrame({
        "sample_id": all_ids,
        "patient_id": [f"p{i // 2:03d}" for i in range(n)],
        "image_path": [f"{s}.png" for s in all_ids],
        "report_id": [f"r{i // 2:03d}" for i in range(n)],
        "findings": "", "impression": "", "report_text": "",
        "tags": ["cardiomegaly" if lab == "abnormal" else "normal" for lab in labels],
        "label": labels, "label_source": "external", "view": "PA",
    })
    path = root / "manifests" / f"{DATASET}.csv"
    save_manifest(Manifest(DATASET, frame, root / "images", {"label_rule": "test"}), path)
    return path


@pytest.fixture
def toy_project(tmp_path: Path) -> dict:
    """Stores ``img`` (informative; column 0 = row number) and ``txt`` (noise) + manifest.

    Returns a dict with paths, ids, labels and a ``config(**over)`` experiment-dict builder.
    """
    rng = np.random.default_rng(1)
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    img = rng.normal(size=(N, 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    img[:, 0] = np.arange(N)  # row identity, used by the leakage canary
    txt = rng.normal(size=(N, 6)).astype(np.float32)
    feats = tmp_path / "features"
    write_store(feats, "img", "image", ids, img)
    write_store(feats, "txt", "text", ids, txt)
    manifest = write_manifest(tmp_path, ids, y)

    def config(**over) -> dict:
        cfg = {
            "name": "toy", "dataset": DATASET, "manifest": str(manifest),
            "features_root": str(feats), "results_root": str(tmp_path / "results"),
            "positive_label": "abnormal", "stores": ["img", "txt"],
            "feature_sets": {"image": ["img"], "text": ["txt"], "fused": ["img", "txt"]},
            "fusions": ["single", "concat"], "samplers": ["smote"],
            "classifiers": ["logistic"], "cv": {"folds": 3, "repeats": 2, "seed": 0},
            "n_jobs": 1,
        }
        cfg.update(over)
        return cfg

    return {"root": tmp_path, "features": feats, "manifest": manifest, "ids": ids, "y": y,
            "img": img, "txt": txt, "config": config}
