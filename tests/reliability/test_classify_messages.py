"""Classify-stage messages a user reads (issue 11 obs. 8, 10, 11; issue 16 obs. 9).

* unknown parameters: only the unknown names are called unknown, the valid ones are a hint;
* report.md never carries raw HTML from sample ids, cell notes or experiment names;
* SMOTE's k_neighbors reduced in a fold is printed by `pipeline classify` and listed in the
  report's warnings (before: only inside cell.json);
* a Friedman test where every split ties all cells says "all tied" instead of printing scipy's
  RuntimeWarning.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from classify.models.classifiers import build_classifier
from classify.models.fusion import build_fusion
from pipeline.cli import main
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR, ConfigError
from tests.classify.conftest import (
    DATASET,
    N,
    make_benchmark,
    make_cell,
    render_report,
    toy_labels,
    write_manifest,
    write_store,
)
from tests.reliability._cli import experiment


def test_unknown_parameter_lists_only_the_unknown_names():
    with pytest.raises(ConfigError) as exc:
        build_fusion("concat", None, reduce="pca", n_comp=3)
    msg = str(exc.value)
    assert "unknown parameter(s) 'n_comp'." in msg and "'reduce'" not in msg.split(".")[0]
    assert "Did you mean 'n_components'?" in msg and "Valid parameters:" in msg
    with pytest.raises(ConfigError) as exc:
        build_classifier("logistic", C=1.0, max_iter=10, foo=2)
    head, hint = str(exc.value).split("Valid parameters:")
    assert "'foo'" in head and "'C'" not in head and "max_iter" not in head
    assert "C" in hint and "max_iter" in hint


def test_unknown_parameter_in_an_experiment_file_exits_2(tmp_path, capsys):
    cfg = experiment(tmp_path / "exp.toml", name="x", dataset="x", stores=["a"],
                     classifiers=["knn"], **{"params.classifier.knn": {"n_neighbors": 3,
                                                                       "wieghts": "distance"}})
    assert main(["classify", "--config", str(cfg), "--artifacts", str(tmp_path)]) \
        == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "params.classifier.knn" in err and "unknown parameter(s) 'wieghts'" in err
    assert "Did you mean 'weights'?" in err and "'n_neighbors'" not in err.split("Valid")[0]


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_markdown_report_escapes_html(tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    cell = dataclasses.replace(make_cell("logistic", seed=1),
                               warnings=("note with <script>alert(2)</script>",))
    bench = make_benchmark(tmp_path, cells=(cell, make_cell("knn", seed=3)))
    bench = dataclasses.replace(
        bench, experiment="<script>alert(3)</script> demo",
        data=dataclasses.replace(bench.data, dropped={"no label": (evil, "s1")}))
    paths = render_report(bench, tmp_path, comparisons=(), ablation=None,
                          provenance={"manifest_notes": ["report text <b onmouseover=x>"]})
    for path in (paths["markdown"], paths["html"]):
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text and "<b onm" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
        assert "&lt;script&gt;alert(3)&lt;/script&gt; demo" in text


def test_smote_k_reduction_is_printed_and_in_the_report(tmp_path, capsys):
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 5)).astype(np.float32) + y[:, None]
    write_store(tmp_path / "features", "img", "image", ids, X)
    manifest = write_manifest(tmp_path, ids, y)
    cfg = experiment(
        tmp_path / "k.toml", name="k", dataset=DATASET, manifest=str(manifest),
        features_root=str(tmp_path / "features"), results_root=str(tmp_path / "results"),
        positive_label="abnormal", stores=["img"], fusions=["single"], samplers=["smote"],
        classifiers=["logistic"], n_jobs=1, cv={"folds": 3, "repeats": 1, "seed": 0},
        **{"params.sampler.smote": {"k_neighbors": 40}})
    art = ["--artifacts", str(tmp_path)]
    assert main(["classify", "--config", str(cfg), *art]) == EXIT_OK
    printed = capsys.readouterr()
    assert "k_neighbors reduced 40 -> " in printed.out  # the terminal summary
    assert "k_neighbors reduced 40 -> " in printed.err  # the log line on the console
    assert main(["report", "--config", str(cfg), "--no-shuffle", *art]) == EXIT_OK
    page = (tmp_path / "reports" / "k" / "report.html").read_text(encoding="utf-8")
    box = page.split('id="warnings"')[1].split("</section>")[0]
    assert '<span class="tag">resampling</span>' in box and "k_neighbors reduced 40 -&gt; " in box


def test_friedman_all_tied_says_so_without_a_runtime_warning():
    from classify.analysis.stats import compare_cells
    from classify.report.console import comparison_table

    same = {"accuracy": 0.8, "roc_auc": 0.9}
    cells = [make_cell(c, seed=i, overrides=same, accuracy=0.8)
             for i, c in enumerate(("logistic", "knn", "mlp"))]
    cells = [dataclasses.replace(c, scores=cells[0].scores.assign(cell_key=c.key)) for c in cells]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's "invalid value encountered" would raise here
        cmp = compare_cells(cells, "roc_auc", test_train_ratio=1.0)
    assert np.isnan(cmp.friedman_p) and any("all tied" in w for w in cmp.warnings)
    assert "Friedman: all tied" in comparison_table(cmp)


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative default paths stay inside the test folder
