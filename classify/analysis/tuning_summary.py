"""Tuned cells against their default twins: the score gained, its test, and the chosen parameters.

Reads only stored results (:class:`~classify.results.types.CellResult`); the comparison is the
paired Nadeau-Bengio / Bayesian correlated test of :func:`classify.analysis.stats.compare_cells`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from classify.analysis.stats import compare_cells
from classify.results.types import CellResult, CellSpec


@dataclass(frozen=True)
class TuningSummary:
    """Tuned cells against their default twins (same cell without ``[tuning]``).

    Attributes:
        metric: compared metric (the report's primary metric).
        table: one row per tuned cell: ``cell, default, search, budget, inner_folds,
            mean_default, mean_tuned, diff`` (tuned - default), ``nb_p`` (Nadeau-Bengio
            corrected t-test), ``p_tuned_better, p_equivalent, p_default_better, decision``
            (Bayesian correlated t-test with the ROPE), ``tuning_seconds`` (all outer folds),
            ``fit_seconds_default, fit_seconds_tuned``.
        chosen: one row per (tuned cell, outer split): ``cell, repeat, fold, inner_score,
            params`` (JSON) — the spread of the chosen parameters is information.
        spread: one row per (tuned cell, parameter): ``cell, param, values`` (a summary of the
            values chosen over the outer folds).
    """

    metric: str
    table: pd.DataFrame = field(hash=False)
    chosen: pd.DataFrame = field(hash=False)
    spread: pd.DataFrame = field(hash=False)


def _spread(values: list[Any]) -> str:
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) == len(values) and len(set(nums)) > 3:
        a = np.asarray(nums, float)
        return f"median {np.median(a):.4g} [{a.min():.4g}-{a.max():.4g}]"
    shown = [f"{v:.4g}" if isinstance(v, float) else json.dumps(v) for v in values]
    counts = pd.Series(shown).value_counts()
    return ", ".join(f"{k} x{n}" for k, n in counts.items())


def summarise_tuning(cells: Sequence[CellResult], metric: str, *, test_train_ratio: float,
                     rope: float = 0.01, decision_probability: float = 0.95
                     ) -> TuningSummary | None:
    """Tuned vs default per tuned cell (None when no cell is tuned)."""
    by_id = {_untuned_id(c.spec): c for c in cells if "tuning" not in c.spec.params}
    rows, chosen, spread = [], [], []
    for c in cells:
        t = c.spec.params.get("tuning")
        if not t:
            continue
        folds = c.folds
        per_fold = [json.loads(p) for p in folds.get("tuned_params", pd.Series(dtype=str))]
        for (_, f), p in zip(folds.iterrows(), per_fold, strict=True):
            chosen.append({"cell": c.label, "repeat": int(f["repeat"]), "fold": int(f["fold"]),
                           "inner_score": float(f.get("tuning_score", np.nan)),
                           "params": json.dumps(p, sort_keys=True)})
        for name in t["space"]:
            spread.append({"cell": c.label, "param": name,
                           "values": _spread([p.get(name) for p in per_fold])})
        row = {"cell": c.label, "default": "", "search": t["search"], "budget": t["budget"],
               "inner_folds": t["inner_folds"], "tuning_seconds":
               float(folds["tuning_seconds"].sum()) if "tuning_seconds" in folds else np.nan,
               "fit_seconds_tuned": c.fit_seconds}
        default = by_id.get(_untuned_id(c.spec))
        if default is not None:
            cmp = compare_cells([c, default], metric, test_train_ratio=test_train_ratio,
                                rope=rope, decision_probability=decision_probability)
            r = cmp.pairwise.iloc[0]
            row.update(default=default.label, mean_default=r["mean_b"], mean_tuned=r["mean_a"],
                       diff=r["mean_diff"], nb_p=r["nb_p"], p_tuned_better=r["p_a_better"],
                       p_equivalent=r["p_equivalent"], p_default_better=r["p_b_better"],
                       decision={"A better": "tuned better", "B better": "default better"}.get(
                           r["decision"], r["decision"]),
                       fit_seconds_default=default.fit_seconds)
        rows.append(row)
    if not rows:
        return None
    cols = ["cell", "default", "search", "budget", "inner_folds", "mean_default", "mean_tuned",
            "diff", "nb_p", "p_tuned_better", "p_equivalent", "p_default_better", "decision",
            "tuning_seconds", "fit_seconds_default", "fit_seconds_tuned"]
    return TuningSummary(metric=metric, table=pd.DataFrame(rows).reindex(columns=cols),
                         chosen=pd.DataFrame(chosen), spread=pd.DataFrame(spread))


def _untuned_id(spec: CellSpec) -> str:
    d = spec.to_dict()
    d["params"] = {k: v for k, v in d["params"].items() if k != "tuning"}
    return json.dumps(d, sort_keys=True, default=str)
