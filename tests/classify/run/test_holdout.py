"""[holdout]: a patient-grouped, stratified test set that CV, tuning, the operating point,
selection and fit-final never see, scored once per selected cell with patient-bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import load_feature_set, run_benchmark
from pipeline.errors import ConfigError


@pytest.mark.parametrize("raw, message", [
    ({}, "exactly one of"),
    ({"fraction": 0.2, "manifest": "x.csv"}, "exactly one of"),
    ({"fraction": 0.9}, "holdout.fraction must be a number"),
    ({"fraction": 0.2, "seed": "a"}, "holdout.seed must be an integer"),
    ({"fraction": 0.2, "size": 3}, "size"),
])
def test_bad_holdout_sections_are_refused(toy_project, raw, message):
    with pytest.raises(ConfigError, match=message):
        experiment_from_dict(toy_project["config"](holdout=raw))


def _exp(toy_project, **over):  # noqa: ANN001, ANN202
    cfg = toy_project["config"](feature_sets={"image": ["img"], "fused": ["img", "txt"]},
                                fusions=["single", "concat"], holdout={"fraction": 0.25},
                                operating_point={"rule": "youden"}, **over)
    return experiment_from_dict(cfg)


@pytest.mark.slow
def test_holdout_is_never_seen_and_scored_once(toy_project, tmp_path, monkeypatch):
    exp = _exp(toy_project)
    full, _ = load_feature_set(exp, with_holdout=True)
    dev, _ = load_feature_set(exp)
    bench = run_benchmark(exp, n_jobs=1)
    held = sorted(set(full.ids) - set(dev.ids))
    # patient-grouped and stratified, about a quarter of the patients, saved next to the plans
    assert 0.15 < len(held) / full.n < 0.35
    held_patients = set(full.groups[np.isin(full.ids, held)])
    assert not held_patients & set(dev.groups)
    share = np.mean(full.y[np.isin(full.ids, held)] == full.positive_index)
    assert abs(share - np.mean(full.y == full.positive_index)) < 0.1
    saved = list((exp.results_dir / "splits").glob("holdout__*.csv"))
    assert len(saved) == 1 and sorted(pd.read_csv(saved[0])["sample_id"]) == held
    # CV never saw a held-out row: not in the split plan, not in any OOF prediction
    plan = pd.read_csv(bench.split.path)
    assert not set(plan["sample_id"]) & set(held)
    assert all(not set(c.oof["sample_id"]) & set(held) for c in bench.cells)
    # fit-final leaves them out too
    from classify.bundle.final import fit_final

    fit = fit_final(exp, cell="image/single/smote/logistic", name="m",
                    models_root=tmp_path / "models")
    assert fit.card.training["n_samples"] == dev.n
    from classify.bundle.render import render_fit_final

    assert "[holdout] (fraction=0.25) was left out of the fit" in render_fit_final(fit)

    from classify.analysis.holdout_test import evaluate_holdout, render_holdout

    h = evaluate_holdout(exp)
    assert {s.cell for s in h.scores} == {"image/single/smote/logistic",
                                          "fused/concat/smote/logistic"}
    assert h.n_samples == len(held) and h.n_development == dev.n and not h.missing
    s = h.scores[0]
    auc = s.metrics.set_index("metric").loc["roc_auc"]
    assert auc["ci95_low"] <= auc["value"] <= auc["ci95_high"]
    assert s.threshold is not None and "op_sensitivity" in set(s.metrics["metric"])
    assert "held-out test set" in render_holdout(h)
    # scored once: a second evaluation reads the stored scores
    import classify.run.holdout as mod

    monkeypatch.setattr(mod, "score_cell", lambda *a, **k: pytest.fail("scored twice"))
    again = evaluate_holdout(exp)
    assert [x.metrics["value"].tolist() for x in again.scores] == [
        x.metrics["value"].tolist() for x in h.scores]
    # ... and the report shows them
    from classify.analysis.analyse import analyse_benchmark
    from classify.report import write_report
    from classify.report.inputs import add_context

    analysis = add_context(analyse_benchmark(bench), exp)
    html = write_report(analysis, tmp_path / "rep")["html"].read_text()
    assert "Held-out test set" in html and "image/single/smote/logistic" in html


def test_manifest_holdout_removes_listed_samples_and_their_patients(toy_project, tmp_path):
    from pipeline.manifest import load_manifest

    frame = load_manifest(toy_project["manifest"]).frame
    listed = frame.iloc[[0, 10]][["sample_id", "patient_id"]]  # one sample of each patient
    path = tmp_path / "hold.csv"
    full = frame[frame["patient_id"].isin(listed["patient_id"])]
    from pipeline.manifest import Manifest, save_manifest

    save_manifest(Manifest("hold", frame.iloc[[0, 10]].copy(), tmp_path, {}), path)
    exp = experiment_from_dict(toy_project["config"](holdout={"manifest": str(path)}))
    dev, _ = load_feature_set(exp)
    assert not set(full["sample_id"]) & set(dev.ids)
    assert dev.n == len(frame) - len(full)
