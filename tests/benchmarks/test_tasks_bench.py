"""The tasks benchmark (time per added task) runs and reports what it measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common import BenchConfig


@pytest.mark.slow
def test_tasks_benchmark_quick(tmp_path: Path) -> None:
    from benchmarks import tasks

    out = tasks.run(BenchConfig(quick=True, out_dir=tmp_path, work_dir=tmp_path / "work",
                                repeats=1))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert [r[1] for r in out.tables[0].rows[:3]] == [1, 2, 4]
    four = rows["4 task(s) in one experiment"]
    assert four[5].count("s,") == 3  # the four tasks' own seconds
    assert out.ratios[0].what == "4 tasks in one experiment / each its own experiment"
    assert out.costs["tasks.seconds_per_added_task"] > 0
