"""Tabular stores: a declared store kind (typed columns, NaN = missing), verified on open like embeddings."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError, StoreError
from pipeline.store.feature_store import FeatureStore, StoreWriter, store_path
from pipeline.store.kinds import kind_summary
from pipeline.store.tabular_writer import table_from_frame, tabular_provenance, write_store


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": ["a", "b", "c", "d"],
                         "crp": ["12.5", "", "3", "40"],
                         "sex": ["female", "male", "", "female"],
                         "fever": [1, 0, None, 1]})


def _write(tmp_path, frame=None, key="labs"):  # noqa: ANN001, ANN202
    table = table_from_frame(_frame() if frame is None else frame, source="labs.csv")
    prov = tabular_provenance(key, table, dataset="ds", modality="tabular",
                              architecture="table", weights_name="labs", preprocessing={})
    path = store_path(tmp_path, "ds", key)
    return write_store(path, prov, list(table.ids), table.values), table


def test_types_vocabularies_and_missing_values_survive_the_store(tmp_path) -> None:
    summary, table = _write(tmp_path)
    assert summary.n_added == 4
    store = FeatureStore(summary.path)  # full verification, NaN allowed
    assert store.verified and store.kind == "tabular"
    cols = {c.name: c for c in store.schema.columns}
    assert (cols["crp"].type, cols["sex"].type, cols["fever"].type) == \
        ("numeric", "categorical", "numeric")
    assert cols["sex"].categories == ("female", "male")
    X = store.read(["a", "b", "c"])
    np.testing.assert_array_equal(X[0], [12.5, 0.0, 1.0])
    assert np.isnan(X[1, 0]) and X[1, 1] == 1.0 and np.isnan(X[2, 1]) and np.isnan(X[2, 2])
    assert store.provenance["missing_per_column"] == {"crp": 1, "sex": 1, "fever": 1}
    assert kind_summary(store.provenance) == "tabular (2 numeric, 1 categorical)"


def test_embedding_stores_still_refuse_nan(tmp_path) -> None:
    prov = {"encoder_key": "e", "modality": "image", "architecture": "t", "weights_name": "w",
            "dim": 2}
    path = store_path(tmp_path, "ds", "e")
    with StoreWriter(path, prov) as w:
        w.add(["a", "b"], {"X": np.array([[1.0, np.nan], [1.0, 2.0]])})
    store = FeatureStore(path)
    assert store.kind == "embedding" and store.ids.tolist() == ["b"]
    assert "NaN" in store.failed["a"]


@pytest.mark.parametrize(("value", "problem"), [
    (np.inf, "infinite value in column 'crp'"),
    (7.0, "column 'sex' holds 7.0"),
])
def test_verification_on_open_catches_invalid_tabular_values(tmp_path, value, problem) -> None:
    summary, _ = _write(tmp_path)
    col = 0 if np.isinf(value) else 1
    with h5py.File(summary.path, "r+") as f:
        f["X"][0, col] = value
    with pytest.raises(StoreError, match="invalid values") as err:
        FeatureStore(summary.path)
    assert problem in str(err.value) and err.value.exit_code == 2


def test_verification_on_open_catches_a_broken_column_declaration(tmp_path) -> None:
    import json

    summary, _ = _write(tmp_path)
    with h5py.File(summary.path, "r+") as f:
        prov = json.loads(f.attrs["provenance_json"])
        prov["columns"][1].pop("categories")
        f.attrs["provenance_json"] = json.dumps(prov)
    with pytest.raises(StoreError, match="categorical column 'sex' needs"):
        FeatureStore(summary.path, verify=False)


def test_append_needs_the_same_columns(tmp_path) -> None:
    _write(tmp_path)
    more = pd.DataFrame({"sample_id": ["e"], "crp": ["1"], "sex": ["other"], "fever": [0]})
    with pytest.raises(StoreError, match="columns"):
        _write(tmp_path, more)  # a new category changes the declared columns
    same = pd.DataFrame({"sample_id": ["a", "e"], "crp": ["1", "2"], "sex": ["male", "female"],
                         "fever": [0, 1]})
    summary, _ = _write(tmp_path, same)
    assert (summary.n_added, summary.n_already, summary.n_rows) == (1, 1, 5)


def test_table_errors_name_the_row() -> None:
    bad = _frame().assign(crp=["12.5", "high", "3", "40"])
    with pytest.raises(DataError, match=r"line 3 \(sample_id 'b'\).*'high'.*'crp'"):
        table_from_frame(bad, source="labs.csv", numeric=["crp"])
    dup = _frame().assign(sample_id=["a", "b", "a", "d"])
    with pytest.raises(DataError, match=r"line 4 \(sample_id 'a'\) repeats the id of line 2"):
        table_from_frame(dup, source="labs.csv")
    with pytest.raises(DataError, match=r"line 5 \(sample_id 'd'\) is not a sample"):
        table_from_frame(_frame(), source="labs.csv", known_ids=["a", "b", "c"])
    inf = _frame().assign(crp=["1", "inf", "2", "3"])
    with pytest.raises(DataError, match="infinite"):
        table_from_frame(inf, source="labs.csv")
