"""Leakage checks: the text-only ceiling and pretraining overlap, unit and through a run."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from classify.results.types import StoreInfo
from classify.run import leakage
from tests.classify.conftest import make_benchmark, make_cell, render_report, write_store


def _text_cell(auc: float, classifier: str = "logistic"):  # noqa: ANN202
    return make_cell(classifier, fusion="single", feature_set="text", stores=("minilm",),
                     modalities=("text",), seed=5, overrides={"roc_auc": auc})


def test_single_threshold_is_shared():
    import classify.analysis.ablation.modalities
    import classify.report
    import classify.run.benchmark

    for mod in (classify.analysis.ablation.modalities, classify.run.benchmark, classify.report):
        assert not hasattr(mod, "TEXT_CEILING") and not hasattr(mod, "LEAKAGE_CEILING")
    assert leakage.TEXT_CEILING == 0.98


@pytest.mark.parametrize(("source", "auc", "fires"), [
    ("mesh:report", 0.99, True),
    ("chexpert:report", 0.99, True),
    ("external", 0.99, False),
    ("", 0.99, False),
    ("mesh:report", 0.975, False),
])
def test_ceiling_warning(source, auc, fires):
    cells = (make_cell("logistic", seed=1), _text_cell(auc))
    w = leakage.ceiling_warning(cells, source)
    assert (w is not None) == fires
    if fires:
        assert "text/single/smote/logistic" in w and f"{auc:.3f}" in w and source in w


def test_ceiling_ignores_fused_cells():
    fused = make_cell("logistic", seed=1, overrides={"roc_auc": 0.995})
    assert leakage.ceiling_warning((fused,), "mesh:report") is None


def test_pretraining_warning_uses_family_not_substring():
    from extract.encoders import IMAGE_ENCODERS

    xrv = tuple(IMAGE_ENCODERS.meta("xrv_densenet121_all")["trained_on"])
    stores = (StoreInfo("xrv_densenet121_all", "image", 1024, "a" * 64, "x.h5", trained_on=xrv),
              StoreInfo("efficientnet_lite0", "image", 1280, "b" * 64, "e.h5",
                        trained_on=("imagenet",)))
    # the demo manifest is named openi_demo ('openi_demo' in 'openi' was False before)
    ws = leakage.pretraining_warnings(stores, dataset="openi_demo", source_dataset="openi")
    assert len(ws) == 1 and "xrv_densenet121_all" in ws[0] and "openi" in ws[0]
    demo = leakage.pretraining_warnings(stores, dataset="openi_demo", source_dataset="openi",
                                        synthetic_images=True)
    assert "synthetic phantoms" in demo[0] and "nominal" in demo[0]
    assert leakage.pretraining_warnings(stores, dataset="mimic", source_dataset="mimic_cxr")
    assert not leakage.pretraining_warnings(stores, dataset="x", source_dataset="")
    assert not leakage.pretraining_warnings(stores, dataset="vin", source_dataset="vindr")


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_report_shows_ceiling_next_to_fused_and_warns(tmp_path):
    from dataclasses import replace

    bench = replace(make_benchmark(tmp_path, cells=(make_cell("logistic", seed=1),
                                                    _text_cell(0.99))),
                    label_source="mesh:report")
    page = render_report(bench, tmp_path, comparisons=(), ablation=None)["html"].read_text()
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert "LABEL LEAKAGE" in summary
    assert "Text-only ceiling vs image-only and fused" in summary and "fused/attention" in summary
    box = page.split('id="warnings"')[1].split("</section>")[0]
    assert "text-only ceiling: text/single/smote/logistic reaches roc_auc = 0.990" in box

    ext = replace(bench, label_source="external")
    out = tmp_path / "ext"
    page = render_report(ext, out, comparisons=(), ablation=None)["html"].read_text()
    box = page.split('id="warnings"')[1].split("</section>")[0]
    assert "text-only ceiling" not in box and "LABEL LEAKAGE" not in page
    assert "Text-only ceiling vs image-only and fused" in page  # always shown


def _set_meta(manifest_path, **meta) -> None:  # noqa: ANN001
    side = manifest_path.with_suffix(".json")
    doc = json.loads(side.read_text())
    doc.update(meta)
    side.write_text(json.dumps(doc))


def test_benchmark_run_warns_in_result_log_and_terminal(toy_project, caplog):
    from classify.config.experiment import experiment_from_dict
    from classify.report.console import render_benchmark
    from classify.run.benchmark import run_benchmark

    ids, y = toy_project["ids"], toy_project["y"]
    rng = np.random.default_rng(3)
    leaky = (y[:, None] * 3.0 + rng.normal(scale=0.3, size=(len(ids), 4))).astype(np.float32)
    write_store(toy_project["features"], "leaky", "text", ids, leaky)
    write_store(toy_project["features"], "xrv", "image", ids, toy_project["img"],
                trained_on=["nih", "OpenI"])
    _set_meta(toy_project["manifest"], label_source="mesh:report", source_dataset="openi")
    cfg = toy_project["config"](stores=["xrv", "leaky"],
                                feature_sets={"text": ["leaky"], "image": ["xrv"]},
                                fusions=["single"], cv={"folds": 3, "repeats": 1, "seed": 0})
    with caplog.at_level(logging.WARNING, logger="classify.run.benchmark"):
        res = run_benchmark(experiment_from_dict(cfg))
    assert res.label_source == "mesh:report" and res.source_dataset == "openi"
    assert res.cell("text/single/smote/logistic").summary("roc_auc")[0] > 0.98
    ceiling = [w for w in res.warnings if "text-only ceiling" in w]
    overlap = [w for w in res.warnings if "pretraining overlap" in w]
    assert len(ceiling) == 1 and len(overlap) == 1 and "xrv" in overlap[0]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "text-only ceiling" in logged and "pretraining overlap" in logged
    assert "text-only ceiling" in render_benchmark(res)

    _set_meta(toy_project["manifest"], label_source="external", source_dataset=None)
    res = run_benchmark(experiment_from_dict(cfg))  # cached cells, warnings recomputed
    assert res.n_computed == 0
    assert not [w for w in res.warnings if "ceiling" in w or "pretraining" in w]
