"""Tests of classify.analysis.compare_runs: cell-by-cell comparison of two saved runs."""

from __future__ import annotations

import json

import pytest

from classify.analysis.compare_runs import compare_runs, render_comparison_of_runs
from classify.results.cell_store import cell_dir, write_cell, write_checksums
from pipeline.errors import ConfigError
from tests.classify.conftest import CLASSES, make_benchmark, make_cell

IDS_A = {"densenet": "a" * 64, "minilm": "b" * 64}
IDS_B = {"densenet": "d" * 64, "minilm": "b" * 64}  # densenet re-embedded (new content)


def _meta(ids=IDS_A, split="c" * 64, seed=7):  # noqa: ANN001, ANN202
    return {"dataset": "openi", "label_rule": "mesh:normal-vs-abnormal",
            "store_identities": dict(ids), "split_hash": split, "seed": seed}


@pytest.fixture()
def runs(tmp_path):  # noqa: ANN001, ANN201
    """Run A: logistic, random_forest, knn. Run B: logistic (same key), random_forest (new
    densenet content -> new key, different scores), mlp (new)."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_cell(a, make_cell("logistic", key="1" * 16, seed=1), _meta(), CLASSES)
    write_cell(a, make_cell("random_forest", key="2" * 16, seed=2), _meta(), CLASSES)
    write_cell(a, make_cell("knn", key="3" * 16, seed=3), _meta(), CLASSES)
    write_cell(b, make_cell("logistic", key="1" * 16, seed=1), _meta(), CLASSES)
    write_cell(b, make_cell("random_forest", key="4" * 16, seed=2, accuracy=0.787),
               _meta(IDS_B), CLASSES)
    write_cell(b, make_cell("mlp", key="5" * 16, seed=5), _meta(IDS_B), CLASSES)
    return a, b


def test_only_changed_unchanged(runs):  # noqa: ANN001
    a, b = runs
    res = compare_runs(a, b)
    assert (res.n_a, res.n_b) == (3, 3)
    assert [r.label for r in res.only_a] == ["fused/attention/smote/knn"]
    assert [(r.label, r.key) for r in res.only_b] == [("fused/attention/smote/mlp", "5" * 16)]
    assert [r.label for r in res.unchanged] == ["fused/attention/smote/logistic"]
    (ch,) = res.changed
    assert (ch.label, ch.key_a, ch.key_b) == ("fused/attention/smote/random_forest", "2" * 16,
                                              "4" * 16)
    assert ch.changes == ("store densenet content changed",)
    assert res.warnings == ()


def test_paired_differences(runs):  # noqa: ANN001
    a, b = runs
    res = compare_runs(a, b, metrics=["accuracy", "roc_auc"])
    d = res.differences.set_index(["cell", "metric"])
    row = d.loc[("fused/attention/smote/random_forest", "accuracy")]
    assert row["mean_a"] == pytest.approx(0.737) and row["mean_b"] == pytest.approx(0.787)
    assert row["mean_diff"] == pytest.approx(0.05)
    assert row["std_diff"] == pytest.approx(0.0, abs=1e-12)  # same per-split offsets
    assert row["n_shared"] == 4 and bool(row["paired"]) and bool(row["changed"])
    same = d.loc[("fused/attention/smote/logistic", "roc_auc")]
    assert same["mean_diff"] == pytest.approx(0.0) and not bool(same["changed"])
    assert set(d.index.get_level_values("metric")) == {"accuracy", "roc_auc"}


def test_render(runs):  # noqa: ANN001
    a, b = runs
    text = render_comparison_of_runs(compare_runs(a, b), metrics=["accuracy"])
    assert f"A: {a} (3 cells)" in text
    assert "Only in A (1):" in text and "fused/attention/smote/knn" in text
    assert "Only in B (1):" in text and "5555555555555555" in text
    assert "store densenet content changed" in text
    assert "+0.0500" in text and "0.737" in text and "0.787" in text
    # identical cells are summarised, not listed, unless asked
    assert "fused/attention/smote/logistic" not in text.split("Mean scores")[1]
    full = render_comparison_of_runs(compare_runs(a, b), metrics=["accuracy"],
                                     show_unchanged=True)
    assert "fused/attention/smote/logistic" in full.split("Mean scores")[1]


def test_newest_key_per_label_and_split_change(tmp_path):  # noqa: ANN001
    a, b = tmp_path / "a", tmp_path / "b"
    write_cell(a, make_cell("logistic", key="1" * 16, seed=1), _meta(), CLASSES)
    # B holds an old and a new result of the same label; the new one used another split plan
    write_cell(b, make_cell("logistic", key="6" * 16, seed=1), _meta(), CLASSES)
    write_cell(b, make_cell("logistic", key="7" * 16, seed=1, accuracy=0.9),
               _meta(split="e" * 64, seed=8), CLASSES)
    for key, created in (("6" * 16, "2024-01-01T00:00:00+00:00"),
                         ("7" * 16, "2025-01-01T00:00:00+00:00")):
        p = cell_dir(b, key) / "cell.json"
        doc = json.loads(p.read_text())
        doc["created"] = created
        p.write_text(json.dumps(doc))
        write_checksums(p.parent)  # a deliberate edit, sealed again (else compare refuses it)
    res = compare_runs(a, b, metrics=["accuracy"])
    (ch,) = res.changed
    assert ch.key_b == "7" * 16
    assert ch.changes == ("split plan changed", "seed: 7 -> 8")
    assert any("2 stored results" in w and "6" * 16 in w for w in res.warnings)
    assert any("not paired" in w for w in res.warnings)
    row = res.differences.iloc[0]
    assert not row["paired"] and row["mean_diff"] == pytest.approx(0.9 - 0.813)


def test_run_manifest_and_benchmark_inputs(runs, tmp_path):  # noqa: ANN001
    a, b = runs
    manifest = tmp_path / "run-b.json"
    manifest.write_text(json.dumps({"results_dir": "b", "cells": ["4" * 16, {"key": "5" * 16}]}))
    res = compare_runs(a, manifest)
    assert {r.label for r in res.only_a} == {"fused/attention/smote/logistic",
                                            "fused/attention/smote/knn"}
    assert [c.key_b for c in res.changed] == ["4" * 16]
    # an in-memory BenchmarkResult as run A (cells without stored records)
    bench = make_benchmark(cells=(make_cell("random_forest", key="2" * 16, seed=2),))
    res = compare_runs(bench, b)
    assert [c.label for c in res.changed] == ["fused/attention/smote/random_forest"]
    assert res.changed[0].changes == ("store densenet content changed",)


def test_errors(tmp_path):  # noqa: ANN001
    with pytest.raises(ConfigError, match="does not exist"):
        compare_runs(tmp_path / "nope", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no stored cells"):
        compare_runs(tmp_path / "empty", tmp_path / "empty")
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"cells": ["0" * 16]}))
    with pytest.raises(ConfigError, match="not found"):
        compare_runs(bad, bad)
