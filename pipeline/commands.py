"""The verbs of ``python -m pipeline``: each turns parsed arguments into one stage call and
hands its summary to ``out``.

With :mod:`pipeline.cli` (the parser, logging, exit codes and stdout) this is the CLI layer, the
only code that imports both stages; it does so lazily inside each verb, so ``pipeline
classify`` never loads torch or transformers. A verb never writes to stdout itself: the
dispatcher passes ``out`` (one call per block of text), so what a verb shows can be captured.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import EXIT_OK, EXIT_PARTIAL, EXIT_USER_ERROR, ConfigError, PipelineError

if TYPE_CHECKING:
    from extract.options import ExtractOptions

#: Where a verb sends the text it shows: :func:`pipeline.cli.show` (stdout) in the CLI.
Output = Callable[[str], None]


def cmd_data(args: argparse.Namespace, out: Output) -> int:
    from pipeline import api

    names = ("name", "reports", "image_root", "view_csv", "metadata_csv", "labels_csv", "reports_dir",
             "uncertain", "split", "split_csv", "path", "label_rule", "frontal_only", "one_per_report",
             "drop_empty_text", "allow_absolute_paths", "drop_missing_images", "limit", "columns",
             "label_source", "positive_label", "tabular", "unlabelled")
    options = {k: getattr(args, k) for k in names if getattr(args, k, None) not in (None, False)}
    if not args.check_images:
        options["check_images"] = False
    data = api.build_data(args.source, artifacts=args.artifacts, tabular_key=args.tabular_key,
                          **options)
    _show_manifest(data.manifest, args, out)
    if data.tabular is not None:
        s = data.tabular
        out(f"  tabular store {data.tabular_key}: {s.path} ({s.n_added} rows added, "
            f"{s.n_rows} in all)")
    return EXIT_OK


def _show_manifest(manifest, args: argparse.Namespace, out: Output) -> None:
    """The data step's summary: counts, labels, images, drops, sections, profile, notes."""
    from pipeline.dataset.profile import load_profile, render_profile

    meta = manifest.meta
    out(f"manifest {manifest.name}: {meta['n_rows']} samples, {meta['n_patients']} patients/groups")
    counts = ", ".join(f"{k}={v}" for k, v in meta["label_counts"].items())
    if meta.get("unlabelled"):
        n_lab = sum(meta["label_counts"].values())
        out(f"  unlabelled: new cases to predict, every row kept ({meta['n_rows'] - n_lab} "
            f"without a label" + (f"; labelled {counts})" if counts else ")"))
    else:
        out(f"  labels ({meta['label_rule'] or 'from the label column'}; source "
            f"{meta['label_source']}): " + counts)
    if meta.get("chexpert_values"):
        out(f"  CheXpert cells ({meta['uncertain_policy']}): "
              + ", ".join(f"{k}={v}" for k, v in meta["chexpert_values"].items()))
    if meta.get("image_check"):
        check = meta["image_check"]
        out(f"  images: {check['found']} of {check['checked']} found ({check['seconds']}s)")
    examples, studies = meta.get("dropped_examples", {}), meta.get("dropped_studies", {})
    for reason, n in meta["dropped"].items():
        extra = [f"{studies[reason]} studies"] if reason in studies else []
        extra += [f"e.g. {', '.join(examples[reason])}"] if examples.get(reason) else []
        out(f"  dropped {n:>6}  {reason}" + (f"  ({'; '.join(extra)})" if extra else ""))
    if meta.get("dropped_file"):
        out(f"  dropped ids and reasons: {Path(args.artifacts) / 'manifests' / meta['dropped_file']}")
    if meta.get("report_sections"):
        sec = meta["report_sections"]
        out(f"  report sections (split by their headings, {sec['reports']} reports): "
            + ", ".join(f"{k} {sec[k]}" for k in ("indication", "comparison", "findings",
                                                   "impression", "no_headings", "empty")))
    if meta.get("profile_file"):
        profile_file = Path(args.artifacts) / "manifests" / meta["profile_file"]
        out(render_profile(load_profile(profile_file)))
        out(f"  profile saved: {profile_file}")
    for note in meta.get("notes", []):
        out(f"  note: {note}")


