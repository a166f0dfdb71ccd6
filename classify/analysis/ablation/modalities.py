"""Modality ablation table and the modality-shuffle test.

* :func:`ablation_table` reads a benchmark's cells: image-only / text-only (fusion
  ``single``) vs the multimodal fusions (``concat``, ``weighted_sum``, ``attention``)
  per classifier, plus mean attention weights per store. Several feature sets of one
  column (``text``, ``text_findings``, ``text_masked``) get one column each:
  ``text-only (text_masked)`` (see :func:`variant_of`).
* :func:`ablation_table` also pairs every full-fusion cell with its cells on subsets of its
  blocks (:func:`classify.analysis.ablation.block_subsets.subset_ablation`, corrected paired tests).
* :func:`shuffle_test` refits a fused cell on each evaluated split, then permutes one
  store's block across the rows of the *test* fold and rescores: the score drop says
  how much the fitted model relies on that modality.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from classify.analysis.ablation.block_subsets import subset_ablation
from classify.config.vocabulary import is_subset_feature_set
from classify.models.cell_pipeline import build_pipeline
from classify.results.metrics import METRICS, score_fold
from classify.results.types import (
    AblationResult,
    BenchmarkResult,
    CellResult,
    CellSpec,
    ShuffleResult,
)
from classify.run.feature_sets import FeatureSet, blocks_spec, tables_spec
from classify.run.leakage import ceiling_warning
from classify.run.split_plan import SplitPlan
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

VARIANTS = ("image-only", "text-only", "tabular-only", "concat", "weighted_sum", "attention")


def _base_variant(spec: CellSpec) -> str:
    if spec.fusion == "single":
        mods = set(spec.modalities)
        return f"{mods.pop()}-only" if len(mods) == 1 else "single"
    return spec.fusion


def variant_of(spec: CellSpec, specs: Sequence[CellSpec] | None = None) -> str:
    """Ablation column name of a cell.

    ``image-only`` / ``text-only`` for a single-modality cell of fusion ``single``, else the
    fusion name. When ``specs`` (every cell of the benchmark) hold several feature sets for
    the same column - e.g. ``text``, ``text_findings`` and ``text_masked`` are all text-only,
    or ``fused`` and ``fused_masked`` both use ``concat`` - the feature set is appended:
    ``text-only (text_masked)``, ``concat (fused_masked)``, so they are not averaged together.
    """
    base = _base_variant(spec)
    if specs is None:
        return base
    sets = {s.feature_set for s in specs if _base_variant(s) == base}
    return base if len(sets) <= 1 else f"{base} ({spec.feature_set})"


def _variant_key(variant: str) -> tuple[int, str]:
    base = variant.split(" (", 1)[0]
    order = {v: i for i, v in enumerate(VARIANTS)}
    return order.get(base, len(order)), variant


def ablation_table(
    result: BenchmarkResult,
    *,
    classifiers: Sequence[str] | None = None,
    metrics: Sequence[str] = ("roc_auc", "f1_weighted", "balanced_accuracy"),
) -> AblationResult:
    """Image-only / text-only / concat / attention (etc.) per classifier from ``result``."""
    for m in metrics:
        if m not in METRICS:
            raise ConfigError(f"unknown metric {m!r}; valid: {', '.join(METRICS)}")
    rows, att_rows, warnings = [], [], []
    # cells of block-subset feature sets ('fused[a+b]') have their own table (subsets)
    names = {c.spec.feature_set for c in result.cells}
    variant_cells = [c for c in result.cells if not is_subset_feature_set(c.spec.feature_set,
                                                                          names)]
    specs = [c.spec for c in variant_cells]
    for c in variant_cells:
        if classifiers is not None and c.spec.classifier not in classifiers:
            continue
        variant = variant_of(c.spec, specs)
        for m in metrics:
            mean, std = c.summary(m)
            rows.append(dict(classifier=c.spec.classifier, sampler=c.spec.sampler,
                             variant=variant, cell=c.label, metric=m, mean=mean, std=std,
                             n=int(c.metric_values(m).notna().sum())))
        if c.attention is not None and len(c.attention):
            g = c.attention.groupby(["store", "modality"], sort=False)["weight"].mean()
            for (store, mod), w in g.items():
                att_rows.append(dict(classifier=c.spec.classifier, sampler=c.spec.sampler,
                                     cell=c.label, store=store,
                                     modality=mod, weight=float(w)))
    shown = [c for c in result.cells
             if classifiers is None or c.spec.classifier in classifiers]
    ceiling = ceiling_warning(shown, result.label_source)
    if ceiling:
        warnings.append(ceiling)
    table = pd.DataFrame(rows, columns=["classifier", "sampler", "variant", "cell", "metric",
                                        "mean", "std", "n"])
    if len(table):
        order = {v: i for i, v in enumerate(sorted(set(table["variant"]), key=_variant_key))}
        table = table.assign(_o=table["variant"].map(order)).sort_values(
            ["classifier", "sampler", "_o", "cell", "metric"], kind="stable").drop(columns="_o")
    att = pd.DataFrame(att_rows, columns=["classifier", "sampler", "cell", "store", "modality",
                                          "weight"])
    subsets = subset_ablation(dataclasses.replace(result, cells=tuple(shown)), metrics).table
    return AblationResult(metrics=tuple(metrics), table=table.reset_index(drop=True),
                          attention_weights=att, warnings=tuple(warnings), subsets=subsets)


def _shuffle_split(spec: CellSpec, cols: np.ndarray, blocks: tuple, X: np.ndarray, y: np.ndarray,
                   train: np.ndarray, test: np.ndarray, *, n_classes: int, positive: int | None,
                   metric: str, n_permutations: int, seed: int, rng_key: tuple[int, ...],
                   threads: int, tables: Any = None) -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_limits

    def score(Xte: np.ndarray) -> float:
        proba = np.zeros((len(test), n_classes))
        proba[:, np.asarray(pipe.classes_, dtype=int)] = pipe.predict_proba(Xte)
        return score_fold(y[test], proba, positive)[metric]

    out = []
    with threadpool_limits(limits=threads):
        Xc = np.asarray(X[:, cols], dtype=np.float64)
        pipe = build_pipeline(spec, blocks, random_state=seed, tables=tables)
        pipe.fit(Xc[train], y[train])
        Xte = Xc[test]
        base = score(Xte)
        for b, (name, a, z) in enumerate(blocks):
            for p in range(n_permutations):
                rng = np.random.default_rng([*rng_key, b, p])
                shuffled = Xte.copy()
                shuffled[:, a:z] = Xte[rng.permutation(len(test))][:, a:z]
                s = score(shuffled)
                out.append(dict(store=name, permutation=p, baseline=base, shuffled=s,
                                drop=base - s))
    return out


def shuffle_test(
    fs: FeatureSet,
    plan: SplitPlan,
    spec: CellSpec,
    *,
    metric: str = "roc_auc",
    n_permutations: int = 5,
    repeats: int = 1,
    seed: int = 0,
    n_jobs: int = 1,
    threads_per_task: int = 1,
    key: str = "",
) -> ShuffleResult:
    """Modality-shuffle test of ``spec`` on the first ``repeats`` repeats of ``plan``."""
    from joblib import Parallel, delayed

    if len(spec.stores) < 2:
        raise ConfigError(f"shuffle test needs a fused cell (>= 2 stores); {spec.label} has one")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    cols, blocks = fs.columns(spec.stores)
    bspec, tspec = blocks_spec(blocks), tables_spec(blocks)
    splits = [(r, f) for r in range(min(repeats, plan.info.n_repeats))
              for f in range(plan.info.n_folds)]
    outs = Parallel(n_jobs=n_jobs)(
        delayed(_shuffle_split)(spec, cols, bspec, fs.X, fs.y, *plan.indices(r, f),
                                n_classes=len(fs.classes), positive=fs.positive_index,
                                metric=metric, n_permutations=n_permutations, seed=seed,
                                rng_key=(seed, r, f), threads=threads_per_task,
                                tables=tspec)
        for r, f in splits
    )
    rows = [dict(repeat=r, fold=f, **row) for (r, f), out in zip(splits, outs, strict=True)
            for row in out]
    per = pd.DataFrame(rows, columns=["repeat", "fold", "store", "permutation", "baseline",
                                      "shuffled", "drop"])
    mod = dict(zip(spec.stores, spec.modalities, strict=True))
    by_split = per.groupby(["store", "repeat", "fold"], sort=False).mean(numeric_only=True)
    summary = by_split.groupby(level="store", sort=False).agg(
        baseline_mean=("baseline", "mean"), shuffled_mean=("shuffled", "mean"),
        drop_mean=("drop", "mean"), drop_std=("drop", "std"), n_splits=("drop", "size"),
    ).reset_index()
    summary.insert(1, "modality", summary["store"].map(mod))
    return ShuffleResult(cell=spec.label, key=key, metric=metric, n_permutations=n_permutations,
                         per_split=per, summary=summary)


def run_shuffle(experiment: Any, cell: CellResult | str, *, metric: str = "roc_auc",
                n_permutations: int = 5, repeats: int = 1, n_jobs: int | None = None
                ) -> ShuffleResult:
    """:func:`shuffle_test` for a cell of ``experiment`` (by label or CellResult)."""
    from classify.run.benchmark import expand_grid, load_feature_set
    from classify.run.split_plan import make_split_plan

    fs, rule_id = load_feature_set(experiment)
    plan = make_split_plan(
        fs.ids, np.asarray(fs.classes, dtype=object)[fs.y], fs.groups,
        n_folds=experiment.cv.folds, n_repeats=experiment.cv.repeats, seed=experiment.cv.seed,
        label_rule=rule_id, splits_dir=experiment.results_dir / "splits",
    )
    if isinstance(cell, CellResult):
        spec, key = cell.spec, cell.key
    else:
        specs = {s.label: s for s in expand_grid(experiment, fs)}
        if cell not in specs:
            raise ConfigError(f"no cell {cell!r} in {experiment.name}; cells: {', '.join(specs)}")
        spec, key = specs[cell], ""
    return shuffle_test(fs, plan, spec, metric=metric, n_permutations=n_permutations,
                        repeats=repeats, seed=experiment.cv.seed,
                        n_jobs=experiment.n_jobs if n_jobs is None else n_jobs,
                        threads_per_task=experiment.threads_per_task, key=key)
