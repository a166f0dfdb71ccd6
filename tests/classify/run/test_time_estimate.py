"""``--dry-run`` estimates each cell's fit time from stored cells like it."""

from __future__ import annotations

from classify.report.console import plan_table
from classify.results.types import CellSpec, PlannedCell
from classify.run.time_estimate import estimate_from_docs
from tests.classify.conftest import make_benchmark


def spec(clf: str, fusion: str = "concat", sampler: str = "smote") -> CellSpec:
    return CellSpec("fused", ("a", "b"), ("image", "text"), fusion, sampler, clf)


def doc(s: CellSpec, seconds: float) -> dict:
    return {"spec": s.to_dict(), "fit_seconds": seconds}


def test_estimates_come_from_the_most_similar_stored_cells():
    docs = [doc(spec("mlp"), 10.0), doc(spec("mlp"), 30.0), doc(spec("mlp", "attention"), 90.0),
            doc(spec("knn", sampler="none"), 2.0), {"spec": "broken"}]
    planned = [PlannedCell(spec("mlp", sampler="smote"), "k1", "compute", "never run"),
               PlannedCell(spec("mlp", "attention", "none"), "k2", "compute", "never run"),
               PlannedCell(spec("knn", "attention"), "k3", "compute", "never run"),
               PlannedCell(spec("xgboost"), "k4", "compute", "never run"),
               PlannedCell(spec("mlp"), "k5", "reuse", "stored result found")]
    est = estimate_from_docs(planned, docs)
    assert est["k1"].seconds == 20.0 and "same classifier, fusion, sampler" in est["k1"].basis
    assert est["k2"].seconds == 90.0 and est["k2"].basis.endswith("same classifier and fusion")
    assert est["k3"].seconds == 2.0 and est["k3"].basis.endswith("same classifier")
    assert "k4" not in est and "k5" not in est  # nothing similar / nothing to compute


def test_dry_run_table_shows_the_estimates_and_the_wall_time():
    b = make_benchmark()
    from classify.run.time_estimate import TimeEstimate

    first = b.planned[0]
    text = plan_table(b, {first.key: TimeEstimate(120.0, "median of 2 stored cell(s)")}, n_jobs=2)
    assert "~120 s (median of 2 stored cell(s))" in text
    assert "estimated fit time 120 s, about 1.0 min wall on 2 parallel fit(s)" in text
    assert "without an estimate" in text
