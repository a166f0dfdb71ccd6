"""classify.run.split_runner: the shared pipeline prefix gives exactly the scores of fitting each
cell's pipeline on its own (issue 12, item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from classify.models.classifiers import CLASSIFIERS
from classify.results.types import CellSpec
from classify.run.cell_task import run_split
from classify.run.split_runner import group_by_prefix, prefix_key, run_split_group

N = 120


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(7)
    y = (rng.random(N) < 0.35).astype(np.int64)
    img = rng.normal(size=(N, 10)) + 0.8 * y[:, None] * (np.arange(10) < 3)
    txt = rng.normal(size=(N, 6)) + 0.5 * y[:, None] * (np.arange(6) < 2)
    X = np.hstack([img, txt]).astype(np.float32)
    test = np.arange(N) % 4 == 1
    return {"X": X, "y": y, "train": np.where(~test)[0], "test": np.where(test)[0]}


FUSED = (("img", "txt"), ("image", "text"), np.arange(16), (("img", 0, 10), ("txt", 10, 16)))
IMAGE = (("img",), ("image",), np.arange(10), (("img", 0, 10),))


def _specs(layout, fusion: str, sampler: str, classifiers, params=None) -> list[CellSpec]:
    stores, mods = layout[0], layout[1]
    return [CellSpec("fs", stores, mods, fusion, sampler, c, dict(params or {}))
            for c in classifiers]


def _both(specs, layout, data):
    kw = dict(n_classes=2, positive=1, seed=3)
    args = (layout[2], layout[3], data["X"], data["y"], data["train"], data["test"])
    shared = run_split_group(specs, *args, **kw)
    alone = [run_split(s, *args, **kw) for s in specs]
    return shared, alone


def _assert_identical(shared, alone, specs) -> None:
    for s, a, b in zip(specs, shared, alone, strict=True):
        assert np.array_equal(a["proba"], b["proba"]), s.label
        assert a["scores"].keys() == b["scores"].keys()
        for m, v in b["scores"].items():
            assert a["scores"][m] == v or (np.isnan(v) and np.isnan(a["scores"][m])), (s.label, m)
        for k in ("before", "after", "k", "notes", "attention"):
            assert a[k] == b[k], (s.label, k)


ALL = sorted(CLASSIFIERS.names())


@pytest.mark.parametrize("fusion,sampler,layout,params", [
    ("single", "smote", IMAGE, None),
    ("concat", "smote", FUSED, {"fusion": {"reduce": "pca", "n_components": 3}}),
    ("attention", "smote", FUSED, {"fusion": {"dim": 4, "epochs": 4}}),
    ("weighted_sum", "class_weight", FUSED, None),
    ("concat", "none", FUSED, None),
    ("single", "random_under", IMAGE, None),
])
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_shared_prefix_scores_equal_each_cell_fitted_alone(data, fusion, sampler, layout, params):
    specs = _specs(layout, fusion, sampler, ALL, params)
    shared, alone = _both(specs, layout, data)
    _assert_identical(shared, alone, specs)


def test_soft_vote_reuses_members_and_still_equals_its_own_fit(data, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    # members present as cells (logistic, knn, xgboost), absent (mlp) and with other params
    specs = _specs(IMAGE, "single", "smote", ["logistic", "knn", "xgboost", "voting_soft"])
    specs.append(CellSpec("fs", ("img",), ("image",), "single", "smote", "voting_soft",
                          {"classifier": {"members": ["logistic", "mlp"],
                                          "member_params": {"logistic": {"C": 3.0}}}}))
    fits: list[float] = []
    original = LogisticRegression.fit

    def counting_fit(self, X, y, *a, **k):  # noqa: ANN001, ANN202
        fits.append(self.C)
        return original(self, X, y, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", counting_fit)
    shared, alone = _both(specs, IMAGE, data)
    _assert_identical(shared, alone, specs)
    # shared: logistic fitted for its cell and as the C=3 member; the vote reused the former.
    # alone: the logistic cell and each vote fit their own.
    assert fits == [0.1, 3.0] + [0.1, 0.1, 3.0]


def test_groups_are_cells_that_differ_only_in_the_classifier() -> None:
    a = _specs(FUSED, "concat", "smote", ["logistic", "knn"])
    b = _specs(FUSED, "concat", "smote", ["logistic"], {"fusion": {"n_components": 2}})
    c = _specs(FUSED, "concat", "none", ["logistic"])
    d = _specs(IMAGE, "single", "smote", ["knn"])
    e = _specs(FUSED, "concat", "smote", ["mlp"], {"classifier": {"alpha": 1.0}})
    specs = a + b + c + d + e
    assert group_by_prefix(specs) == [[0, 1, 5], [2], [3], [4]]
    assert prefix_key(a[0]) == prefix_key(e[0]) != prefix_key(b[0])
    with pytest.raises(ValueError, match="different pipeline prefixes"):
        run_split_group(a + c, np.arange(16), FUSED[3], np.zeros((4, 16)), np.zeros(4),
                        np.arange(2), np.arange(2, 4), n_classes=2, positive=1, seed=0)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_group_tasks_give_the_same_cells_for_n_jobs_1_and_2(toy_project, tmp_path):
    """The (prefix group, split) tasks are independent: 2 worker processes give the scores of
    one (light version without torch in the workers; the attention one is marked slow)."""
    import pandas as pd

    from classify.config.experiment import experiment_from_dict
    from classify.run.benchmark import run_benchmark

    base = toy_project["config"](classifiers=["logistic", "knn", "voting_soft"],
                                 cv={"folds": 3, "repeats": 1, "seed": 0})
    runs = [run_benchmark(experiment_from_dict({**base, "results_root": str(tmp_path / str(j))}),
                          n_jobs=j) for j in (1, 2)]
    assert [c.key for c in runs[0].cells] == [c.key for c in runs[1].cells]
    assert len(runs[0].cells) == 9
    for a, b in zip(*(r.cells for r in runs), strict=True):
        pd.testing.assert_frame_equal(a.scores, b.scores)
        pd.testing.assert_frame_equal(a.oof, b.oof)
