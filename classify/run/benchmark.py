"""Run an experiment: every cell x every split of one saved plan, cached by cell key.

Flow of :func:`run_benchmark` (one task = :func:`classify.run.split_runner.run_split_group`):

1. open the stores and the manifest (optionally relabelled by a label rule) and
   join them into one :class:`~classify.run.feature_sets.FeatureSet` (all cells use the same
   rows, so every model is scored on identical splits);
2. load or create the split plan (:mod:`classify.run.split_plan`);
3. expand the grid into :class:`~classify.results.types.CellSpec` s and their keys; cells
   whose key is already stored are reused, the rest are computed;
4. one joblib task per (prefix group, split): cells that differ only in the classifier
   share the fitted fusion -> scaler -> sampler prefix, fitted once per split
   (:mod:`classify.run.split_runner`; scores identical to fitting each cell alone); then
   every classifier of the group is fitted on the training rows and scores the test
   rows. Each task is seeded and limited to ``threads_per_task`` BLAS/OpenMP threads,
   so scores are identical for any ``n_jobs``. The cells of a group are written
   (atomically) as soon as all its splits are done.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.config.experiment import Experiment, default_feature_sets
from classify.models.fusion import fusion_arity
from classify.models.samplers import check_training_folds
from classify.results.cell_store import (
    iter_cell_docs,
    open_cell,
    quarantine_dir,
    write_cell,
)
from classify.results.types import (
    BenchmarkResult,
    CellResult,
    CellSpec,
    PlannedCell,
    cell_key,
)
from classify.run.backends import explained_worker_restarts, joblib_backend
from classify.run.cell_task import assemble_cell
from classify.run.feature_sets import FeatureSet, blocks_spec, build_feature_set, tables_spec
from classify.run.leakage import (
    ceiling_warning,
    pretraining_warnings,
    report_text_caveat,
)
from classify.run.split_plan import SplitPlan, make_split_plan
from classify.run.split_runner import group_by_prefix, run_split_group
from pipeline.errors import ConfigError, ManifestError
from pipeline.helpers import did_you_mean

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def open_stores(exp: Experiment) -> list[Any]:
    """FeatureStores of the experiment (every store of the dataset when ``stores = "all"``)."""
    from pipeline.store.feature_store import FeatureStore, list_stores, store_path

    if exp.stores is None:
        stores = list_stores(exp.features_root, exp.dataset)
        if not stores:
            raise ConfigError(
                f"no feature stores for dataset {exp.dataset!r} under {exp.features_root}; run "
                "`pipeline extract` first or list `stores` in the experiment"
            )
        return stores
    out = []
    for k in exp.stores:
        path = store_path(exp.features_root, exp.dataset, k)
        if not path.exists() and not path.with_name(path.name + ".parts").is_dir():
            on_disk = sorted(p.stem for p in path.parent.glob("*.h5"))
            hint = did_you_mean(k, on_disk)
            raise ConfigError(
                f"{exp.source or 'experiment'}: store {k!r} listed in `stores` does not exist "
                f"({path}).{hint} Stores of dataset {exp.dataset!r} on disk: "
                f"{', '.join(on_disk) or 'none'}. Fix the name, or run `pipeline extract "
                f"--encoder {k}` first"
            )
        out.append(FeatureStore(path))
    return out


def load_labelled_frame(exp: Experiment) -> tuple[pd.DataFrame, str, dict[str, list[str]]]:
    """Manifest table with the label column to use, the label-rule id, and rule drops."""
    from pipeline.manifest import load_manifest

    if not Path(exp.manifest).is_file():
        raise ManifestError(
            f"manifest {exp.manifest} does not exist; build it with `pipeline data` or set "
            "`manifest` in the experiment"
        )
    manifest = load_manifest(exp.manifest)
    frame = manifest.frame.copy()
    frame["sample_id"] = frame["sample_id"].astype(str)
    dropped: dict[str, list[str]] = {}
    if exp.tasks is not None:
        named = exp.tasks if isinstance(exp.tasks, str) else ", ".join(exp.tasks)
        raise ConfigError(
            f"{exp.source or 'experiment'} lists tasks ({named}): run it with "
            "`pipeline classify`/`report` (every task), or pick one with --task TASK"
        )
    if exp.task is not None:  # one task of a multi-task experiment (classify.run.tasks)
        from pipeline.labels.tasks import manifest_policy, task_labels

        labels = task_labels(frame, exp.task, source=str(exp.manifest),
                             policy=manifest_policy(manifest.meta, exp.uncertain, exp.task))
        for sid, lab, why in zip(frame["sample_id"], labels.labels, labels.reasons, strict=True):
            if not lab:
                dropped.setdefault(why or f"task {exp.task}: no label", []).append(sid)
        frame["label"] = list(labels.labels)
        return frame, labels.rule_id, dropped
    if exp.label_rule is None:
        rule_id = "manifest:" + str(manifest.meta.get("label_rule", "label"))
        return frame, rule_id, dropped
    from pipeline.labels import apply_label_rule

    if "tags" not in frame.columns:
        raise ManifestError(
            f"{exp.manifest} has no 'tags' column, so label_rule {exp.label_rule!r} cannot be "
            "applied; remove label_rule to use the manifest's labels"
        )
    assignment = apply_label_rule(exp.label_rule, frame["tags"].fillna("").tolist())
    for sid, lab, why in zip(frame["sample_id"], assignment.labels, assignment.reasons, strict=True):
        if lab is None:
            dropped.setdefault(f"label rule: {why}", []).append(sid)
    frame["label"] = [lab if lab is not None else "" for lab in assignment.labels]
    return frame, assignment.rule.spec, dropped


def load_feature_set(exp: Experiment, stores: Sequence[Any] | None = None, *,
                     with_holdout: bool = False) -> tuple[FeatureSet, str]:
    """The experiment's feature set and label-rule id. ``stores``: already opened stores to
    read from (shared by the tasks of a multi-task experiment), default :func:`open_stores`.
    Without ``with_holdout`` the ``[holdout]`` rows are removed (:mod:`classify.run.holdout`):
    CV, tuning, calibration, selection and the final fit only ever see the development set."""
    from classify.run.holdout import development_rows
    from pipeline.manifest import load_manifest_meta

    frame, rule_id, rule_dropped = load_labelled_frame(exp)
    reasons = {sid: why for why, sids in rule_dropped.items() for sid in sids}
    positive = exp.positive_label
    if positive is None and exp.label_rule is None and exp.task is None:
        positive = load_manifest_meta(exp.manifest).get("positive_label")  # data csv --positive-label
    stores = open_stores(exp) if stores is None else stores
    fs = build_feature_set(stores, frame, positive_label=positive,
                           source=str(exp.manifest), unlabelled_reasons=reasons)
    if not with_holdout:
        fs, _ = development_rows(fs, exp)
    return fs, rule_id


# ----------------------------------------------------------------------------- grid
def expand_grid(exp: Experiment, fs: FeatureSet) -> list[CellSpec]:
    """Cells of the experiment, in a stable order (feature set, fusion, sampler, classifier)."""
    modality = {b.name: b.modality for b in fs.blocks}
    sets = dict(exp.feature_sets) or default_feature_sets([b.name for b in fs.blocks])
    specs: list[CellSpec] = []
    for fs_name, keys in sets.items():
        for k in keys:
            fs.block(k)  # raises naming the store if absent
        for fusion in exp.fusions:
            if (fusion_arity(fusion) == "many") != (len(keys) > 1):
                continue
            for sampler in exp.samplers:
                for clf in exp.classifiers:
                    params = {}
                    for comp, name in (("fusion", fusion), ("sampler", sampler),
                                       ("classifier", clf)):
                        p = exp.component_params(comp, name)
                        if p:
                            params[comp] = p
                    if exp.operating_point is not None:
                        params["operating_point"] = exp.operating_point.key()
                    spec = CellSpec(fs_name, tuple(keys), tuple(modality[k] for k in keys),
                                    fusion, sampler, clf, params)
                    specs.append(spec)
                    if exp.tuning is not None and exp.tuning.tunes(clf):
                        members = params.get("classifier", {}).get("members")
                        tuned = {**params, "tuning": exp.tuning.key(clf, members)}
                        if "operating_point" in tuned:  # its inner folds differ from tuning's
                            tuned["operating_point"] = {**tuned["operating_point"],
                                                        "inner_seed": "independent of tuning"}
                        specs.append(CellSpec(spec.feature_set, spec.stores, spec.modalities,
                                              fusion, sampler, clf, tuned))
    return specs


def _key_meta(exp: Experiment, fs: FeatureSet, rule_id: str, plan: SplitPlan) -> dict[str, Any]:
    return {
        "dataset": exp.dataset,
        "label_rule": rule_id,
        "store_identities": {s.encoder_key: s.identity for s in fs.report.stores},
        "split_hash": plan.hash,
        "seed": exp.cv.seed,
    }


def _reason(spec: CellSpec, meta: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """Why a missing cell must be computed, judged from stored cells' records."""
    if not history:
        return "never run"
    same = [d for d in history if _spec_id(d.get("spec", {})) == _spec_id(spec.to_dict())]
    idents = meta["store_identities"]
    seen_stores = {k for d in history for k in d.get("store_identities", {})}
    new = [k for k in spec.stores if k not in seen_stores]
    if new:
        return "new store " + ", ".join(new)
    for d in same:
        changed = [k for k in spec.stores if d.get("store_identities", {}).get(k) != idents[k]]
        if changed:
            return "store content changed: " + ", ".join(changed)
    if same and all(d.get("split_hash") != meta["split_hash"] for d in same):
        return "split plan changed"
    return "never run"


