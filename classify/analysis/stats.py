"""Paired comparisons of cells scored on the same saved splits.

* **Nadeau-Bengio corrected resampled t-test** (headline): for J paired split scores
  with differences ``d``, ``t = mean(d) / sqrt((1/J + n2/n1) * var(d, ddof=1))`` with
  J - 1 degrees of freedom, where ``n2/n1`` is the test/train size ratio. The
  correction accounts for the overlap of training sets between CV splits
  (Nadeau & Bengio 2003; Bouckaert & Frank 2004).
* **Wilcoxon signed-rank** (scipy, two-sided, zero differences dropped) with the
  matched-pairs rank-biserial correlation as effect size and **Holm** correction
  over the family of pairs. With n non-zero pairs the smallest attainable exact
  two-sided p is ``2 / 2**n`` (n = 5 -> 0.0625), so with n < 6 it can never reach
  0.05: such tests are refused (p reported as NaN) with a warning.
* **Bayesian correlated t-test** (Benavoli et al. 2017, as in ``baycomp``): the posterior of
  the mean difference is Student t with J - 1 degrees of freedom, location ``mean(d)`` and
  scale ``sqrt((1/J + n2/n1) * var(d))`` (the same correction), integrated over a region of
  practical equivalence (ROPE, default 0.01) into P(A better), P(equivalent), P(B better);
  the decision is the outcome whose probability reaches 0.95, else "undecided".
* **Friedman** test over all cells with splits as blocks, **average ranks**, and the
  **Nemenyi** post-hoc (critical difference ``q_alpha * sqrt(k(k+1)/(6N))`` with
  ``q_alpha`` from scipy's studentized range at infinite df divided by sqrt(2)).

Wilcoxon and Friedman/Nemenyi treat CV splits as independent, which they are not;
their p-values are optimistic, and every result says so in ``warnings``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from classify.results.metrics import higher_is_better
from classify.results.types import BenchmarkResult, CellResult, ComparisonResult
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs are left out of the family and stay NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """t-interval of the mean of ``values`` (NaNs ignored); ``(nan, nan)`` for < 2 values.

    Over ``J`` CV splits this is ``mean ± t(0.975, J-1) · std / sqrt(J)``; the splits share
    training data, so the interval is optimistic (too narrow).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, len(v) - 1)) * float(v.std(ddof=1)) / np.sqrt(len(v))
    m = float(v.mean())
    return m - half, m + half


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p-value with ``n`` non-zero pairs."""
    return 1.0 if n <= 0 else min(1.0, 2.0 / 2.0**n)


def rank_biserial(a: Sequence[float], b: Sequence[float]) -> float:
    """Matched-pairs rank-biserial correlation of ``a - b`` (+1: a always larger)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[d != 0]
    if len(d) == 0:
        return 0.0
    r = sps.rankdata(np.abs(d))
    wp, wm = r[d > 0].sum(), r[d < 0].sum()
    return float((wp - wm) / (wp + wm))


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, int]:
    """``(statistic, p, rank_biserial, n_nonzero)``; p is NaN when all pairs tie."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = int((d != 0).sum())
    if n == 0:
        return float("nan"), float("nan"), 0.0, 0
    res = sps.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue), rank_biserial(a, b), n


def corrected_interval(values: Sequence[float], test_train_ratio: float, level: float = 0.95
                       ) -> tuple[float, float]:
    """Nadeau-Bengio corrected interval of the mean of CV split scores (NaNs ignored):
    ``mean ± t(0.975, J-1) · sqrt((1/J + n2/n1) · var)``. The splits share training rows,
    so the plain ``var / J`` is too small; ``(nan, nan)`` for < 2 finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    j = len(v)
    if j < 2:
        return float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, j - 1)) * float(
        np.sqrt((1.0 / j + float(test_train_ratio)) * v.var(ddof=1)))
    return float(v.mean()) - half, float(v.mean()) + half


def nadeau_bengio(a: Sequence[float], b: Sequence[float], test_train_ratio: float
                  ) -> tuple[float, int, float]:
    """Corrected resampled t-test of paired split scores: ``(t, df, two-sided p)``."""
    d = np.asarray(a, float) - np.asarray(b, float)
    j = len(d)
    if j < 2:
        return float("nan"), 0, float("nan")
    mean, var = float(d.mean()), float(d.var(ddof=1))
    if var == 0.0:
        return (0.0, j - 1, 1.0) if mean == 0.0 else (float(np.sign(mean) * np.inf), j - 1, 0.0)
    t = mean / np.sqrt((1.0 / j + test_train_ratio) * var)
    return float(t), j - 1, float(2.0 * sps.t.sf(abs(t), j - 1))


def friedman(scores: np.ndarray) -> tuple[float, float]:
    """Friedman chi-square ``(statistic, p)`` of ``scores [n_blocks, k]`` (scipy's test).

    When every block ties all treatments the statistic is undefined (0/0): ``(nan, nan)`` is
    returned without calling scipy, which would warn.
    """
    scores = np.asarray(scores, dtype=float)
    if np.all(scores == scores[:, :1]):
        return float("nan"), float("nan")
    res = sps.friedmanchisquare(*[scores[:, i] for i in range(scores.shape[1])])
    return float(res.statistic), float(res.pvalue)


