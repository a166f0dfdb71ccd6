"""Practical equivalence: the Bayesian correlated t-test with a ROPE, checked against baycomp."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from classify.analysis.equivalence import equivalent_to_best
from classify.analysis.stats import bayes_correlated_ttest, compare_cells, decide, nadeau_bengio
from classify.results.types import SCORE_COLUMNS
from tests.classify.conftest import make_benchmark, make_cell, render_report

# Per-split ROC AUC of three classifiers on 10 splits (fixed inputs).
A = np.array([0.912, 0.905, 0.921, 0.899, 0.915, 0.908, 0.917, 0.903, 0.911, 0.919])
B = np.array([0.906, 0.907, 0.913, 0.897, 0.910, 0.902, 0.915, 0.905, 0.904, 0.912])
C = np.array([0.861, 0.874, 0.869, 0.858, 0.880, 0.866, 0.871, 0.862, 0.877, 0.868])
# baycomp 1.0.3: CorrelatedTTest.probs(y, x, rope=0.01, runs) -> (P(x better), P(rope),
# P(y better)) for diff = x - y; pasted as (P(first better), P(equivalent), P(second better)).
BAYCOMP = {
    ("A", "B", 1): (2.90715557e-03, 9.97083643e-01, 9.20095665e-06),
    ("A", "C", 1): (9.99996867e-01, 3.08061588e-06, 5.28007033e-08),
    ("A", "B", 2): (1.05228412e-02, 9.89411352e-01, 6.58067286e-05),
    ("B", "C", 2): (9.99976589e-01, 2.31165859e-05, 2.94583663e-07),
}
SCORES = {"A": A, "B": B, "C": C}


@pytest.mark.parametrize(("x", "y", "runs"), list(BAYCOMP))
def test_matches_baycomp_constants(x, y, runs):  # noqa: ANN001
    ratio = 1.0 / (len(A) / runs - 1)  # baycomp's rho / (1 - rho) with rho = 1 / folds
    got = bayes_correlated_ttest(SCORES[x], SCORES[y], ratio, rope=0.01)
    np.testing.assert_allclose(got, BAYCOMP[(x, y, runs)], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(("x", "y", "runs"), list(BAYCOMP))
def test_matches_installed_baycomp_and_the_corrected_t_p_value(x, y, runs):  # noqa: ANN001
    baycomp = pytest.importorskip("baycomp")
    ratio = 1.0 / (len(A) / runs - 1)
    a, b = SCORES[x], SCORES[y]
    ref = baycomp.CorrelatedTTest.probs(b, a, rope=0.01, runs=runs)[::-1]
    np.testing.assert_allclose(bayes_correlated_ttest(a, b, ratio, 0.01), ref, atol=1e-12)
    left, right = baycomp.CorrelatedTTest.probs(b, a, rope=0, runs=runs)
    assert nadeau_bengio(a, b, ratio)[2] == pytest.approx(2 * min(left, right), rel=1e-8)


def test_significant_yet_equivalent_and_decisions():
    ratio = 1 / 9
    assert nadeau_bengio(A, B, ratio)[2] < 0.05  # "significantly different" ...
    pa, pe, pb = bayes_correlated_ttest(A, B, ratio, 0.01)
    assert decide(pa, pe, pb) == "equivalent"  # ... by 0.004 AUC: practically the same
    assert decide(*bayes_correlated_ttest(A, C, ratio, 0.01)) == "A better"
    assert decide(*bayes_correlated_ttest(C, A, ratio, 0.01)) == "B better"
    assert decide(*bayes_correlated_ttest(A, B, ratio, 0.001)) == "undecided"
    # lower-is-better (Brier): the smaller scores win
    assert decide(*bayes_correlated_ttest(C, A, ratio, 0.01, higher_better=False)) == "A better"
    # zero variance: a point mass
    assert bayes_correlated_ttest(A + 0.02, A, ratio, 0.01) == (1.0, 0.0, 0.0)
    assert bayes_correlated_ttest(A + 0.005, A, ratio, 0.01) == (0.0, 1.0, 0.0)


def _cell(name: str, values: np.ndarray):  # noqa: ANN202
    cell = make_cell("logistic", seed=1)
    spec = dataclasses.replace(cell.spec, classifier=name)
    rows = [(name, r, f, "roc_auc", float(v)) for (r, f), v in
            zip([(r, f) for r in range(2) for f in range(5)], values, strict=True)]
    return dataclasses.replace(cell, spec=spec, key=name,
                               scores=pd.DataFrame(rows, columns=list(SCORE_COLUMNS)))


def test_equivalent_to_best_names_the_set():
    cells = [_cell("b", B), _cell("a", A), _cell("c", C)]
    e = equivalent_to_best(cells, "roc_auc", test_train_ratio=0.25, rope=0.01)
    assert e.best == "fused/attention/smote/a" and e.best_mean == pytest.approx(A.mean())
    assert e.equivalent == ("fused/attention/smote/b",)
    assert e.worse == ("fused/attention/smote/c",) and not e.undecided
    assert list(e.table["verdict"]) == ["equivalent", "worse"]
    cmp = compare_cells(cells, "roc_auc", test_train_ratio=0.25, rope=0.01)
    assert {"p_a_better", "p_equivalent", "p_b_better", "decision"} <= set(cmp.pairwise)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_report_and_terminal_show_the_equivalent_set(tmp_path):
    from classify.analysis.analyse import best_and_equivalent
    from classify.report.console import choice_summary, comparison_table

    bench = make_benchmark(tmp_path, cells=(_cell("b", B), _cell("a", A), _cell("c", C)))
    bench = dataclasses.replace(bench, split=dataclasses.replace(bench.split,
                                                                 test_train_ratio=0.25))
    paths = render_report(bench, tmp_path, ablation=None)
    page = paths["html"].read_text()
    summary = page.split('id="summary"')[1].split("</section>")[0]
    # cells are named for readers (parts all cells share are left out: attention, SMOTE)
    assert "Practically equivalent to it" in summary and "image + report, b" in summary
    csv = pd.read_csv(paths["csv_dir"] / "equivalence-roc_auc.csv")
    assert list(csv["verdict"]) == ["equivalent", "worse"]
    pw = pd.read_csv(paths["csv_dir"] / "pairwise-1-roc_auc.csv")
    assert {"p_equivalent", "decision"} <= set(pw.columns)
    assert "equivalent" in paths["markdown"].read_text()
    text = choice_summary(best_and_equivalent(bench, "roc_auc"))
    assert "Best cell on roc_auc: fused/attention/smote/a" in text
    assert "practically equivalent" in text and "fused/attention/smote/b" in text
    cmp = compare_cells(bench.cells, "roc_auc", test_train_ratio=0.25)
    assert "P(=)" in comparison_table(cmp) and "equivalent" in comparison_table(cmp)
