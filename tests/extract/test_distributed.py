"""Sharded extraction: shard planning, the atomic/idempotent merge, and Dask == local."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extract.distributed import merge_shards, run_token, shard_ids, subset_manifest
from pipeline.errors import ConfigError, StoreError
from pipeline.store.feature_store import FeatureStore, StoreWriter

PROV = {"encoder_key": "enc", "modality": "image", "architecture": "toy", "weights_name": "w",
        "weights_sha256": "ab", "preprocessing": {"size": 8}, "dim": 4, "layers": ["l1"],
        "trained_on": [], "dataset": "toy"}


def _shard(path: Path, ids: list[str], seed: int, failed: dict[str, str] | None = None,
           **prov) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((len(ids), 4)).astype(np.float32)
    L = rng.standard_normal((len(ids), 3)).astype(np.float32)
    with StoreWriter(path, {**PROV, **prov}) as w:
        w.add(ids, {"X": X, "l1": L})
        for sid, why in (failed or {}).items():
            w.add_failed(sid, why)
    return path, {"X": dict(zip(ids, X, strict=True)), "l1": dict(zip(ids, L, strict=True))}


def test_shard_ids_contiguous_balanced_and_complete() -> None:
    ids = [f"s{i}" for i in range(10)]
    shards = shard_ids(ids, 3)
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sum(shards, []) == ids
    assert shard_ids(ids[:2], 5) == [["s0"], ["s1"]]  # never an empty shard
    assert shard_ids([], 4) == []
    with pytest.raises(ConfigError):
        shard_ids(ids, 0)


def test_run_token_depends_on_settings() -> None:
    a = run_token("efficientnet_lite0", 4, {"batch_size": 32})
    assert a == run_token("efficientnet_lite0", 4, {"batch_size": 32})
    assert a != run_token("efficientnet_lite0", 4, {"batch_size": 16})
    assert a != run_token("efficientnet_lite0", 2, {"batch_size": 32})


def test_merge_is_complete_atomic_and_idempotent(tmp_path: Path) -> None:
    p1, v1 = _shard(tmp_path / "a" / "enc.h5", ["a0", "a1", "a2"], 1, {"bad": "corrupt: x"})
    p2, v2 = _shard(tmp_path / "b" / "enc.h5", ["b0", "b1"], 2)
    target = tmp_path / "main" / "enc.h5"
    s = merge_shards([p1, p2], target, chunk_rows=2)
    assert (s.n_added, s.n_already_present, s.n_rows_total, s.n_failed) == (5, 0, 5, 1)
    store = FeatureStore(target)
    assert sorted(store.ids) == ["a0", "a1", "a2", "b0", "b1"]
    assert store.failed == {"bad": "corrupt: x"}
    assert store.layers == ["l1"]
    for layer, values in (("X", {**v1["X"], **v2["X"]}), ("l1", {**v1["l1"], **v2["l1"]})):
        ids = list(values)
        got = store.read(ids, layer=None if layer == "X" else layer)
        np.testing.assert_array_equal(got, np.stack([values[i] for i in ids]))
    assert not (target.parent / "enc.h5.parts").exists()  # no parts left behind
    identity = store.identity
    again = merge_shards([p1, p2], target)
    assert (again.n_added, again.n_already_present) == (0, 5)
    assert FeatureStore(target).identity == identity


def test_merge_refuses_shards_with_another_encoder_setup(tmp_path: Path) -> None:
    p1, _ = _shard(tmp_path / "a" / "enc.h5", ["a0"], 1)
    p2, _ = _shard(tmp_path / "b" / "enc.h5", ["b0"], 2, weights_sha256="other")
    with pytest.raises(StoreError, match="different encoder setup"):
        merge_shards([p1, p2], tmp_path / "main" / "enc.h5")
    assert not (tmp_path / "main" / "enc.h5").exists()
    with pytest.raises(StoreError, match="no shard stores"):
        merge_shards([], tmp_path / "main" / "enc.h5")


def test_merge_of_backends_is_recorded_and_refused_after_a_failed_check(tmp_path: Path) -> None:
    ort = {"backend": "onnxruntime", "check": {"passed": True}}
    fell_back = {"backend": "torch", "check": {"passed": False}}
    p1, _ = _shard(tmp_path / "a" / "enc.h5", ["a0"], 1, inference=ort)
    p2, _ = _shard(tmp_path / "b" / "enc.h5", ["b0"], 2, inference={"backend": "torch"})
    p3, _ = _shard(tmp_path / "c" / "enc.h5", ["c0"], 3, inference=fell_back)
    merge_shards([p1, p2], tmp_path / "ok" / "enc.h5")
    merged = FeatureStore(tmp_path / "ok" / "enc.h5").provenance["inference"]
    assert merged["mixed_backends"] == ["onnxruntime", "torch"]
    with pytest.raises(StoreError, match="check against torch failed"):
        merge_shards([p1, p3], tmp_path / "bad" / "enc.h5")
    assert not (tmp_path / "bad" / "enc.h5").exists()


def test_subset_manifest_keeps_order_and_metadata(image_manifest) -> None:
    sub = subset_manifest(image_manifest, ["s3", "s1"])
    assert sub.frame["sample_id"].tolist() == ["s1", "s3"]
    assert sub.image_root == image_manifest.image_root and sub.name == image_manifest.name


def test_fitted_text_encoder_is_refused(image_manifest, tmp_path: Path) -> None:
    from extract.distributed import run_extract_distributed

    with pytest.raises(ConfigError, match="fitted on the whole corpus"):
        run_extract_distributed(image_manifest, "tfidf_svd", tmp_path, scheduler="tcp://x:1")


@pytest.mark.slow
def test_distributed_extraction_equals_local(tiny_encoders, image_manifest, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from extract.distributed import SHARDS_DIR, run_extract_distributed
    from extract.runner import run_extract

    opts = dict(batch_size=2, num_workers=0, device="cpu")
    local = run_extract(image_manifest, "tiny_plain", tmp_path / "local", progress=False, **opts)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dist = run_extract_distributed(image_manifest, "tiny_plain", tmp_path / "dist",
                                       scheduler=client, n_shards=3, **opts)
        assert len(dist.shards) == 3
        # a second run finds everything stored: nothing pending, nothing added
        again = run_extract_distributed(image_manifest, "tiny_plain", tmp_path / "dist",
                                        scheduler=client, n_shards=3, **opts)
    assert again.n_pending == 3  # only the 3 broken images are retried
    assert all(m.n_added == 0 for m in again.merges)
    a, b = FeatureStore(local.store), FeatureStore(tmp_path / "dist" / "toy" / local.store.name)
    assert sorted(a.ids) == sorted(b.ids) == [f"s{i}" for i in range(6)]
    assert set(a.failed) == set(b.failed) == {"trunc", "text", "gone"}
    assert a.provenance["weights_sha256"] == b.provenance["weights_sha256"]
    # shards in threads of one worker: seeded builds and ONNX exports do not interleave
    assert b.provenance["inference"]["backend"] == "onnxruntime"
    assert "mixed_backends" not in b.provenance["inference"]
    ids = sorted(a.ids)
    for layer in (None, *a.layers):
        np.testing.assert_allclose(b.read(ids, layer=layer), a.read(ids, layer=layer),
                                   rtol=1e-4, atol=1e-5)
    assert not (tmp_path / "dist" / SHARDS_DIR / "toy").exists() or not any(
        (tmp_path / "dist" / SHARDS_DIR / "toy").iterdir())


@pytest.mark.slow
def test_cli_extract_with_scheduler_fills_the_normal_store(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from pipeline.cli import main

    art = tmp_path / "art"
    assert main(["data", "openi_demo", "--limit", "8", "--artifacts", str(art)]) == 0
    manifest = art / "manifests" / "openi_demo.csv"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        code = main(["extract", "--manifest", str(manifest), "--encoder", "efficientnet_lite0",
                     "--batch-size", "4", "--artifacts", str(art),
                     "--scheduler", cluster.scheduler_address])
    assert code == 0
    store = FeatureStore(art / "features" / "openi_demo" / "efficientnet_lite0.h5")
    assert len(store) == len(set(store.ids.tolist())) >= 6 and store.failed == {}