#: ``pipeline extract`` flags that pick what to run and where, not how: everything else
#: becomes a field of ExtractOptions (tests/extract/test_options.py checks the mapping).
EXTRACT_ROUTING_ARGS = ("manifest", "encoder", "scheduler", "artifacts", "verbose", "verb")


def extract_options(args: argparse.Namespace) -> ExtractOptions:
    """The one ExtractOptions of an ``extract`` command, for the local and the Dask path alike."""
    from extract.options import ExtractOptions

    values = {k: v for k, v in vars(args).items() if k not in EXTRACT_ROUTING_ARGS}
    values["progress"] = False if values.pop("no_progress") else None
    return ExtractOptions(**values)


def cmd_extract(args: argparse.Namespace, out: Output) -> int:
    from extract.runner import run_extract
    from pipeline.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    if args.rebuild and args.scheduler:
        raise ConfigError("--rebuild runs locally: set the old store aside with `pipeline extract "
                          "--manifest ... --encoder ... --rebuild --limit 0`, then run with --scheduler")
    options = extract_options(args)
    code = EXIT_OK
    for encoder in args.encoder:
        if args.scheduler:
            from extract.distributed import run_extract_distributed

            summary = run_extract_distributed(manifest, encoder, args.artifacts / "features", options,
                                              scheduler=args.scheduler)
        else:
            summary = run_extract(manifest, encoder, args.artifacts / "features", options)
        out(summary.render())
        if summary.failed:
            code = EXIT_PARTIAL
    return code


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    from pipeline.manifest import load_manifest
    from pipeline.store.importer import ImportRequest, run_import

    manifest = load_manifest(args.manifest)
    req = ImportRequest(path=args.path, key=args.key, kind=args.kind, ids_path=args.ids,
                        modality=args.modality, model=args.model, note=args.note,
                        id_column=args.id_column, numeric=tuple(args.numeric),
                        categorical=tuple(args.categorical), rebuild=args.rebuild)
    s = run_import(req, manifest, args.artifacts / "features")
    out(f"{s.path}: {s.n_added} rows added, {s.n_already} already stored, {s.n_rows} in all")
    return EXIT_OK


def cmd_tabular(args: argparse.Namespace, out: Output) -> int:
    from pipeline.dataset.context import write_context_store
    from pipeline.manifest import load_manifest
    from pipeline.store.feature_store import FeatureStore

    manifest = load_manifest(args.manifest)
    s = write_context_store(manifest, args.builder, args.artifacts / "features", key=args.key,
                            rebuild=args.rebuild)
    store = FeatureStore(s.path)
    out(f"{s.path}: {s.n_added} rows added, {s.n_already} already stored, {s.n_rows} in all")
    missing = store.provenance.get("missing_per_column", {})
    for col in store.schema.columns:
        cats = f" {list(col.categories)}" if col.categories else ""
        out(f"  {col.name:<20} {col.type:<11} missing {missing.get(col.name, 0):>5}{cats}")
    return EXIT_OK


