"""Smoke tests of each benchmark at tiny size (the model-loading ones are marked slow)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.common import BenchConfig, BenchTable, Ratio, ratio_table, render_text, write_table


def _cfg(tmp_path: Path) -> BenchConfig:
    return BenchConfig(quick=True, out_dir=tmp_path / "out", work_dir=tmp_path / "work", repeats=1)


def test_tables_render_and_write(tmp_path: Path) -> None:
    table = BenchTable("t", "Title", ("a", "b"), (("x", 1.23456), ("y", 12345.6)), ("a note",))
    csv_path, md_path = write_table(table, tmp_path)
    with open(csv_path) as fh:
        assert list(csv.reader(fh)) == [["a", "b"], ["x", "1.23456"], ["y", "12345.6"]]
    md = md_path.read_text()
    assert "| x | 1.23 |" in md and "| y | 12,346 |" in md and "- a note" in md
    text = render_text(ratio_table([Ratio("image", "p/f", 0.9, ">= 0.85", True),
                                    Ratio("text", "p/pad", 1.5, ">= 2.0", False)]))
    assert "yes" in text and "NO" in text


def test_scale_model_projects_from_measured_costs(tmp_path: Path) -> None:
    from benchmarks import scale_model

    costs = {"efficientnet_lite0.pipeline_img_s": 4.0, "resnet50.pipeline_img_s": 2.0,
             "minilm.pipeline_reports_s": 20.0, "decode_img_s_core.256": 300.0,
             "decode_img_s_core.2048": 10.0, "decode_img_s_core.jpeg2500_draft": 20.0}
    out = scale_model.run(_cfg(tmp_path), costs)
    table = out.tables[0]
    assert len(table.rows) == (2 * 3 + 1) * len(scale_model.SIZES)
    assert out.costs["merge_rows_s"] > 0
    lite = [r for r in table.rows if r[0] == "efficientnet_lite0" and r[1] == "256px"]
    assert lite[0][3] == "42 min"  # 10,000 images / 4 img/s
    assert "decode-bound" in [r for r in table.rows if r[1] == "2048px PNG"][0][4]
    assert [r for r in table.rows if r[1] == "2500x3000 JPEG"]


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_memory_child_reports_peak_rss(tmp_path: Path) -> None:
    from benchmarks.memory import _measure

    m = _measure("classify", tmp_path, 60, 0, 4)
    assert m["n"] == 60 and 20 < m["self_mb"] < 4000 and m["seconds"] > 0


def test_cli_rejects_unknown_benchmark(tmp_path: Path) -> None:
    from benchmarks.__main__ import main

    assert main(["--only", "nope", "--out", str(tmp_path)]) == 2


def test_cli_writes_tables_and_ratios(tmp_path: Path) -> None:
    from benchmarks.__main__ import main

    assert main(["--quick", "--only", "scale", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ratios.csv").is_file() and (tmp_path / "scale_model.md").is_file()
    assert "merge_shards rows/s" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_classify_grid_benchmark(tmp_path: Path) -> None:
    from benchmarks import classify_grid

    out = classify_grid.run(_cfg(tmp_path), with_dask=False)
    ratios = {r.what: r for r in out.ratios}
    assert ratios["n_jobs=2 scores == n_jobs=1 scores"].ok is True
    rerun = out.tables[0].rows[2]
    assert rerun[0].startswith("re-run") and "9 reused" in rerun[4]


@pytest.mark.slow
def test_text_benchmark(tmp_path: Path) -> None:
    from benchmarks import text_extract

    out = text_extract.run(_cfg(tmp_path))
    rates = {row[0]: row[3] for row in out.tables[0].rows}
    assert set(rates) == {"pipeline onnxruntime", "pipeline torch", "pad_to_max", "unsorted",
                          "forward_only"}
    assert all(v > 0 for v in rates.values())
    ratios = {r.what: r for r in out.ratios}
    assert ratios["minilm embeddings onnxruntime vs torch (min cosine)"].ok is True


@pytest.mark.slow
def test_image_benchmark(tmp_path: Path) -> None:
    from benchmarks import image_extract

    out = image_extract.run(_cfg(tmp_path))
    assert len(out.tables[0].rows) == 4  # 2 encoders x 2 backends
    assert [r[1] for r in out.tables[0].rows] == ["pretrained", "pretrained",
                                                  "random (timing only)", "random (timing only)"]
    ratios = {r.what: r for r in out.ratios}
    for name in ("efficientnet_lite0", "resnet50"):
        assert ratios[f"{name} embeddings onnxruntime vs torch (min cosine)"].ok is True
        assert ratios[f"{name} onnxruntime pipeline / FLOP limit"].value > 0
    assert ratios["large JPEG decode+preprocess per core: draft / full"].value > 1
    assert out.costs["decode_img_s_core.256"] > out.costs["decode_img_s_core.2048"]
    assert {t.name for t in out.tables} == {"image_extract", "image_limits", "image_layer_kinds",
                                            "image_where_time_goes", "large_jpeg"}
    kinds = next(t for t in out.tables if t.name == "image_layer_kinds")
    lite0 = {r[1]: r for r in kinds.rows if r[0] == "efficientnet_lite0"}
    # EfficientNet-Lite0: 0.77 GFLOP, ~88 % in 1x1 convolutions, ~9 % depthwise
    assert sum(r[2] for r in lite0.values()) == pytest.approx(0.770, abs=0.005)
    assert lite0["1x1"][3] > 80 and 5 < lite0["depthwise"][3] < 15
    assert sum(r[4] for r in lite0.values()) == pytest.approx(100, abs=1)  # time shares
    for name in ("efficientnet_lite0", "resnet50"):
        with_decode = ratios[f"{name} onnxruntime pipeline / (FLOP + decode) limit"].value
        assert with_decode > ratios[f"{name} onnxruntime pipeline / FLOP limit"].value > 0


def test_pipeline_limit_adds_core_seconds() -> None:
    from benchmarks.image_limits import pipeline_limit

    # 2 cores, forward limit 500 img/s (4 core-ms) + 1 core-ms decode = 5 core-ms -> 400 img/s
    assert pipeline_limit(500.0, 0.001, 2) == pytest.approx(400.0)
    assert pipeline_limit(500.0, 0.0, 2) == pytest.approx(500.0)


def test_store_verify_reports_seconds_per_gb(tmp_path: Path) -> None:
    from benchmarks.store_verify import run

    out = run(_cfg(tmp_path))
    (row,) = out.tables[0].rows
    gb, rows, dim, verify_s, per_gb = row[:5]
    assert 0.016 < gb < 0.025 and rows == 16 * (1 << 20) // (4 * 1280) and dim == 1280
    assert verify_s > 0 and per_gb == round(out.costs["verify_s_per_gb"], 2)
    # the table rounds gb and seconds to 3 decimals: allow exactly that rounding error
    slack = per_gb * (0.0005 / verify_s + 0.0005 / gb) + 0.005
    assert abs(per_gb - verify_s / gb) <= slack
    assert out.ratios[0].bench == "verify"
    assert not (tmp_path / "work" / "verify").exists()  # the GB-sized scratch store is removed


def test_full_grid_data_is_tiled_as_documented(tmp_path: Path) -> None:
    import pandas as pd

    from benchmarks.classify_grid import make_full_grid_data
    from pipeline.store.feature_store import FeatureStore

    mpath, root, dataset = make_full_grid_data(tmp_path, n_base=40)
    frame = pd.read_csv(mpath)
    img = FeatureStore(root / dataset / "grid_img.h5")
    txt = FeatureStore(root / dataset / "grid_txt.h5")
    assert len(frame) == len(img) == len(txt) == 80 and (img.dim, txt.dim) == (2048, 384)
    X = img.read(frame["sample_id"].tolist())
    # rows tiled twice (same patient and label), image columns 1280.. repeat 0..767, + noise
    assert (frame["patient_id"][:40].to_numpy() == frame["patient_id"][40:].to_numpy()).all()
    assert (frame["label"][:40].to_numpy() == frame["label"][40:].to_numpy()).all()
    for a, b in ((X[:40], X[40:]), (X[:, :768], X[:, 1280:])):
        noise = (a - b).std()
        assert 0.1 < noise < 0.2 and noise < 0.2 * a.std()
    assert 0.25 < (frame["label"] == "abnormal").mean() < 0.45


@pytest.mark.slow
def test_full_grid_benchmark_quick(tmp_path: Path) -> None:
    from benchmarks import classify_grid

    out = classify_grid.run_full(_cfg(tmp_path))
    grid, per = out.tables
    assert grid.rows[0][0].startswith("32 cells x 3 splits")
    assert {r[0] for r in per.rows} == set(classify_grid.FULL_GRID["classifiers"])
    assert out.costs["classify.full_grid_seconds"] > 0
