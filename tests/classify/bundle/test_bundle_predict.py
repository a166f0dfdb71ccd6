"""``run_predict`` on new data: store checks, failed samples, unlabelled data, thresholds, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.bundle.final import fit_final
from classify.bundle.io import load_bundle
from classify.bundle.predict import run_predict
from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import run_benchmark
from pipeline.errors import StoreError
from pipeline.manifest import Manifest
from pipeline.store.feature_store import StoreWriter, store_path
from tests.classify.conftest import N, toy_labels, write_manifest, write_store

NEW = "newset"
N_NEW = 60


def _data(rng, y):
    img = rng.normal(size=(len(y), 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    txt = rng.normal(size=(len(y), 6)).astype(np.float32)
    txt[:, 0] += 0.8 * y
    return img, txt


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Bundles fitted on the toy set: concat (argmax), concat (threshold 0.8), attention."""
    root = tmp_path_factory.mktemp("toy")
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    img, txt = _data(np.random.default_rng(1), y)
    write_store(root / "features", "img", "image", ids, img)
    write_store(root / "features", "txt", "text", ids, txt)
    exp = experiment_from_dict({
        "name": "toy", "dataset": "toyset", "manifest": str(write_manifest(root, ids, y)),
        "features_root": str(root / "features"), "results_root": str(root / "results"),
        "positive_label": "abnormal", "stores": ["img", "txt"],
        "feature_sets": {"fused": ["img", "txt"]}, "fusions": ["concat", "attention"],
        "classifiers": ["logistic"], "cv": {"folds": 3, "repeats": 2, "seed": 0},
        "params": {"fusion": {"attention": {"epochs": 5, "dim": 4}}}, "n_jobs": 1,
    })
    run_benchmark(exp, n_jobs=1)
    models = root / "models"
    return {
        "argmax": load_bundle(fit_final(exp, cell="fused/concat/smote/logistic", name="a",
                                        models_root=models).path),
        "fixed": load_bundle(fit_final(exp, cell="fused/concat/smote/logistic", name="t",
                                       threshold="0.8", models_root=models).path),
        "youden": load_bundle(fit_final(exp, cell="fused/concat/smote/logistic", name="y",
                                        threshold="youden", models_root=models).path),
        "attention": load_bundle(fit_final(exp, cell="fused/attention/smote/logistic", name="att",
                                           models_root=models).path),
    }


def _manifest(tmp_path, y, labelled=True):
    ids = [f"n{i:03d}" for i in range(len(y))]
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": [f"q{i // 2:03d}" for i in range(len(y))],
        "image_path": [f"{s}.png" for s in ids], "report_id": ids,
        "findings": "", "impression": "", "report_text": "", "tags": "",
        "label": [("abnormal" if v else "normal") if labelled else "" for v in y],
        "label_source": "external", "view": "PA",
    })
    return Manifest(NEW, frame, tmp_path / "images", {})


class FakeExtract:
    """Stands in for extract: writes the new data set's store for a requirement."""

    def __init__(self, root, X, *, failed=(), weights=None):
        self.root, self.X, self.failed, self.weights, self.calls = root, X, set(failed), weights, []

    def __call__(self, req):
        self.calls.append(req.encoder_key)
        prov = {"encoder_key": req.encoder_key, "modality": req.modality,
                "architecture": req.architecture, "weights_name": req.weights_name,
                "weights_sha256": self.weights or req.weights_sha256, "dim": req.dim,
                "preprocessing": dict(req.preprocessing), "layers": list(req.layers),
                "trained_on": list(req.trained_on), "dataset": NEW}
        path = store_path(self.root, NEW, req.encoder_key)
        ids, X = self.X[req.encoder_key]
        with StoreWriter(path, prov) as w:
            keep = [i for i, s in enumerate(ids) if s not in self.failed]
            w.add([ids[i] for i in keep], {"X": X[keep]})
            for s in self.failed:
                w.add_failed(s, "image file not found: /data/" + s + ".png")
        return path


