"""extract.encoders (text families): spec parsing, MiniLM, generic HF loading, TF-IDF + SVD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from extract.encoders import (
    TEXT_ENCODERS,
    TfidfSvdEncoder,
    build_text_encoder,
    minilm_model_dir,
    parse_text_spec,
)
from pipeline.errors import ConfigError, MissingWeightsError, UnknownNameError

TEXTS = [
    "The heart is enlarged, consistent with cardiomegaly.",
    "Cardiac silhouette is enlarged; cardiomegaly is present.",
    "The patient fractured a wrist while skiing last winter.",
]


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder("minilm", batch_size=2)


def test_spec_keys_encode_mode_and_masking() -> None:
    assert parse_text_spec("minilm").key == "minilm"
    assert parse_text_spec("minilm", text_mode="findings").key == "minilm@findings"
    assert parse_text_spec("minilm", mask_labels=True).key == "minilm@both+masked"
    assert parse_text_spec("minilm@impression+masked").key == "minilm@impression+masked"
    spec = parse_text_spec("hf:emilyalsentzer/Bio_ClinicalBERT#cls@findings")
    assert (spec.model, spec.pooling, spec.mode) == (
        "emilyalsentzer/Bio_ClinicalBERT",
        "cls",
        "findings",
    )
    assert "/" not in spec.key and spec.key.endswith("-cls@findings")
    assert parse_text_spec("clinicalbert#cls").key == "clinicalbert-cls"


@pytest.mark.parametrize(
    "spec,kwargs,error",
    [
        ("hf", {}, ConfigError),  # needs a model
        ("minilm:foo", {}, ConfigError),  # takes no model
        ("minilm#cls", {}, ConfigError),  # fixed pooling
        ("hf:bert-base-uncased#max", {}, ConfigError),
        ("minilm@findings", {"text_mode": "impression"}, ConfigError),
        ("minilm@history", {}, ConfigError),
        ("minilm@both+shuffled", {}, ConfigError),
        ("minilmm", {}, UnknownNameError),
    ],
)
def test_bad_specs_raise(spec: str, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        parse_text_spec(spec, **kwargs)


def test_registry_meta() -> None:
    assert {"minilm", "hf", "bert", "biobert", "clinicalbert", "tfidf_svd"} <= set(
        TEXT_ENCODERS.names()
    )
    assert TEXT_ENCODERS.meta("minilm")["dim"] == 384 and TEXT_ENCODERS.meta("minilm")["offline"]
    assert "mimic-iii" in TEXT_ENCODERS.meta("clinicalbert")["trained_on"]


@pytest.mark.slow
def test_minilm_shapes_norms_and_determinism(minilm) -> None:
    a, b = minilm.encode(TEXTS), minilm.encode(TEXTS)
    assert a.X.shape == (3, 384) and a.X.dtype == np.float32
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_allclose(np.linalg.norm(a.X, axis=1), 1.0, atol=1e-5)
    sims = a.X @ a.X.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # paraphrases closer than an unrelated sentence
    desc = minilm.describe()
    assert desc["preprocessing"] == {
        "pooling": "mean",
        "normalize": True,
        "max_length": 256,
        "truncation": "head",
    }
    assert len(desc["weights_sha256"]) == 64 and desc["modality"] == "text"


@pytest.fixture(params=["tiny", pytest.param("minilm", marks=pytest.mark.slow)])
def text_encoder(request, tiny_bert_dir):
    """A random 2-layer BERT (fast tier) and the real MiniLM (slow tier)."""
    if request.param == "tiny":
        return build_text_encoder(f"hf:{tiny_bert_dir}", batch_size=2)
    return request.getfixturevalue("minilm")


def test_length_sorted_batches_equal_unsorted(text_encoder) -> None:
    texts = ["short.", *TEXTS, "a much longer report " * 12, "mid length report text here"]
    text_encoder.sort_by_length = True
    sorted_x = text_encoder.encode(texts).X
    text_encoder.sort_by_length = False
    try:
        unsorted_x = text_encoder.encode(texts).X
    finally:
        text_encoder.sort_by_length = True
    np.testing.assert_allclose(sorted_x, unsorted_x, atol=2e-5)


def test_truncation_is_counted(text_encoder) -> None:
    result = text_encoder.encode(["normal chest", "opacity " * 400])
    assert result.truncated.tolist() == [False, True] and result.n_truncated == 1
    assert np.isfinite(result.X).all()


@pytest.mark.slow
def test_generic_hf_from_local_folder_with_cls_pooling(minilm) -> None:
    folder = minilm_model_dir()
    enc = build_text_encoder(f"hf:{folder}#cls")
    x = enc.encode(TEXTS).X
    assert x.shape == (3, 384)
    assert not np.allclose(np.linalg.norm(x, axis=1), 1.0)  # hf default: no normalisation
    assert not np.allclose(x, minilm.encode(TEXTS).X)  # cls != normalised mean
    assert enc.describe()["preprocessing"]["pooling"] == "cls"


def test_hub_model_not_in_cache_is_missing_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(MissingWeightsError, match="not available offline"):
        build_text_encoder("hf:no-such-org/no-such-model")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        build_text_encoder(f"hf:{tmp_path / 'nope'}")


def test_tfidf_svd_is_an_sklearn_estimator_and_deterministic() -> None:
    corpus = TEXTS * 3 + ["no acute disease", "small left pleural effusion", "normal heart size"]
    enc = build_text_encoder("tfidf_svd")
    assert clone(enc).get_params() == enc.get_params()
    assert not hasattr(enc, "svd_")
    x1 = enc.fit(corpus).encode(corpus).X
    x2 = TfidfSvdEncoder().fit(corpus).encode(corpus).X
    assert x1.shape == (len(corpus), enc.dim) and enc.dim == len(corpus) - 1  # capped by corpus
    np.testing.assert_allclose(x1, x2, atol=1e-6)
    prov = enc.describe()
    assert prov["preprocessing"]["n_components"] == 256 and prov["preprocessing"][
        "ngram_range"
    ] == [1, 2]
    assert prov["weights_sha256"] == enc.corpus_sha256_
    assert TfidfSvdEncoder().fit(corpus[::-1]).corpus_sha256_ == enc.corpus_sha256_  # order-free
    with pytest.raises(ConfigError):
        TfidfSvdEncoder().fit(["only one"])
