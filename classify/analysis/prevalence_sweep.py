"""The prevalence sweep: the sampler x classifier grid re-run at lower shares of positives.

Configured by an experiment section::

    [imbalance]
    prevalence = [0.5, 0.2, 0.09, 0.05]   # shares of the positive class
    feature_sets = ["fused"]              # default: every feature set of the experiment
    fusions = ["concat"]                  # default: the experiment's
    samplers = ["none", "smote", "class_weight"]   # default: the experiment's; "none" is
    classifiers = ["logistic"]                     # always added (the test's reference)
    seed = 0                                       # subsampling seed (default cv.seed)

For each prevalence ``p`` the positive class of the experiment's joined data (every row
that all its stores and a label have) is subsampled to ``round(p * n_neg / (1 - p))``
rows with one fixed random order, so the subsets are nested (the 5% positives are inside
the 9%, inside the 20%); negatives are all kept. A prevalence above the data's own is
refused (it would need dropping negatives). Each subset gets its own grouped, stratified
split plan, saved next to the experiment's (``splits/<rule>@prevalence=<p>__...csv``), and
its cells are keyed like every cell (:func:`classify.results.types.cell_key`, with the
prevalence in the label-rule part of the key), cached in the same results folder and
reused by later runs. The main grid's cells and keys are untouched.

:func:`sweep_table` reports each metric of :data:`PREVALENCE_METRICS` per prevalence and
sampler, and the Nadeau-Bengio corrected paired t-test of every sampler against ``none``
(same feature set, fusion and classifier, same splits), Holm-adjusted over the samplers of
one prevalence.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from classify.config.sections import ImbalanceConfig
from classify.results.types import CellResult
from pipeline.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Metrics of the sweep's table and figures, in display order (F1 of the positive class).
PREVALENCE_METRICS = ("pr_auc", "mcc", "f1_binary", "balanced_accuracy", "roc_auc", "brier")
def nested_positive_subsets(y: np.ndarray, positive: int, prevalences: Sequence[float],
                            seed: int) -> dict[float, np.ndarray]:
    """Row indices (sorted) per prevalence: all negatives + the first ``n_pos(p)`` positives
    of one seeded permutation, so lower prevalences are subsets of higher ones."""
    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == positive), np.flatnonzero(y != positive)
    natural = len(pos) / len(y)
    order = np.random.default_rng(seed).permutation(pos)
    out = {}
    for p in prevalences:
        if p > natural + 1e-9:
            raise ConfigError(
                f"imbalance.prevalence {p} is above the data's own prevalence {natural:.3f} "
                f"({len(pos)} positives of {len(y)}); the sweep only subsamples positives, so "
                f"use shares <= {natural:.3f}")
        n_pos = min(len(pos), max(1, int(round(p * len(neg) / (1 - p)))))
        out[p] = np.sort(np.concatenate([neg, order[:n_pos]]))
    return out


@dataclass(frozen=True)
class PrevalenceLevel:
    """One prevalence of the sweep: its data and split plan."""

    prevalence: float
    n_samples: int
    n_positive: int
    split_hash: str
    split_path: str
    test_train_ratio: float


@dataclass(frozen=True)
class PrevalenceSweep:
    """Every cell of the sweep, per prevalence.

    Attributes:
        positive_label: the class whose share is varied.
        natural_prevalence: its share in the experiment's data.
        levels: one :class:`PrevalenceLevel` per prevalence (descending).
        cells: ``(prevalence, cell)`` pairs.
        n_computed, n_reused: cells computed in this run / found on disk.
        missing: cells not on disk (only when loaded without computing).
    """

    positive_label: str
    natural_prevalence: float
    levels: tuple[PrevalenceLevel, ...]
    cells: tuple[tuple[float, CellResult], ...] = field(hash=False)
    n_computed: int = 0
    n_reused: int = 0
    missing: int = 0
    seed: int = 0


def _sweep_experiment(exp: Any, cfg: ImbalanceConfig, fs: Any) -> Any:
    from classify.config.experiment import default_feature_sets

    sets = dict(exp.feature_sets) or default_feature_sets([b.name for b in fs.blocks])
    if cfg.feature_sets is not None:
        unknown = [n for n in cfg.feature_sets if n not in sets]
        if unknown:
            raise ConfigError(f"imbalance.feature_sets names {unknown}, not feature sets of the "
                              f"experiment ({', '.join(sets)})")
        sets = {n: sets[n] for n in cfg.feature_sets}
    samplers = ("none", *[s for s in (cfg.samplers or exp.samplers) if s != "none"])
    return dataclasses.replace(exp, feature_sets=sets, samplers=samplers,
                               classifiers=cfg.classifiers or exp.classifiers,
                               fusions=cfg.fusions or exp.fusions)


def run_prevalence_sweep(exp: Any, *, n_jobs: int | None = None, compute: bool = True
                         ) -> PrevalenceSweep:
    """Compute (or with ``compute=False`` only load) the sweep of ``exp.imbalance``."""
    from joblib import Parallel, delayed

    from classify.models.samplers import check_training_folds
    from classify.results.cell_store import open_cell, write_cell
    from classify.results.types import cell_key
    from classify.run.benchmark import expand_grid, load_feature_set
    from classify.run.cell_task import assemble_cell, run_split
    from classify.run.feature_sets import blocks_spec, tables_spec
    from classify.run.holdout import subset_feature_set
    from classify.run.split_plan import make_split_plan

    cfg = exp.imbalance
    if cfg is None:
        raise ConfigError(f"experiment {exp.name!r} has no [imbalance] section")
    fs, rule_id = load_feature_set(exp)
    if len(fs.classes) != 2 or fs.positive_index is None:
        raise DataError(f"the prevalence sweep needs two classes; {exp.name} has {fs.classes}")
    seed = exp.cv.seed if cfg.seed is None else cfg.seed
    sweep_exp = _sweep_experiment(exp, cfg, fs)
    subsets = nested_positive_subsets(fs.y, fs.positive_index, cfg.prevalence, seed)
    levels, cells, n_comp, n_reuse, missing = [], [], 0, 0, 0
    n_jobs = exp.n_jobs if n_jobs is None else n_jobs
    t0 = time.perf_counter()
    for p, rows in subsets.items():
        sub = subset_feature_set(fs, rows)
        labels = np.asarray(sub.classes, dtype=object)[sub.y]
        rule = f"{rule_id}@prevalence={p:g}"
        plan = make_split_plan(
            sub.ids, labels, sub.groups, n_folds=exp.cv.folds, n_repeats=exp.cv.repeats,
            seed=exp.cv.seed, label_rule=rule, splits_dir=exp.results_dir / "splits",
            save=compute, check=lambda tf, lab=labels: check_training_folds(
                sweep_exp.samplers, lab, tf))
        n_pos = int((sub.y == fs.positive_index).sum())
        levels.append(PrevalenceLevel(p, len(rows), n_pos, plan.hash, str(plan.info.path),
                                      plan.info.test_train_ratio))
        idents = {s.encoder_key: s.identity for s in fs.report.stores}
        meta = {"dataset": exp.dataset, "label_rule": rule, "store_identities": idents,
                "split_hash": plan.hash, "seed": exp.cv.seed, "prevalence": p}
        todo = []
        for spec in expand_grid(sweep_exp, sub):
            key = cell_key(spec, dataset=exp.dataset, label_rule=rule, store_identities=idents,
                           split_hash=plan.hash, seed=exp.cv.seed)
            cell, _ = open_cell(exp.results_dir, key, quarantine=compute)
            if cell is not None:
                cells.append((p, cell))
                n_reuse += 1
            elif compute:
                todo.append((spec, key))
            else:
                missing += 1
        splits = [(r, f) for r in range(plan.info.n_repeats) for f in range(plan.info.n_folds)]
        layouts = {}
        for spec, key in todo:
            c, blocks = sub.columns(spec.stores)
            layouts[key] = (c, blocks_spec(blocks), tables_spec(blocks))
        tasks = [(spec, key, r, f) for spec, key in todo for r, f in splits]
        outs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(run_split)(spec, layouts[key][0], layouts[key][1], sub.X, sub.y,
                               *plan.indices(r, f), n_classes=len(sub.classes),
                               positive=sub.positive_index, seed=exp.cv.seed,
                               threads=exp.threads_per_task, groups=sub.groups,
                               tables=layouts[key][2])
            for spec, key, r, f in tasks)
        buffer: list[tuple[int, int, dict[str, Any]]] = []
        for (spec, key, r, f), out in zip(tasks, outs, strict=True):
            buffer.append((r, f, out))
            if len(buffer) < len(splits):
                continue
            cell = assemble_cell(spec, key, plan, sub, buffer)
            buffer = []
            path = write_cell(exp.results_dir, cell, meta, sub.classes)
            cells.append((p, dataclasses.replace(cell, path=path)))
            n_comp += 1
            log.info("prevalence %g: cell %s done (pr_auc %.3f)", p, spec.label,
                     cell.summary("pr_auc")[0])
    log.info("prevalence sweep: %d cells (%d computed, %d reused) in %.1fs", len(cells), n_comp,
             n_reuse, time.perf_counter() - t0)
    natural = float(np.mean(fs.y == fs.positive_index))
    return PrevalenceSweep(str(fs.classes[fs.positive_index]), natural, tuple(levels),
                           tuple(cells), n_comp, n_reuse, missing, seed)


def load_prevalence_sweep(exp: Any) -> PrevalenceSweep | None:
    """The stored sweep of ``exp`` (None without an [imbalance] section); nothing computed."""
    if getattr(exp, "imbalance", None) is None:
        return None
    return run_prevalence_sweep(exp, compute=False)


def sweep_table(sweep: PrevalenceSweep, metrics: Sequence[str] = PREVALENCE_METRICS,
                alpha: float = 0.05) -> pd.DataFrame:
    """Long table: ``prevalence, config, sampler, metric, mean, std, n_splits, diff_vs_none,
    nb_t, nb_p, nb_p_holm, significant``; ``config`` = feature set / fusion / classifier."""
    from classify.analysis.stats import holm, nadeau_bengio

    ratio = {lv.prevalence: lv.test_train_ratio for lv in sweep.levels}
    rows = []
    groups: dict[tuple[float, str], dict[str, CellResult]] = {}
    for p, c in sweep.cells:
        # the +tuned twin is another configuration, never the default's duplicate
        tuned = "+tuned" if "tuning" in c.spec.params else ""
        cfg = f"{c.spec.feature_set}/{c.spec.fusion}/{c.spec.classifier}{tuned}"
        groups.setdefault((p, cfg), {})[c.spec.sampler] = c
    for (p, cfg), by_sampler in groups.items():
        ref = by_sampler.get("none")
        for m in metrics:
            block = []
            for sampler, c in by_sampler.items():
                vals = c.metric_values(m)
                row = dict(prevalence=p, config=cfg, sampler=sampler, metric=m,
                           mean=float(vals.mean()), std=float(vals.std(ddof=1)),
                           n_splits=int(vals.notna().sum()), diff_vs_none=math.nan,
                           nb_t=math.nan, nb_p=math.nan)
                if ref is not None and sampler != "none":
                    both = pd.concat([vals, ref.metric_values(m)], axis=1).dropna()
                    t, _, pv = nadeau_bengio(both.iloc[:, 0].to_numpy(),
                                             both.iloc[:, 1].to_numpy(), ratio[p])
                    row.update(diff_vs_none=float((both.iloc[:, 0] - both.iloc[:, 1]).mean()),
                               nb_t=t, nb_p=pv)
                block.append(row)
            adj = holm([r["nb_p"] for r in block])
            for r, q in zip(block, adj, strict=True):
                r["nb_p_holm"] = float(q)
                r["significant"] = bool(np.isfinite(q) and q < alpha)
            rows += block
    cols = ["prevalence", "config", "sampler", "metric", "mean", "std", "n_splits",
            "diff_vs_none", "nb_t", "nb_p", "nb_p_holm", "significant"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        order = {s: i for i, s in enumerate(dict.fromkeys(["none", *df["sampler"]]))}
        df = df.assign(_s=df["sampler"].map(order)).sort_values(
            ["config", "metric", "prevalence", "_s"], ascending=[True, True, False, True],
            kind="stable").drop(columns="_s").reset_index(drop=True)
    return df


def render_sweep(sweep: PrevalenceSweep, metric: str = "pr_auc") -> str:
    """Terminal table of one metric: rows prevalence x sampler per config."""
    from pipeline.helpers import format_p, text_table

    t = sweep_table(sweep, (metric,))
    levels = ", ".join(f"{lv.prevalence:g} ({lv.n_positive}/{lv.n_samples})" for lv in sweep.levels)
    rows = [(f"{r.prevalence:g}", r.config, r.sampler, f"{r.mean:.3f} ± {r.std:.3f}",
             "" if r.sampler == "none" else f"{r.diff_vs_none:+.4f}",
             "" if r.sampler == "none" else format_p(r.nb_p_holm))
            for r in t.itertuples(index=False)]
    return text_table(("prevalence", "feature set/fusion/classifier", "sampler", metric,
                       "vs none", "NB p (Holm)"), rows,
                      title=f"Prevalence sweep of {sweep.positive_label!r} ({metric})",
                      notes=(f"positives/samples per prevalence: {levels}; natural prevalence "
                             f"{sweep.natural_prevalence:.3f}; nested subsets, seed {sweep.seed}",
                             f"cells: {len(sweep.cells)} ({sweep.n_computed} computed, "
                             f"{sweep.n_reused} reused"
                             + (f", {sweep.missing} not computed yet" if sweep.missing else "")
                             + ")"))

