"""Promise 5: bad manifests and stores get clear errors naming the ids/files and the fix:
duplicate sample ids (exit 2), ids in a store but not in the manifest and the reverse
(reported by classify, not silently dropped), a store whose provenance differs from what
extract would write (refused on append), NaN/inf vectors, a store from a newer schema, and
an unreadable store file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.dataset.build import build_manifest
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from tests.reliability._cli import experiment, run_in_process, text_rows, write_csv_manifest

N, LIMIT = 36, 33


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """artifacts with manifest 'rel' (36 rows) and a tfidf_svd store of its first 33 rows."""
    art = tmp_path_factory.mktemp("stores")
    src = write_csv_manifest(art / "src.csv", text_rows(N))
    build_manifest("csv", path=src, name="rel", artifacts_root=art)
    code = run_in_process("extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                          "tfidf_svd", "--limit", LIMIT, "--no-progress", "--artifacts", art)
    assert code == EXIT_OK
    return art


def _copy(base: Path, tmp: Path) -> Path:
    art = tmp / "art"
    shutil.copytree(base, art, ignore=shutil.ignore_patterns("logs", "results"))
    return art


def _store(art: Path) -> Path:
    return art / "features" / "rel" / "tfidf_svd.h5"


def _exp(art: Path, manifest: Path | None = None) -> Path:
    return experiment(
        art / "exp.toml", name="rel", dataset="rel",
        manifest=str(manifest or art / "manifests" / "rel.csv"),
        features_root=str(art / "features"), results_root=str(art / "results"),
        stores=["tfidf_svd"], fusions=["single"], samplers=["none"], classifiers=["logistic"],
        n_jobs=1, cv={"folds": 3, "repeats": 1, "seed": 0},
    )


def _classify(art: Path, capsys, manifest: Path | None = None) -> tuple[int, str]:
    code = main(["classify", "--config", str(_exp(art, manifest)), "--artifacts", str(art)])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_duplicate_sample_ids_are_refused_naming_them(tmp_path: Path, capsys):
    rows = text_rows(6)
    rows[4]["sample_id"] = rows[1]["sample_id"]
    src = write_csv_manifest(tmp_path / "dups.csv", rows)
    code = main(["data", "csv", "--path", str(src), "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "duplicate sample_id" in err and repr(rows[1]["sample_id"]) in err and "unique" in err
    assert not (tmp_path / "manifests").exists()


def test_hand_edited_manifest_with_duplicates_is_refused_by_extract(base: Path, tmp_path: Path,
                                                                     capsys):
    art = _copy(base, tmp_path)
    csv = art / "manifests" / "rel.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pd.concat([frame, frame.iloc[[5]]]).to_csv(csv, index=False)
    code = main(["extract", "--manifest", str(csv), "--encoder", "tfidf_svd", "--artifacts", str(art)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "duplicate sample_id" in err and "'s005'" in err


def test_ids_missing_on_either_side_are_reported_by_classify(base: Path, tmp_path: Path, capsys):
    art = _copy(base, tmp_path)
    # the manifest loses s000-s002 (still in the store); s033-s035 were never extracted
    other = art / "edited"
    other.mkdir()
    frame = pd.read_csv(art / "manifests" / "rel.csv", dtype=str, keep_default_na=False)
    frame.iloc[3:].to_csv(other / "rel.csv", index=False)
    shutil.copy(art / "manifests" / "rel.json", other / "rel.json")
    code, text = _classify(art, capsys, manifest=other / "rel.csv")
    assert code == EXIT_OK, text
    assert "dropped 3 (missing from store tfidf_svd): s033, s034, s035" in text
    assert "dropped 3 (not in manifest (store tfidf_svd)): s000, s001, s002" in text
    assert f"{N - 6} samples" in text


def test_store_with_other_provenance_is_refused_on_append(base: Path, tmp_path: Path, capsys):
    art = _copy(base, tmp_path)
    with h5py.File(_store(art), "r+") as f:
        prov = json.loads(f.attrs["provenance_json"])
        prov["weights_sha256"] = "0" * 64  # as if made by other weights
        f.attrs["provenance_json"] = json.dumps(prov)
    before = _store(art).read_bytes()
    code = main(["extract", "--manifest", str(art / "manifests" / "rel.csv"), "--encoder",
                 "tfidf_svd", "--artifacts", str(art)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert str(_store(art)) in err and "different encoder setup" in err and "weights_sha256" in err
    assert "new encoder key" in err and "delete the store" in err
    assert _store(art).read_bytes() == before  # untouched


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_vectors_are_refused_naming_ids(base: Path, tmp_path: Path, capsys, bad):
    art = _copy(base, tmp_path)
    with h5py.File(_store(art), "r+") as f:
        ids = [i.decode() if isinstance(i, bytes) else i for i in f["ids"][()]]
        f["X"][ids.index("s007"), 0] = bad
    code, text = _classify(art, capsys)
    assert code == EXIT_USER_ERROR, text
    assert "NaN/inf" in text and "s007" in text and "`pipeline extract" in text
    assert "--rebuild" in text and "backup" in text
    assert not (art / "results").exists() or not any((art / "results").rglob("*.json"))


def test_store_from_a_newer_schema_is_refused(base: Path, tmp_path: Path, capsys):
    art = _copy(base, tmp_path)
    with h5py.File(_store(art), "r+") as f:
        f.attrs["schema_version"] = 99
    code, text = _classify(art, capsys)
    assert code == EXIT_USER_ERROR
    assert str(_store(art)) in text and "schema 99" in text and "upgrade the pipeline" in text
    code = main(["extract", "--manifest", str(art / "manifests" / "rel.csv"), "--encoder",
                 "tfidf_svd", "--artifacts", str(art)])
    assert code == EXIT_USER_ERROR
    assert "upgrade the pipeline" in capsys.readouterr().err


def test_unreadable_store_file_is_refused_with_the_fix(base: Path, tmp_path: Path, capsys):
    art = _copy(base, tmp_path)
    _store(art).write_bytes(b"not an HDF5 file at all")
    code, text = _classify(art, capsys)
    assert code == EXIT_USER_ERROR
    assert f"cannot read feature store {_store(art)}" in text and "delete it" in text
