"""Which cells are practically equivalent to the best one (Bayesian correlated t-test + ROPE).

The best cell is the one with the best mean on the metric; every other cell is compared
with it on the same splits (:func:`classify.analysis.stats.compare_cells` with it as baseline).
A cell is *equivalent* when P(|difference| <= ROPE) reaches the decision probability,
*worse* when P(best better) does, *better* in the rare case P(other better) does (the
best mean can still lose the posterior), and *undecided* otherwise. A difference of
0.003 ROC AUC is then not a reason to pick a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classify.analysis.stats import DECISION_PROBABILITY, DEFAULT_ROPE, compare_cells
from classify.results.metrics import higher_is_better
from classify.results.types import CellResult

#: Columns of :attr:`Equivalence.table`.
EQUIVALENCE_COLUMNS = ("cell", "mean", "diff_vs_best", "p_best_better", "p_equivalent",
                       "p_other_better", "verdict", "nb_p", "nb_p_holm")


@dataclass(frozen=True)
class Equivalence:
    """The best cell on a metric and the cells practically equivalent to it.

    Attributes:
        metric, rope, decision_probability: the question asked.
        best: label of the cell with the best mean; best_mean: that mean.
        equivalent: cells decided practically equivalent to ``best`` (ROPE), best first by mean.
        undecided: cells for which no outcome reaches the decision probability.
        worse: cells decided worse than ``best``; better: cells decided better (rare).
        table: one row per other cell, columns :data:`EQUIVALENCE_COLUMNS` (``verdict`` is
            ``equivalent``/``undecided``/``worse``/``better``; ``diff_vs_best`` = cell - best).
        n_splits: paired splits used.
    """

    metric: str
    rope: float
    decision_probability: float
    best: str
    best_mean: float
    equivalent: tuple[str, ...]
    undecided: tuple[str, ...]
    worse: tuple[str, ...]
    better: tuple[str, ...]
    table: pd.DataFrame = field(hash=False)
    n_splits: int = 0


_VERDICT = {"A better": "worse", "B better": "better", "equivalent": "equivalent",
            "undecided": "undecided"}


def equivalent_to_best(cells: Sequence[CellResult], metric: str, *, test_train_ratio: float,
                       rope: float = DEFAULT_ROPE,
                       decision_probability: float = DECISION_PROBABILITY) -> Equivalence:
    """Compare every cell with the best one on ``metric`` (needs >= 2 cells)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    means = {c.label: c.summary(metric)[0] for c in cells}
    best = max(cells, key=lambda c: np.nan_to_num(sign * means[c.label], nan=-np.inf)).label
    cmp = compare_cells(cells, metric, test_train_ratio=test_train_ratio, baseline=best,
                        rope=rope, decision_probability=decision_probability)
    rows = []
    for _, r in cmp.pairwise.iterrows():
        rows.append({"cell": r["b"], "mean": means[r["b"]], "diff_vs_best": -r["mean_diff"],
                     "p_best_better": r["p_a_better"], "p_equivalent": r["p_equivalent"],
                     "p_other_better": r["p_b_better"], "verdict": _VERDICT[r["decision"]],
                     "nb_p": r["nb_p"], "nb_p_holm": r["nb_p_holm"]})
    table = pd.DataFrame(rows, columns=list(EQUIVALENCE_COLUMNS))
    table = table.iloc[np.argsort(-sign * table["mean"].to_numpy(float), kind="stable")]
    table = table.reset_index(drop=True)

    def pick(verdict: str) -> tuple[str, ...]:
        return tuple(table.loc[table["verdict"] == verdict, "cell"])

    return Equivalence(metric=metric, rope=float(rope),
                       decision_probability=float(decision_probability), best=best,
                       best_mean=float(means[best]), equivalent=pick("equivalent"),
                       undecided=pick("undecided"), worse=pick("worse"), better=pick("better"),
                       table=table, n_splits=cmp.n_splits)
