"""Operating point and calibration: rules, calibrators, summaries, and a leak canary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classify.analysis.calibration import decision_curve, reliability, summarise_calibration
from classify.config.experiment import experiment_from_dict
from classify.run.benchmark import run_benchmark
from classify.run.procedure import operating_point as opmod
from classify.run.procedure.operating_point import (
    check_rule,
    choose_threshold,
    fit_calibrator,
    threshold_metrics,
)
from classify.run.split_plan import make_split_plan
from pipeline.errors import ConfigError
from tests.classify import _canary
from tests.classify.conftest import render_report

Y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


def test_threshold_rules():
    assert check_rule(" Sensitivity = 0.90 ") == "sensitivity=0.9"
    with pytest.raises(ConfigError, match="max_f1"):
        check_rule("sensitivity>0.9")
    # max F1: 0.4 -> tp 5, fp 1, fn 0 -> F1 = 10/11 (best)
    assert choose_threshold("max_f1", P, Y) == pytest.approx(0.4)
    # Youden: tpr - fpr is largest (1 - 0.2 = 0.8) at 0.4 and at 0.6 (0.8 - 0); first = highest t
    assert choose_threshold("youden", P, Y) == pytest.approx(0.6)
    # the highest threshold that keeps sensitivity >= 0.9 (here: all 5 positives) is 0.4
    assert choose_threshold("sensitivity=0.9", P, Y) == pytest.approx(0.4)
    assert choose_threshold("sensitivity=0.6", P, Y) == pytest.approx(0.7)
    assert choose_threshold("specificity=1.0", P, Y) == pytest.approx(0.6)
    m = threshold_metrics(Y, P, 0.4)
    assert (m["op_sensitivity"], m["op_specificity"]) == (1.0, 0.8)
    assert (m["op_ppv"], m["op_npv"]) == (pytest.approx(5 / 6), 1.0)
    assert m["op_f1"] == pytest.approx(10 / 11)
    assert np.isnan(threshold_metrics(Y, P, 0.95)["op_ppv"])  # no positive call


def test_calibrators_are_monotone_and_fix_a_shift():
    rng = np.random.default_rng(0)
    p_true = rng.uniform(size=4000)
    y = (rng.uniform(size=4000) < p_true).astype(int)
    shifted = np.clip(p_true * 0.5 + 0.4, 0, 1)  # over-confident positive probabilities
    for method in ("sigmoid", "isotonic"):
        cal = fit_calibrator(method, shifted, y)
        q = cal.transform(np.sort(shifted))
        assert np.all(np.diff(q) >= -1e-12)
        assert reliability(y, cal.transform(shifted))[1] < 0.03 < reliability(y, shifted)[1]


def test_reliability_and_decision_curve_by_hand():
    bins, ece = reliability(Y, P, n_bins=2)
    # bin [0, .5]: p mean 0.308, 1/6 positive; bin (.5, 1]: p mean 0.75, 4/4 positive
    assert list(bins["count"]) == [6, 4]
    assert ece == pytest.approx(0.6 * abs(1 / 6 - P[:6].mean()) + 0.4 * abs(1 - P[6:].mean()))
    d = decision_curve(Y, P, thresholds=[0.5]).iloc[0]
    # p >= 0.5: tp 4, fp 1 of 10; weight 1
    assert d["net_benefit"] == pytest.approx(0.4 - 0.1) and d["treat_all"] == pytest.approx(0.0)


def _op_config(toy_project, **over):  # noqa: ANN001, ANN202
    return toy_project["config"](feature_sets={"image": ["img"]}, fusions=["single"], **over)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_no_section_keeps_keys_and_section_changes_them(toy_project, tmp_path):
    plain = run_benchmark(experiment_from_dict(_op_config(toy_project)))
    op = run_benchmark(experiment_from_dict(_op_config(
        toy_project, operating_point={"rule": "youden", "inner_folds": 2})))
    assert plain.cells[0].key != op.cells[0].key
    assert "op_threshold" not in set(plain.cells[0].scores["metric"])
    s = summarise_calibration(op.cells[0], "abnormal")
    assert s.rule == "youden" and len(s.thresholds) == 6 and 0 < s.ece < 0.5
    at = s.operating.set_index("quantity")
    assert np.isfinite(at.loc["sensitivity", "at_threshold_mean"])
    assert np.isfinite(at.loc["sensitivity", "argmax_mean"])
    # argmax metrics are untouched by the operating point (no calibration)
    for m in ("roc_auc", "accuracy", "brier"):
        np.testing.assert_allclose(plain.cells[0].metric_values(m), op.cells[0].metric_values(m))
    paths = render_report(op, tmp_path, comparisons=(), ablation=None)
    section = paths["html"].read_text().split('id="calibration"')[1].split("</section>")[0]
    assert "Operating point of image/single/smote/logistic (rule: youden)" in section
    assert 'id="fig-reliability"' in section and 'id="fig-decision-curve"' in section
    assert len(pd.read_csv(paths["csv_dir"] / "thresholds.csv")) == 6


def test_threshold_and_calibration_never_see_a_test_row(toy_project, monkeypatch):
    seen: list[tuple[str, int]] = []
    real_choose, real_fit = opmod.choose_threshold, opmod.fit_calibrator

    def choose(rule, p, y):  # noqa: ANN001, ANN202
        seen.append(("threshold", len(p)))
        return real_choose(rule, p, y)

    def fit(method, p, y):  # noqa: ANN001, ANN202
        seen.append(("calibrator", len(p)))
        return real_fit(method, p, y)

    monkeypatch.setattr(opmod, "choose_threshold", choose)
    monkeypatch.setattr(opmod, "fit_calibrator", fit)
    _canary.RECORDS.clear()
    exp = experiment_from_dict(toy_project["config"](
        feature_sets={"image": ["img"]}, fusions=["leak_canary"], samplers=["smote"],
        operating_point={"rule": "sensitivity=0.9", "inner_folds": 3,
                         "calibration": "isotonic"}))
    res = run_benchmark(exp, n_jobs=1)
    plan = make_split_plan(np.asarray(toy_project["ids"]),
                           np.where(toy_project["y"], "abnormal", "normal"),
                           [f"p{i // 2:03d}" for i in range(len(toy_project["ids"]))],
                           n_folds=3, n_repeats=2, seed=0)
    assert plan.hash == res.split.hash
    splits = [(train, test) for _, _, train, test in plan.splits()]
    n = _canary.check_records(_canary.RECORDS, splits)
    assert n >= len(splits) * (2 + 3 * 3)  # outer fit+predict and 3 inner fits/predicts
    train_sizes = [len(train) for train, _ in splits]
    assert [k for k, _ in seen] == ["calibrator", "threshold"] * len(splits)
    assert [m for _, m in seen] == [s for s in train_sizes for _ in range(2)]


def test_operating_point_needs_binary_and_valid_settings(toy_project):
    with pytest.raises(ConfigError, match="operating_point.calibration 'platt'"):
        experiment_from_dict(_op_config(toy_project, operating_point={"calibration": "platt"}))
    with pytest.raises(ConfigError, match="inner_folds must be an integer >= 2"):
        experiment_from_dict(_op_config(toy_project, operating_point={"inner_folds": 1}))
    with pytest.raises(ConfigError, match="unknown key operating_point.rules"):
        experiment_from_dict(_op_config(toy_project, operating_point={"rules": "youden"}))


def test_tuned_cell_chooses_its_operating_point_on_other_inner_folds(monkeypatch):
    """Issue 21.6: tuning and the operating point used the same inner folds, so the threshold
    was fitted on the validation parts that had picked the hyper-parameters."""
    from sklearn.model_selection import StratifiedGroupKFold

    from classify.config.search_spaces import resolve_space
    from classify.results.types import CellSpec
    from classify.run.cell_task import run_split

    partitions = []
    split = StratifiedGroupKFold.split

    def recording(self, X, y=None, groups=None):  # noqa: ANN001, ANN202
        folds = [(tr, va) for tr, va in split(self, X, y, groups)]
        partitions.append(sorted(tuple(sorted(va.tolist())) for _, va in folds))
        yield from folds

    monkeypatch.setattr(StratifiedGroupKFold, "split", recording)
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=120) < 0.4).astype(int)
    X = rng.normal(size=(120, 4)) + y[:, None]
    params = {"operating_point": {"rule": "youden", "inner_folds": 3, "calibration": "none"},
              "tuning": {"search": "random", "budget": 2, "inner_folds": 3, "metric": "roc_auc",
                         "space": resolve_space("logistic", {})}}
    spec = CellSpec("f", ("a",), ("image",), "single", "none", "logistic", params)
    train, test = np.arange(90), np.arange(90, 120)
    run_split(spec, np.arange(4), (("a", 0, 4),), X, y, train, test, n_classes=2, positive=1,
              seed=0, groups=np.arange(120) // 2)
    assert len(partitions) == 2  # the search's inner folds, then the operating point's
    assert partitions[0] != partitions[1]


def test_operating_point_intervals_are_corrected_and_count_undefined_splits():
    """Issue 21.6: operating-point CIs were naive t-intervals over overlapping splits, and a
    split where PPV is undefined (nothing predicted positive) vanished without a word."""
    import dataclasses

    from scipy import stats as sps

    from tests.classify.conftest import make_cell

    cell = make_cell("logistic", fusion="single", feature_set="image", stores=("img",),
                     modalities=("image",), seed=3)
    key = cell.key
    ppv = [0.8, 0.6, float("nan"), 0.7]
    rows = []
    for i, (r, f) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for q in ("sensitivity", "specificity", "npv", "f1"):
            rows.append((key, r, f, f"op_{q}", 0.7 + 0.05 * i))
        rows += [(key, r, f, "op_ppv", ppv[i]), (key, r, f, "op_threshold", 0.4)]
    scores = pd.concat([cell.scores, pd.DataFrame(rows, columns=cell.scores.columns)])
    cell = dataclasses.replace(cell, scores=scores)
    s = summarise_calibration(cell, "abnormal", test_train_ratio=0.25)
    row = s.operating.set_index("quantity").loc["ppv"]
    v = np.array([0.8, 0.6, 0.7])
    half = sps.t.ppf(0.975, 2) * np.sqrt((1 / 3 + 0.25) * v.var(ddof=1))
    assert row["at_threshold_mean"] == pytest.approx(0.7)
    assert row["at_threshold_ci_low"] == pytest.approx(0.7 - half)
    assert row["at_threshold_ci_high"] == pytest.approx(min(0.7 + half, 1.0))
    assert row["at_threshold_undefined"] == 1 and row["n"] == 4
    from classify.report.tables import operating_table

    notes = " ".join(operating_table(s).notes)
    assert "PPV at the in-fold threshold is undefined in 1 of 4 splits" in notes
