"""extract.backends: ONNX export cache, the check against torch, fallbacks, resume across backends."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from extract.backends import resolve_backend
from extract.backends.export import ExportError, export_cached
from extract.backends.verify import MIN_COSINE, compare_outputs
from extract.runner import run_extract
from pipeline.errors import ConfigError
from pipeline.store.feature_store import FeatureStore


def _run(manifest, encoder, root, **kw):
    return run_extract(manifest, encoder, root, batch_size=4, num_workers=0, device="cpu",
                       onnx_cache=root / "onnx", **kw)


def _inference(summary) -> dict:
    return FeatureStore(summary.store).provenance["inference"]


def test_resolve_backend() -> None:
    assert resolve_backend("auto", "cpu") == "onnxruntime"
    assert resolve_backend("auto", "cuda:1") == resolve_backend("auto", "mps") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_backend("onnxruntime", "cuda")
    with pytest.raises(ConfigError, match="openvino"):
        resolve_backend("openvino", "cpu")


def test_compare_outputs_figures_and_failures() -> None:
    rng = np.random.default_rng(0)
    ref = {"X": rng.standard_normal((3, 8)).astype(np.float32), "t": np.zeros((3, 2), np.float32)}
    same = compare_outputs(ref, {k: v.copy() for k, v in ref.items()})
    assert same.passed and same.min_cosine == pytest.approx(1.0)
    assert [o.max_abs_diff for o in same.outputs] == [0.0, 0.0]  # zero rows count as equal
    noisy = {"X": ref["X"] + 0.05, "t": ref["t"]}
    check = compare_outputs(ref, noisy)
    assert not check.passed and check.outputs[0].min_cosine < MIN_COSINE
    assert check.outputs[0].max_abs_diff == pytest.approx(0.05, rel=1e-3)
    assert not compare_outputs(ref, {"X": ref["X"]}).passed  # a missing output fails
    assert not compare_outputs(ref, {"X": ref["X"] * np.nan, "t": ref["t"]}).passed
    assert check.to_dict()["outputs"]["X"]["min_cosine"] < MIN_COSINE


def test_export_is_cached_by_identity_with_its_own_digest(tiny_encoders, tmp_path, caplog) -> None:
    from extract.encoders import build_image_encoder

    enc = build_image_encoder("tiny_plain")
    first = export_cached("tiny", enc.onnx_identity(), enc.onnx_export_spec, tmp_path)
    again = export_cached("tiny", enc.onnx_identity(), enc.onnx_export_spec, tmp_path)
    assert not first.cached and again.cached and again.sha256 == first.sha256
    sidecar = json.loads(first.path.with_suffix(".json").read_text())
    assert sidecar["onnx_sha256"] == first.sha256 and sidecar["opset"] == first.opset
    assert sidecar["identity"]["weights_sha256"] == enc.weights_sha256
    other = {**enc.onnx_identity(), "input": [3, 64, 64]}  # another input size: another file
    assert export_cached("tiny", other, enc.onnx_export_spec, tmp_path).path != first.path
    first.path.write_bytes(first.path.read_bytes()[:-10])  # damaged on disk: exported again
    with caplog.at_level(logging.WARNING):
        fixed = export_cached("tiny", enc.onnx_identity(), enc.onnx_export_spec, tmp_path)
    assert not fixed.cached and fixed.sha256 == first.sha256
    assert "does not match its recorded sha256" in caplog.text
    bad = build_image_encoder("tiny_unexportable")
    with pytest.raises(ExportError, match="cummax"):
        export_cached("bad", bad.onnx_identity(), bad.onnx_export_spec, tmp_path)


def test_micro_batches_give_bitwise_the_outputs_of_one_call(tiny_encoders, tmp_path) -> None:
    from extract.backends.ort import OrtSession
    from extract.encoders import build_image_encoder

    enc = build_image_encoder("tiny_plain")
    exported = export_cached("tiny", enc.onnx_identity(), enc.onnx_export_spec, tmp_path)
    c, s = enc.preprocess.channels, enc.preprocess.size
    x = np.random.default_rng(0).standard_normal((7, c, s, s)).astype(np.float32)
    whole = OrtSession(exported.path, 1).run({"input": x})
    for step in (1, 3, 4, 7, 50):  # 7 rows in slices of 3 leaves a remainder of 1
        sliced = OrtSession(exported.path, 1, micro_batch=step).run({"input": x})
        assert sliced.keys() == whole.keys()
        for name in whole:
            np.testing.assert_array_equal(sliced[name], whole[name])
    assert enc.onnx_micro_batch == 4  # what extraction uses for image encoders
    with pytest.raises(ValueError, match="micro_batch must be >= 1"):
        OrtSession(exported.path, 1, micro_batch=0)


def test_read_ahead_decode_stores_what_worker_processes_store(tiny_encoders, image_manifest,
                                                              tmp_path) -> None:
    in_process = _run(image_manifest, "tiny_plain", tmp_path / "a")  # num_workers=0: read ahead
    workers = run_extract(image_manifest, "tiny_plain", tmp_path / "b", batch_size=4,
                          num_workers=1, device="cpu", onnx_cache=tmp_path / "b" / "onnx")
    a, b = FeatureStore(in_process.store), FeatureStore(workers.store)
    assert a.ids.tolist() == b.ids.tolist() and set(in_process.failed) == set(workers.failed)
    np.testing.assert_array_equal(a.read(a.ids.tolist()), b.read(b.ids.tolist()))


def test_onnxruntime_store_records_backend_and_check(tiny_encoders, image_manifest, tmp_path):
    ort = _run(image_manifest, "tiny_plain", tmp_path / "a")
    torch_run = _run(image_manifest, "tiny_plain", tmp_path / "b", backend="torch")
    assert (ort.backend, torch_run.backend) == ("onnxruntime", "torch")
    assert ort.n_embedded == 6 and set(ort.failed) == {"trunc", "text", "gone"}
    record = _inference(ort)
    assert record["backend"] == "onnxruntime" and record["requested"] == "auto"
    assert record["version"] and record["threads"] >= 1 and record["onnx"]["opset"] == 17
    check = record["check"]
    assert check["passed"] and check["n_inputs"] == 4
    assert set(check["outputs"]) == {"X", "block1", "block2"}
    for figures in check["outputs"].values():
        assert figures["min_cosine"] >= MIN_COSINE and figures["max_abs_diff"] < 1e-4
    assert _inference(torch_run)["backend"] == "torch" and "check" not in _inference(torch_run)
    a, b = FeatureStore(ort.store), FeatureStore(torch_run.store)
    ids = sorted(a.ids)
    for layer in (None, "block1", "block2"):
        np.testing.assert_allclose(a.read(ids, layer=layer), b.read(ids, layer=layer),
                                   rtol=1e-4, atol=1e-5)
    assert a.provenance["weights_sha256"] == b.provenance["weights_sha256"]


def test_unexportable_encoder_falls_back_to_torch_with_a_log_line(
    tiny_encoders, image_manifest, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="extract.backends"):
        s = _run(image_manifest, "tiny_unexportable", tmp_path, backend="onnxruntime")
    assert s.backend == "torch" and s.n_embedded == 6
    record = _inference(s)
    assert record["backend"] == "torch" and "cannot run tiny_unexportable" in record["reason"]
    assert "cummax" in record["reason"]
    assert any("cannot run tiny_unexportable on ONNX Runtime" in r.getMessage()
               for r in caplog.records)


def test_failed_check_falls_back_to_torch_and_records_the_figures(
    tiny_encoders, image_manifest, tmp_path, caplog
) -> None:
    # the traced graph keeps the branch of the example input: real (positive-mean) images differ
    with caplog.at_level(logging.WARNING, logger="extract.backends"):
        s = _run(image_manifest, "tiny_branchy", tmp_path)
    record = _inference(s)
    assert s.backend == record["backend"] == "torch"
    assert record["check"]["passed"] is False and record["check"]["outputs"]["X"]["min_cosine"] < 0.9
    assert "differs from torch" in record["reason"] and "using torch" in caplog.text


def test_resume_across_backends_only_when_the_check_passes(
    tiny_encoders, image_manifest, tmp_path, monkeypatch, caplog
) -> None:
    import extract.backends.select as select

    first = _run(image_manifest, "tiny_plain", tmp_path, backend="torch", limit=2)
    assert _inference(first)["backend"] == "torch"
    with caplog.at_level(logging.WARNING, logger="extract.backends"):
        second = _run(image_manifest, "tiny_plain", tmp_path, limit=4)  # auto: onnxruntime
    assert (second.n_skipped_existing, second.n_embedded) == (2, 2)
    record = _inference(second)
    assert record["backend"] == "onnxruntime" and record["resumed_from"] == "torch"
    assert "with onnxruntime: allowed, the check against torch passed" in caplog.text
    # back to torch on a store holding onnxruntime rows: allowed, the check still passes
    third = _run(image_manifest, "tiny_plain", tmp_path, backend="torch", limit=5)
    assert third.n_embedded == 1 and _inference(third)["resumed_from"] == "onnxruntime"
    assert _inference(third)["check"]["passed"]
    # ... but refused when the check cannot pass (here: the export fails)
    store = FeatureStore(third.store)
    _run(image_manifest, "tiny_plain", tmp_path / "ort", limit=2)

    def broken(*args, **kwargs):
        raise ExportError("simulated exporter failure")

    monkeypatch.setattr(select, "export_cached", broken)
    with pytest.raises(ConfigError, match="resuming with another backend needs its check"):
        _run(image_manifest, "tiny_plain", tmp_path / "ort", backend="torch")
    assert len(FeatureStore(tmp_path / "ort" / "toy" / "tiny_plain.h5")) == 2  # nothing added
    assert len(FeatureStore(store.path)) == 5


def test_nothing_pending_keeps_the_record_and_exports_nothing(tiny_encoders, image_manifest,
                                                              tmp_path) -> None:
    first = _run(image_manifest, "tiny_plain", tmp_path, limit=3)
    again = _run(image_manifest, "tiny_plain", tmp_path, limit=3, backend="torch")
    assert again.n_embedded == 0 and _inference(again) == _inference(first)


def test_tfidf_reports_sklearn(text_manifest, tmp_path) -> None:
    s = run_extract(text_manifest, "tfidf_svd", tmp_path, onnx_cache=tmp_path / "onnx")
    assert s.backend == "sklearn" and _inference(s)["backend"] == "sklearn"
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_text_model_on_onnxruntime_matches_torch(tiny_bert_dir, text_manifest, tmp_path,
                                                 pooling) -> None:
    spec = f"hf:{tiny_bert_dir}#{pooling}"
    ort = run_extract(text_manifest, spec, tmp_path / "a", onnx_cache=tmp_path / "onnx")
    ref = run_extract(text_manifest, spec, tmp_path / "b", backend="torch")
    assert (ort.backend, ref.backend) == ("onnxruntime", "torch")
    assert _inference(ort)["check"]["passed"]
    ids = sorted(FeatureStore(ref.store).ids)
    a, b = FeatureStore(ort.store).read(ids), FeatureStore(ref.store).read(ids)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= MIN_COSINE and ort.encoder_key == ref.encoder_key


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["efficientnet_lite0", "minilm"])
def test_real_encoders_run_on_onnxruntime_with_torch_embeddings(encoder, image_manifest,
                                                                text_manifest, tmp_path) -> None:
    manifest = image_manifest if encoder == "efficientnet_lite0" else text_manifest
    ort = _run(manifest, encoder, tmp_path / "a")
    ref = _run(manifest, encoder, tmp_path / "b", backend="torch")
    assert ort.backend == "onnxruntime" and _inference(ort)["check"]["passed"]
    a, b = FeatureStore(ort.store), FeatureStore(ref.store)
    ids = sorted(b.ids)
    for layer in (None, *b.layers):
        x, y = a.read(ids, layer=layer), b.read(ids, layer=layer)
        cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        assert cos.min() >= MIN_COSINE, (layer, cos.min())


def test_re_extracting_into_a_fresh_folder_gives_the_same_identity(tiny_encoders, image_manifest,
                                                                  tmp_path) -> None:
    """Issue 21.5: the same images embedded twice (another folder, another thread count) give
    identical vectors and must give the same store identity, so classify reuses its cells."""
    a = FeatureStore(_run(image_manifest, "tiny_plain", tmp_path / "a", threads=1).store)
    b = FeatureStore(_run(image_manifest, "tiny_plain", tmp_path / "b", threads=2).store)
    assert a.provenance["inference"]["backend"] == "onnxruntime"
    ids = sorted(a.ids)
    np.testing.assert_array_equal(a.read(ids), b.read(ids))
    assert a.provenance["inference"]["threads"] != b.provenance["inference"]["threads"]
    assert a.identity == b.identity