def _spec_id(d: dict[str, Any]) -> str:
    import json

    d = {k: v for k, v in d.items() if k != "feature_set"}
    return json.dumps(d, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- run
def dataset_provenance(exp: Experiment) -> dict[str, Any]:
    """Leakage-relevant facts of the experiment's manifest (its sidecar JSON): where the
    labels come from, the data-set family, synthetic images (see :mod:`classify.run.leakage`)."""
    from pipeline.families import dataset_family
    from pipeline.manifest import load_manifest_meta

    meta = load_manifest_meta(exp.manifest)
    return {
        "label_source": str(meta.get("label_source") or ""),
        "source_dataset": dataset_family(meta) or "",
        "synthetic_images": bool(meta.get("synthetic_images", False)),
    }


def _science_warnings(exp: Experiment, fs: FeatureSet, cells: Sequence[CellResult],
                      prov: dict[str, Any]) -> list[str]:
    out = pretraining_warnings(fs.report.stores, dataset=exp.dataset,
                               source_dataset=prov["source_dataset"],
                               synthetic_images=prov["synthetic_images"])
    ceiling = ceiling_warning(cells, prov["label_source"])
    if ceiling:
        out.append(ceiling)
    caveat = report_text_caveat(cells, prov["label_source"])
    if caveat:
        out.append(caveat)
    return out


def run_benchmark(experiment: Experiment, *, n_jobs: int | None = None,
                  dry_run: bool = False, scheduler: Any = None,
                  stores: Sequence[Any] | None = None) -> BenchmarkResult:
    """Compute (or, with ``dry_run``, just plan) every cell of ``experiment``.

    Args:
        n_jobs: joblib workers over (cell, split) tasks (default: the experiment's).
        dry_run: only plan: list each cell with ``compute``/``reuse`` and the reason.
        scheduler: Dask scheduler address or Client: run the tasks on that cluster
            (via :func:`classify.run.backends.joblib_backend`; X and y are scattered once).
        stores: opened stores to read (see :func:`load_feature_set`); default: open them.
    """
    return _run(experiment, n_jobs=n_jobs, dry_run=dry_run, scheduler=scheduler, stores=stores)


def run_benchmark_on_dask(experiment: Experiment, scheduler: Any, *, n_jobs: int = -1,
                          dry_run: bool = False) -> BenchmarkResult:
    """:func:`run_benchmark` with its tasks on a Dask cluster (``n_jobs=-1``: every worker
    thread of the cluster); ``scheduler`` is an address or a ``distributed.Client``.

    The scheduler is passed on, so the feature matrix, labels and groups are pre-scattered
    once. Without that, joblib's Dask backend scatters them lazily and tracks them in its
    per-call ``_WeakKeyDictionary``, whose weakref finaliser (``on_destroy``:
    ``del self._data[key]``) raises KeyError when the array is freed after the call cleared
    that mapping; that "Exception ignored" made a CI run fail (issue 11, observation 13).
    """
    return run_benchmark(experiment, n_jobs=n_jobs, dry_run=dry_run, scheduler=scheduler)


def load_benchmark(experiment: Experiment, stores: Sequence[Any] | None = None
                   ) -> BenchmarkResult:
    """The stored results of ``experiment`` without computing anything (for reports).

    Cells not on disk are listed in ``planned`` with action ``compute`` and left out of
    ``cells``; a warning says how many. ConfigError if none is stored.
    """
    return _run(experiment, n_jobs=1, dry_run=False, scheduler=None, compute=False,
                stores=stores)


def _run(experiment: Experiment, *, n_jobs: int | None, dry_run: bool, scheduler: Any,
         compute: bool = True, stores: Sequence[Any] | None = None) -> BenchmarkResult:
    from joblib import Parallel, delayed

    t_start = time.perf_counter()
    exp = experiment
    n_jobs = exp.n_jobs if n_jobs is None else n_jobs
    if n_jobs == 0:
        raise ConfigError("n_jobs = 0 runs nothing: use a positive number of parallel fits, or -1 "
                          "for all cores")
    fs, rule_id = load_feature_set(exp, stores)
    plan = make_split_plan(
        fs.ids, np.asarray(fs.classes, dtype=object)[fs.y], fs.groups,
        n_folds=exp.cv.folds, n_repeats=exp.cv.repeats, seed=exp.cv.seed,
        label_rule=rule_id, splits_dir=exp.results_dir / "splits", save=compute and not dry_run,
        check=lambda tf: check_training_folds(exp.samplers, np.asarray(fs.classes)[fs.y], tf),
    )
    meta = _key_meta(exp, fs, rule_id, plan)
    specs = expand_grid(exp, fs)
    history = list(iter_cell_docs(exp.results_dir))
    planned: list[PlannedCell] = []
    seen: set[str] = set()
    results: dict[str, CellResult] = {}
    damaged: list[str] = []
    for spec in specs:
        key = cell_key(spec, dataset=exp.dataset, label_rule=rule_id,
                       store_identities=meta["store_identities"], split_hash=plan.hash,
                       seed=exp.cv.seed)
        if key in seen:
            log.warning("cell %s duplicates an earlier cell (same stores and settings); skipped",
                        spec.label)
            continue
        seen.add(key)
        # a stored cell is verified before use; a damaged one goes to quarantine (not in a
        # dry run) and is recomputed
        cell, problem = open_cell(exp.results_dir, key, quarantine=not dry_run)
        if cell is not None:
            results[key] = cell
            planned.append(PlannedCell(spec, key, "reuse", "stored result found"))
        elif problem is not None:
            damaged.append(f"{key} ({spec.label}): {problem}")
            planned.append(PlannedCell(spec, key, "compute", f"stored result damaged: {problem}"))
        else:
            planned.append(PlannedCell(spec, key, "compute", _reason(spec, meta, history)))
    n_compute = sum(p.action == "compute" for p in planned)
    log.info("%s: %d cells (%d to compute, %d stored) x %d splits", exp.name, len(planned),
             n_compute, len(planned) - n_compute, plan.n_splits)

    prov = dataset_provenance(exp)
    common = dict(dataset=exp.dataset, experiment=exp.name, label_rule=rule_id,
                  data=fs.report, split=plan.info, planned=tuple(planned), metrics=exp.metrics,
                  results_dir=exp.results_dir, **prov)
    extra: list[str] = []
    if damaged:
        then = ("will be moved to quarantine and recomputed" if dry_run else
                f"were moved to {quarantine_dir(exp.results_dir)} and "
                + ("are recomputed" if compute else "are left out (run `pipeline classify` to "
                   "recompute them)"))
        extra.append(f"{len(damaged)} stored cell(s) failed verification and {then}: "
                     + "; ".join(damaged))
    if dry_run:
        return BenchmarkResult(cells=(), n_computed=0, n_reused=0, dry_run=True,
                               wall_seconds=time.perf_counter() - t_start,
                               warnings=tuple(plan.info.warnings) + tuple(extra), **common)

    todo = [p for p in planned if p.action == "compute"]
    if not compute:
        if not results:
            raise ConfigError(
                f"no stored results for experiment {exp.name!r} in {exp.results_dir}; run "
                "`pipeline classify` with this experiment first"
            )
        if todo:
            extra.append(f"{len(todo)} cell(s) of the experiment are not computed yet and are "
                         "missing from this report; run `pipeline classify` to add them")
        todo = []
    splits = [(r, f) for r in range(plan.info.n_repeats) for f in range(plan.info.n_folds)]
    layouts = {}
    for p in todo:
        cols, blocks = fs.columns(p.spec.stores)
        layouts[p.key] = (cols, blocks_spec(blocks), tables_spec(blocks))
    groups = [tuple(todo[i] for i in g) for g in group_by_prefix([p.spec for p in todo])]
    tasks = [(g, r, f) for g in groups for r, f in splits]
    positive = fs.positive_index
    if exp.operating_point is not None and (positive is None or len(fs.classes) != 2):
        raise ConfigError(
            f"{exp.source or 'experiment'}: [operating_point] needs a binary task with a "
            f"positive class; this one has classes {list(fs.classes)}. Remove the section or "
            "relabel to two classes"
        )
    # On Dask, X and y are scattered once and the small per-task index arrays travel as lists:
    # joblib would scatter arrays lazily and track them with a weakref finaliser that raises
    # KeyError when it runs late (issue 11, observation 13). Indexing with a list is the same.
    inline = (lambda a: a.tolist()) if scheduler is not None else (lambda a: a)
    with contextlib.ExitStack() as stack:
        if scheduler is not None and tasks:
            stack.enter_context(joblib_backend(scheduler, scatter=[fs.X, fs.y, fs.groups]))
        stack.enter_context(explained_worker_restarts())
        gen = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(run_split_group)(
                [p.spec for p in g], inline(layouts[g[0].key][0]), layouts[g[0].key][1], fs.X,
                fs.y, *map(inline, plan.indices(r, f)), n_classes=len(fs.classes), positive=positive,
                seed=exp.cv.seed, threads=exp.threads_per_task, groups=fs.groups,
                tables=layouts[g[0].key][2],
            )
            for g, r, f in tasks
        )
        _collect(exp, plan, fs, meta, tasks, gen, len(splits), results)

    cells = tuple(results[p.key] for p in planned if p.key in results)
    warnings = list(plan.info.warnings) + extra + _science_warnings(exp, fs, cells, prov)
    for w in warnings:
        log.warning(w)
    return BenchmarkResult(
        cells=cells, n_computed=len(todo), n_reused=len(cells) - len(todo), dry_run=False,
        wall_seconds=time.perf_counter() - t_start, warnings=tuple(warnings), **common,
    )


def _collect(exp: Experiment, plan: SplitPlan, fs: FeatureSet, meta: dict[str, Any],
             tasks: list, gen: Any, n_splits: int, results: dict[str, CellResult]) -> None:
    """Assemble and store the cells of a prefix group as soon as all its splits are back."""
    buffer: list[tuple[int, int, list[dict[str, Any]]]] = []
    for (group, r, f), outs in zip(tasks, gen, strict=True):
        buffer.append((r, f, outs))
        if len(buffer) < n_splits:
            continue
        for i, p in enumerate(group):
            cell = assemble_cell(p.spec, p.key, plan, fs, [(r, f, o[i]) for r, f, o in buffer])
            path = write_cell(exp.results_dir, cell, meta, fs.classes)
            results[p.key] = CellResult(**{**cell.__dict__, "path": path})
            mean, std = cell.summary("roc_auc")
            log.info("cell %s done: roc_auc %.3f +- %.3f, fit %.1fs", p.spec.label, mean, std,
                     cell.fit_seconds)
            for note in cell.warnings:
                log.warning("cell %s: %s", p.spec.label, note)
        buffer = []
