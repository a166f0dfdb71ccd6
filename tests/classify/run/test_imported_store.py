"""An imported embedding (pipeline import) is a normal store: classify and report run on it."""

from __future__ import annotations

import numpy as np
import pytest

from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import run_benchmark
from pipeline.manifest import load_manifest
from pipeline.store.importer import ImportRequest, run_import
from tests.classify.conftest import render_report


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_imported_store_runs_through_classify_and_report(toy_project, tmp_path) -> None:
    ids, y = toy_project["ids"], toy_project["y"]
    rng = np.random.default_rng(7)
    X = rng.normal(size=(len(ids), 5)) + 1.5 * y[:, None]  # an informative external model
    np.savez(tmp_path / "ext.npz", X=X, ids=np.array(ids))
    run_import(ImportRequest(path=tmp_path / "ext.npz", key="ext", modality="image",
                             model="cluster-densenet", note="fine-tuned"),
               load_manifest(toy_project["manifest"]), toy_project["features"])
    exp = experiment_from_dict(toy_project["config"](
        stores=["img", "ext"], feature_sets={"imported": ["ext"], "fused": ["img", "ext"]}))
    result = run_benchmark(exp)
    assert result.n_computed == 2
    assert result.cell("imported/single/smote/logistic").summary("roc_auc")[0] > 0.8
    paths = render_report(result, tmp_path / "rep")
    assert "imported/single/smote/logistic" in paths["html"].read_text()
