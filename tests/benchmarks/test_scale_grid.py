"""The cost-curve benchmark: its growth exponent, MIMIC projection and one tiny measured size."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import scale_grid


def test_growth_exponent_recovers_a_power_law() -> None:
    ns = [3_734, 15_000, 60_000]
    assert scale_grid.growth_exponent(ns, [2e-6 * n ** 1.5 for n in ns]) == pytest.approx(1.5)
    assert scale_grid.growth_exponent(ns, [3.0, 3.0, 3.0]) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(scale_grid.growth_exponent([10], [1.0]))


def test_projection_scales_the_largest_size_by_the_exponent() -> None:
    # linear growth: 227,835 / 60,000 times the 60k cost, for every task of the experiment
    core_s = scale_grid.project(2.0, 60_000, 1.0, tasks=560)
    assert core_s == pytest.approx(560 * 2.0 * 227_835 / 60_000)


def test_curve_rows_hold_every_size_and_project_from_the_largest() -> None:
    measured = {n: [("prefix:fused/concat", 1e-4 * n, 10.0, float("nan"), 2e-4 * n),
                    ("knn", 1e-8 * n ** 2, 50.0, 0.7, 1e-8 * n ** 2)] for n in (1_000, 2_000, 4_000)}
    rows = scale_grid.curve_rows(measured, 0.5, {1_000: 2, 2_000: 2, 4_000: 1})
    assert len(rows) == 6 and all(len(r) == len(scale_grid.COLUMNS) for r in rows)
    knn = [r for r in rows if r[1] == "knn"]
    assert [r[0] for r in knn] == [1_000, 2_000, 4_000] and knn[-1][4] == pytest.approx(2.0)
    col = {c: i for i, c in enumerate(scale_grid.COLUMNS)}
    assert knn[0][col["mimic_core_h"]] == ""  # projections only on the largest size
    core_h = 14 * 10 * 4 * 1e-8 * 227_835 ** 2 / 3600  # 4 cells per classifier
    assert knn[-1][col["mimic_core_h"]] == pytest.approx(core_h, rel=1e-2)
    assert knn[-1][col["mimic_wall_h_2cores"]] == pytest.approx(core_h / (2 * 0.5), rel=1e-2)
    assert knn[-1][col["mimic_wall_h_16cores"]] == pytest.approx(core_h / (16 * 0.5), rel=1e-2)
    prefix = [r for r in rows if r[1].startswith("prefix:")][-1]  # one per split, not per cell
    assert prefix[col["mimic_core_h"]] == pytest.approx(14 * 10 * 0.4 * 227_835 / 4_000 / 3600,
                                                        rel=1e-2)
    assert prefix[col["wall_s"]] == pytest.approx(0.8)


def test_demo_rows_have_the_demo_shape_and_patients_of_two() -> None:
    X, y, groups = scale_grid.demo_rows(1_001)
    assert X.shape == (1_001, 1_664) and X.dtype == np.float32
    assert 0.3 < y.mean() < 0.4 and np.bincount(groups).max() == 2
    train, test = scale_grid.two_fold(y, groups)
    assert not set(groups[train]) & set(groups[test])  # no patient on both sides


def test_measure_size_times_prefixes_and_classifiers(tmp_path: Path) -> None:
    out = scale_grid.measure_size(400, ["logistic", "knn_capped"], [("fused", "concat")], 1)
    names = [r[0] for r in out]
    assert names == ["prefix:fused/concat", "logistic", "knn_capped"]
    assert all(r[1] > 0 for r in out) and 0.5 < out[1][3] <= 1.0


def test_capped_knn_projects_linearly_beyond_its_cap() -> None:
    measured = {n: [("knn_capped", 1e-8 * n ** 2, 50.0, 0.7, 1.0)] for n in (1_000, 4_000)}
    (small, big) = scale_grid.curve_rows(measured, 1.0, {1_000: 1, 4_000: 1})
    col = {c: i for i, c in enumerate(scale_grid.COLUMNS)}
    assert big[col["exponent"]] == pytest.approx(2.0)  # what was measured, reported
    assert big[col["projection_exponent"]] == 1.0  # what is used beyond the cap
    assert big[col["mimic_core_h"]] == pytest.approx(
        14 * 10 * 4 * 1e-8 * 4_000 ** 2 * (227_835 / 4_000) / 3600, rel=1e-2)


def test_tables_round_trip_through_the_saved_csv(tmp_path: Path) -> None:
    from benchmarks.common import write_table

    measured = {n: [("prefix:fused/concat", 1e-4 * n, 10.0, float("nan"), 2e-4 * n),
                    ("knn", 1e-8 * n ** 2, 50.0, 0.7, 2e-8 * n ** 2),
                    ("voting_soft", 2e-8 * n ** 2, 60.0, 0.8, 2e-8 * n ** 2)]
                for n in (1_000, 4_000)}
    out = scale_grid.outcome(measured, {1_000: 2, 4_000: 1}, 0.85, 1.0)
    for t in out.tables:
        write_table(t, tmp_path)
    again, repeats = scale_grid.load_csv(tmp_path)
    assert repeats == {1_000: 2, 4_000: 1}
    assert scale_grid.outcome(again, repeats, 0.85, 1.0).tables[0].rows == out.tables[0].rows
    # the soft vote reuses its members' fits in the grid: not in the whole-grid total
    col = scale_grid.COLUMNS.index("mimic_core_h")
    rows = out.tables[0].rows
    expected = sum(float(r[col]) for r in rows if r[col] != "" and r[1] != "voting_soft")
    assert out.costs["scale_grid.mimic_core_h"] == pytest.approx(expected)
