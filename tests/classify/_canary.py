"""A leak canary: a fusion that records which rows (column 0 = row number) it is fitted on
and asked to transform, registered as fusion ``leak_canary``. Used with ``n_jobs=1`` (joblib
then runs every task in this process, in plan order)."""

from __future__ import annotations

from typing import Any

import numpy as np

from classify.models.fusion import FUSIONS, SingleFusion

RECORDS: list[tuple[str, frozenset[int]]] = []


class CanaryFusion(SingleFusion):
    def fit(self, X: Any, y: Any = None) -> CanaryFusion:
        RECORDS.append(("fit", frozenset(np.asarray(X)[:, 0].astype(int).tolist())))
        return super().fit(X, y)

    def transform(self, X: Any) -> np.ndarray:
        RECORDS.append(("transform", frozenset(np.asarray(X)[:, 0].astype(int).tolist())))
        return super().transform(X)


if "leak_canary" not in FUSIONS:
    FUSIONS.add("leak_canary", CanaryFusion, n_blocks="one", description="test canary")


def check_records(records: list[tuple[str, frozenset[int]]], splits: list[tuple[Any, Any]]
                  ) -> int:
    """Assert that, task by task (``splits`` = (train, test) in task order), every row seen
    is a training row, except the task's last transform, which is exactly its test fold;
    and that rows predicted by a model were never in the rows it was fitted on.
    Returns the number of records checked."""
    i = 0
    for train, test in splits:
        train, test = frozenset(train.tolist()), frozenset(test.tolist())
        last_fit: frozenset[int] = frozenset()
        while True:
            kind, rows = records[i]
            i += 1
            if kind == "transform" and rows == test:
                assert not rows & last_fit, "the outer model was fitted on a test row"
                break
            assert rows <= train, f"{kind} saw {len(rows - train)} row(s) outside training"
            if kind == "fit":
                last_fit = rows
            elif rows != last_fit:  # a prediction: rows the model was not fitted on
                assert not rows & last_fit, "a model predicted rows it was fitted on"
    assert i == len(records), "records left after the last task"
    return i
