"""extract.reproduce: a store record turns back into the run_extract arguments that made it."""

from __future__ import annotations

import numpy as np
import pytest

from extract.reproduce import ExtractRequest, extract_request
from pipeline.errors import ConfigError


def test_image_keys():
    assert extract_request({"encoder_key": "efficientnet_lite0", "modality": "image"}) == \
        ExtractRequest("efficientnet_lite0")
    assert extract_request({"encoder_key": "resnet50+random-init+eq", "modality": "image"}) == \
        ExtractRequest("resnet50", equalize=True, allow_random_weights=True)


def test_text_keys_carry_mode_and_masking():
    rec = {"encoder_key": "minilm@findings", "modality": "text",
           "preprocessing": {"text_mode": "findings", "masked": False}}
    assert extract_request(rec) == ExtractRequest("minilm", text_mode="findings")
    rec = {"encoder_key": "minilm@both+masked", "modality": "text",
           "preprocessing": {"text_mode": "both", "masked": True}}
    assert extract_request(rec) == ExtractRequest("minilm", text_mode="both", mask_labels=True)


def test_hf_models_come_back_from_the_weights_name():
    rec = {"encoder_key": "hf_emilyalsentzer--Bio_ClinicalBERT-cls@impression", "modality": "text",
           "weights_name": "hf:emilyalsentzer/Bio_ClinicalBERT",
           "preprocessing": {"pooling": "cls", "text_mode": "impression", "masked": False}}
    assert extract_request(rec) == ExtractRequest("hf:emilyalsentzer/Bio_ClinicalBERT#cls",
                                                  text_mode="impression")


def test_unknown_text_encoder_is_a_clear_error():
    with pytest.raises(ConfigError, match="cannot tell which text encoder"):
        extract_request({"encoder_key": "mystery", "modality": "text", "weights_name": "x"})


def test_the_recorded_backend_is_requested_again():
    """A card names the backend its stores were made with; predict re-embeds with that one."""
    from classify.bundle.card import backend_name

    prov = {"encoder_key": "efficientnet_lite0", "modality": "image",
            "inference": {"backend": "onnxruntime", "version": "1.32.0"}}
    assert backend_name(prov) == "onnxruntime"
    assert backend_name({"encoder_key": "old"}) == "torch"  # stores made before backends existed
    rec = {"encoder_key": "efficientnet_lite0", "modality": "image", "backend": "onnxruntime"}
    assert extract_request(rec).backend == "onnxruntime"
    assert extract_request({**rec, "backend": None}).backend == "torch"


def test_a_masked_store_is_rebuilt_with_the_training_terms(tiny_bert_dir, tmp_path):
    """Issue 21.6: a masked-text bundle could not be applied: predict took the mask terms from
    the NEW manifest (its tags give another vocabulary, hence another digest) and refused its
    own store. The model card records the training terms; extract_like masks with those."""
    from extract.reproduce import extract_like
    from extract.runner import run_extract
    from extract.texts import manifest_label_mask
    from pipeline.store.feature_store import FeatureStore
    from tests.extract.conftest import REPORTS, make_manifest

    def manifest(name, tags):  # noqa: ANN001, ANN202
        rows = [{"sample_id": f"{name}{sid}", "image_path": f"{sid}.png", "findings": f,
                 "impression": imp, "report_text": " ".join(t for t in (f, imp) if t),
                 "tags": tags, "label": "abnormal"} for sid, f, imp in REPORTS]
        return make_manifest(name, rows, tmp_path, {"label_rule": "normal_vs_abnormal"})

    train = manifest("train", "Cardiomegaly")
    new = manifest("new", "Spine/degenerative;Cardiomegaly")
    spec = f"hf:{tiny_bert_dir}"
    trained = FeatureStore(run_extract(train, spec, tmp_path / "f", batch_size=2,
                                       mask_labels=True, backend="torch").store)
    mask = manifest_label_mask(train)
    assert trained.provenance["preprocessing"]["mask_terms_sha256"] == mask.sha256
    assert mask.sha256 != manifest_label_mask(new).sha256  # the new tags change the terms
    record = {**trained.provenance, "backend": "torch",
              "mask": {"rule": mask.rule, "terms": list(mask.terms),
                       "vocabulary_size": mask.vocabulary_size}}
    built = FeatureStore(extract_like(new, record, tmp_path / "f", batch_size=2).store)
    pre, want = built.provenance["preprocessing"], trained.provenance["preprocessing"]
    assert pre == want  # same rule, terms digest and vocabulary size: the bundle applies
    np.testing.assert_allclose(built.read(["newr0"]), trained.read(["trainr0"]), atol=1e-5)