def _new(tmp_path, seed=7, labelled=True, **fake):
    y = np.random.default_rng(seed).random(N_NEW) < 0.4
    img, txt = _data(np.random.default_rng(seed + 1), y.astype(int))
    manifest = _manifest(tmp_path, y, labelled)
    ids = manifest.ids
    build = FakeExtract(tmp_path / "features", {"img": (ids, img), "txt": (ids, txt)}, **fake)
    return manifest, build, y


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_labelled_new_data_predicted_and_scored_with_cis(bundles, tmp_path):
    manifest, build, y = _new(tmp_path)
    out = tmp_path / "pred.csv"
    res = run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                      build_store=build, out=out, n_boot=200)
    assert build.calls == ["img", "txt"]
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["sample_id", "probability", "predicted_label"]
    assert len(table) == N_NEW and (table["status"] == "ok").all() and not res.failed
    np.testing.assert_allclose(table["probability"], table["proba:abnormal"])
    assert ((table["probability"] >= 0.5) == (table["predicted_label"] == "abnormal")).all()
    roc = next(m for m in res.metrics if m.metric == "roc_auc")
    assert res.n_labelled == N_NEW
    assert roc.ci95_low <= roc.value <= roc.ci95_high and roc.value > 0.8
    cv = bundles["argmax"].card.cv["roc_auc"]
    assert (roc.cv_low, roc.cv_high) == (cv["ci95_low"], cv["ci95_high"])


def test_a_drop_below_the_cv_interval_is_flagged(bundles, tmp_path):
    manifest, build, y = _new(tmp_path)
    flipped = manifest.frame.assign(label=np.where(y, "normal", "abnormal"))  # labels inverted
    manifest = Manifest(NEW, flipped, manifest.image_root, {})
    res = run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                      build_store=build, n_boot=100)
    roc = next(m for m in res.metrics if m.metric == "roc_auc")
    assert roc.value < 0.3 and roc.ci95_high < roc.cv_low and roc.dropped
    from classify.bundle.render import render_prediction

    assert "roc_auc" in render_prediction(res).split("WARNING:")[1]


def test_unlabelled_new_data_gets_predictions_only(bundles, tmp_path):
    manifest, build, _ = _new(tmp_path, labelled=False)
    res = run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                      build_store=build)
    assert res.metrics is None and res.n_predicted == N_NEW
    assert any("no labels" in n for n in res.notes)
    assert res.predictions["predicted_label"].isin(["abnormal", "normal"]).all()


def test_failed_samples_are_listed_with_reasons_never_dropped(bundles, tmp_path):
    manifest, build, _ = _new(tmp_path, failed={"n003", "n010"})
    res = run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                      build_store=build, n_boot=0)
    assert set(res.failed) == {"n003", "n010"}
    assert "img: image file not found: /data/n003.png" in res.failed["n003"]
    table = res.predictions.set_index("sample_id")
    assert len(table) == N_NEW
    assert table.loc["n003", "status"] == "failed" and np.isnan(table.loc["n003", "probability"])
    assert table.loc["n003", "predicted_label"] == ""
    assert res.n_predicted == N_NEW - 2 and res.n_labelled == N_NEW - 2
    assert any("2 labelled row(s) failed" in n for n in res.notes)


def test_swapped_encoder_is_refused_with_the_mismatch(bundles, tmp_path):
    manifest, build, _ = _new(tmp_path, weights="f" * 8)
    with pytest.raises(StoreError, match=r"weights_sha256: model needs '00000000', store has "
                                         r"'ffffffff'") as err:
        run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                    build_store=build)
    assert err.value.exit_code == 2


