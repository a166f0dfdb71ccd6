"""classify.analysis.stats against scipy and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from classify.analysis.stats import (
    average_ranks,
    compare_cells,
    holm,
    min_wilcoxon_p,
    nadeau_bengio,
    nemenyi_cd,
    rank_biserial,
    wilcoxon_test,
)
from classify.results.types import CellResult, CellSpec

A = np.array([0.81, 0.79, 0.84, 0.80, 0.83, 0.78, 0.82, 0.85, 0.80, 0.79])
B = np.array([0.78, 0.80, 0.79, 0.77, 0.80, 0.76, 0.81, 0.80, 0.78, 0.775])


def test_wilcoxon_matches_scipy_and_effect_size():
    stat, p, rb, n = wilcoxon_test(A, B)
    ref = sps.wilcoxon(A, B)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert n == 10
    # hand: d = A-B; one negative difference (-0.01, rank 3 of |d|) -> W- = 3, W+ = 52
    d = A - B
    ranks = sps.rankdata(np.abs(d))
    wm = ranks[d < 0].sum()
    assert rb == pytest.approx((55 - 2 * wm) / 55)
    assert rank_biserial(B, A) == pytest.approx(-rb)


def test_min_attainable_wilcoxon_p():
    assert min_wilcoxon_p(5) == pytest.approx(0.0625)
    assert min_wilcoxon_p(6) == pytest.approx(0.03125)
    # scipy's exact test reaches exactly that bound when all differences share a sign
    a = np.arange(5) + 1.0
    assert sps.wilcoxon(a + 1, a - np.arange(1, 6) * 0.1).pvalue == pytest.approx(0.0625)


def test_holm_known_example():
    # classic example: p = (0.01, 0.04, 0.03, 0.005) -> sorted 0.005,0.01,0.03,0.04
    # adjusted: 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(0.06, 1*0.04)=0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])
    assert np.isnan(out[1]) and out[2] == pytest.approx(0.02) and out[0] == pytest.approx(0.2)
    assert holm([0.6, 0.7]).max() <= 1.0


def test_nadeau_bengio_hand_computation():
    d = A - B
    j, ratio = len(d), 0.25
    t_hand = d.mean() / np.sqrt((1 / j + ratio) * d.var(ddof=1))
    p_hand = 2 * sps.t.sf(abs(t_hand), j - 1)
    t, df, p = nadeau_bengio(A, B, ratio)
    assert t == pytest.approx(t_hand) and df == j - 1 and p == pytest.approx(p_hand)
    # the correction makes it more conservative than the plain paired t-test
    assert p > sps.ttest_rel(A, B).pvalue
    # ratio 0 reduces to the paired t-test
    assert nadeau_bengio(A, B, 0.0)[2] == pytest.approx(sps.ttest_rel(A, B).pvalue)


def test_ranks_friedman_nemenyi():
    m = np.array([[0.9, 0.8, 0.7], [0.85, 0.86, 0.7], [0.9, 0.7, 0.8], [0.95, 0.9, 0.6]])
    np.testing.assert_allclose(average_ranks(m), [1.25, 2.0, 2.75])
    np.testing.assert_allclose(average_ranks(m, higher_better=False), [2.75, 2.0, 1.25])
    # Demsar (2006) table: q_0.05 = 2.343 for k = 3
    assert nemenyi_cd(3, 4) == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 4)), rel=1e-3)


def _cell(name: str, values: np.ndarray, folds: int = 5) -> CellResult:
    spec = CellSpec("fused", ("a", "b"), ("image", "text"), "concat", "smote", name)
    rows = [("k" + name, i // folds, i % folds, "roc_auc", v) for i, v in enumerate(values)]
    scores = pd.DataFrame(rows, columns=["cell_key", "repeat", "fold", "metric", "value"])
    empty = pd.DataFrame()
    return CellResult(spec, "k" + name, scores, empty, empty, empty, 0.0)


def test_compare_cells_table_and_refusal():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.7, 0.8, 25)
    cells = [_cell("x", base + 0.05), _cell("y", base + rng.normal(0, 0.01, 25)), _cell("z", base)]
    res = compare_cells(cells, "roc_auc", test_train_ratio=0.25)
    assert len(res.pairwise) == 3 and res.n_splits == 25
    row = res.pairwise.iloc[1]  # x vs z
    assert (row["a"], row["b"]) == ("fused/concat/smote/x", "fused/concat/smote/z")
    assert row["nb_p"] == pytest.approx(nadeau_bengio(base + 0.05, base, 0.25)[2])
    assert row["rank_biserial"] == pytest.approx(1.0)
    mat = np.column_stack([base + 0.05, cells[1].metric_values("roc_auc"), base])
    assert res.friedman_stat == pytest.approx(sps.friedmanchisquare(*mat.T).statistic)
    assert res.average_ranks.index[0] == "fused/concat/smote/x"
    # 5 paired splits: Wilcoxon cannot reach 0.05 -> refused with a warning
    small = compare_cells([_cell("x", base[:5] + 0.05), _cell("z", base[:5])], "roc_auc",
                          test_train_ratio=0.25)
    assert small.min_wilcoxon_p == pytest.approx(0.0625)
    assert small.pairwise["wilcoxon_p"].isna().all()
    assert any("Wilcoxon refused" in w for w in small.warnings)
    assert small.friedman_p is None


# Reference: scikit-posthocs 0.17.1, ``posthoc_nemenyi_friedman(NEMENYI_DATA)`` (rows = blocks,
# columns = treatments), values pasted below; the optional live check re-runs it.
NEMENYI_DATA = np.array([
    [0.81, 0.78, 0.74, 0.80], [0.83, 0.79, 0.75, 0.78], [0.80, 0.77, 0.76, 0.79],
    [0.85, 0.80, 0.73, 0.81], [0.82, 0.81, 0.72, 0.77], [0.84, 0.76, 0.74, 0.80],
    [0.79, 0.78, 0.77, 0.76], [0.86, 0.82, 0.75, 0.83], [0.83, 0.80, 0.71, 0.79],
    [0.81, 0.79, 0.76, 0.82]])
NEMENYI_REFERENCE = np.array([
    [1.0, 4.626765577877e-02, 7.362089364249e-06, 1.096113529818e-01],
    [4.626765577877e-02, 1.0, 1.096113529818e-01, 9.857232855453e-01],
    [7.362089364249e-06, 1.096113529818e-01, 1.0, 4.626765577877e-02],
    [1.096113529818e-01, 9.857232855453e-01, 4.626765577877e-02, 1.0]])


def test_nemenyi_pvalues_match_scikit_posthocs():
    from classify.analysis.stats import average_ranks, nemenyi_pvalues

    ranks = average_ranks(NEMENYI_DATA, higher_better=True)
    np.testing.assert_allclose(ranks, [1.1, 2.6, 3.9, 2.4])
    p = nemenyi_pvalues(ranks, NEMENYI_DATA.shape[0])
    np.testing.assert_allclose(p, NEMENYI_REFERENCE, rtol=1e-9, atol=1e-12)


def test_nemenyi_pvalues_match_installed_scikit_posthocs():
    sp = pytest.importorskip("scikit_posthocs")
    from classify.analysis.stats import average_ranks, nemenyi_pvalues

    p = nemenyi_pvalues(average_ranks(NEMENYI_DATA, True), NEMENYI_DATA.shape[0])
    np.testing.assert_allclose(p, sp.posthoc_nemenyi_friedman(NEMENYI_DATA).to_numpy(),
                               rtol=1e-9, atol=1e-12)
