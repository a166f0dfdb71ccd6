"""Tests of classify.report (the analyst report) on small synthetic result objects."""

from __future__ import annotations

import base64
import html.parser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.analysis.analyse import analyse_benchmark, build_report_inputs
from classify.analysis.stats import t_interval
from classify.results.types import BenchmarkResult
from pipeline.errors import ConfigError
from tests.classify.conftest import (
    make_ablation,
    make_benchmark,
    make_cell,
    make_comparison,
    make_shuffle,
    render_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("fig-roc", "fig-pr", "fig-confusion", "fig-boxplot", "fig-cd", "fig-pvalues",
           "fig-attention", "fig-class-balance", "fig-ablation", "fig-shuffle",
           "fig-reliability", "fig-decision-curve")


class _Collector(html.parser.HTMLParser):
    """Every tag with its attributes, and the table cells with their classes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cells: list[tuple[str, str]] = []  # (class, text)
        self._td: list[str] | None = None
        self._td_class = ""

    def handle_starttag(self, tag, attrs):  # noqa: ANN001, ANN201
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "td":
            self._td, self._td_class = [], a.get("class", "")

    def handle_data(self, data):  # noqa: ANN001, ANN201
        if self._td is not None:
            self._td.append(data)

    def handle_endtag(self, tag):  # noqa: ANN001, ANN201
        if tag == "td" and self._td is not None:
            self.cells.append((self._td_class, "".join(self._td)))
            self._td = None


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):  # noqa: ANN001, ANN201
    """One report with every section given explicitly (rendered once for the module)."""
    out = tmp_path_factory.mktemp("reports")
    bench = make_benchmark(out)
    paths = render_report(
        bench, out, comparisons=[make_comparison(bench)], ablation=make_ablation(),
        shuffles=[make_shuffle(bench.cells[0])],
        experiment_text='name = "openi demo"\n[cv]\nfolds = 2  # <script>\n',
        provenance={"label_source": "mesh:report", "command": "pipeline report demo.toml"})
    page = paths["html"].read_text()
    parser = _Collector()
    parser.feed(page)
    return bench, paths, page, parser


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_report_paths_and_layout(full_report):  # noqa: ANN001
    _, paths, _, _ = full_report
    root = paths["html"].parent
    assert root.name == "openi-demo"
    assert paths["markdown"] == root / "report.md" and paths["markdown"].is_file()
    assert {p.name for p in paths["csv_dir"].glob("*.csv")} >= {
        "classifiers-fused.csv", "pairwise-1-accuracy.csv", "ranks-1-accuracy.csv",
        "ablation-accuracy.csv", "modality-shuffle.csv", "stores.csv", "cells.csv"}
    assert {p.stem for p in paths["latex_dir"].glob("*.tex")} == {
        p.stem for p in paths["csv_dir"].glob("*.csv")}
    assert not list(root.rglob(".*tmp*")), "temporary files left behind"


def test_html_is_self_contained(full_report):  # noqa: ANN001
    _, _, page, parser = full_report
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not value.lower().startswith(("http:", "https:", "//")), (tag, value)
        assert not (tag == "link" and attrs.get("rel") == "stylesheet")
        assert not (tag == "script" and attrs.get("src"))
    imgs = [a for t, a in parser.tags if t == "img"]
    assert len(imgs) == len(FIGURES)
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,"), a.get("id")
        assert base64.b64decode(a["src"].split(",", 1)[1]).startswith(PNG_MAGIC)
    assert {a["id"] for a in imgs} == set(FIGURES)
    assert all(a["alt"].startswith(a["id"]) for a in imgs)
    assert "<style>" in page
    # user text is escaped, never interpreted
    assert "# &lt;script&gt;" in page and "<script>" not in page


def test_classifier_table_numbers_and_best(full_report):  # noqa: ANN001
    _, paths, page, parser = full_report
    best = [t for c, t in parser.cells if "best" in c.split()]
    assert any(t.startswith("0.813 ± 0.026") for t in best)  # best accuracy (logistic)
    assert not any(t.startswith(("0.737 ±", "0.665 ±")) for t in best)
    assert any(t.startswith("0.737 ± 0.026") for c, t in parser.cells)
    assert "95% CI" in page and "weighted" in page.lower()
    # brier is lower-is-better: the bold brier is the smallest mean
    csv = pd.read_csv(paths["csv_dir"] / "classifiers-fused.csv")
    assert list(csv["Algorithm"]) == ["logistic", "random_forest", "knn"]
    assert csv.loc[0, "accuracy_mean"] == pytest.approx(0.813)
    assert csv.loc[0, "accuracy_n"] == 4
    lo, hi = t_interval(make_benchmark().cells[0].metric_values("accuracy"))
    assert csv.loc[0, "accuracy_ci_low"] == pytest.approx(lo)
    assert csv.loc[0, "accuracy_ci_high"] == pytest.approx(hi)
    best_brier = csv["brier_mean"].idxmin()
    brier_text = f"{csv.loc[best_brier, 'brier_mean']:.3f} ±"
    assert any(t.startswith(brier_text) for t in best)


def test_markdown_and_latex(full_report):  # noqa: ANN001
    _, paths, _, _ = full_report
    md = paths["markdown"].read_text()
    assert "| Algorithm | Accuracy | Precision | Recall | F1 | ROC AUC |" in md
    assert "**0.813 ± 0.026" in md
    assert "![ROC curves](figures/fig-roc.png)" in md
    assert (paths["html"].parent / "figures" / "fig-roc.png").read_bytes().startswith(PNG_MAGIC)
    tex = (paths["latex_dir"] / "classifiers-fused.tex").read_text()
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrrrrrrrr}",
                  "\\textbf{0.813 $\\pm$ 0.026}", "random\\_forest"):
        assert token in tex, token
    pw = (paths["latex_dir"] / "pairwise-1-accuracy.tex").read_text()
    assert "Nadeau-Bengio" in pw and "\\textbf{" not in pw.split("\\midrule")[0]


def test_statistics_and_provenance_sections(full_report):  # noqa: ANN001
    bench, _, page, parser = full_report
    texts = [t for _, t in parser.cells]
    assert "0.0200" in texts  # NB p of the first pair
    assert "smallest attainable two-sided p is 0.125" in page
    assert "Friedman chi2 = 6.500" in page
    # provenance: experiment text, store identity, split hash, versions, computed/reused cells
    assert "name = &quot;openi demo&quot;" in page
    assert "a" * 16 in page and "c" * 64 in page
    assert "numpy" in texts and "reused" in texts and "computed" in texts
    assert "pipeline report demo.toml" in texts


def test_warnings_box(full_report):  # noqa: ANN001
    _, _, page, _ = full_report
    box = page.split('id="warnings"')[1].split("</section>")[0]
    assert "pretraining overlap: store densenet" in box
    assert "s900" in box and "dropped 2 sample(s)" in box
    assert "1 item(s) failed to embed in store densenet" in box
    assert box.count("pretraining overlap") == 1  # the run's warning is not repeated


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_text_only_ceiling_warns(tmp_path):  # noqa: ANN001
    text = make_cell("logistic", fusion="single", feature_set="text", stores=("minilm",),
                     modalities=("text",), seed=5, overrides={"roc_auc": 0.99})
    bench = make_benchmark(tmp_path, cells=(make_cell("logistic", seed=1), text))
    paths = render_report(bench, tmp_path, comparisons=(), ablation=None,
                                provenance={"label_source": "mesh:report"})
    page = paths["html"].read_text()
    box = page.split('id="warnings"')[1].split("</section>")[0]
    assert "text-only ceiling: text/single/smote/logistic reaches roc_auc = 0.990" in box
    assert "labels are derived from the same report" in box
    assert "Text-only ceiling:" in page
    assert "No comparison was computed" in page
    ids = {a.get("id") for t, a in _tags(page) if t == "img"}
    assert "fig-cd" not in ids and "fig-roc" in ids
    # two feature sets -> two classifier tables
    assert {p.name for p in paths["csv_dir"].glob("classifiers-*.csv")} == {
        "classifiers-fused.csv", "classifiers-text.csv"}


def _tags(page: str) -> list[tuple[str, dict[str, str]]]:
    p = _Collector()
    p.feed(page)
    return p.tags


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_rerun_replaces_stale_tables(tmp_path):  # noqa: ANN001
    bench = make_benchmark(tmp_path)
    first = render_report(bench, tmp_path, comparisons=(), ablation=make_ablation(),
                                shuffles=[make_shuffle(bench.cells[0])])
    assert (first["csv_dir"] / "modality-shuffle.csv").is_file()
    second = render_report(bench, tmp_path, comparisons=(), ablation=None)
    assert second == first
    assert not (second["csv_dir"] / "modality-shuffle.csv").exists()
    assert not (second["latex_dir"] / "modality-shuffle.tex").exists()
    assert not (second["html"].parent / "figures" / "fig-shuffle.png").exists()


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_computes_missing_inputs_via_teammate_modules(tmp_path):  # noqa: ANN001
    bench = make_benchmark(tmp_path)
    inputs = build_report_inputs(bench)
    assert len(inputs.comparisons) == 1 and inputs.comparisons[0].metric == "roc_auc"
    assert inputs.ablation is not None
    paths = render_report(bench, tmp_path)
    ids = {a.get("id") for t, a in _tags(paths["html"].read_text()) if t == "img"}
    assert {"fig-cd", "fig-pvalues", "fig-attention"} <= ids


def test_dry_run_is_refused(tmp_path):  # noqa: ANN001
    bench = make_benchmark(tmp_path)
    dry = BenchmarkResult(**{**bench.__dict__, "cells": (), "dry_run": True})
    with pytest.raises(ConfigError, match="dry run"):
        analyse_benchmark(dry)


def test_t_interval():
    lo, hi = t_interval([1.0, 2.0, 3.0, 4.0])
    assert (lo + hi) / 2 == pytest.approx(2.5)
    assert hi - lo == pytest.approx(2 * 3.182446305 * 1.290994449 / 2)
    assert all(np.isnan(t_interval([1.0])))


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_import_does_not_load_matplotlib():
    code = ("import sys, classify.report, classify.report.plots, classify.analysis.analyse; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "False"


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no /usr/bin/chromium to render with")
def test_renders_in_headless_chromium(full_report, tmp_path):  # noqa: ANN001
    _, paths, _, _ = full_report
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1280,4000", paths["html"].resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 50_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        colours = im.convert("RGB").resize((64, 200)).getcolors(64 * 200)
    assert colours is not None and len(colours) > 50  # not a blank page
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
