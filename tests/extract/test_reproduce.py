"""extract.reproduce: a store record turns back into the run_extract arguments that made it."""

from __future__ import annotations

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
