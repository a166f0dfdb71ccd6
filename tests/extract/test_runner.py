"""extract.runner: stores, skips on re-run, failures, text modes, determinism."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from extract.runner import ExtractSummary, encoder_modality, run_extract, select_text
from pipeline.errors import ConfigError, UnknownNameError
from pipeline.store.feature_store import FeatureStore

from .conftest import REPORTS


def test_image_run_writes_store_and_rerun_embeds_nothing(tiny_encoders, image_manifest,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "features"
    s = run_extract(image_manifest, "tiny_plain", root, batch_size=4, num_workers=0)
    assert isinstance(s, ExtractSummary)
    assert (s.n_total, s.n_skipped_existing, s.n_embedded) == (9, 0, 6)
    assert s.store == root / "toy" / "tiny_plain.h5" and s.device == "cpu"
    assert set(s.failed) == {"trunc", "text", "gone"}
    assert s.failed["trunc"].startswith("truncated") and s.failed["text"].startswith("not an image")
    assert s.failed["gone"].startswith("missing")
    text = s.render()
    assert "6 embedded" in text and "3 failed" in text and "failed gone: missing" in text
    store = FeatureStore(s.store)
    assert sorted(store.ids.tolist()) == [f"s{i}" for i in range(6)]
    assert store.read().shape == (6, 24) and store.layers == ["block1", "block2"]
    assert store.read(["s1"], layer="block1").shape == (1, 8)
    assert set(store.failed) == {"trunc", "text", "gone"}
    prov = store.provenance
    assert prov["weights_name"] != "random-init" and len(prov["weights_sha256"]) == 64
    assert prov["preprocessing"]["size"] == 32 and prov["dataset"] == "toy"
    assert prov["versions"]["torch"] and prov["decode"]["jpeg_draft"] == 4

    again = run_extract(image_manifest, "tiny_plain", root, batch_size=4, num_workers=0)
    assert (again.n_embedded, again.n_skipped_existing) == (0, 6)
    assert set(again.failed) == {"trunc", "text", "gone"}  # failures are retried, still fail
    np.testing.assert_array_equal(FeatureStore(s.store).read(), store.read())


def test_vectors_do_not_depend_on_batching_or_workers(tiny_encoders, image_manifest,
                                                      tmp_path: Path) -> None:
    a = run_extract(image_manifest, "tiny_plain", tmp_path / "a", batch_size=2, num_workers=0)
    b = run_extract(image_manifest, "tiny_plain", tmp_path / "b", batch_size=5, num_workers=2)
    ids = [f"s{i}" for i in range(6)]
    np.testing.assert_allclose(
        FeatureStore(a.store).read(ids), FeatureStore(b.store).read(ids), rtol=1e-4, atol=1e-5
    )
    assert a.failed == b.failed


def test_interrupted_run_keeps_flushed_batches(tiny_encoders, image_manifest, tmp_path: Path,
                                               monkeypatch) -> None:
    from extract.encoders import ImageEncoder

    real_encode = ImageEncoder.encode
    calls = {"n": 0}

    def flaky(self, batch, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the second batch
        return real_encode(self, batch, **kw)

    monkeypatch.setattr(ImageEncoder, "encode", flaky)
    with pytest.raises(KeyboardInterrupt):  # torch: no backend check calls encode first
        run_extract(image_manifest, "tiny_plain", tmp_path, batch_size=2, num_workers=0,
                    limit=4, backend="torch")
    kept = FeatureStore(tmp_path / "toy" / "tiny_plain.h5")
    assert sorted(kept.ids.tolist()) == ["s0", "s1"]
    monkeypatch.setattr(ImageEncoder, "encode", real_encode)
    resumed = run_extract(image_manifest, "tiny_plain", tmp_path, batch_size=2, num_workers=0,
                          limit=4)
    assert (resumed.n_skipped_existing, resumed.n_embedded) == (2, 2)
    assert len(FeatureStore(resumed.store)) == 4


@pytest.mark.slow
def test_random_weights_store_is_labelled(image_manifest, tmp_path: Path, empty_torch_home) -> None:
    s = run_extract(
        image_manifest,
        "resnet34",
        tmp_path,
        batch_size=6,
        num_workers=0,
        limit=2,
        allow_random_weights=True,
    )
    assert s.encoder_key == "resnet34+random-init" and s.n_embedded == 2
    assert FeatureStore(s.store).provenance["weights_name"] == "random-init"


def test_text_modes_are_separate_stores_and_empty_text_fails(tiny_bert_dir, text_manifest,
                                                             tmp_path: Path) -> None:
    spec = f"hf:{tiny_bert_dir}"
    both = run_extract(text_manifest, spec, tmp_path, batch_size=2)
    findings = run_extract(text_manifest, spec, tmp_path, batch_size=2, text_mode="findings")
    assert both.encoder_key.startswith("hf_tiny_bert") and "@" not in both.encoder_key
    assert findings.encoder_key == both.encoder_key + "@findings"
    assert both.store != findings.store
    assert (both.n_embedded, both.failed) == (5, {})
    assert findings.n_embedded == 4 and list(findings.failed) == ["r2"]
    assert "empty text" in findings.failed["r2"] and "findings" in findings.failed["r2"]
    assert FeatureStore(findings.store).provenance["preprocessing"]["text_mode"] == "findings"
    x_both = FeatureStore(both.store).read(["r4"])
    x_find = FeatureStore(findings.store).read(["r4"])
    np.testing.assert_allclose(x_both, x_find, atol=1e-5)  # r4 has no impression: same text
    assert run_extract(text_manifest, spec, tmp_path, batch_size=2).n_embedded == 0


def test_masked_mode_masks_label_terms(tiny_bert_dir, text_manifest, tmp_path: Path) -> None:
    spec = f"hf:{tiny_bert_dir}"
    plain = run_extract(text_manifest, spec, tmp_path, text_mode="impression")
    masked = run_extract(text_manifest, spec, tmp_path, text_mode="impression", mask_labels=True)
    assert masked.encoder_key == plain.encoder_key + "+masked"
    assert masked.encoder_key.endswith("@impression+masked")
    prov = FeatureStore(masked.store).provenance["preprocessing"]
    assert prov["masked"] is True and prov["label_rule"].startswith("finding_vs_rest")
    assert len(prov["mask_terms_sha256"]) == 64 and prov["mask_terms_size"] > 10
    assert prov["mask_tag_vocabulary_size"] == 0  # the stand-in manifest has no tags column
    p, m = FeatureStore(plain.store), FeatureStore(masked.store)
    # r0's impression "Cardiomegaly." becomes "[MASK]." -> a different vector.
    assert list(masked.failed) == ["r4"] and not np.allclose(
        p.read(["r0"]), m.read(["r0"]), atol=1e-3
    )
    np.testing.assert_allclose(p.read(["r1"]), m.read(["r1"]), atol=1e-5)  # nothing to mask


def test_masked_store_identity_follows_the_tag_vocabulary(text_manifest, tmp_path: Path) -> None:
    from pipeline.errors import StoreError

    first = run_extract(text_manifest, "tfidf_svd", tmp_path, mask_labels=True)
    prov = FeatureStore(first.store).provenance["preprocessing"]
    # the manifest now carries cardiomegaly tags: new masking terms -> the old store is refused
    text_manifest.frame["tags"] = "cardiomegaly"
    text_manifest.frame["mesh_major"] = "Cardiac Shadow/enlarged/severe"
    with pytest.raises(StoreError, match="different encoder setup"):
        run_extract(text_manifest, "tfidf_svd", tmp_path, mask_labels=True)
    fresh = run_extract(text_manifest, "tfidf_svd", tmp_path / "new", mask_labels=True)
    new = FeatureStore(fresh.store).provenance["preprocessing"]
    assert new["mask_tag_vocabulary_size"] == 2 and new["mask_terms_size"] > prov["mask_terms_size"]
    assert new["mask_terms_sha256"] != prov["mask_terms_sha256"]


def test_mask_labels_needs_a_label_rule(text_manifest, tmp_path: Path) -> None:
    text_manifest.meta.pop("label_rule")
    with pytest.raises(ConfigError, match="label_rule"):
        run_extract(text_manifest, "tfidf_svd", tmp_path, mask_labels=True)


def test_tfidf_resume_with_limit_uses_the_same_fit(text_manifest, tmp_path: Path) -> None:
    first = run_extract(text_manifest, "tfidf_svd", tmp_path, limit=2)
    rest = run_extract(text_manifest, "tfidf_svd", tmp_path)
    assert (first.n_embedded, rest.n_skipped_existing, rest.n_embedded) == (2, 2, 3)
    fresh = run_extract(text_manifest, "tfidf_svd", tmp_path / "fresh")
    ids = [sid for sid, *_ in REPORTS]
    np.testing.assert_allclose(
        FeatureStore(rest.store).read(ids), FeatureStore(fresh.store).read(ids), atol=1e-5
    )


def test_encoder_resolution_errors() -> None:
    assert encoder_modality("efficientnet_lite0") == "image"
    assert encoder_modality("hf:bert-base-uncased#cls@findings") == "text"
    with pytest.raises(UnknownNameError, match="efficientnet_lite0"):
        encoder_modality("efficientnet_lite1")
    with pytest.raises(ConfigError):
        encoder_modality("efficientnet_lite0@findings")


def test_select_text() -> None:
    row = {"findings": " Heart  normal. ", "impression": float("nan"), "report_text": "x"}
    assert select_text(row, "findings") == "Heart normal."
    assert select_text(row, "impression") == ""
    assert select_text(row, "both") == "x"  # report_text (findings + impression) wins
    assert select_text({**row, "report_text": ""}, "both") == "Heart normal."
    assert (
        select_text({"findings": "", "impression": "", "report_text": "free text"}, "both")
        == "free text"
    )


def test_works_with_the_real_manifest_class(tiny_encoders, image_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    datasets = pytest.importorskip("pipeline.manifest")
    frame = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "patient_id": ["p1", "p1", "p2"],
            "image_path": ["s0.png", "s1.png", "missing.png"],
            "report_id": ["r1", "r1", "r2"],
            "findings": ["Cardiomegaly.", "Cardiomegaly.", "Clear lungs."],
            "impression": ["Enlarged heart.", "Enlarged heart.", ""],
            "report_text": [
                "Cardiomegaly. Enlarged heart.",
                "Cardiomegaly. Enlarged heart.",
                "Clear lungs.",
            ],
            "tags": ["cardiomegaly", "cardiomegaly", "normal"],
            "label": ["cardiomegaly", "cardiomegaly", "rest"],
            "label_source": ["mesh:report"] * 3,
            "view": ["PA", "LATERAL", "PA"],
        }
    )
    manifest = datasets.Manifest(
        "real", frame, image_dir, {"label_rule": "finding_vs_rest:cardiomegaly"}
    )
    img = run_extract(manifest, "tiny_plain", tmp_path, batch_size=2, num_workers=0)
    assert img.n_embedded == 2 and list(img.failed) == ["c"]
    txt = run_extract(manifest, "tfidf_svd", tmp_path, mask_labels=True)
    assert txt.encoder_key == "tfidf_svd@both+masked" and txt.n_embedded == 3


# ----------------------------------------------------------------- leakage


@pytest.fixture(scope="module")
def real_openi_manifest(openi_reports_tgz, tmp_path_factory):
    """~20 real OpenI reports (one image each), labels normal vs abnormal from MeSH."""
    from pipeline.dataset.build import build_manifest

    root = tmp_path_factory.mktemp("openi20")
    return build_manifest("openi", reports=openi_reports_tgz, limit=24, one_per_report=True,
                          drop_empty_text=True, manifest_dir=root / "manifests", check_images=False)


def test_masked_store_differs_from_unmasked_on_real_reports(real_openi_manifest, tmp_path):
    from extract.runner import manifest_texts
    from pipeline.labels import MASK_TOKEN

    m = real_openi_manifest
    assert len(m) >= 18 and m.meta["label_source"] == "mesh:report"
    plain_texts, _ = manifest_texts(m, "both", False)
    masked_texts, rule = manifest_texts(m, "both", True)
    assert rule == m.meta["label_rule"]
    # every tag of the manifest's own vocabulary is masked, not only the fixed finding list
    from pipeline.labels import UNMASKED_HEADING_TERMS, normalize_tag, split_tags

    for text, major, label in zip(masked_texts, m.frame["mesh_major"], m.frame["label"],
                                  strict=True):
        if label != "abnormal":
            continue
        heads = {normalize_tag(r).replace("_", " ") for r in split_tags(major)}
        left = {h for h in heads - UNMASKED_HEADING_TERMS
                if re.search(rf"\b{re.escape(h)}\b", text, re.IGNORECASE)}
        assert not left, (left, text)
    changed = sum(a != b for a, b in zip(plain_texts, masked_texts, strict=True))
    assert changed >= len(m) // 2 and any(MASK_TOKEN in t for t in masked_texts)
    plain = run_extract(m, "tfidf_svd", tmp_path)
    masked = run_extract(m, "tfidf_svd", tmp_path, mask_labels=True)
    assert (plain.encoder_key, masked.encoder_key) == ("tfidf_svd", "tfidf_svd@both+masked")
    a, b = FeatureStore(plain.store), FeatureStore(masked.store)
    assert b.provenance["preprocessing"]["masked"] is True
    assert b.provenance["preprocessing"]["mask_tag_vocabulary_size"] > 5
    assert a.provenance["weights_sha256"] != b.provenance["weights_sha256"]  # fitted on other text
    assert a.identity != b.identity
    ids = [i for i in a.ids if i in set(b.ids)]
    assert len(ids) == len(m) and not np.allclose(a.read(ids), b.read(ids))


def test_pretraining_overlap_warning_for_registered_encoder(text_manifest, caplog):
    from dataclasses import replace

    from extract.encoders import IMAGE_ENCODERS
    from extract.runner import warn_pretraining_overlap

    xrv = {"encoder_key": "xrv_densenet121_all", "modality": "image",
           "trained_on": IMAGE_ENCODERS.meta("xrv_densenet121_all")["trained_on"]}
    openi = replace(text_manifest, name="openi_demo", meta={"source_dataset": "openi"})
    with caplog.at_level(logging.WARNING, logger="extract.runner"):
        msg = warn_pretraining_overlap(openi, xrv)
    assert msg is not None and "xrv_densenet121_all" in msg and "openi" in msg
    assert msg in [r.getMessage() for r in caplog.records]
    demo = replace(openi, meta={"source_dataset": "openi", "synthetic_images": True})
    assert "synthetic phantoms" in warn_pretraining_overlap(demo, xrv)
    # old manifests without source_dataset: the format they were built from
    assert warn_pretraining_overlap(replace(openi, meta={"build": {"source": "openi_demo"}}), xrv)
    lite = {**xrv, "encoder_key": "efficientnet_lite0", "trained_on": ["imagenet"]}
    assert warn_pretraining_overlap(openi, lite) is None
    assert warn_pretraining_overlap(replace(openi, meta={}), xrv) is None  # family unknown


def test_extract_logs_overlap_for_store_trained_on_the_dataset(text_manifest, tmp_path,
                                                              monkeypatch, caplog):
    from dataclasses import replace

    from extract.encoders import TfidfSvdEncoder

    original = TfidfSvdEncoder.describe
    monkeypatch.setattr(TfidfSvdEncoder, "describe",
                        lambda self: {**original(self), "trained_on": ["nih", "OpenI"]})
    m = replace(text_manifest, name="openi_demo", meta={**text_manifest.meta,
                                                        "source_dataset": "openi"})
    with caplog.at_level(logging.WARNING, logger="extract.runner"):
        s = run_extract(m, "tfidf_svd", tmp_path)
    assert "OpenI" in FeatureStore(s.store).provenance["trained_on"]
    assert any("pretraining overlap: encoder tfidf_svd was trained on OpenI" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="extract.runner"):
        run_extract(replace(m, meta={**m.meta, "source_dataset": "mimic_cxr"}), "tfidf_svd",
                    tmp_path / "other")
    assert not any("pretraining overlap" in r.getMessage() for r in caplog.records)
