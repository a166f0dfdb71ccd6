"""Promise: deterministic CI. Issue 11, observation 13: `make test` once failed in
tests/classify/run/test_distributed.py::test_dask_grid_equals_local_grid with a KeyError raised
in joblib's Dask backend, inside the weakref finaliser of its per-call
``_WeakKeyDictionary`` (``on_destroy``: ``del self._data[key]``), turned into a failure by
pyproject's ``error::pytest.PytestUnraisableExceptionWarning``.

The finaliser exists only for arguments joblib scatters lazily (weakref-able, > 1 kB, not
pre-scattered). It raises when such an argument is freed after the call cleared that mapping,
which depends on when the garbage collector runs: hence the luck. Three paths armed it: the
feature matrix (now pre-scattered once), the per-task column and row indices (now sent as
lists, which cannot be weakly referenced, so joblib never scatters them) and the joblib calls
scikit-learn makes inside a task (SMOTE's and kNN's neighbour searches), which joblib's Dask
backend sent back to the cluster as nested tasks (now run in the task's own threads, as in a
local worker process). The data here is large enough (600 rows, 168 columns) for every
index array to exceed joblib's 1 kB threshold; the test fails if anything goes through
joblib's lazy-scatter path again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.manifest import Manifest, save_manifest
from pipeline.store.feature_store import StoreWriter, store_path

N = 600


def _project(root: Path) -> dict:
    rng = np.random.default_rng(0)
    ids = [f"s{i:04d}" for i in range(N)]
    y = rng.random(N) < 0.4
    for key, modality, dim in (("img", "image", 160), ("txt", "text", 8)):
        X = rng.normal(size=(N, dim)).astype(np.float32) + 0.8 * y[:, None]
        prov = {"encoder_key": key, "modality": modality, "architecture": "toy",
                "weights_name": key, "weights_sha256": "0", "preprocessing": {}, "dim": dim,
                "dataset": "ci", "trained_on": []}
        with StoreWriter(store_path(root / "features", "ci", key), prov) as w:
            w.add(ids, {"X": X})
    labels = np.where(y, "abnormal", "normal")
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": [f"p{i // 2:03d}" for i in range(N)],
        "image_path": [f"{s}.png" for s in ids], "report_id": [f"r{i // 2}" for i in range(N)],
        "findings": "", "impression": "", "report_text": "", "tags": "", "label": labels,
        "label_source": "external", "view": "PA"})
    manifest = root / "manifests" / "ci.csv"
    save_manifest(Manifest("ci", frame, root / "images", {"label_rule": "test"}), manifest)
    return {"name": "ci", "dataset": "ci", "manifest": str(manifest),
            "features_root": str(root / "features"), "results_root": str(root / "results"),
            "positive_label": "abnormal", "stores": ["img", "txt"],
            "feature_sets": {"image": ["img"], "text": ["txt"], "fused": ["img", "txt"]},
            "fusions": ["single", "concat"], "samplers": ["none", "smote"],
            "classifiers": ["logistic", "knn"], "cv": {"folds": 3, "repeats": 1, "seed": 0},
            "n_jobs": 1}


@pytest.mark.slow  # starts a Dask LocalCluster
def test_dask_grid_arms_no_joblib_weakref_finaliser(tmp_path: Path, monkeypatch):
    pytest.importorskip("distributed")
    import joblib._dask
    from distributed import Client, LocalCluster

    from classify.config.experiment import experiment_from_dict
    from classify.run.benchmark import run_benchmark_on_dask

    lazily_scattered = []
    original = joblib._dask._WeakKeyDictionary.__setitem__

    def spy(self, obj, value):
        lazily_scattered.append((type(obj).__name__, getattr(obj, "shape", None)))
        return original(self, obj, value)

    monkeypatch.setattr(joblib._dask._WeakKeyDictionary, "__setitem__", spy)
    exp = experiment_from_dict(_project(tmp_path))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result = run_benchmark_on_dask(exp, client)
    assert result.n_computed == 12
    assert lazily_scattered == [], (
        "arguments went through joblib's lazy scatter, arming its racy weakref finaliser: "
        f"{lazily_scattered}; pre-scatter them (classify.run.backends.joblib_backend)")
