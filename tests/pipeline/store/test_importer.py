"""`pipeline import`: NPY/NPZ/Parquet/CSV -> stores with provenance; bad input exits 2 naming the row."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, DataError, StoreError
from pipeline.manifest import Manifest, save_manifest
from pipeline.store.feature_store import FeatureStore
from pipeline.store.importer import ImportRequest, run_import
from tests.reliability._cli import run

IDS = [f"s{i}" for i in range(6)]


@pytest.fixture
def manifest(tmp_path) -> Manifest:  # noqa: ANN001
    frame = pd.DataFrame({
        "sample_id": IDS, "patient_id": IDS, "image_path": [f"{s}.png" for s in IDS],
        "report_id": IDS, "findings": "", "impression": "", "report_text": "", "tags": "normal",
        "label": ["normal", "abnormal"] * 3, "label_source": "external", "view": "PA"})
    return Manifest("imp", frame, tmp_path)


def _X(n: int = 6, d: int = 4) -> np.ndarray:
    return np.arange(n * d, dtype=np.float32).reshape(n, d) / 10


def _import(tmp_path, manifest, path, **kw):  # noqa: ANN001, ANN202
    return run_import(ImportRequest(path=path, key=kw.pop("key", "ext"), **kw), manifest,
                      tmp_path / "features")


def test_npy_with_ids_file_records_provenance(tmp_path, manifest) -> None:
    np.save(tmp_path / "emb.npy", _X())
    (tmp_path / "ids.txt").write_text("\n".join(IDS) + "\n")
    s = _import(tmp_path, manifest, tmp_path / "emb.npy", ids_path=tmp_path / "ids.txt",
                model="finetuned-densenet@cluster", note="run 17")
    store = FeatureStore(s.path)
    assert store.verified and store.kind == "embedding" and store.dim == 4
    np.testing.assert_allclose(store.read(["s3"]), _X()[[3]])
    (rec,) = store.provenance["imports"]
    assert rec["sha256"] == hashlib.sha256((tmp_path / "emb.npy").read_bytes()).hexdigest()
    assert (rec["shape"], rec["dtype"], rec["note"], rec["format"]) == \
        ([6, 4], "float32", "run 17", "npy")
    assert store.provenance["weights_name"] == "finetuned-densenet@cluster"


def test_reimport_of_a_larger_file_adds_only_new_ids(tmp_path, manifest) -> None:
    np.savez(tmp_path / "a.npz", X=_X()[:4], ids=np.array(IDS[:4]))
    assert _import(tmp_path, manifest, tmp_path / "a.npz").n_added == 4
    np.savez(tmp_path / "b.npz", embeddings=_X(), sample_id=np.array(IDS))
    s = _import(tmp_path, manifest, tmp_path / "b.npz", note="two more")
    assert (s.n_added, s.n_already, s.n_rows) == (2, 4, 6)
    store = FeatureStore(s.path)
    assert [r["file"] for r in store.provenance["imports"]] == ["a.npz", "b.npz"]
    again = _import(tmp_path, manifest, tmp_path / "b.npz")
    assert again.n_added == 0
    assert len(FeatureStore(s.path).provenance["imports"]) == 2  # nothing added, nothing recorded
    with pytest.raises(StoreError, match="different encoder setup"):
        np.savez(tmp_path / "c.npz", X=np.ones((1, 3)), ids=np.array(["s0"]))
        _import(tmp_path, manifest, tmp_path / "c.npz")


def test_parquet_list_column_and_numeric_columns(tmp_path, manifest) -> None:
    pd.DataFrame({"sample_id": IDS, "vec": list(_X())}).to_parquet(tmp_path / "l.parquet")
    s = _import(tmp_path, manifest, tmp_path / "l.parquet", key="lst")
    np.testing.assert_allclose(FeatureStore(s.path).read(IDS), _X())
    wide = pd.DataFrame(_X(), columns=[f"d{j}" for j in range(4)]).assign(sample_id=IDS)
    wide.to_parquet(tmp_path / "w.parquet")
    s = _import(tmp_path, manifest, tmp_path / "w.parquet", key="wide")
    np.testing.assert_allclose(FeatureStore(s.path).read(IDS), _X())


def _csv(tmp_path, rows: list[str]):  # noqa: ANN001, ANN202
    path = tmp_path / "emb.csv"
    path.write_text("sample_id,d0,d1,d2\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("rows", "message"), [
    (["s0,1,2,3", "s9,1,2,3"], r"line 3 \(sample_id 's9'\) is not a sample of"),
    (["s0,1,2,3", "s1,1,2,3", "s0,4,5,6"], r"line 4 \(sample_id 's0'\) repeats the id of line 2"),
    (["s0,1,2,3", "s1,1,2"], r"line 3 \(sample_id 's1'\) is ragged or incomplete"),
    (["s0,1,2,3", "s1,1,2,3,4"], r"ragged CSV"),
    (["s0,1,2,3", "s1,1,abc,3"], r"line 3 \(sample_id 's1'\) has the non-numeric value 'abc'"),
    (["s0,1,2,3", "s1,1,nan,3"], r"line 3 \(sample_id 's1'\)"),
])
def test_bad_csv_is_refused_naming_the_row(tmp_path, manifest, rows, message) -> None:
    with pytest.raises(DataError, match=message) as err:
        _import(tmp_path, manifest, _csv(tmp_path, rows))
    assert err.value.exit_code == 2
    assert not (tmp_path / "features" / "imp" / "ext.h5").exists()


def test_bad_matrices_are_refused_naming_the_row(tmp_path, manifest) -> None:
    X = _X()
    X[4, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, ids=np.array(IDS))
    with pytest.raises(DataError, match=r"row 4 \(sample_id 's4'\) has a NaN/inf value"):
        _import(tmp_path, manifest, tmp_path / "nan.npz")
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = [1.0, 2.0], [1.0]
    np.save(tmp_path / "ragged.npy", ragged, allow_pickle=True)
    (tmp_path / "ids.txt").write_text("s0\ns1\n")
    with pytest.raises(DataError, match="without unpickling"):
        _import(tmp_path, manifest, tmp_path / "ragged.npy", ids_path=tmp_path / "ids.txt")
    pd.DataFrame({"sample_id": IDS[:2], "vec": [[1.0, 2.0], [1.0]]}).to_parquet(
        tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"row 1 \(sample_id 's1'\) is ragged"):
        _import(tmp_path, manifest, tmp_path / "r.parquet")
    np.save(tmp_path / "emb.npy", _X())
    with pytest.raises(ConfigError, match="needs --ids"):
        _import(tmp_path, manifest, tmp_path / "emb.npy")


def test_tabular_csv_import(tmp_path, manifest) -> None:
    path = tmp_path / "labs.csv"
    path.write_text("sample_id,crp,sex\ns0,12,female\ns1,,male\ns2,3.5,\n")
    s = _import(tmp_path, manifest, path, key="labs", kind="tabular", note="LIS export")
    store = FeatureStore(s.path)
    assert store.kind == "tabular" and store.modality == "tabular"
    assert [c.type for c in store.schema.columns] == ["numeric", "categorical"]
    assert store.provenance["imports"][0]["note"] == "LIS export"
    X = store.read(["s0", "s1", "s2"])
    assert np.isnan(X[1, 0]) and np.isnan(X[2, 1])
    path.write_text("sample_id,crp,sex\ns3,high,female\n")
    with pytest.raises(DataError, match=r"line 2 \(sample_id 's3'\).*'high'"):
        _import(tmp_path, manifest, path, key="labs2", kind="tabular", numeric=("crp",))


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_cli_exits_2_naming_the_row(tmp_path, manifest) -> None:
    mpath = save_manifest(manifest, tmp_path / "manifests" / "imp.csv")
    bad = _csv(tmp_path, ["s0,1,2,3", "s1,1,zz,3"])
    proc = run("import", bad, "--manifest", mpath, "--key", "ext", "--artifacts",
               tmp_path / "art")
    assert proc.returncode == 2, proc.stderr
    assert "line 3 (sample_id 's1')" in proc.stderr and "'zz'" in proc.stderr
    good = _csv(tmp_path, ["s0,1,2,3", "s1,1,2,3"])
    proc = run("import", good, "--manifest", mpath, "--key", "ext", "--modality", "image",
               "--artifacts", tmp_path / "art", "--note", "from the cluster")
    assert proc.returncode == 0, proc.stderr
    assert "2 rows added" in proc.stdout
