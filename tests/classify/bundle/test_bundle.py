"""Model bundles: final fit, exact round trip, safe loading (digests, trusted types, schema)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from classify.bundle.final import fit_final, select_cell
from classify.bundle.io import CARD_JSON, CARD_MD, MODEL_FILE, card_digest, load_bundle, read_card
from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import load_feature_set, run_benchmark
from pipeline.errors import BundleError, ConfigError, DataError
from pipeline.manifest import load_manifest

ATT = {"fusion": {"attention": {"epochs": 5, "dim": 4}},
       "classifier": {"xgboost": {"n_estimators": 20}}}


@pytest.fixture(scope="module")
def toy_module(tmp_path_factory):
    """The classify toy project (see tests/classify/conftest.py), built once for this module."""
    from tests.classify.conftest import N, toy_labels, write_manifest, write_store

    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(1)
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    img = rng.normal(size=(N, 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    txt = rng.normal(size=(N, 6)).astype(np.float32)
    txt[:, 0] += 0.8 * y
    write_store(root / "features", "img", "image", ids, img)
    write_store(root / "features", "txt", "text", ids, txt)
    return {"root": root, "manifest": write_manifest(root, ids, y), "ids": ids, "y": y,
            "img": img, "txt": txt}


@pytest.fixture(scope="module")
def benchmark_exp(toy_module):
    """A computed experiment: image-only, text-only and fused (concat, attention) cells."""
    root = toy_module["root"]
    exp = experiment_from_dict({
        "name": "toy", "dataset": "toyset", "manifest": str(toy_module["manifest"]),
        "features_root": str(root / "features"), "results_root": str(root / "results"),
        "positive_label": "abnormal", "stores": ["img", "txt"],
        "feature_sets": {"image": ["img"], "text": ["txt"], "fused": ["img", "txt"]},
        "fusions": ["single", "concat", "attention"], "samplers": ["smote"],
        "classifiers": ["logistic", "xgboost"], "cv": {"folds": 3, "repeats": 2, "seed": 0},
        "params": ATT, "n_jobs": 1,
    })
    run_benchmark(exp, n_jobs=1)
    return exp


def _X(exp, stores):
    fs, _ = load_feature_set(exp)
    cols, _ = fs.columns(stores)
    return np.asarray(fs.X[:, cols], dtype=np.float64)


@pytest.mark.parametrize("cell", ["fused/concat/smote/logistic", "fused/attention/smote/xgboost",
                                  "image/single/smote/xgboost"])
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_loaded_bundle_predicts_exactly_what_the_fitted_pipeline_predicts(benchmark_exp, tmp_path,
                                                                          cell):
    fit = fit_final(benchmark_exp, cell=cell, models_root=tmp_path / "models")
    bundle = load_bundle(fit.path)
    X = _X(benchmark_exp, fit.card.cell["spec"]["stores"])
    np.testing.assert_array_equal(bundle.estimator.predict_proba(X), fit.estimator.predict_proba(X))
    assert bundle.card.cell["label"] == cell
    assert bundle.card.training["n_samples"] == len(X)


def test_attention_bundle_keeps_learned_weights_as_arrays(benchmark_exp, tmp_path):
    fit = fit_final(benchmark_exp, cell="fused/attention/smote/logistic",
                    models_root=tmp_path / "m")
    fusion = load_bundle(fit.path).estimator.named_steps["fusion"]
    X = _X(benchmark_exp, ["img", "txt"])
    att = fusion.attention_weights(X)
    np.testing.assert_array_equal(att, fit.estimator.named_steps["fusion"].attention_weights(X))
    assert att.shape == (len(X), 2) and np.allclose(att.sum(axis=1), 1)


def test_bundle_holds_no_pickle(benchmark_exp, tmp_path):
    fit = fit_final(benchmark_exp, cell="fused/attention/smote/xgboost", models_root=tmp_path)
    assert sorted(p.name for p in fit.path.iterdir()) == sorted([MODEL_FILE, CARD_JSON, CARD_MD])
    with zipfile.ZipFile(fit.path / MODEL_FILE) as z:
        names = z.namelist()
        assert "schema.json" in names
        for name in names:
            data = z.read(name)
            if name.endswith(".npy"):
                np.load(io.BytesIO(data), allow_pickle=False)  # raises on object (pickled) arrays
            elif name.endswith(".bin"):  # XGBoost's booster in its own UBJSON model format
                assert data.startswith(b"{"), name
            else:
                assert name == "schema.json"
                json.loads(data)
            assert not data.startswith(b"\x80"), f"{name} starts like a pickle stream"


def test_card_records_what_predict_needs_and_the_evidence(benchmark_exp, tmp_path):
    fit = fit_final(benchmark_exp, best=True, feature_set="fused", metric="roc_auc",
                    models_root=tmp_path)
    card = read_card(fit.path)
    assert card.cell["spec"]["feature_set"] == "fused"
    assert [s.encoder_key for s in card.stores] == ["img", "txt"]
    assert {s.weights_sha256 for s in card.stores} == {"0" * 8}
    assert card.classes == ("abnormal", "normal") and card.positive_label == "abnormal"
    assert card.threshold.rule == "argmax" and card.threshold.value is None
    roc = card.cv["roc_auc"]
    assert roc["ci95_low"] < roc["mean"] < roc["ci95_high"] and roc["n_splits"] == 6
    assert card.training["manifest_sha256"] and card.training["n_samples"] == 120
    assert set(card.files) == {MODEL_FILE, CARD_MD}
    assert "scikit-learn" in card.versions and "skops" in card.versions
    md = (fit.path / CARD_MD).read_text()
    assert card.cell["label"] in md and "95% CI" in md
    # the practical-equivalence set it was chosen from, among the fused cells
    eq = card.equivalence
    assert eq["metric"] == "roc_auc" and eq["feature_set"] == "fused" and eq["rope"] == 0.01
    assert eq["best"] == card.cell["label"] and eq["chosen_is_best"] and eq["chosen_verdict"] == "best"
    fused = {"fused/concat/smote/logistic", "fused/concat/smote/xgboost",
             "fused/attention/smote/logistic", "fused/attention/smote/xgboost"}
    assert set(eq["equivalent"]) | set(eq["undecided"]) <= fused - {eq["best"]}
    assert "Practical equivalence on roc_auc" in md


def test_best_picks_the_highest_mean_metric(benchmark_exp):
    from classify.run.benchmark import load_benchmark

    bench = load_benchmark(benchmark_exp)
    chosen, how = select_cell(bench, best=True, metric="roc_auc")
    assert chosen.summary("roc_auc")[0] == max(c.summary("roc_auc")[0] for c in bench.cells)
    fused, _ = select_cell(bench, best=True, metric="brier", feature_set="fused")
    assert fused.spec.feature_set == "fused"
    assert fused.summary("brier")[0] == min(c.summary("brier")[0] for c in bench.cells
                                            if c.spec.feature_set == "fused")
    with pytest.raises(ConfigError, match="Did you mean 'fused/concat/smote/logistic'"):
        select_cell(bench, cell="fused/concat/smote/logistc")


def test_exclude_manifest_leaves_those_patients_out(benchmark_exp, toy_module, tmp_path):
    m = load_manifest(toy_module["manifest"])
    held = m.frame.iloc[:20].copy()  # patients p000..p009
    held.loc[held.index[:2], "sample_id"] = ["other-a", "other-b"]  # same patient, other ids
    from pipeline.manifest import Manifest, save_manifest

    path = save_manifest(Manifest("held", held, m.image_root, {}), tmp_path / "held.csv")
    fit = fit_final(benchmark_exp, cell="fused/concat/smote/logistic", exclude_manifest=path,
                    models_root=tmp_path)
    ex = fit.card.training["excluded"]
    assert ex["n_samples"] == 20 and ex["n_groups"] == 10  # the whole patients, not just ids
    assert fit.card.training["n_samples"] == 100
    assert fit.estimator.named_steps["sampler"].counts_before_ != {}
    assert sum(fit.estimator.named_steps["sampler"].counts_before_.values()) == 100


def test_exclude_everything_is_refused(benchmark_exp, toy_module, tmp_path):
    with pytest.raises(DataError, match="nothing is left"):
        fit_final(benchmark_exp, cell="fused/concat/smote/logistic",
                  exclude_manifest=toy_module["manifest"], models_root=tmp_path)


def test_existing_bundle_needs_force(benchmark_exp, tmp_path):
    root = tmp_path / "models"
    fit_final(benchmark_exp, cell="fused/concat/smote/logistic", models_root=root, name="m")
    with pytest.raises(BundleError, match="--force"):
        fit_final(benchmark_exp, cell="fused/concat/smote/logistic", models_root=root, name="m")
    again = fit_final(benchmark_exp, cell="fused/concat/smote/xgboost", models_root=root,
                      name="m", overwrite=True)
    assert load_bundle(again.path).card.cell["label"] == "fused/concat/smote/xgboost"
    assert sorted(p.name for p in root.iterdir()) == ["m"]  # no temporary folders left


# ----------------------------------------------------------------------------- refusals
@pytest.fixture
def bundle_path(benchmark_exp, tmp_path):
    return fit_final(benchmark_exp, cell="fused/concat/smote/logistic", models_root=tmp_path).path


def _rewrite_card(path, **changes):
    doc = json.loads((path / CARD_JSON).read_text())
    doc.update(changes)
    doc["card_sha256"] = card_digest(doc)
    (path / CARD_JSON).write_text(json.dumps(doc))


def test_tampered_model_file_is_refused(bundle_path):
    f = bundle_path / MODEL_FILE
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.skops was modified") as err:
        load_bundle(bundle_path)
    assert err.value.exit_code == 2


def test_edited_card_is_refused(bundle_path):
    doc = json.loads((bundle_path / CARD_JSON).read_text())
    doc["threshold"] = {"rule": "fixed", "value": 0.01, "source": "edited"}
    (bundle_path / CARD_JSON).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="modified after it was written"):
        load_bundle(bundle_path)


def test_deleted_markdown_card_is_refused(bundle_path):
    (bundle_path / CARD_MD).unlink()
    with pytest.raises(BundleError, match="model_card.md.*missing"):
        load_bundle(bundle_path)


def test_newer_bundle_schema_is_refused_with_a_clear_message(bundle_path):
    _rewrite_card(bundle_path, bundle_schema=99)
    with pytest.raises(BundleError, match="bundle schema 99, newer than this pipeline reads"):
        load_bundle(bundle_path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)


class Booby:
    """A type that is not on the trusted list; records whether any of its code ran."""

    ran = False

    def __setstate__(self, state):
        Booby.ran = True
        self.__dict__.update(state)

    def __init__(self):
        Booby.ran = True


def test_unknown_type_is_refused_by_name_and_never_runs(bundle_path):
    import hashlib

    import skops.io as sio

    from classify.bundle.io import load_bundle as load

    pipe = load(bundle_path).estimator
    pipe.named_steps["classifier"].extra_ = Booby()
    sio.dump(pipe, bundle_path / MODEL_FILE)
    Booby.ran = False
    digest = hashlib.sha256((bundle_path / MODEL_FILE).read_bytes()).hexdigest()
    doc = json.loads((bundle_path / CARD_JSON).read_text())
    _rewrite_card(bundle_path, files={**doc["files"], MODEL_FILE: digest})
    with pytest.raises(BundleError, match=r"not on the trusted list: .*test_bundle\.Booby") as err:
        load_bundle(bundle_path)
    assert err.value.exit_code == 2
    assert not Booby.ran


def _combos():
    from classify.models.classifiers import CLASSIFIERS
    from classify.models.fusion import FUSIONS
    from classify.models.samplers import SAMPLERS

    def own(registry):  # the project's components, not ones other test modules register
        return [n for n in registry.names()
                if registry.entry(n).obj.__module__.startswith("classify.")]

    out = [("concat", "smote", c, {}) for c in own(CLASSIFIERS)]
    out += [(f, "smote", "logistic", {}) for f in own(FUSIONS) if f != "concat"]
    out += [("concat", s, "logistic", {}) for s in own(SAMPLERS) if s != "smote"]
    out += [("concat", "class_weight", c, {}) for c in ("xgboost", "mlp", "voting_hard")]
    out += [("concat", "smote", "logistic", {"fusion": {"reduce": "ica", "n_components": 3}}),
            ("concat", "smote", "mlp", {"classifier": {"solver": "sgd", "max_iter": 20}})]
    return out


@pytest.mark.parametrize("fusion,sampler,clf,params", _combos())
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_every_component_round_trips_under_the_trusted_list(tmp_path, fusion, sampler, clf, params):
    """A type missing from the trusted list would make fit-final refuse its own bundle."""
    import warnings

    import skops.io as sio

    from classify.bundle.io import check_model_types
    from classify.models.cell_pipeline import build_pipeline
    from classify.results.types import CellSpec

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 8))
    y = (X[:, 0] + X[:, 5] > 0.8).astype(int)
    one = fusion == "single"
    spec = CellSpec("f", ("a",) if one else ("a", "b"), ("image",) if one else ("image", "text"),
                    fusion, sampler, clf, params)
    blocks = (("a", 0, 8),) if one else (("a", 0, 4), ("b", 4, 8))
    pipe = build_pipeline(spec, blocks)
    if fusion == "attention":
        pipe.set_params(fusion__epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        pipe.fit(X, y)
    path = tmp_path / "m.skops"
    sio.dump(pipe, path)
    loaded = sio.load(path, trusted=check_model_types(path))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_importing_the_bundle_package_loads_neither_torch_nor_skops():
    import subprocess
    import sys

    code = ("import sys; import classify.bundle, classify.bundle.render; "
            "assert 'torch' not in sys.modules and 'skops' not in sys.modules, 'eager import'")
    subprocess.run([sys.executable, "-c", code], check=True)
