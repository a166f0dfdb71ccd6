"""fit-final reproduces what the CV scored (issue 21.1): the nested search, the calibrator and
the in-fold operating point run again on the final training set; predict applies the calibrated
model at the rule's threshold; the card names all of it and the CV at the shipped rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.bundle.final import fit_final
from classify.bundle.io import load_bundle
from classify.bundle.predict import run_predict
from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import run_benchmark
from pipeline.manifest import Manifest, save_manifest
from pipeline.store.feature_store import StoreWriter, store_path

DATASET, NEW = "procset", "procnew"


def _data(n, prevalence, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[:, :3] += 0.9 * y[:, None]
    return y, X


def _manifest(ids, y, name):
    return pd.DataFrame({
        "sample_id": ids, "patient_id": [f"{name}-p{i // 2:04d}" for i in range(len(ids))],
        "image_path": [f"{s}.png" for s in ids], "report_id": ids,
        "findings": "", "impression": "", "report_text": "", "tags": "",
        "label": np.where(y == 1, "abnormal", "normal"), "label_source": "external",
        "view": "PA"})


def _store(root, dataset, ids, X):
    prov = {"encoder_key": "img", "modality": "image", "architecture": "toy",
            "weights_name": "img-w", "weights_sha256": "0" * 8, "preprocessing": {},
            "dim": int(X.shape[1]), "dataset": dataset, "trained_on": []}
    path = store_path(root, dataset, "img")
    with StoreWriter(path, prov) as w:
        w.add(list(ids), {"X": X})
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc")
    y, X = _data(900, 0.12, 0)
    ids = [f"t{i:04d}" for i in range(len(y))]
    _store(root / "features", DATASET, ids, X)
    mpath = root / "manifests" / f"{DATASET}.csv"
    save_manifest(Manifest(DATASET, _manifest(ids, y, "t"), root / "images",
                           {"label_rule": "test"}), mpath)
    exp = experiment_from_dict({
        "name": "proc", "dataset": DATASET, "manifest": str(mpath),
        "features_root": str(root / "features"), "results_root": str(root / "results"),
        "positive_label": "abnormal", "stores": ["img"], "feature_sets": {"image": ["img"]},
        "fusions": ["single"], "samplers": ["smote"], "classifiers": ["logistic"],
        "cv": {"folds": 3, "repeats": 1, "seed": 0}, "n_jobs": 1,
        "tuning": {"enabled": True, "search": "random", "budget": 3, "inner_folds": 3},
        "operating_point": {"rule": "sensitivity=0.9", "calibration": "sigmoid"},
    })
    run_benchmark(exp, n_jobs=1)
    y_new, X_new = _data(3000, 0.12, 1)
    new_ids = [f"n{i:04d}" for i in range(len(y_new))]
    return {"root": root, "exp": exp, "y_new": y_new, "X_new": X_new, "new_ids": new_ids}


def _predict(project, bundle):
    root = project["root"]
    manifest = Manifest(NEW, _manifest(project["new_ids"], project["y_new"], "n"),
                        root / "images", {})

    def build(req):  # noqa: ANN001, ANN202
        path = store_path(root / "features", NEW, "img")
        return path if path.exists() else _store(root / "features", NEW, project["new_ids"],
                                                 project["X_new"])

    return run_predict(bundle, manifest, features_root=root / "features", build_store=build,
                       n_boot=200)


@pytest.mark.slow
def test_tuned_cell_with_operating_point_ships_what_cv_scored(project):
    fit = fit_final(project["exp"], cell="image/single/smote/logistic+tuned", name="tuned",
                    models_root=project["root"] / "models")
    bundle = load_bundle(fit.path)
    card = bundle.card
    # the search ran again and its choice is in the model and on the card
    chosen = card.procedure["tuning"]["chosen"]
    assert set(chosen) == {"C"} and card.procedure["tuning"]["search"] == "random"
    assert bundle.estimator.named_steps["classifier"].get_params()["C"] == pytest.approx(
        chosen["C"])
    md = (fit.path / "model_card.md").read_text()
    assert f"C = {chosen['C']!r}" in md
    # the operating point: rule, calibration, threshold chosen on inner OOF predictions
    assert card.threshold.rule == "sensitivity=0.9"
    assert card.threshold.source == "the cell's operating point"
    assert card.calibration["method"] == "sigmoid"
    op = card.procedure["operating_point"]
    assert op["inner_sensitivity"] >= 0.9 and op["threshold"] == card.threshold.value
    # the card's CV table is stated at the shipped rule
    sens = card.cv_at_rule["metrics"]["sensitivity"]
    assert sens["n_splits"] == 3 and sens["ci95_low"] <= sens["mean"] <= sens["ci95_high"]
    assert set(card.cv_at_rule["metrics"]) == {"sensitivity", "specificity", "ppv", "npv"}
    # on new patients the rule's sensitivity holds within sampling noise (~360 positives)
    res = _predict(project, bundle)
    rows = {m.metric: m for m in res.metrics}
    assert rows["sensitivity@threshold"].value == pytest.approx(0.9, abs=0.06)
    assert rows["sensitivity@threshold"].flag != "DROP"
    # predict outputs calibrated probabilities: at 12 % prevalence they average near 0.12
    p = res.predictions["probability"].to_numpy()
    assert abs(p.mean() - 0.12) < 0.04


@pytest.mark.slow
def test_command_line_threshold_is_applied_on_the_scale_it_was_chosen_on(project):
    """The OOF predictions of a calibrated cell are calibrated; a --threshold chosen on them
    must be applied to calibrated outputs (it was applied to the raw SMOTE model: 0.9 target
    sensitivity became 0.98 with specificity halved)."""
    fit = fit_final(project["exp"], cell="image/single/smote/logistic", name="cli",
                    threshold="sensitivity=0.9", models_root=project["root"] / "models")
    bundle = load_bundle(fit.path)
    assert bundle.card.threshold.source == "command line"
    assert bundle.card.calibration["method"] == "sigmoid"
    t = bundle.card.threshold
    res = _predict(project, bundle)
    rows = {m.metric: m for m in res.metrics}
    assert rows["sensitivity@threshold"].value == pytest.approx(t.oof_sensitivity, abs=0.06)
    assert rows["specificity@threshold"].value == pytest.approx(t.oof_specificity, abs=0.06)


def test_a_step_fit_final_cannot_reproduce_is_refused():
    from classify.results.types import CellSpec
    from classify.run.procedure.final_procedure import check_reproducible_spec
    from pipeline.errors import BundleError

    spec = CellSpec("f", ("a",), ("image",), "single", "smote", "logistic",
                    {"feature_selection": {"k": 10}})
    with pytest.raises(BundleError, match="uses feature_selection, which fit-final cannot reproduce"):
        check_reproducible_spec(spec)


@pytest.mark.slow
def test_card_of_a_masked_text_cell_carries_the_training_mask_terms(tmp_path):
    """Issue 21.6: the mask terms of a masked text store go into the card (from the training
    manifest, checked against the store's digest), so predict masks new reports with them."""
    from classify.bundle.final import fit_final
    from pipeline.errors import BundleError
    from pipeline.labels import LabelMask, LabelRule, manifest_tag_vocabulary

    y, X = _data(120, 0.4, 3)
    ids = [f"t{i:04d}" for i in range(len(y))]
    frame = _manifest(ids, y, "t")
    frame["tags"] = np.where(y == 1, "Cardiomegaly", "normal")
    mpath = tmp_path / "manifests" / f"{DATASET}.csv"
    save_manifest(Manifest(DATASET, frame, tmp_path / "images",
                           {"label_rule": "normal_vs_abnormal"}), mpath)
    mask = LabelMask.for_rule(LabelRule.from_spec("normal_vs_abnormal"), None,
                              manifest_tag_vocabulary(frame))

    def store(sha):  # noqa: ANN001, ANN202
        prov = {"encoder_key": "txt+masked", "modality": "text", "architecture": "toy",
                "weights_name": "w", "weights_sha256": "0" * 8, "dim": 8, "dataset": DATASET,
                "trained_on": [], "preprocessing": {"text_mode": "both", "masked": True,
                                                    "label_rule": mask.rule,
                                                    **mask.provenance(), "mask_terms_sha256": sha}}
        path = store_path(tmp_path / "features", DATASET, "txt+masked")
        if path.exists():
            path.unlink()
        with StoreWriter(path, prov) as w:
            w.add(ids, {"X": X})

    store(mask.sha256)
    exp = experiment_from_dict({
        "name": "masked", "dataset": DATASET, "manifest": str(mpath),
        "features_root": str(tmp_path / "features"), "results_root": str(tmp_path / "results"),
        "positive_label": "abnormal", "stores": ["txt+masked"],
        "feature_sets": {"text": ["txt+masked"]}, "fusions": ["single"], "samplers": ["none"],
        "classifiers": ["logistic"], "cv": {"folds": 3, "repeats": 1, "seed": 0}, "n_jobs": 1})
    run_benchmark(exp, n_jobs=1)
    card = fit_final(exp, cell="text/single/none/logistic", name="m",
                     models_root=tmp_path / "models").card
    assert card.stores[0].mask["terms"] == list(mask.terms) and mask.terms
    assert load_bundle(tmp_path / "models" / "m").card.stores[0].mask["rule"] == mask.rule
    store("f" * 64)  # masked with other terms than the manifest gives now
    run_benchmark(exp, n_jobs=1)
    with pytest.raises(BundleError, match="masked with other terms"):
        fit_final(exp, cell="text/single/none/logistic", name="m2",
                  models_root=tmp_path / "models")
