"""FeatureStore / StoreWriter: append-only by id, resumable, atomic, select-by-id."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.errors import StoreError, StoreLockedError
from pipeline.store import FeatureStore, StoreWriter, list_stores, store_path


def _prov(**over):
    prov = {
        "encoder_key": "enc",
        "modality": "image",
        "architecture": "toy",
        "weights_name": "toy-weights",
        "weights_sha256": "abc",
        "preprocessing": {"size": 8},
        "dim": 4,
        "dataset": "ds",
        "trained_on": ["imagenet"],
    }
    prov.update(over)
    return prov


def _vec(ids):
    # deterministic vector per id
    return np.stack([np.full(4, float(int(i[1:])), dtype=np.float32) + np.arange(4) for i in ids])


def test_write_read_select_by_id(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    ids = [f"s{i}" for i in range(10)]
    with StoreWriter(path, _prov()) as w:
        w.add(ids[:6], {"X": _vec(ids[:6])})
        w.flush()
        w.add(ids[6:], {"X": _vec(ids[6:])})
    store = FeatureStore(path)
    assert len(store) == 10 and store.dim == 4
    assert store.provenance["weights_sha256"] == "abc"
    assert store.provenance["preprocessing"] == {"size": 8}
    assert store.provenance["schema_version"] == 1
    assert "numpy" in store.provenance["versions"]
    order = ["s7", "s2", "s9", "s0"]
    np.testing.assert_array_equal(store.read(order), _vec(order))
    np.testing.assert_array_equal(store.read(["s3"]), _vec(["s3"]))
    with pytest.raises(StoreError, match="s99"):
        store.read(["s1", "s99"])


def test_rerun_skips_existing_and_appends_only_new(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(["s1", "s2"], {"X": _vec(["s1", "s2"])})
    with StoreWriter(path, _prov()) as w:
        assert w.done_ids == {"s1", "s2"}
        w.add(["s2", "s3"], {"X": _vec(["s2", "s3"]) + 100})  # s2 already stored: ignored
        assert w.n_added == 1
    store = FeatureStore(path)
    assert sorted(store.ids.tolist()) == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(store.read(["s2"]), _vec(["s2"]))


def test_identity_tracks_content_not_order_or_time(tmp_path):
    a, b = store_path(tmp_path, "ds", "a"), store_path(tmp_path, "ds", "b")
    ids = ["s1", "s2", "s3"]
    with StoreWriter(a, _prov(encoder_key="same")) as w:
        w.add(ids, {"X": _vec(ids)})
    with StoreWriter(b, _prov(encoder_key="same")) as w:
        w.add(ids[::-1], {"X": _vec(ids[::-1])})
    assert FeatureStore(a).identity == FeatureStore(b).identity
    with StoreWriter(b, _prov(encoder_key="same")) as w:
        w.add(["s4"], {"X": _vec(["s4"])})
    assert FeatureStore(a).identity != FeatureStore(b).identity


def test_unmerged_parts_from_a_killed_run_are_recovered(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    w = StoreWriter(path, _prov()).__enter__()
    w.add(["s1", "s2"], {"X": _vec(["s1", "s2"])})
    w.flush()
    w.add(["s3"], {"X": _vec(["s3"])})  # never flushed: lost, like a batch in flight
    w._release()  # simulate the process dying: no merge
    # the empty store created at open stays readable; the parts are not in it yet
    assert len(FeatureStore(path)) == 0
    with StoreWriter(path, _prov()) as w2:
        assert w2.done_ids == {"s1", "s2"}
    assert sorted(FeatureStore(path).ids.tolist()) == ["s1", "s2"]
    assert not path.with_name(path.name + ".parts").exists()


def test_merge_is_idempotent_when_parts_outlive_the_replace(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(["s1"], {"X": _vec(["s1"])})
        w.flush()
        parts = path.with_name(path.name + ".parts")
        saved = {p.name: p.read_bytes() for p in parts.glob("part-*.h5")}
    # killed after os.replace but before the parts were deleted
    parts.mkdir()
    for name, data in saved.items():
        (parts / name).write_bytes(data)
    with StoreWriter(path, _prov()):
        pass
    assert FeatureStore(path).ids.tolist() == ["s1"]


def test_failed_items_are_recorded_and_retried(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(["s1"], {"X": _vec(["s1"])})
        w.add_failed("s2", "truncated PNG")
        bad = _vec(["s3"])
        bad[0, 1] = np.nan
        w.add(["s3"], {"X": bad})
    store = FeatureStore(path)
    assert store.failed == {"s2": "truncated PNG", "s3": "encoder produced NaN/inf values"}
    with StoreWriter(path, _prov()) as w:
        assert "s2" not in w.done_ids  # failed ids are retried
        w.add(["s2"], {"X": _vec(["s2"])})
    assert FeatureStore(path).failed == {"s3": "encoder produced NaN/inf values"}


def test_layers_are_stored_and_read(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov(layers=["block3"])) as w:
        w.add(["s1", "s2"], {"X": _vec(["s1", "s2"]), "block3": np.ones((2, 3))})
    store = FeatureStore(path)
    assert store.layers == ["block3"]
    assert store.read(["s2"], layer="block3").shape == (1, 3)
    with pytest.raises(StoreError, match="no layer"):
        store.read(layer="block9")


def test_different_weights_refuse_to_append(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(["s1"], {"X": _vec(["s1"])})
    with pytest.raises(StoreError, match="weights_sha256"):
        with StoreWriter(path, _prov(weights_sha256="other")):
            pass


def test_second_writer_gets_a_clear_lock_error(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()):
        with pytest.raises(StoreLockedError, match="another process"):
            with StoreWriter(path, _prov()):
                pass


def test_newer_schema_and_garbage_files_are_rejected(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(["s1"], {"X": _vec(["s1"])})
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(StoreError, match="newer"):
        FeatureStore(path)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(StoreError, match="cannot read"):
        FeatureStore(junk)
    with pytest.raises(StoreError, match="does not exist"):
        FeatureStore(tmp_path / "missing.h5")


def test_list_stores(tmp_path):
    for key in ("a", "b"):
        with StoreWriter(store_path(tmp_path, "ds", key), _prov(encoder_key=key)) as w:
            w.add(["s1"], {"X": _vec(["s1"])})
    assert [s.encoder_key for s in list_stores(tmp_path, "ds")] == ["a", "b"]
