"""Feature sets of 3+ stores, block-subset ablation with corrected paired tests, attention per block."""

from __future__ import annotations

import numpy as np
import pytest

from classify.analysis.ablation.modalities import ablation_table
from classify.config.experiment import experiment_from_dict
from classify.config.vocabulary import subset_feature_sets
from classify.run.benchmark import run_benchmark
from pipeline.errors import ConfigError
from tests.classify.models.test_tabular import _tabular_store

FUSED = {"fused": ("img", "txt", "ctx")}


def test_leave_one_out_and_all_subsets_feature_sets() -> None:
    loo = subset_feature_sets(FUSED, "leave_one_out")
    assert list(loo) == ["fused", "fused[img+txt]", "fused[img+ctx]", "fused[txt+ctx]"]
    every = subset_feature_sets({**FUSED, "image": ("img",)}, "all_subsets")
    assert set(every) == {"fused", "image", "fused[img+txt]", "fused[img+ctx]", "fused[txt+ctx]",
                          "fused[txt]", "fused[ctx]"}  # 'img' alone is already 'image'
    assert subset_feature_sets(FUSED, None) == FUSED


def test_experiment_ablation_key(toy_project) -> None:
    cfg = toy_project["config"](stores=["img", "txt"], feature_sets={"f": ["img", "txt"]},
                                ablation="leave_one_out")
    exp = experiment_from_dict(cfg)
    assert exp.ablation == "leave_one_out"
    assert dict(exp.feature_sets) == {"f": ("img", "txt"), "f[img]": ("img",),
                                      "f[txt]": ("txt",)}
    with pytest.raises(ConfigError, match="'ablation' must be one of"):
        experiment_from_dict({**cfg, "ablation": "loo"})


@pytest.fixture
def three_block_run(toy_project):  # noqa: ANN001, ANN201
    _tabular_store(toy_project)
    cfg = toy_project["config"](
        stores=["img", "txt", "ctx"], feature_sets={"fused": ["img", "txt", "ctx"]},
        ablation="leave_one_out", fusions=["single", "concat", "weighted_sum", "attention"],
        samplers=["none"], params={"fusion": {"attention": {"epochs": 5, "dim": 4},
                                              "weighted_sum": {"dim": 2}}})
    return toy_project, experiment_from_dict(cfg), run_benchmark(experiment_from_dict(cfg))


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_three_block_fusions_and_subset_ablation(three_block_run, tmp_path) -> None:
    project, exp, result = three_block_run
    labels = {c.label for c in result.cells}
    for fusion in ("concat", "weighted_sum", "attention"):
        assert f"fused/{fusion}/none/logistic" in labels
        assert f"fused[img+ctx]/{fusion}/none/logistic" in labels
    att = result.cell("fused/attention/none/logistic").attention
    assert set(att["store"]) == {"img", "txt", "ctx"}
    assert np.allclose(att.groupby(["repeat", "fold"])["weight"].sum(), 1.0)

    abl = ablation_table(result)
    # subset cells have their own table; the variant table keeps one column per fusion
    assert set(abl.table["variant"]) == {"concat", "weighted_sum", "attention"}
    subsets = abl.subsets
    t = subsets[subsets["metric"] == "roc_auc"]
    assert set(t["full_cell"]) == {f"fused/{f}/none/logistic"
                                   for f in ("concat", "weighted_sum", "attention")}
    concat = t[t["full_cell"] == "fused/concat/none/logistic"]
    assert sorted(concat["dropped"]) == ["ctx", "img", "txt"]
    assert (concat["n_splits"] == 6).all() and concat["nb_p"].between(0, 1).all()
    assert (concat["nb_p_holm"] >= concat["nb_p"] - 1e-12).all()
    full = result.cell("fused/concat/none/logistic").metric_values("roc_auc")
    sub = result.cell("fused[img+txt]/concat/none/logistic").metric_values("roc_auc")
    row = concat[concat["dropped"] == "ctx"].iloc[0]
    assert row["diff"] == pytest.approx(float((sub - full).mean()))
    # dropping the noise block (txt) costs least; dropping an informative one costs more
    diff = concat.set_index("dropped")["diff"]
    assert diff.idxmax() == "txt" and diff["ctx"] < 0 and diff["img"] < 0

    from tests.classify.conftest import render_report

    paths = render_report(result, tmp_path / "rep")
    html = paths["html"].read_text()
    assert "Block-subset ablation" in html and "Learned attention weight per block" in html
    assert (paths["csv_dir"] / "subset-ablation-roc_auc.csv").exists()
    assert (paths["csv_dir"] / "attention-weights.csv").exists()


def test_ablation_does_not_change_the_keys_of_existing_cells(toy_project) -> None:
    base = toy_project["config"](stores=["img", "txt"], feature_sets={"f": ["img", "txt"]})
    plain = run_benchmark(experiment_from_dict(base), dry_run=True)
    more = run_benchmark(experiment_from_dict({**base, "ablation": "leave_one_out"}),
                         dry_run=True)
    keys = {p.spec.label: p.key for p in more.planned}
    assert all(keys[p.spec.label] == p.key for p in plain.planned)
    assert len(more.planned) > len(plain.planned)
