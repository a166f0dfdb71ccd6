"""Promise 4: bad reports are recorded per file/id, never silently dropped. OpenI XMLs that
do not parse (broken XML, invalid UTF-8, no report id) are listed per file by `pipeline
data` (summary, log, sidecar JSON); reports with empty FINDINGS and IMPRESSION fail per id
in `pipeline extract` (exit 3); an extremely long report is embedded and its truncation is
stated in the summary; a non-UTF-8 CSV is refused naming the file and the fix (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import EXIT_PARTIAL, EXIT_USER_ERROR
from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import out, run

TEMPLATE = """<?xml version="1.0" encoding="{enc}"?>
<eCitation>
<uId id="{rid}"/>
<MedlineCitation><Article><Abstract>
<AbstractText Label="FINDINGS">{findings}</AbstractText>
<AbstractText Label="IMPRESSION">{impression}</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH><major>{tag}</major></MeSH>
<parentImage id="{rid}_img"/>
</eCitation>
"""


def _xml(rid: str, findings: str, impression: str, tag: str, enc: str = "utf-8") -> bytes:
    return TEMPLATE.format(enc=enc, rid=rid, findings=findings, impression=impression,
                           tag=tag).encode(enc)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reports") / "NLMCXR_reports"
    d.mkdir()
    for i in range(1, 9):
        tag = "normal" if i % 2 else "Cardiomegaly/mild"
        (d / f"{i}.xml").write_bytes(_xml(f"CXR{i}", f"heart size {i} lungs clear", "no acute", tag))
    (d / "20.xml").write_bytes(_xml("CXR20", "", "", "normal"))  # empty findings + impression
    (d / "21.xml").write_bytes(_xml("CXR21", "Poumons clairs, c\u00e9ur normal \u00e9", "rien", "normal",
                                    enc="iso-8859-1"))  # declared latin-1: fine
    bad_utf8 = _xml("CXR22", "heart SIZE_BYTES", "x", "normal").replace(b"SIZE_BYTES", b"\xff\xfe")
    (d / "22.xml").write_bytes(bad_utf8)  # declared UTF-8, invalid bytes
    long_text = " ".join(f"word{i % 997}" for i in range(60_000))
    (d / "23.xml").write_bytes(_xml("CXR23", long_text, "long", "Cardiomegaly"))
    (d / "24.xml").write_bytes(b"<eCitation><uId id='CXR24'/><MeSH><major>normal")  # broken
    (d / "25.xml").write_bytes(_xml("", "findings", "impression", "normal"))  # no report id
    return d


@pytest.fixture(scope="module")
def built(reports: Path) -> tuple[Path, object]:
    art = reports.parent / "artifacts"
    proc = run("data", "openi", "--reports", reports, "--image-root", reports.parent / "png",
               "--skip-image-check", "--artifacts", art)
    return art, proc


def test_unparseable_xml_is_listed_per_file(built):
    art, proc = built
    assert proc.returncode == 0, out(proc)
    assert "dropped      3  unparseable_xml" in proc.stdout
    for name in ("22.xml", "24.xml", "25.xml"):
        assert f"OpenI report {name} skipped" in proc.stderr
    meta = json.loads((art / "manifests" / "openi.json").read_text(encoding="utf-8"))
    assert set(meta["unparseable"]) == {"22.xml", "24.xml", "25.xml"}
    assert "no <uId" in meta["unparseable"]["25.xml"]
    assert "parse error" in meta["unparseable"]["24.xml"].lower()
    log = next((art / "logs").glob("*-data-*.log")).read_text(encoding="utf-8")
    assert "22.xml" in log and "24.xml" in log


@pytest.mark.slow
def test_empty_and_long_reports_are_recorded_in_extract(built):
    art, _ = built
    proc = run("extract", "--manifest", art / "manifests" / "openi.csv", "--encoder", "minilm",
               "--no-progress", "--artifacts", art)
    assert proc.returncode == EXIT_PARTIAL, out(proc)
    store = FeatureStore(art / "features" / "openi" / "minilm.h5")
    ids = set(store.ids.tolist())
    assert {"CXR21_img", "CXR23_img"} <= ids  # latin-1 and very long reports are embedded
    assert set(store.failed) == {"CXR20_img"}
    assert "empty text" in store.failed["CXR20_img"]
    assert "failed CXR20_img: empty text" in proc.stdout
    assert "1 texts truncated" in proc.stdout  # the 60,000-word report


def test_non_utf8_csv_is_refused_naming_the_file(tmp_path: Path):
    src = tmp_path / "latin1.csv"
    src.write_bytes("sample_id,image_path,label,findings\na,a.png,x,c\u0153ur \xe9largi\n"
                    .encode("cp1252"))
    proc = run("data", "csv", "--path", src, "--artifacts", tmp_path)
    assert proc.returncode == EXIT_USER_ERROR, out(proc)
    assert str(src) in proc.stderr and "UTF-8" in proc.stderr
    assert not (tmp_path / "manifests").exists()
