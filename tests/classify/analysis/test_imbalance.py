"""Prevalence sweep: nested positive subsamples, a plan per prevalence, cached cells, tests vs 'none'."""

from __future__ import annotations

import numpy as np
import pytest

from classify.analysis.prevalence_sweep import (
    PREVALENCE_METRICS,
    nested_positive_subsets,
    run_prevalence_sweep,
    sweep_table,
)
from classify.config.experiment import experiment_from_dict
from classify.config.sections import parse_imbalance
from classify.run.benchmark import run_benchmark
from pipeline.errors import ConfigError


def test_subsets_are_nested_and_hit_the_prevalence() -> None:
    y = np.array([1] * 300 + [0] * 700)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    subs = nested_positive_subsets(y, 1, (0.3, 0.2, 0.09, 0.05), seed=3)
    neg = set(np.flatnonzero(y == 0).tolist())
    previous = None
    for p, rows in subs.items():
        assert neg <= set(rows.tolist())  # every negative kept
        assert abs(float(np.mean(y[rows] == 1)) - p) < 0.005
        if previous is not None:
            assert set(rows.tolist()) <= previous  # 5% inside 9% inside 20% ...
        previous = set(rows.tolist())
    again = nested_positive_subsets(y, 1, (0.09,), seed=3)
    np.testing.assert_array_equal(again[0.09], subs[0.09])  # fixed seed: same rows
    with pytest.raises(ConfigError, match="above the data's own prevalence 0.300"):
        nested_positive_subsets(y, 1, (0.5,), seed=0)


@pytest.mark.parametrize(("raw", "message"), [
    ({"prevalence": [0.5, 1.2]}, "between 0 and 1"),
    ({"prevalence": []}, "between 0 and 1"),
    ({"prevalence": [0.2, 0.2]}, "twice"),
    ({"prevalence": [0.2], "sampler": ["smote"]}, r"unknown key imbalance.'sampler'"),
    ({"prevalence": [0.2], "samplers": ["smoth"]}, r"imbalance.samplers\[0\]"),
    ({"prevalence": [0.2], "seed": -1}, "seed"),
    ({"prevalence": [0.2], "fusions": ["concatt"]}, r"imbalance.fusions\[0\]"),
])
def test_bad_sections_name_the_key(raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_imbalance(raw, "exp.toml")


def _exp(toy_project, **over):  # noqa: ANN001, ANN202
    cfg = toy_project["config"](
        feature_sets={"image": ["img"]}, fusions=["single"], samplers=["smote"],
        imbalance={"prevalence": [0.3, 0.15], "samplers": ["smote", "class_weight"]}, **over)
    return experiment_from_dict(cfg)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_sweep_runs_caches_and_tests_against_none(toy_project, tmp_path) -> None:
    exp = _exp(toy_project)
    main = run_benchmark(exp)
    sweep = run_prevalence_sweep(exp, n_jobs=1)
    assert [lv.prevalence for lv in sweep.levels] == [0.3, 0.15]
    n_neg = int((toy_project["y"] == 0).sum())
    assert [lv.n_positive for lv in sweep.levels] == [round(0.3 * n_neg / 0.7),
                                                      round(0.15 * n_neg / 0.85)]
    assert sweep.n_computed == 6 and len(sweep.cells) == 6  # 2 prevalences x 3 samplers
    plans = sorted((exp.results_dir / "splits").glob("*prevalence*.csv"))
    assert len(plans) == 2 and {lv.split_path for lv in sweep.levels} == {str(p) for p in plans}
    assert len({lv.split_hash for lv in sweep.levels} | {main.split.hash}) == 3
    # the main grid's cells are neither recomputed nor re-keyed by the sweep
    assert run_benchmark(exp).n_computed == 0
    again = run_prevalence_sweep(exp, n_jobs=1)
    assert (again.n_computed, again.n_reused) == (0, 6)

    t = sweep_table(sweep)
    assert set(t["metric"]) == set(PREVALENCE_METRICS)
    smote = t[(t["sampler"] == "smote") & (t["metric"] == "pr_auc") & (t["prevalence"] == 0.15)]
    none = t[(t["sampler"] == "none") & (t["metric"] == "pr_auc") & (t["prevalence"] == 0.15)]
    assert len(smote) == 1 and 0 <= float(smote["nb_p"].iloc[0]) <= 1
    cells = {(p, c.spec.sampler): c for p, c in sweep.cells}
    d = (cells[(0.15, "smote")].metric_values("pr_auc")
         - cells[(0.15, "none")].metric_values("pr_auc")).mean()
    assert float(smote["diff_vs_none"].iloc[0]) == pytest.approx(float(d))
    assert np.isnan(none["nb_p"].iloc[0])
    assert (t.groupby(["prevalence", "metric"])["n_splits"].min() == 6).all()

    from classify.analysis.analyse import analyse_benchmark
    from classify.report import write_report
    from classify.report.inputs import add_context

    analysis = add_context(analyse_benchmark(main), exp)
    assert analysis.prevalence is not None and len(analysis.prevalence.cells) == 6
    paths = write_report(analysis, tmp_path / "rep")
    html = paths["html"].read_text()
    assert "Prevalence sweep" in html
    assert len(list(paths["figures_dir"].glob("fig-prevalence-*.png"))) == len(PREVALENCE_METRICS)
    assert (paths["csv_dir"] / "prevalence-sweep.csv").exists()


def test_report_without_a_computed_sweep_says_so(toy_project) -> None:
    exp = _exp(toy_project)
    from classify.analysis.prevalence_sweep import load_prevalence_sweep

    sweep = load_prevalence_sweep(exp)
    assert sweep.missing == 6 and not sweep.cells
    splits = exp.results_dir / "splits"
    assert not splits.exists() or not list(splits.glob("*prevalence*"))  # loading saves nothing


def test_sweep_table_keeps_tuned_twins_apart() -> None:
    """Issue 21.4: with [tuning] and [imbalance] both on, the +tuned twin of a cell must not
    overwrite the default cell in the sweep table (4 cells -> 4 rows, not 2)."""
    import dataclasses

    from classify.analysis.prevalence_sweep import PrevalenceLevel, PrevalenceSweep
    from tests.classify.conftest import make_cell

    cells = []
    for i, sampler in enumerate(("none", "smote")):
        for tuned in (False, True):
            c = make_cell("logistic", sampler=sampler, fusion="single", feature_set="image",
                          stores=("img",), modalities=("image",), seed=10 * i + tuned,
                          key=f"k{i}{int(tuned)}")
            if tuned:
                params = {"tuning": {"search": "random", "budget": 4}}
                c = dataclasses.replace(c, spec=dataclasses.replace(c.spec, params=params))
            cells.append((0.3, c))
    sweep = PrevalenceSweep("abnormal", 0.38, (PrevalenceLevel(0.3, 40, 12, "h", "p", 0.5),),
                            tuple(cells))
    t = sweep_table(sweep, ("pr_auc",))
    assert len(t) == 4
    assert set(t["config"]) == {"image/single/logistic", "image/single/logistic+tuned"}
    tuned_smote = t[(t["config"] == "image/single/logistic+tuned") & (t["sampler"] == "smote")]
    want = cells[3][1].metric_values("pr_auc").mean()
    assert float(tuned_smote["mean"].iloc[0]) == pytest.approx(float(want))
