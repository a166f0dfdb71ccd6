"""The cross-task answer: best cell per task x feature set, fusion-vs-single verdict, Holm across tasks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.stats as sps

from classify.analysis.tasks import TASK_COLUMNS, analyse_tasks
from classify.run.tasks import TaskResult, TasksRun
from tests.classify.conftest import make_benchmark, make_cell

SIGNS = np.array([-1.0, 1.0, -1.0, 1.0])  # 4 splits (2 repeats x 2 folds), test/train ratio 1


def _with_auc(cell, values):
    s = cell.scores.copy()
    rows = s["metric"] == "roc_auc"
    s.loc[rows, "value"] = np.asarray(values, float)[np.arange(rows.sum()) % 4]
    return replace(cell, scores=s)


def _task(fused_minus_single: np.ndarray, single: float = 0.8, text: float = 0.6, n_pos: int = 14):
    base = single + 0.01 * SIGNS
    cells = (
        _with_auc(make_cell("logistic", fusion="single", feature_set="image", stores=("densenet",),
                            modalities=("image",), seed=1), base),
        _with_auc(make_cell("logistic", fusion="single", feature_set="text", stores=("minilm",),
                            modalities=("text",), seed=2), text + 0.01 * SIGNS),
        _with_auc(make_cell("logistic", fusion="concat", seed=3), base + fused_minus_single),
        _with_auc(make_cell("knn", fusion="concat", seed=4), base + fused_minus_single - 0.05),
    )
    bench = make_benchmark(cells=cells)
    data = replace(bench.data, class_counts={"abnormal": n_pos, "normal": 40 - n_pos})
    return replace(bench, data=data)


def _diff_with_p(p: float) -> np.ndarray:
    """Paired differences whose Nadeau-Bengio p (4 splits, ratio 1) is exactly ``p``."""
    t = sps.t.isf(p / 2, 3)
    c = 0.01
    return t * np.sqrt(1.25 * c * c * 4 / 3) + c * SIGNS


def _run(**benches) -> TasksRun:
    return TasksRun("exp", tuple(TaskResult(k, b, 1.0) for k, b in benches.items()), 0.1, 5.0)


def test_table_has_one_row_per_task_and_feature_set_with_prevalence():
    answer = analyse_tasks(_run(a=_task(np.full(4, 0.05)), b=_task(np.zeros(4), n_pos=4)))
    table = answer.table()
    assert list(table.columns) == list(TASK_COLUMNS)
    assert len(table) == 6
    row = table[(table.task == "b") & (table.feature_set == "fused")].iloc[0]
    assert row.n == 40 and row.positives == 4 and row.prevalence == pytest.approx(0.1)
    assert row.best_cell == "fused/concat/smote/logistic"  # the best of the fused set
    assert row["mean"] == pytest.approx(0.8)
    assert row.ci_low < row["mean"] < row.ci_high
    assert answer.heat().loc["a", "fused"] == pytest.approx(0.85)


def test_verdicts_better_worse_and_undecided():
    answer = analyse_tasks(_run(up=_task(np.full(4, 0.05)), same=_task(np.zeros(4)),
                                down=_task(np.full(4, -0.1))))
    verdict = {v.task: v.verdict for v in answer.verdicts}
    assert verdict == {"up": "better", "same": "no difference shown", "down": "worse"}
    down = next(v for v in answer.verdicts if v.task == "down")
    assert down.single_cell == "image/single/smote/logistic"  # the best single modality
    assert down.difference == pytest.approx(-0.1)
    table = answer.table().set_index(["task", "feature_set"])
    assert table.loc[("up", "fused"), "verdict_vs_single"] == "better"
    assert table.loc[("up", "image"), "verdict_vs_single"] == "best single"
    assert table.loc[("up", "text"), "verdict_vs_single"] == ""


def test_holm_is_applied_across_tasks():
    """Two tasks each at raw p 0.03 and 0.04 (< 0.05) are not significant once Holm-adjusted
    over the two tasks (0.06 and 0.06); alone, each would be."""
    answer = analyse_tasks(_run(a=_task(_diff_with_p(0.03)), b=_task(_diff_with_p(0.04))))
    p = {v.task: v.p for v in answer.verdicts}
    assert p["a"] == pytest.approx(0.03) and p["b"] == pytest.approx(0.04)
    assert [v.p_holm for v in answer.verdicts] == pytest.approx([0.06, 0.06])
    assert {v.verdict for v in answer.verdicts} == {"no difference shown"}
    alone = analyse_tasks(_run(a=_task(_diff_with_p(0.03))))
    assert alone.verdicts[0].verdict == "better"
