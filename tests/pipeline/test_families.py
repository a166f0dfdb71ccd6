"""Data-set families and the pretraining-overlap check."""

from __future__ import annotations

from pipeline.families import dataset_family, normalize_dataset_name, pretraining_overlap


def test_dataset_family_and_pretraining_overlap():
    assert normalize_dataset_name("MIMIC-CXR") == normalize_dataset_name("mimic") == "mimic_cxr"
    assert normalize_dataset_name("openi_demo") == normalize_dataset_name("Open-I") == "openi"
    assert dataset_family({"source_dataset": "openi"}) == "openi"
    # manifests written before source_dataset existed: the registered format they came from
    assert dataset_family({"build": {"source": "openi_demo"}}) == "openi"
    assert dataset_family({"build": {"source": "csv"}}) is None
    assert dataset_family({}) is None
    trained_on = ["nih", "chexpert", "mimic", "padchest", "openi", "google", "rsna"]
    assert pretraining_overlap(trained_on, "openi") == ["openi"]
    assert pretraining_overlap(trained_on, "mimic_cxr") == ["mimic"]
    assert pretraining_overlap(["imagenet"], "openi") == []
    assert pretraining_overlap(trained_on, None) == []
    # no substring matching: 'mimic-iii' notes are not MIMIC-CXR
    assert pretraining_overlap(["mimic-iii"], "mimic_cxr") == []

