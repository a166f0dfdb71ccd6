"""FeatureStore / StoreWriter: append-only by id, resumable, atomic, select-by-id."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.errors import StoreError, StoreLockedError
from pipeline.store.feature_store import FeatureStore, StoreWriter, list_stores, store_path


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


# --- content identity and digest ------------------------------------------------------
def _one_store(path, ids=("s1", "s2", "s3"), **prov):
    with StoreWriter(path, _prov(**prov)) as w:
        w.add(list(ids), {"X": _vec(list(ids))})
    return FeatureStore(path)


def test_store_records_content_id_and_a_real_sha256_digest(tmp_path):
    store = _one_store(store_path(tmp_path, "ds", "enc"))
    assert store.verified
    with h5py.File(store.path, "r") as f:
        assert "content_sha256" not in f.attrs  # renamed: it never was a SHA-256
        assert f.attrs["content_id"] == store.content_id
        assert f.attrs["content_digest"] == store.content_digest
    assert len(store.content_id.split("-")[0]) == 32 and store.content_id.endswith("-3")
    algo, hexdigest = store.content_digest.split(":")
    assert algo == "sha256" and len(hexdigest) == 64
    assert FeatureStore(store.path).content_digest == store.content_digest  # stable on re-open


def test_digest_covers_ids_vectors_provenance_and_failed_list(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    digest = _one_store(path).content_digest
    edits = {
        "X": lambda f: f["X"].__setitem__((1, 2), f["X"][1, 2] + 1e-3),
        "ids": lambda f: f["ids"].__setitem__(0, "s9"),
        "provenance": lambda f: f.attrs.__setitem__(
            "provenance_json", f.attrs["provenance_json"].replace('"toy"', '"toy2"')),
        "content_id": lambda f: f.attrs.__setitem__("content_id", "0" * 32 + "-3"),
        "failed": lambda f: (f.__delitem__("failed_ids"), f.create_dataset(
            "failed_ids", data=np.asarray(["s7"], dtype=object), dtype=h5py.string_dtype()),
            f.__delitem__("failed_reasons"), f.create_dataset(
            "failed_reasons", data=np.asarray(["x"], dtype=object), dtype=h5py.string_dtype())),
    }
    for what, edit in edits.items():
        copy = tmp_path / f"{what}.h5"
        copy.write_bytes(path.read_bytes())
        with h5py.File(copy, "r+") as f:
            edit(f)
        with pytest.raises(StoreError, match="does not match the digest") as exc:
            FeatureStore(copy)
        assert str(copy) in str(exc.value) and "--rebuild" in str(exc.value), what
        FeatureStore(copy, verify=False)  # metadata still readable, e.g. for `pipeline list`
    assert FeatureStore(path).content_digest == digest


def test_identity_is_unchanged_by_the_rename_and_the_new_digest(tmp_path):
    """Stores written before the rename carry ``content_sha256`` and no digest: same
    identity (so cached cells are reused), a warning, and a writer adds the digest."""
    path = store_path(tmp_path, "ds", "enc")
    new = _one_store(path)
    identity, cid = new.identity, new.content_id
    with h5py.File(path, "r+") as f:  # turn it into a store of the previous version
        f.attrs["content_sha256"] = f.attrs["content_id"]
        del f.attrs["content_id"], f.attrs["content_digest"]
    old = FeatureStore(path)
    assert old.content_id == cid and old.identity == identity
    assert old.content_digest is None and not old.verified
    with StoreWriter(path, _prov()):
        pass  # nothing added: the writer re-finalises the store with a digest
    again = FeatureStore(path)
    assert again.verified and again.identity == identity and again.content_id == cid


def test_verification_catches_duplicates_width_types_and_bad_attributes(tmp_path):
    import pickle

    path = store_path(tmp_path, "ds", "enc")
    _one_store(path)

    def damaged(name, edit):
        copy = tmp_path / f"{name}.h5"
        copy.write_bytes(path.read_bytes())
        with h5py.File(copy, "r+") as f:
            edit(f)
        with pytest.raises(StoreError) as exc:
            FeatureStore(copy)
        assert str(copy) in str(exc.value)
        return str(exc.value)

    assert "more than once" in damaged("dup", lambda f: f["ids"].__setitem__(2, "s1"))
    assert "narrower than the recorded dim 4" in damaged("narrow", lambda f: f["X"].resize(3, 1))
    assert "wider than the recorded dim 4" in damaged("wide", lambda f: f["X"].resize(5, 1))

    def strings(f):
        del f["X"]
        f.create_dataset("X", data=np.asarray([["a"] * 4] * 3, dtype=object),
                         dtype=h5py.string_dtype())
    assert "not float32" in damaged("str", strings)
    assert "not valid JSON" in damaged(
        "json", lambda f: f.attrs.__setitem__("provenance_json", "{not json"))
    assert "not an object" in damaged(
        "list", lambda f: f.attrs.__setitem__("provenance_json", "[1, 2]"))
    pickled = np.void(pickle.dumps({"encoder_key": "enc"}))
    assert "provenance_json" in damaged(
        "pickle", lambda f: f.attrs.__setitem__("provenance_json", pickled))
    assert "schema_version" in damaged(
        "version", lambda f: f.attrs.__setitem__("schema_version", "one"))


def test_garbage_in_the_parts_folder_is_quarantined_and_resume_proceeds(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    w = StoreWriter(path, _prov()).__enter__()
    w.add(["s1", "s2"], {"X": _vec(["s1", "s2"])})
    w.flush()
    w._release()  # killed before merging
    parts = path.with_name(path.name + ".parts")
    (parts / "part-0-garbage.h5").write_bytes(b"\x89HDF\r\n not really")
    (parts / "notes.txt").write_text("a stray file")
    with StoreWriter(path, _prov()) as w2:
        assert w2.done_ids == {"s1", "s2"}
        w2.add(["s3"], {"X": _vec(["s3"])})
    assert sorted(FeatureStore(path).ids.tolist()) == ["s1", "s2", "s3"]
    moved = sorted(p.name for p in (path.parent / "quarantine").iterdir())
    assert any(n.startswith("part-0-garbage.h5.") and not n.endswith(".why.txt") for n in moved)
    assert any(n.startswith("notes.txt.") for n in moved)
    why = next((path.parent / "quarantine").glob("part-0-garbage.h5.*.why.txt")).read_text()
    assert "not a readable part file" in why


def test_rebuild_sets_the_old_store_aside(tmp_path):
    path = store_path(tmp_path, "ds", "enc")
    _one_store(path)
    with h5py.File(path, "r+") as f:
        f["X"][0, 0] = 42.0  # damaged
    with pytest.raises(StoreError, match="does not match the digest"):
        with StoreWriter(path, _prov()):
            pass
    with StoreWriter(path, _prov(), rebuild=True) as w:
        assert w.done_ids == set()
        w.add(["s1"], {"X": _vec(["s1"])})
    assert FeatureStore(path).ids.tolist() == ["s1"]
    assert len(list((path.parent / "quarantine").glob("enc.h5.*[0-9]Z"))) == 1


def test_identity_ignores_run_diagnostics_but_not_the_backend(tmp_path):
    """Issue 21.5: two extractions of the same rows differ only in the torch-vs-ONNX check
    figures and the thread count; their identity (hence every cell key) must be the same."""
    ids = ["s1", "s2", "s3"]

    def inference(diff, threads, **over):  # noqa: ANN001, ANN202
        return {"backend": "onnxruntime", "version": "1.32.0", "requested": "auto",
                "reason": "auto on cpu", "threads": threads,
                "onnx": {"opset": 17, "sha256": "ab"},
                "check": {"passed": True, "n_inputs": 4,
                          "outputs": {"X": {"max_abs_diff": diff, "min_cosine": 1.0}}}, **over}

    def identity(name, inf):  # noqa: ANN001, ANN202
        path = store_path(tmp_path / name, "ds", "enc")
        with StoreWriter(path, _prov(inference=inf)) as w:
            w.add(ids, {"X": _vec(ids)})
        return FeatureStore(path).identity

    first = identity("a", inference(1.049e-05, 2))
    assert identity("b", inference(1.12e-05, 16, resumed_from="torch")) == first
    assert identity("c", inference(1.049e-05, 2, backend="torch")) != first
    assert identity("d", inference(1.049e-05, 2, onnx={"opset": 18, "sha256": "cd"})) != first
    # stores without an inference record keep the identity they always had (cached cells stay)
    path = store_path(tmp_path / "e", "ds", "enc")
    with StoreWriter(path, _prov()) as w:
        w.add(ids, {"X": _vec(ids)})
    from pipeline.store.format import canonical

    store = FeatureStore(path)
    stable = {k: v for k, v in store.provenance.items()
              if k not in ("created", "updated", "versions", "content_sha256", "n_rows")}
    import hashlib

    want = hashlib.sha256((canonical(stable) + "|" + store.content_id).encode()).hexdigest()
    assert store.identity == want
