"""Fixtures of the source tests: small OpenI report folders (+ NLMCXR_png) and MIMIC-CXR-JPG releases written in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.sources.mimic_release import Release, write_release


def _openi_xml(uid: str, images: list[str], major: list[str], findings="", impression="") -> str:
    mesh = "".join(f"<major>{m}</major>" for m in major)
    imgs = "".join(f'<parentImage id="{i}"><caption>x</caption></parentImage>' for i in images)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><eCitation><uId id="{uid}"/>'
        f"<MedlineCitation><Article><Abstract>"
        f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
        f'<AbstractText Label="IMPRESSION">{impression}</AbstractText>'
        f"</Abstract></Article></MedlineCitation><MeSH>{mesh}</MeSH>{imgs}</eCitation>"
    )


@pytest.fixture
def openi_dir(tmp_path) -> Path:
    d = tmp_path / "reports"
    d.mkdir()
    (d / "1.xml").write_text(
        _openi_xml("CXR1", ["CXR1_a", "CXR1_b"], ["normal"], "Lungs clear.", "Normal.")
    )
    (d / "2.xml").write_text(
        _openi_xml(
            "CXR2",
            ["CXR2_a"],
            ["Cardiomegaly/mild", "Pulmonary Atelectasis/base"],
            "Big heart.",
            "",
        )
    )
    (d / "3.xml").write_text(_openi_xml("CXR3", [], ["normal"], "x", "y"))  # no images
    (d / "4.xml").write_text(
        _openi_xml("CXR4", ["CXR4_a"], ["No Indexing"], "", "")
    )  # empty text, unlabelled
    (d / "5.xml").write_text("<eCitation><uId id='CXR5'>")  # truncated XML
    (d / "6.xml").write_text(_openi_xml("", ["CXR6_a"], ["normal"], "a", "b"))  # no uId
    (d / "10.xml").write_text(
        _openi_xml("CXR10", ["CXR10_a", "CXR10_b"], ["Opacity/lung"], "Opacity.", "")
    )
    png = tmp_path / "NLMCXR_png"  # the default image root: next to the reports
    png.mkdir()
    for image_id in ("CXR1_a", "CXR1_b", "CXR2_a", "CXR4_a", "CXR6_a", "CXR10_a", "CXR10_b"):
        (png / f"{image_id}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return d


@pytest.fixture(scope="module")
def mimic_release(tmp_path_factory) -> Release:
    """24 studies x 2 images of a MIMIC-CXR-JPG-shaped release with one defect per 12 studies."""
    return write_release(tmp_path_factory.mktemp("mimic") / "mimic-cxr-jpg" / "2.0.0")

