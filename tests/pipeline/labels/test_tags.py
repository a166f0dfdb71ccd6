"""Finding-tag normalisation of OpenI MeSH headings and finding names."""

from __future__ import annotations

import pytest

from pipeline.labels import normalize_tag, normalize_tags

# ----------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("Pulmonary Atelectasis/base/left", "atelectasis"),
        ("Cardiac Shadow/enlarged", "cardiomegaly"),
        ("Cardiomegaly/mild", "cardiomegaly"),
        ("Pleural Effusion/bilateral/small", "effusion"),
        ("Calcified Granuloma/lung/upper lobe/right", "granuloma"),
        ("Lung/hypoinflation", "hypoinflation"),
        ("Catheters, Indwelling", "device"),
        ("No Indexing", "no_indexing"),
        ("Thoracic Vertebrae/degenerative/mild", "thoracic_vertebrae"),
        ("normal", "normal"),
        ("No Finding", "normal"),  # CheXpert column
    ],
)
def test_normalize_tag(raw, tag):
    assert normalize_tag(raw) == tag


def test_normalize_tags_dedupes_in_order():
    assert normalize_tags(["Opacity/lung", "", "Pulmonary Atelectasis", "Opacity/right"]) == [
        "opacity",
        "atelectasis",
    ]

