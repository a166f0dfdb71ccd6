"""Split plans: grouping, feasibility checks, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from classify.run.split_plan import make_split_plan
from pipeline.errors import DataError


def _design(n=60, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    groups = np.array([f"p{i // 3}" for i in range(n)])
    labels = np.where(rng.random(n) < 0.4, "pos", "neg")
    return ids, labels, groups


def test_groups_never_in_train_and_test(tmp_path):
    ids, labels, groups = _design()
    plan = make_split_plan(ids, labels, groups, n_folds=4, n_repeats=3, seed=1,
                           splits_dir=tmp_path)
    assert plan.n_splits == 12
    for _, _, train, test in plan.splits():
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(ids)
    assert not (plan.test_fold[0] == plan.test_fold[1]).all()
    assert 0.2 < plan.info.test_train_ratio < 0.5
    again = make_split_plan(ids, labels, groups, n_folds=4, n_repeats=3, seed=1,
                            splits_dir=tmp_path)
    assert again.hash == plan.hash
    assert len(list(tmp_path.glob("*.csv"))) == 1


def test_tampered_plan_is_rejected(tmp_path):
    ids, labels, groups = _design()
    plan = make_split_plan(ids, labels, groups, n_folds=3, n_repeats=1, splits_dir=tmp_path)
    plan.info.path.write_text(plan.info.path.read_text().replace(",0\n", ",1\n", 1))
    with pytest.raises(DataError, match="does not match the hash"):
        make_split_plan(ids, labels, groups, n_folds=3, n_repeats=1, splits_dir=tmp_path)


def test_infeasible_designs_fail_before_work():
    ids, labels, groups = _design(n=12)  # 4 groups
    with pytest.raises(DataError, match="only 4 patient groups"):
        make_split_plan(ids, labels, groups, n_folds=5)
    labels = np.array(["neg"] * 10 + ["pos"] * 2)  # pos in 1 group only
    with pytest.raises(DataError, match="fewer patient groups than cv.folds"):
        make_split_plan(ids, labels, groups, n_folds=2)


def test_infeasible_designs_name_the_real_cause_not_an_impossible_fold_count():
    ids, labels, groups = _design(n=12)
    with pytest.raises(DataError) as exc:
        make_split_plan(ids, labels, np.array(["p0"] * 12), n_folds=5)
    assert "only 1 patient group" in str(exc.value) and "<= 1" not in str(exc.value)
    labels = np.array(["neg"] * 10 + ["pos"] * 2)  # pos in 1 group only: no fold count helps
    with pytest.raises(DataError) as exc:
        make_split_plan(ids, labels, groups, n_folds=3)
    assert "'pos': 1 group" in str(exc.value) and "No cv.folds value can help" in str(exc.value)
    assert "<= 1" not in str(exc.value)


def test_csv_manifest_plan_is_not_named_none(tmp_path):
    ids, labels, groups = _design()
    plan = make_split_plan(ids, labels, groups, n_folds=3, n_repeats=1, splits_dir=tmp_path,
                           label_rule="manifest:None")
    assert plan.info.path.name.startswith("manifest-label__")
    named = make_split_plan(ids, labels, groups, n_folds=3, n_repeats=1,
                            splits_dir=tmp_path / "b", label_rule="manifest:normal_vs_abnormal")
    assert named.hash == plan.hash  # the name never enters the plan's hash (nor the cell keys)
