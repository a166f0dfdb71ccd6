"""The analyst loop: a new embedding store is picked up, only its cells are fitted,
and the report then shows both the old and the new feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import run_benchmark
from tests.classify.conftest import render_report, write_store


@pytest.mark.slow  # a full grid computed twice
def test_new_store_computes_only_new_cells_and_report_has_both(toy_project, tmp_path):
    cfg = toy_project["config"](stores="all", feature_sets={}, classifiers=["logistic", "knn"],
                                fusions=["single", "concat"])
    cfg.pop("feature_sets")
    first = run_benchmark(experiment_from_dict(cfg))
    before = {c.key for c in first.cells}
    assert first.n_computed == len(first.cells) and first.n_reused == 0
    assert {c.spec.feature_set for c in first.cells} >= {"img", "txt"}

    rng = np.random.default_rng(7)
    write_store(toy_project["features"], "txt2", "text", toy_project["ids"],
                rng.normal(size=(len(toy_project["ids"]), 5)).astype(np.float32))
    second = run_benchmark(experiment_from_dict(cfg))

    computed = [c for c in second.cells if c.status == "computed"]
    reused = [c for c in second.cells if c.status == "reused"]
    # every fitted cell reads the new store; every old single-store cell was reused
    assert computed and all("txt2" in c.spec.stores for c in computed)
    assert second.n_computed == len(computed)
    # the old single-store cells are reused unchanged; "fused" now spans three stores, so
    # its cells are new ones (the two-store fused results stay on disk, untouched)
    assert {c.key for c in reused} == {c.key for c in first.cells if len(c.spec.stores) == 1}
    assert {c.key for c in reused} <= before

    paths = render_report(second, tmp_path / "reports", comparisons=(), shuffles=())
    html = paths["html"].read_text(encoding="utf-8")
    assert "txt2" in html and "img/single/smote/logistic" in html
