"""Block-subset ablation: every fused cell against the same cell on each subset of its blocks.

Two parts:

* :func:`subset_feature_sets` adds feature sets for subsets of every multi-store feature set
  of an experiment (``ablation = "leave_one_out"``: each store left out once;
  ``"all_subsets"``: every non-empty proper subset). A subset is named
  ``<feature set>[<store>+<store>]``; one whose stores are already a feature set is not
  added again. Subsets of one store use fusion ``single``; the others use the experiment's
  fusions, so each full-fusion cell has a partner cell per subset.
* :func:`subset_ablation` pairs each *full* cell (>= 2 stores, its store set not a proper
  subset of another cell's) with every cell on a proper subset of its stores that has the
  same sampler and classifier (and the same fusion, or ``single`` for one store), and runs
  the Nadeau-Bengio corrected paired t-test (subset - full) on the shared splits, Holm-
  adjusted over the subsets of each full cell. A negative difference with a small p means
  the dropped blocks carried information the others did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from classify.analysis.stats import holm, nadeau_bengio
from classify.results.metrics import higher_is_better
from classify.results.types import BenchmarkResult, CellResult

SUBSET_COLUMNS = ("full_cell", "feature_set", "fusion", "sampler", "classifier", "metric",
                  "subset_cell", "kept", "dropped", "n_blocks", "mean_full", "mean_subset",
                  "diff", "nb_t", "nb_p", "nb_p_holm", "n_splits")


@dataclass(frozen=True)
class SubsetAblation:
    """Every (full cell, subset cell) pair with its corrected paired test.

    Attributes:
        metrics: metrics compared.
        table: columns :data:`SUBSET_COLUMNS`; ``diff`` = mean(subset - full) over the shared
            splits, ``nb_p_holm`` adjusted over the subsets of one full cell and metric.
        test_train_ratio: the n2/n1 of the Nadeau-Bengio correction.
    """

    metrics: tuple[str, ...]
    table: pd.DataFrame = field(hash=False)
    test_train_ratio: float = float("nan")


def _params_key(cell: CellResult) -> str:
    import json

    p = {k: dict(v) for k, v in cell.spec.params.items() if k != "fusion"}
    return json.dumps(p, sort_keys=True, default=str)


def full_cells(cells: Sequence[CellResult]) -> list[CellResult]:
    """Cells of >= 2 stores whose store set is not a proper subset of another cell's."""
    sets = [frozenset(c.spec.stores) for c in cells]
    return [c for c, s in zip(cells, sets, strict=True)
            if len(s) >= 2 and not any(s < o for o in sets)]


def partners(full: CellResult, cells: Sequence[CellResult]) -> list[CellResult]:
    """Cells on a proper subset of ``full``'s stores with the same sampler, classifier and
    non-fusion parameters, and the same fusion (``single`` for one store)."""
    s = frozenset(full.spec.stores)
    out = []
    for c in cells:
        sub = frozenset(c.spec.stores)
        if not sub < s or not sub:
            continue
        if (c.spec.sampler, c.spec.classifier) != (full.spec.sampler, full.spec.classifier):
            continue
        if _params_key(c) != _params_key(full):
            continue
        want = "single" if len(sub) == 1 else full.spec.fusion
        if c.spec.fusion != want:
            continue
        if len(sub) > 1 and dict(c.spec.params.get("fusion", {})) != dict(
                full.spec.params.get("fusion", {})):
            continue
        out.append(c)
    return sorted(out, key=lambda c: (-len(c.spec.stores), c.spec.stores))


def subset_ablation(result: BenchmarkResult, metrics: Sequence[str] = ("roc_auc",)
                    ) -> SubsetAblation:
    """Pair every full cell with its subset cells and test each pair (see the module doc)."""
    ratio = result.split.test_train_ratio if result.split is not None else float("nan")
    rows = []
    cells = list(result.cells)
    for full in full_cells(cells):
        mates = partners(full, cells)
        if not mates:
            continue
        for m in metrics:
            a = full.metric_values(m)
            block = []
            for sub in mates:
                b = sub.metric_values(m)
                both = pd.concat([a, b], axis=1, keys=["full", "sub"]).dropna()
                t, _, p = nadeau_bengio(both["sub"].to_numpy(), both["full"].to_numpy(), ratio)
                dropped = [k for k in full.spec.stores if k not in sub.spec.stores]
                block.append(dict(
                    full_cell=full.label, feature_set=full.spec.feature_set,
                    fusion=full.spec.fusion, sampler=full.spec.sampler,
                    classifier=full.spec.classifier, metric=m, subset_cell=sub.label,
                    kept="+".join(sub.spec.stores), dropped="+".join(dropped),
                    n_blocks=len(sub.spec.stores), mean_full=float(both["full"].mean()),
                    mean_subset=float(both["sub"].mean()),
                    diff=float((both["sub"] - both["full"]).mean()), nb_t=t, nb_p=p,
                    n_splits=len(both)))
            adj = holm([r["nb_p"] for r in block])
            for r, q in zip(block, adj, strict=True):
                r["nb_p_holm"] = float(q)
            rows += block
    table = pd.DataFrame(rows, columns=list(SUBSET_COLUMNS))
    return SubsetAblation(tuple(metrics), table, float(ratio))


def render_subset_ablation(table: pd.DataFrame, metric: str, test_train_ratio: float) -> str:
    """Terminal table of a subset-ablation ``table`` (:data:`SUBSET_COLUMNS`) on ``metric``."""
    from pipeline.helpers import format_p, text_table

    t = table[table["metric"] == metric]
    if t.empty:
        return f"Block-subset ablation ({metric}): no full-fusion cell has subset cells"
    better = "higher" if higher_is_better(metric) else "lower"
    rows = [(r.full_cell, r.kept, r.dropped or "-", f"{r.mean_subset:.3f}", f"{r.diff:+.4f}",
             format_p(r.nb_p_holm), "yes" if np.isfinite(r.nb_p_holm) and r.nb_p_holm < 0.05
             else "no") for r in t.itertuples(index=False)]
    return text_table(("full cell", "kept blocks", "dropped", metric, "subset - full",
                       "NB p (Holm)", "sig."), rows,
                      title=f"Block-subset ablation ({metric}; {better} is better)",
                      notes=(f"Nadeau-Bengio corrected paired t-test on the shared splits "
                             f"(n2/n1 = {test_train_ratio:.3f}), Holm over the subsets of "
                             "each full cell",))
