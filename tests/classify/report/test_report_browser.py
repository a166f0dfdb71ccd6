"""The report and the clinician's summary page, rendered by a real headless browser (Chromium).

Skipped only when no Chromium is installed; ``.ci/run`` installs Debian's ``chromium`` so CI
runs these tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.classify.conftest import render_report
from tests.classify.report.test_console_summary import big_benchmark

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: `apt-get install -y chromium` (.ci/run does)")


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report")
    paths = render_report(big_benchmark(3), out)  # 12 cells: quick to draw
    return {"paths": paths, "tmp": out}


def test_report_renders_with_the_answer_first_and_details_collapsed(report):
    tmp, html = report["tmp"], report["paths"]["html"]
    dom = chromium(tmp, "--dump-dom", html.as_uri()).stdout
    sections = re.findall(r'<section id="([^"]+)"', dom)
    assert sections[:2] == ["answer", "summary"]
    answer = dom[dom.index('<section id="answer"'):dom.index('<section id="summary"')]
    assert "(a) Does fusion beat each single modality?" in answer
    assert "Sensitivity" in answer and "prevalence 65.0%" in answer
    assert "<details" not in answer  # the answer is open ...
    assert re.search(r'<section id="statistics"[^>]*><details class="sec">', dom)  # ... details not
    shot = tmp / "report.png"
    chromium(tmp, "--window-size=1280,1600", f"--screenshot={shot}", html.as_uri())
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 20  # text and tables drawn, not a blank page


def test_summary_page_prints_on_one_page(report):
    tmp, page = report["tmp"], report["paths"]["summary"]
    dom = chromium(tmp, "--dump-dom", page.as_uri()).stdout
    for heading in ("Question", "Data", "Answer", "Chosen model and its operating point",
                    "Caveats"):
        assert f"<h2>{heading}</h2>" in dom
    assert "Sensitivity" in dom and "95 % interval" in dom
    pdf = tmp / "summary.pdf"
    chromium(tmp, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages == 1
