"""Promise: verified stores. A store is checked whenever classify, report or a resuming extract
opens it (attributes, shapes, finite values, SHA-256 content digest); anything wrong exits 2
naming the file, the problem and the fix, and nothing is computed from it. Issue 11,
observations 1 (flipped bytes in X were used), 2 (duplicate ids, X narrower than its dim
accepted), 6 (bad provenance_json / schema_version / string X exited 1) and 9 (a garbage
file in the parts folder blocked extract with an anonymous HDF5 error)."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import copy_project, rel_experiment, rel_project


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """artifacts with manifest 'rel' (36 rows), its tfidf_svd store and one computed cell."""
    return rel_project(tmp_path_factory.mktemp("verified"))


def _store(art: Path) -> Path:
    return art / "features" / "rel" / "tfidf_svd.h5"


def _cells(art: Path) -> list[str]:
    return sorted(p.name for p in (art / "results" / "rel" / "cells").iterdir())


def _cli(capsys, *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _classify(art: Path, capsys, classifiers=("logistic",)) -> tuple[int, str]:
    return _cli(capsys, "classify", "--config", rel_experiment(art, classifiers), "--artifacts", art)


def _flip_bytes_in_x(path: Path, n: int = 64) -> None:
    """XOR ``n`` bytes in the middle of X's data on disk with 0x01 (values stay finite)."""
    with h5py.File(path, "r") as f:
        info = f["X"].id.get_chunk_info(0)
        start = info.byte_offset + info.size // 2
    with open(path, "r+b") as fh:
        fh.seek(start)
        data = bytearray(fh.read(n))
        fh.seek(start)
        fh.write(bytes(b ^ 0x01 for b in data))


def test_flipped_bytes_in_x_stop_classify_before_anything_is_computed(base, tmp_path, capsys):
    """Observation 1: 64 flipped bytes kept the store's identity, so stored cells were reused
    and new cells computed from the corrupted values, exit 0."""
    art = copy_project(base, tmp_path / "art")
    before = _cells(art)
    _flip_bytes_in_x(_store(art))
    code, text = _classify(art, capsys, classifiers=("logistic", "knn"))  # knn would be new
    assert code == EXIT_USER_ERROR, text
    assert str(_store(art)) in text and "does not match the digest" in text
    assert "--rebuild" in text and "backup" in text
    assert _cells(art) == before  # nothing computed from the damaged store
    code, text = _cli(capsys, "report", "--config", rel_experiment(art), "--no-shuffle", "--artifacts", art)
    assert code == EXIT_USER_ERROR and "does not match the digest" in text
    code, text = _cli(capsys, "verify", _store(art), "--artifacts", art)
    assert code == EXIT_USER_ERROR and text.startswith("FAIL  store")


def test_damaged_store_blocks_resume_until_rebuilt(base, tmp_path, capsys):
    art = copy_project(base, tmp_path / "art")
    _flip_bytes_in_x(_store(art))
    manifest = art / "manifests" / "rel.csv"
    code, text = _cli(capsys, "extract", "--manifest", manifest, "--encoder", "tfidf_svd",
                      "--no-progress", "--artifacts", art)
    assert code == EXIT_USER_ERROR and "does not match the digest" in text
    code, text = _cli(capsys, "extract", "--manifest", manifest, "--encoder", "tfidf_svd",
                      "--no-progress", "--rebuild", "--artifacts", art)
    assert code == EXIT_OK, text
    assert FeatureStore(_store(art)).verified
    assert len(list((_store(art).parent / "quarantine").glob("tfidf_svd.h5.*Z"))) == 1
    # the same rows again: same identity, so the stored cell is reused
    code, text = _classify(art, capsys)
    assert code == EXIT_OK and "0 computed, 1 reused" in text


def _rewrite_ids(f: h5py.File, ids: list[str]) -> None:
    del f["ids"]
    f.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype())


def _ids(f: h5py.File) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else i for i in f["ids"][()]]


def _narrow(f: h5py.File) -> None:
    f["X"].resize(f["X"].shape[1] - 1, axis=1)


def _strings(f: h5py.File) -> None:
    shape = f["X"].shape
    del f["X"]
    f.create_dataset("X", data=np.full(shape, "0.5", dtype=object), dtype=h5py.string_dtype())


DAMAGE = {  # observation 2 (accepted silently) and 6 (exit 1, "internal error")
    "duplicate ids": (lambda f: _rewrite_ids(f, [*_ids(f)[:-1], _ids(f)[0]]),
                      "1 sample id(s) appear more than once"),
    "X narrower than dim": (_narrow, "narrower than the recorded dim"),
    "provenance not JSON": (lambda f: f.attrs.__setitem__("provenance_json", "{'dim': 3"),
                            "provenance_json is not valid JSON"),
    "pickled provenance": (lambda f: f.attrs.__setitem__(
        "provenance_json", np.void(pickle.dumps({"dim": 3, "encoder_key": "x"}))),
        "provenance_json holds a void, not JSON text"),
    "schema_version text": (lambda f: f.attrs.__setitem__("schema_version", "1"),
                            "schema_version is '1' (str), not an integer"),
    "X holds strings": (_strings, "not float32 vectors"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_malformed_store_exits_2_naming_file_problem_and_fix(base, tmp_path, capsys, case):
    art = copy_project(base, tmp_path / "art")
    edit, expected = DAMAGE[case]
    with h5py.File(_store(art), "r+") as f:
        edit(f)
    code, text = _classify(art, capsys)
    assert code == EXIT_USER_ERROR, text
    assert str(_store(art)) in text and expected in text, text
    assert "pipeline extract" in text and "--rebuild" in text
    assert "internal error" not in text and "Traceback" not in text
    code, text = _cli(capsys, "list", "--artifacts", art)  # listing still works, and says so
    assert code == EXIT_OK and "tfidf_svd.h5" in text and "DAMAGED" in text and expected in text


def test_garbage_part_file_is_named_quarantined_and_resume_proceeds(base, tmp_path, capsys):
    """Observation 9: a garbage file in the store's .parts folder made extract exit 1 with an
    HDF5 error that did not name it, and the store could not be extended."""
    art = copy_project(base, tmp_path / "art")
    rows = FeatureStore(_store(art)).ids.tolist()
    parts = _store(art).with_name("tfidf_svd.h5.parts")
    parts.mkdir()
    garbage = parts / "part-1-20250101000000000000-000001.h5"
    garbage.write_bytes(b"this is not HDF5" * 64)
    code, text = _cli(capsys, "extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                      "tfidf_svd", "--no-progress", "--artifacts", art)
    assert code == EXIT_OK, text
    assert str(garbage) in text and "quarantine" in text  # named in the warning
    moved = list((_store(art).parent / "quarantine").glob(garbage.name + ".*Z"))
    assert len(moved) == 1 and moved[0].read_bytes() == b"this is not HDF5" * 64
    assert not parts.exists()
    assert FeatureStore(_store(art)).ids.tolist() == rows
