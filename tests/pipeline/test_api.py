"""pipeline/api.py and `pipeline predict --csv`: the bundle's recorded column mapping is applied to
a new export, its clinical columns are encoded as in training, and every prediction row carries
the export's identifiers, the decision rule and the threshold. Extraction is a stand-in that
writes toy stores (the real-encoder path is tests/docs/test_own_data.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipeline import api, cli
from pipeline.store.feature_store import FeatureStore, StoreWriter, store_path

MAPPING = ("sample_id=Accession,patient_id=MRN,image_path=FilePath,report_text=ReportText,"
           "label=Finding")
N = 90


def _export(n: int, start: int, labelled: bool) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    pos = rng.random(n) < 0.3
    return pd.DataFrame({
        "MRN": [f"M{(start + i) // 2:04d}" for i in range(n)],
        "Accession": [f"A{start + i:05d}" for i in range(n)],
        "StudyDate": "2025-05-05", "FilePath": [f"f/{start + i}.jpg" for i in range(n)],
        "ReportText": ["INDICATION: Cough.\n\nFINDINGS: Big heart." if p else
                       "INDICATION: Cough.\n\nFINDINGS: Normal." for p in pos],
        "PatientAge": [str(30 + i % 50) for i in range(n)],
        "PatientSex": ["F" if i % 3 else "M" for i in range(n)],
        **({"Finding": np.where(pos, "Yes", "No")} if labelled else {}),
    })


def _toy_store(features, dataset, key, modality, ids, X):  # noqa: ANN001, ANN202
    prov = {"encoder_key": key, "modality": modality, "architecture": "toy",
            "weights_name": f"{key}-w", "weights_sha256": "0" * 8, "preprocessing": {},
            "dim": int(X.shape[1]), "dataset": dataset, "trained_on": []}
    path = store_path(features, dataset, key)
    with StoreWriter(path, prov) as w:
        w.add(list(ids), {"X": X.astype(np.float32)})
    return path


def _vectors(manifest) -> np.ndarray:  # noqa: ANN001
    y = (manifest.frame["findings"] == "Big heart.").to_numpy(dtype=float)
    rng = np.random.default_rng(len(y))
    return rng.normal(size=(len(y), 6)) + 1.5 * y[:, None]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """An export -> `pipeline data csv` (mapped, clinical store) -> toy image store ->
    classify -> fit-final, all under one artifacts folder."""
    tmp = tmp_path_factory.mktemp("site")
    art = tmp / "art"
    _export(N, 0, True).to_csv(tmp / "export.csv", index=False)
    assert cli.main(["data", "csv", "--name", "site", "--path", str(tmp / "export.csv"),
                     "--columns", MAPPING, "--label-source", "report", "--positive-label", "Yes",
                     "--tabular", "PatientAge,PatientSex", "--skip-image-check",
                     "--artifacts", str(art)]) == 0
    from pipeline.manifest import load_manifest

    manifest = load_manifest(art / "manifests" / "site.csv")
    _toy_store(art / "features", "site", "img", "image", manifest.ids, _vectors(manifest))
    toml = tmp / "site.toml"
    toml.write_text('name = "site"\ndataset = "site"\npositive_label = "Yes"\n'
                    'stores = ["img", "clinical"]\nfusions = ["concat"]\nsamplers = ["none"]\n'
                    'classifiers = ["logistic"]\nn_jobs = 1\n[feature_sets]\n'
                    'fused = ["img", "clinical"]\n[cv]\nfolds = 3\nrepeats = 1\nseed = 0\n')
    result = api.classify(toml, artifacts=art)
    assert [c.label for c in result.cells] == ["fused/concat/none/logistic"]
    assert cli.main(["fit-final", "--config", str(toml), "--cell", "fused/concat/none/logistic",
                     "--name", "m", "--threshold", "0.4", "--artifacts", str(art)]) == 0
    return SimpleNamespace(tmp=tmp, art=art, model=art / "models" / "m")


@pytest.fixture
def fake_extract(monkeypatch):
    calls = []

    def extract_like(manifest, record, features_root, **options):  # noqa: ANN001, ANN003
        calls.append(record["encoder_key"])
        path = _toy_store(features_root, manifest.name, record["encoder_key"], "image",
                          manifest.ids, _vectors(manifest))
        return SimpleNamespace(store=path, failed={}, render=lambda: "toy store")

    import extract.reproduce

    monkeypatch.setattr(extract.reproduce, "extract_like", extract_like)
    return calls


def test_predict_csv_applies_the_recorded_mapping_and_carries_identifiers(project, fake_extract,
                                                                            capsys):
    new = _export(20, 1000, labelled=False)
    new.to_csv(project.tmp / "new_cases.csv", index=False)
    code = cli.main(["predict", "--model", str(project.model), "--csv",
                     str(project.tmp / "new_cases.csv"), "--bootstrap", "0",
                     "--artifacts", str(project.art)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert fake_extract == ["img"] and "no labels" in out
    pred = pd.read_csv(project.art / "predictions" / "m" / "new_cases.csv", dtype=str,
                       keep_default_na=False)
    assert pred["Accession"].tolist() == new["Accession"].tolist()
    assert pred["MRN"].tolist() == new["MRN"].tolist() and "StudyDate" in pred.columns
    assert {"ReportText", "PatientAge", "Finding"}.isdisjoint(pred.columns)
    assert set(pred["decision_rule"]) == {"fixed"} and set(pred["threshold"]) == {"0.4"}
    assert (pred["status"] == "ok").all()
    clinical = FeatureStore(project.art / "features" / "new_cases" / "clinical.h5")
    trained = FeatureStore(project.art / "features" / "site" / "clinical.h5")
    assert clinical.provenance["preprocessing"] == trained.provenance["preprocessing"]


def test_predict_dataframe_scores_only_when_labels_are_given(project, fake_extract):
    labelled = _export(30, 2000, labelled=True)
    res = api.predict_csv(project.model, _save(labelled, project.tmp / "lab.csv"),
                          artifacts=project.art, n_boot=0)
    assert res.n_labelled == 30 and res.metrics is not None
    frame = api.predict(project.model, labelled.drop(columns=["Finding"]), image_root=project.tmp,
                        name="nolab", artifacts=project.art, n_boot=0)
    assert len(frame) == 30 and frame["Accession"].tolist() == labelled["Accession"].tolist()
    assert frame["probability"].round(6).tolist() == res.predictions["probability"].round(6).tolist()


def test_unlabelled_two_step_route_carries_identifiers(project, fake_extract, capsys):
    new = _export(10, 3000, labelled=False)
    _save(new, project.tmp / "two.csv")
    assert cli.main(["data", "csv", "--name", "two", "--path", str(project.tmp / "two.csv"),
                     "--columns", MAPPING.rsplit(",", 1)[0], "--tabular", "PatientAge,PatientSex",
                     "--unlabelled", "--skip-image-check", "--artifacts", str(project.art)]) == 0
    assert "unlabelled: new cases to predict, every row kept (10 without a label)" in (
        capsys.readouterr().out)
    code = cli.main(["predict", "--model", str(project.model), "--manifest",
                     str(project.art / "manifests" / "two.csv"), "--bootstrap", "0",
                     "--artifacts", str(project.art)])
    assert code == 0, capsys.readouterr().err
    pred = pd.read_csv(project.art / "predictions" / "m" / "two.csv", dtype=str)
    assert pred["MRN"].tolist() == new["MRN"].tolist() and len(pred) == 10


def test_predict_csv_refuses_the_training_name(project, fake_extract):
    from pipeline.errors import ManifestError

    with pytest.raises(ManifestError, match="pass --name"):
        api.predict_csv(project.model, _save(_export(4, 4000, False), project.tmp / "site.csv"),
                        artifacts=project.art)


def _save(frame: pd.DataFrame, path):  # noqa: ANN001, ANN202
    frame.to_csv(path, index=False)
    return path


def test_the_recorded_positive_label_is_the_experiments_default(project):
    """`--positive-label No` (here the majority) decides the positive class when the
    experiment names none; without it the minority class would be chosen."""
    from classify.config.experiment import load_experiment
    from classify.run.benchmark import load_feature_set
    from pipeline.manifest import load_manifest

    assert cli.main(["data", "csv", "--name", "neg", "--path", str(project.tmp / "export.csv"),
                     "--columns", MAPPING, "--positive-label", "No", "--skip-image-check",
                     "--artifacts", str(project.art)]) == 0
    manifest = load_manifest(project.art / "manifests" / "neg.csv")
    _toy_store(project.art / "features", "neg", "img", "image", manifest.ids, _vectors(manifest))
    toml = project.tmp / "neg.toml"
    toml.write_text('name = "neg"\ndataset = "neg"\nstores = ["img"]\n')
    fs, _ = load_feature_set(load_experiment(toml, artifacts=project.art))
    assert fs.report.positive_label == "No"
