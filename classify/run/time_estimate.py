"""How long a run will take: each cell to compute is timed from stored cells like it.

``pipeline classify --dry-run`` shows, per cell to compute, the median fit time (all splits) of
the stored cells of the same results folder (same data set) that match it most closely: same
classifier, fusion, sampler and number of stores; else same classifier and fusion; else same
classifier. A cell with no similar stored cell has no estimate (say so, never a guess). The
wall-time estimate divides the summed fit time by the parallel fits (the split tasks of a run
are independent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classify.results.cell_store import iter_cell_docs
from classify.results.types import CellSpec, PlannedCell


@dataclass(frozen=True)
class TimeEstimate:
    """Estimated fit seconds of one cell (all splits), and what it is based on."""

    seconds: float
    basis: str


def _levels(spec: CellSpec) -> list[tuple[str, tuple[Any, ...]]]:
    return [("same classifier, fusion, sampler, blocks",
             (spec.classifier, spec.fusion, spec.sampler, len(spec.stores))),
            ("same classifier and fusion", (spec.classifier, spec.fusion)),
            ("same classifier", (spec.classifier,))]


def estimate_from_docs(planned: Sequence[PlannedCell], docs: Iterable[Mapping[str, Any]]
                       ) -> dict[str, TimeEstimate]:
    """Cell key -> estimate for every planned cell to compute that has similar stored cells."""
    timed: dict[tuple[Any, ...], list[float]] = {}
    for d in docs:
        try:
            spec = CellSpec.from_dict(d["spec"])
            seconds = float(d["fit_seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        for _, key in _levels(spec):
            timed.setdefault(key, []).append(seconds)
    out = {}
    for p in planned:
        if p.action != "compute":
            continue
        for what, key in _levels(p.spec):
            if key in timed:
                v = timed[key]
                out[p.key] = TimeEstimate(float(np.median(v)), f"median of {len(v)} stored "
                                                                f"cell(s), {what}")
                break
    return out


def estimate_times(planned: Sequence[PlannedCell], results_dir: Path | None
                   ) -> dict[str, TimeEstimate]:
    """:func:`estimate_from_docs` over the cells stored in ``results_dir``."""
    if results_dir is None or not Path(results_dir).is_dir():
        return {}
    return estimate_from_docs(planned, iter_cell_docs(Path(results_dir)))