#: Default half-width of the region of practical equivalence (metric units).
DEFAULT_ROPE = 0.01
#: Posterior probability an outcome needs before it is decided.
DECISION_PROBABILITY = 0.95


def bayes_correlated_ttest(a: Sequence[float], b: Sequence[float], test_train_ratio: float,
                           rope: float = DEFAULT_ROPE, higher_better: bool = True
                           ) -> tuple[float, float, float]:
    """``(P(A better), P(equivalent), P(B better))`` of paired split scores.

    The posterior of the mean difference ``d = a - b`` is Student t (df = J - 1, location
    ``mean(d)``, scale ``sqrt((1/J + n2/n1) var(d))``); "equivalent" is ``|d| <= rope``.
    With zero variance the posterior is a point mass at ``mean(d)``. For a lower-is-better
    metric (``higher_better=False``) A is better when ``d < -rope``.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    j = len(d)
    if j < 2:
        return float("nan"), float("nan"), float("nan")
    mean, var = float(d.mean()), float(d.var(ddof=1))
    if var == 0.0:
        up, down = float(mean > rope), float(mean < -rope)
    else:
        scale = float(np.sqrt((1.0 / j + test_train_ratio) * var))
        up = float(sps.t.sf(rope, j - 1, loc=mean, scale=scale))
        down = float(sps.t.cdf(-rope, j - 1, loc=mean, scale=scale))
    p_a, p_b = (up, down) if higher_better else (down, up)
    return p_a, max(0.0, 1.0 - p_a - p_b), p_b


def decide(p_a: float, p_equivalent: float, p_b: float,
           threshold: float = DECISION_PROBABILITY) -> str:
    """``"A better"``, ``"equivalent"``, ``"B better"`` or ``"undecided"`` (none reaches
    ``threshold``)."""
    for p, what in ((p_a, "A better"), (p_equivalent, "equivalent"), (p_b, "B better")):
        if np.isfinite(p) and p >= threshold:
            return what
    return "undecided"


def average_ranks(scores: np.ndarray, higher_better: bool = True) -> np.ndarray:
    """Mean rank per column of ``scores [n_blocks, k]`` (1 = best; ties averaged)."""
    s = -scores if higher_better else scores
    return sps.rankdata(s, axis=1).mean(axis=0)


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference in average rank for ``k`` treatments, ``n_blocks`` blocks."""
    q = sps.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2.0)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def nemenyi_pvalues(ranks: np.ndarray, n_blocks: int) -> np.ndarray:
    """Pairwise Nemenyi p-values from average ranks."""
    k = len(ranks)
    se = np.sqrt(k * (k + 1) / (6.0 * n_blocks))
    diff = np.abs(ranks[:, None] - ranks[None, :]) / se
    p = sps.studentized_range.sf(diff * np.sqrt(2.0), k, np.inf)
    np.fill_diagonal(p, 1.0)
    return np.clip(p, 0.0, 1.0)