def cmd_classify(args: argparse.Namespace, out: Output) -> int:
    from classify.analysis.ablation.modalities import ablation_table
    from classify.analysis.analyse import answer_of, best_and_equivalent, calibration_of, tuning_of
    from classify.analysis.answer import positive_class_summary
    from classify.analysis.stats import compare_within_feature_sets
    from classify.config.experiment import load_experiment
    from classify.report.console import ablation_table as render_ablation
    from classify.report.console import (
        answer_text,
        choice_summary,
        comparison_table,
        render_benchmark,
        render_classify_summary,
        tuning_table,
    )
    from pipeline import api

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    if experiment.tasks is not None:  # one benchmark per task + the cross-task answer
        return _classify_tasks(experiment, args, out)
    result = api.classify(experiment, n_jobs=args.n_jobs, dry_run=args.dry_run,
                          scheduler=args.scheduler)
    if result.dry_run:
        from classify.run.time_estimate import estimate_times

        n_jobs = args.n_jobs or experiment.n_jobs or 1
        out(render_benchmark(result, estimate_times(result.planned, result.results_dir),
                             n_jobs=n_jobs if n_jobs > 0 else os.cpu_count() or 1))
    elif not result.cells:
        out(render_benchmark(result))
    else:
        eq = experiment.equivalence
        answer = answer_of(result, args.metric, config=eq)
        best = best_and_equivalent(result, args.metric, eq)
        calibration = calibration_of(result, [best.best]) if best is not None else ()
        names = dict(answer.names) if answer is not None else {}
        summary = choice_summary(best, calibration[0] if calibration else None, names=names,
                                 brief=not args.verbose)
        if not args.verbose:  # the answer, a short leaderboard, each warning once
            out(render_classify_summary(result, answer, positive_class_summary(result),
                                        metric=args.metric, choice=summary))
        else:
            out(render_benchmark(result))
            for comparison in compare_within_feature_sets(
                    result, args.metric, rope=eq.rope_for(args.metric),
                    decision_probability=eq.decision_probability):
                out("\n" + comparison_table(comparison))
            ablation = ablation_table(result)
            out("\n" + render_ablation(ablation, args.metric))
            if ablation.subsets is not None and len(ablation.subsets) and result.split is not None:
                from classify.analysis.ablation.block_subsets import render_subset_ablation

                out("\n" + render_subset_ablation(ablation.subsets, args.metric,
                                                     result.split.test_train_ratio))
            tuned = tuning_table(tuning_of(result, args.metric, eq))
            if tuned:
                out("\n" + tuned)
            if summary:
                out("\n" + summary)
            out("\n" + answer_text(answer, table=True))
    if experiment.imbalance is not None and not args.dry_run:
        from classify.analysis.prevalence_sweep import render_sweep, run_prevalence_sweep

        out("\n" + render_sweep(run_prevalence_sweep(experiment, n_jobs=args.n_jobs)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    from classify.analysis.ablation.modalities import run_shuffle
    from classify.analysis.analyse import analyse_benchmark
    from classify.config.experiment import load_experiment
    from classify.report import write_report
    from classify.run.benchmark import load_benchmark
    from pipeline.manifest import load_manifest

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    if experiment.tasks is not None:  # each task's report + the cross-task page
        return _report_tasks(experiment, args, out)
    benchmark = load_benchmark(experiment)
    shuffles = []
    if args.shuffle:
        fused = [c for c in benchmark.cells if len(c.spec.stores) > 1]
        if fused:  # the modality-shuffle test on the best fused cell (refits; not stored)
            best = max(fused, key=lambda c: c.summary(args.metric)[0])
            shuffles.append(run_shuffle(experiment, best, metric=args.metric, n_permutations=3, repeats=1))
    manifest = load_manifest(experiment.manifest)
    provenance = {
        "label_source": manifest.meta.get("label_source"),
        "manifest": str(experiment.manifest),
        "manifest_notes": manifest.meta.get("notes", []),
        "command": " ".join(sys.argv),
    }
    analysis = analyse_benchmark(benchmark, shuffles=shuffles, label_source=provenance["label_source"],
                                 metric=args.metric, equivalence=experiment.equivalence)
    from classify.report.inputs import add_context

    analysis = add_context(analysis, experiment)  # the stored prevalence sweep, indication audit
    paths = write_report(
        analysis,
        args.artifacts / "reports",
        experiment_text=Path(args.config).read_text(encoding="utf-8"),
        provenance=provenance,
    )
    for kind, path in paths.items():
        out(f"{kind:>12}: {path}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    from classify.analysis.holdout_test import evaluate_holdout, render_holdout
    from classify.config.experiment import load_experiment

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    evaluation = evaluate_holdout(experiment, metric=args.metric, cells=args.cell)
    out(render_holdout(evaluation))
    return EXIT_OK


def cmd_fit_final(args: argparse.Namespace, out: Output) -> int:
    from classify.bundle.final import fit_final
    from classify.bundle.render import render_fit_final
    from classify.config.experiment import load_experiment

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    if args.task is not None:
        from classify.run.tasks import task_experiment

        experiment = task_experiment(experiment, args.task)
    fit = fit_final(experiment, cell=args.cell, best=args.best, metric=args.metric,
                    feature_set=args.feature_set, name=args.name, threshold=args.threshold,
                    exclude_manifest=args.exclude_manifest, models_root=args.artifacts / "models",
                    overwrite=args.force)
    out(render_fit_final(fit))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, out: Output) -> int:
    from classify.bundle.render import render_prediction
    from pipeline import api
    from pipeline.manifest import load_manifest

    options = {"batch_size": args.batch_size, "num_workers": args.num_workers,
               "device": args.device, "lock_timeout": args.lock_timeout,
               "progress": False if args.no_progress else None}
    from classify.bundle.io import load_bundle

    if args.csv is None and (args.image_root is not None or args.name is not None):
        raise ConfigError("--image-root and --name go with --csv (a manifest records its own)")
    bundle = load_bundle(args.model)  # digests, schema and trusted types checked first
    if args.task is not None:  # a bundle fitted for one task of a multi-task experiment
        from classify.bundle.predict import check_task

        check_task(bundle, args.task, args.model)
    if args.csv is not None:
        result = api.predict_csv(bundle, args.csv, image_root=args.image_root, name=args.name,
                                 artifacts=args.artifacts, out=args.out, n_boot=args.bootstrap,
                                 show=out, **options)
    else:
        result = api.predict_manifest(bundle, load_manifest(args.manifest), artifacts=args.artifacts,
                                      out=args.out, n_boot=args.bootstrap, show=out, **options)
    out(render_prediction(result))
    return EXIT_PARTIAL if result.failed else EXIT_OK


def cmd_compare(args: argparse.Namespace, out: Output) -> int:
    from classify.analysis.compare_runs import compare_runs, render_comparison_of_runs

    out(render_comparison_of_runs(compare_runs(args.run_a, args.run_b)))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    from classify.models.classifiers import CLASSIFIERS
    from classify.models.fusion import FUSIONS
    from classify.models.samplers import SAMPLERS
    from extract.encoders import IMAGE_ENCODERS, TEXT_ENCODERS, availability
    from pipeline.labels import LABEL_RULES
    from pipeline.sources import DATASET_FORMATS
    from pipeline.store.feature_store import FeatureStore, store_files
    from pipeline.store.kinds import kind_summary

    out("image encoders (offline = pretrained weights present on this machine):")
    for entry in IMAGE_ENCODERS:
        avail = availability(entry.name)
        state = "offline" if avail.available else f"missing - {avail.detail}"
        out(f"  {entry.name:<22} dim {entry.meta.get('dim')!s:>5}  trained on {','.join(entry.meta.get('trained_on', []))}  [{state}]")
    out("text encoders (spec: name[:model][#cls|#mean][@findings|impression|both|indication][+masked]):")
    for entry in TEXT_ENCODERS:
        state = "offline" if entry.meta.get("offline") else "needs the model in the Hugging Face cache or a local folder"
        out(f"  {entry.name:<22} dim {entry.meta.get('dim') or '-'!s:>5}  [{state}]")
    for title, registry in (("dataset formats", DATASET_FORMATS), ("label rules", LABEL_RULES),
                            ("fusions", FUSIONS), ("samplers", SAMPLERS), ("classifiers", CLASSIFIERS)):
        out(f"{title}: {', '.join(registry.names())}")
    paths = store_files(args.artifacts / "features")
    out(f"feature stores under {args.artifacts / 'features'}: {len(paths) or 'none yet (run pipeline extract)'}"
          " (contents not verified here; `pipeline verify` does)")
    for path in paths:
        try:
            store = FeatureStore(path, verify=False)
        except PipelineError as exc:
            out(f"  {path.parent.name}/{path.name:<24} DAMAGED: {exc}")
            continue
        prov = store.provenance
        kind = "" if store.kind == "embedding" else f"  {kind_summary(prov)}"
        out(f"  {prov.get('dataset', store.path.parent.name)}/{store.encoder_key:<24} {prov['modality']:<5} "
              f"{len(store):>7} rows  dim {store.dim:>5}  failed {len(store.failed):>4}  weights {prov['weights_name']}{kind}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    from classify.results.cell_store import read_cell
    from pipeline.store.verify import verify_paths

    def check_cell(path: Path) -> str:
        cell = read_cell(path.parent.parent, path.name)
        return f"{cell.spec.label}; {len(cell.scores)} scores, checksums verified"

    paths = args.paths or [args.artifacts / "features", args.artifacts / "results"]
    if not args.paths:
        paths = [p for p in paths if p.exists()]
    verdicts = verify_paths(paths, check_cell)
    for verdict in verdicts:
        out(verdict.line())
    bad = [v for v in verdicts if not v.ok]
    out(f"{len(verdicts)} checked, {len(verdicts) - len(bad)} OK, {len(bad)} failed"
          + ("" if verdicts else f" (nothing found under {', '.join(map(str, paths)) or args.artifacts})"))
    return EXIT_USER_ERROR if bad else EXIT_OK


# ----------------------------------------------------------------------------- many tasks
def _classify_tasks(experiment, args: argparse.Namespace, out: Output) -> int:  # noqa: ANN001
    """``classify`` of a multi-task experiment: each task's grid, then the cross-task answer."""
    from classify.analysis.tasks import analyse_tasks
    from classify.report.console import render_benchmark
    from classify.report.tasks import render_tasks_text
    from classify.run.tasks import run_tasks

    run = run_tasks(experiment, n_jobs=args.n_jobs, dry_run=args.dry_run, scheduler=args.scheduler)
    for t in run.tasks:
        out(f"\n== task {t.task} ({t.seconds:.1f}s) ==")
        out(render_benchmark(t.benchmark))
    if not args.dry_run:
        out("\n" + render_tasks_text(analyse_tasks(run, args.metric)))
    out(f"\n{len(run.tasks)} task(s) in {run.wall_seconds:.1f}s; stores opened, verified and "
        f"read once for all: {run.shared_seconds:.1f}s")
    return EXIT_OK


def _report_tasks(experiment, args: argparse.Namespace, out: Output) -> int:  # noqa: ANN001
    """``report`` of a multi-task experiment: each task's own report (as a single-task
    experiment's, without the refitting shuffle test), then the cross-task page."""
    from classify.analysis.analyse import analyse_benchmark
    from classify.analysis.tasks import analyse_tasks
    from classify.report import write_report
    from classify.report.inputs import add_context
    from classify.report.tasks import render_tasks_text, write_tasks_report
    from classify.run.tasks import run_tasks, task_experiment
    from pipeline.manifest import load_manifest

    run = run_tasks(experiment, compute=False)
    meta = load_manifest(experiment.manifest).meta
    provenance = {"label_source": meta.get("label_source"), "manifest": str(experiment.manifest),
                  "manifest_notes": meta.get("notes", []), "command": " ".join(sys.argv)}
    text = Path(args.config).read_text(encoding="utf-8")
    reports = args.artifacts / "reports"
    pages = {}
    for t in run.tasks:
        analysis = analyse_benchmark(t.benchmark, shuffles=[], label_source=meta.get("label_source"),
                                     metric=args.metric, equivalence=experiment.equivalence)
        analysis = add_context(analysis, task_experiment(experiment, t.task))
        pages[t.task] = write_report(analysis, reports, experiment_text=text,
                                     provenance=provenance)["markdown"]
    answer = analyse_tasks(run, args.metric)
    out(render_tasks_text(answer) + "\n")
    for kind, path in write_tasks_report(answer, reports, pages).items():
        out(f"{kind:>12}: {path}")
    return EXIT_OK