def test_existing_mismatched_store_is_refused_before_any_extraction(bundles, tmp_path):
    manifest, build, _ = _new(tmp_path)
    ids = manifest.ids
    write_prov = {"encoder_key": "img", "modality": "image", "architecture": "toy",
                  "weights_name": "img-w", "weights_sha256": "0" * 8, "dim": 12,
                  "preprocessing": {"size": 512}, "dataset": NEW}
    with StoreWriter(store_path(tmp_path / "features", NEW, "img"), write_prov) as w:
        w.add(ids[:3], {"X": np.zeros((3, 12), dtype=np.float32)})
    with pytest.raises(StoreError, match=r"preprocessing: .*size=None vs 512"):
        run_predict(bundles["argmax"], manifest, features_root=tmp_path / "features",
                    build_store=build)
    assert build.calls == []


def test_fixed_threshold_is_applied(bundles, tmp_path):
    assert bundles["fixed"].card.threshold.rule == "fixed"
    assert bundles["fixed"].card.threshold.value == 0.8
    manifest, build, _ = _new(tmp_path)
    res = run_predict(bundles["fixed"], manifest, features_root=tmp_path / "features",
                      build_store=build, n_boot=0)
    t = res.predictions
    assert ((t["probability"] >= 0.8) == (t["predicted_label"] == "abnormal")).all()
    between = t[(t["probability"] >= 0.5) & (t["probability"] < 0.8)]
    assert len(between) and (between["predicted_label"] == "normal").all()


def test_youden_threshold_is_chosen_on_out_of_fold_predictions(bundles):
    t = bundles["youden"].card.threshold
    assert t.rule == "youden" and 0 < t.value < 1 and t.source == "command line"
    assert "out-of-fold predictions of cell fused/concat/smote/logistic" in t.chosen_on
    assert t.oof_sensitivity + t.oof_specificity > 1.5


def test_attention_bundle_writes_per_block_weights(bundles, tmp_path):
    manifest, build, _ = _new(tmp_path)
    res = run_predict(bundles["attention"], manifest, features_root=tmp_path / "features",
                      build_store=build, n_boot=0)
    att = res.predictions[["attention:img", "attention:txt"]].to_numpy()
    assert att.shape == (N_NEW, 2) and np.allclose(att.sum(axis=1), 1)
    assert not np.allclose(att[:, 0], att[0, 0])  # per-sample, not one constant


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_threshold_metrics_reported_for_a_bundle_with_a_threshold(bundles, tmp_path):
    manifest, build, y = _new(tmp_path)
    res = run_predict(bundles["youden"], manifest, features_root=tmp_path / "features",
                      build_store=build, n_boot=100)
    rows = {m.metric: m for m in res.metrics}
    t = res.predictions
    pred_pos = t["predicted_label"] == "abnormal"
    assert rows["sensitivity@threshold"].value == pytest.approx(pred_pos[y].mean())
    assert rows["specificity@threshold"].value == pytest.approx((~pred_pos[~y]).mean())
    # beside the CV at the shipped rule: the threshold applied to each split's OOF predictions
    at_rule = bundles["youden"].card.cv_at_rule["metrics"]["sensitivity"]
    assert rows["sensitivity@threshold"].cv_mean == at_rule["mean"]
    assert rows["sensitivity@threshold"].cv_low == at_rule["ci95_low"]
    assert "sensitivity@threshold" not in {m.metric for m in run_predict(
        bundles["argmax"], manifest, features_root=tmp_path / "features", build_store=build,
        n_boot=0).metrics}


def test_drop_flag_needs_the_intervals_to_separate():
    from classify.bundle.predict import _flag

    assert _flag("roc_auc", 0.95, 0.90, 0.99, 0.97, 0.98) == "below CV"  # within noise
    assert _flag("roc_auc", 0.90, 0.85, 0.95, 0.97, 0.98) == "DROP"
    assert _flag("roc_auc", 0.975, 0.95, 0.99, 0.97, 0.98) == ""
    assert _flag("roc_auc", 0.90, float("nan"), float("nan"), 0.97, 0.98) == "DROP"  # no CI
    assert _flag("brier", 0.20, 0.15, 0.25, 0.05, 0.06) == "DROP"  # lower is better
    assert _flag("brier", 0.07, 0.05, 0.09, 0.05, 0.06) == "below CV"