def compare_cells(
    cells: Sequence[CellResult],
    metric: str,
    *,
    test_train_ratio: float,
    alpha: float = 0.05,
    baseline: str | None = None,
    rope: float = DEFAULT_ROPE,
    decision_probability: float = DECISION_PROBABILITY,
) -> ComparisonResult:
    """Compare cells on ``metric`` over their common splits.

    Args:
        cells: at least 2 cells scored on the same split plan.
        test_train_ratio: n2/n1 of the plan (``SplitPlanInfo.test_train_ratio``).
        baseline: compare every cell to this label only (else all pairs); Holm runs over
            the compared pairs.
        rope: half-width of the region of practical equivalence of the Bayesian test.
        decision_probability: posterior probability needed for a decision.
    """
    if len(cells) < 2:
        raise ConfigError(f"need >= 2 cells to compare, got {len(cells)}")
    hib = higher_is_better(metric)
    labels = [c.label for c in cells]
    series = [c.metric_values(metric) for c in cells]
    frame = pd.concat(series, axis=1, keys=labels)
    warnings: list[str] = []
    n_all = len(frame)
    frame = frame.dropna()
    if len(frame) < n_all:
        warnings.append(f"{n_all - len(frame)} split(s) with an undefined {metric} dropped")
    j = len(frame)
    if j < 2:
        raise ConfigError(f"cells share only {j} split(s) with a defined {metric}; nothing to test")
    mat = frame.to_numpy()
    min_p = min_wilcoxon_p(j)
    warnings.append(
        f"The {j} CV splits share training data, so Wilcoxon and Friedman/Nemenyi p-values "
        "are optimistic; the Nadeau-Bengio corrected t-test is the headline test"
    )
    if min_p > alpha:
        warnings.append(
            f"Wilcoxon refused: with {j} paired splits the smallest attainable two-sided p is "
            f"{min_p:.4g} > alpha = {alpha}; use more folds/repeats"
        )
    if baseline is not None:
        if baseline not in labels:
            raise ConfigError(f"baseline {baseline!r} is not among the cells: {', '.join(labels)}")
        pairs = [(baseline, lab) for lab in labels if lab != baseline]
    else:
        pairs = list(itertools.combinations(labels, 2))
    col = {lab: i for i, lab in enumerate(labels)}
    rows = []
    for a, b in pairs:
        va, vb = mat[:, col[a]], mat[:, col[b]]
        t, df, p_nb = nadeau_bengio(va, vb, test_train_ratio)
        stat, p_w, rb, n = wilcoxon_test(va, vb)
        if n and min_wilcoxon_p(n) > alpha:
            if min_p <= alpha:
                warnings.append(f"Wilcoxon {a} vs {b}: only {n} non-tied pairs, cannot reach "
                                f"alpha; p not reported")
            p_w = float("nan")
        pa, pe, pb = bayes_correlated_ttest(va, vb, test_train_ratio, rope, hib)
        rows.append(dict(a=a, b=b, mean_a=float(va.mean()), mean_b=float(vb.mean()),
                         mean_diff=float((va - vb).mean()), nb_t=t, nb_df=df, nb_p=p_nb,
                         wilcoxon_stat=stat, wilcoxon_p=p_w, rank_biserial=rb, n_pairs=n,
                         p_a_better=pa, p_equivalent=pe, p_b_better=pb,
                         decision=decide(pa, pe, pb, decision_probability)))
    pw = pd.DataFrame(rows)
    pw["nb_p_holm"] = holm(pw["nb_p"].to_numpy())
    pw["wilcoxon_p_holm"] = holm(pw["wilcoxon_p"].to_numpy())
    pw["nb_significant"] = pw["nb_p_holm"] < alpha
    pw["wilcoxon_significant"] = pw["wilcoxon_p_holm"] < alpha
    pw = pw[["a", "b", "mean_a", "mean_b", "mean_diff", "nb_t", "nb_df", "nb_p", "nb_p_holm",
             "wilcoxon_stat", "wilcoxon_p", "wilcoxon_p_holm", "rank_biserial", "n_pairs",
             "nb_significant", "wilcoxon_significant", "p_a_better", "p_equivalent",
             "p_b_better", "decision"]]

    ranks = average_ranks(mat, hib)
    avg = pd.Series(ranks, index=labels, name="average_rank").sort_values()
    fr_stat = fr_p = cd = None
    nem = None
    if len(cells) >= 3:
        fr_stat, fr_p = friedman(mat)
        if not np.isfinite(fr_p):
            warnings.append(f"Friedman test: all cells tied on every split ({metric}); there is "
                            "no ranking to test (reported as 'all tied')")
        cd = nemenyi_cd(len(cells), j, alpha)
        nem = pd.DataFrame(nemenyi_pvalues(ranks, j), index=labels, columns=labels)
    for w in warnings:  # the result carries them and every renderer prints them once
        log.debug(w)
    return ComparisonResult(
        metric=metric, higher_is_better=hib, cells=tuple(labels), n_splits=j,
        test_train_ratio=float(test_train_ratio), alpha=alpha, pairwise=pw,
        average_ranks=avg, friedman_stat=fr_stat, friedman_p=fr_p, nemenyi_cd=cd,
        nemenyi_p=nem, min_wilcoxon_p=min_p, warnings=tuple(warnings), rope=float(rope),
        decision_probability=float(decision_probability),
    )


def compare_benchmark(
    result: BenchmarkResult,
    metric: str = "roc_auc",
    *,
    cells: Sequence[str] | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    rope: float = DEFAULT_ROPE,
    decision_probability: float = DECISION_PROBABILITY,
) -> ComparisonResult:
    """:func:`compare_cells` over a benchmark's cells (all, or the labels in ``cells``)."""
    if result.split is None or not result.cells:
        raise ConfigError("the benchmark has no computed cells (dry run?); run it first")
    chosen = list(result.cells) if cells is None else [result.cell(lab) for lab in cells]
    return compare_cells(chosen, metric, test_train_ratio=result.split.test_train_ratio,
                         alpha=alpha, baseline=baseline, rope=rope,
                         decision_probability=decision_probability)


def compare_within_feature_sets(
    result: BenchmarkResult, metric: str = "roc_auc", *, alpha: float = 0.05,
    rope: float = DEFAULT_ROPE, decision_probability: float = DECISION_PROBABILITY,
) -> tuple[ComparisonResult, ...]:
    """Per feature set, every cell against that set's best cell on ``metric``.

    What ``pipeline classify`` prints: k-1 pairs per feature set (Holm within the set)
    instead of all k(k-1)/2 pairs; the report shows all pairs.
    """
    out = []
    for name in dict.fromkeys(c.spec.feature_set for c in result.cells):
        cells = [c for c in result.cells if c.spec.feature_set == name]
        if len(cells) < 2:
            continue
        sign = 1.0 if higher_is_better(metric) else -1.0
        best = max(cells, key=lambda c: sign * c.summary(metric)[0])
        out.append(compare_benchmark(result, metric, cells=[c.label for c in cells],
                                     baseline=best.label, alpha=alpha, rope=rope,
                                     decision_probability=decision_probability))
    return tuple(out)
