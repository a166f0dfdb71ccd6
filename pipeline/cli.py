"""Command line: ``python -m pipeline <verb>``. Thin: parse, call one stage function, print.

This is the only module that imports both stages, and it does so lazily inside each
verb, so ``pipeline classify`` never loads torch or transformers.

Exit codes: 0 success; 2 bad input or configuration, a damaged file, or an OS fault
(permission denied, read-only or full disk, missing folder), with the path and the fix;
3 the run finished but some items failed (listed in the summary and the store); 130
interrupted by Ctrl-C (everything computed so far is kept); 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USER_ERROR,
    UNCLOSABLE_HDF5,
    ConfigError,
    PipelineError,
    is_os_fault,
    storage_error,
)

if TYPE_CHECKING:
    from extract.options import ExtractOptions

log = logging.getLogger("pipeline")

ARTIFACTS = Path("artifacts")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="output root (default: artifacts)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")


def _n_jobs(text: str) -> int:
    """argparse type of --n-jobs: a positive count, or -1 (all cores), -2 (all but one), ..."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n-jobs must be an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "--n-jobs 0 runs nothing: use a positive number of parallel fits, or -1 for all cores")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Frozen-encoder features for chest X-rays + reports, and a fold-safe classifier benchmark.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("data", help="build a manifest (openi_demo, openi, mimic_cxr, csv)")
    p.add_argument("source", help="dataset format: openi_demo | openi | mimic_cxr | csv")
    p.add_argument("--name", help="dataset name (default: the format name)")
    p.add_argument("--reports", type=Path, help="openi/openi_demo: NLMCXR_reports folder or .tgz")
    p.add_argument("--image-root", type=Path,
                   help="folder the image paths are relative to: openi: NLMCXR_png; mimic_cxr: the "
                        "MIMIC-CXR-JPG release folder that CONTAINS files/ (not files/ itself)")
    p.add_argument("--view-csv", help="openi: per-image view table (default: the one shipped with "
                                      "torchxrayvision; 'none' for no views)")
    p.add_argument("--metadata-csv", type=Path, help="mimic_cxr: mimic-cxr-2.0.0-metadata.csv(.gz)")
    p.add_argument("--labels-csv", type=Path, help="mimic_cxr: mimic-cxr-2.0.0-chexpert.csv(.gz)")
    p.add_argument("--reports-dir", type=Path,
                   help="mimic_cxr: the folder that contains files/pNN/pNNNNNNNN/sNNNNNNNN.txt (mimic-cxr-reports)")
    p.add_argument("--uncertain", help="mimic_cxr: CheXpert -1 policy: zeros (U-Zeros, default) | "
                                       "ones (U-Ones) | ignore (U-Ignore)")
    p.add_argument("--split", choices=["official"],
                   help="mimic_cxr: record the release's train/validate/test split in a 'split' column")
    p.add_argument("--split-csv", type=Path,
                   help="mimic_cxr: the split file (default: mimic-cxr-2.0.0-split.csv.gz next to --metadata-csv)")
    p.add_argument("--path", type=Path, help="csv: the manifest-shaped CSV file")
    p.add_argument("--label-rule", default=None,
                   help="normal_vs_abnormal | finding_vs_rest:Cardiomegaly | top_k_multiclass:k=4")
    p.add_argument("--frontal-only", action="store_true", help="keep PA/AP views only")
    p.add_argument("--one-per-report", action="store_true", help="keep one image per report (frontal first)")
    p.add_argument("--drop-empty-text", action="store_true", help="drop reports with empty findings+impression")
    p.add_argument("--allow-absolute-paths", action="store_true", help="allow image paths outside the image root")
    p.add_argument("--skip-image-check", dest="check_images", action="store_false",
                   help="do not check that the images exist (a text-only manifest)")
    p.add_argument("--drop-missing-images", action="store_true",
                   help="drop rows whose image file is missing (default: keep them; extract lists them)")
    p.add_argument("--limit", type=int,
                   help="only the first N reports (openi: report files, mimic_cxr: studies; csv: rows)")
    _add_common(p)

    p = verbs.add_parser("extract", help="embed images/reports of a manifest into HDF5 stores")
    p.add_argument("--manifest", type=Path, required=True, help="artifacts/manifests/<dataset>.csv")
    p.add_argument("--encoder", action="append", required=True, help="encoder name (repeatable); see `pipeline list`")
    p.add_argument("--text-mode", default="both", choices=["both", "findings", "impression", "indication"],
                   help="report text (both/findings/impression) or the pre-read clinical indication "
                        "(store key <encoder>@indication)")
    p.add_argument("--mask-labels", action="store_true", help="mask the label's own terms in the text")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=None, help="image decoding workers (default: half the cores on CPU, min(4, cpus) on GPU)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"],
                   help="inference backend (default auto: ONNX Runtime on CPU, checked against torch; torch on GPUs)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU cores for inference (default: all cores this process may use)")
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--equalize", action="store_true", help="histogram-equalise images (its own store key, <name>+eq)")
    p.add_argument("--jpeg-draft", type=int, default=4,
                   help="decode large JPEGs at reduced size keeping the short side >= N x the input size (default 4; 0 = full decode)")
    p.add_argument("--allow-download", action="store_true",
                   help="let torchvision/Hugging Face download missing weights (never with HF_HUB_OFFLINE=1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address: shard the ids over its workers (one per GPU), then merge")
    p.add_argument("--lock-timeout", type=float, default=0.0,
                   help="seconds to wait for another run writing the same store (default 0: fail at once)")
    p.add_argument("--allow-random-weights", action="store_true",
                   help="TESTS/TIMING ONLY: use random weights when pretrained ones are missing (recorded in the store)")
    p.add_argument("--rebuild", action="store_true",
                   help="move the existing store (e.g. a damaged one) to quarantine/ and embed every row again")
    _add_common(p)

    p = verbs.add_parser("import", help="turn a matrix/table computed elsewhere (NPY/NPZ/Parquet/CSV) into a store")
    p.add_argument("path", type=Path, help=".npy (+ --ids), .npz, .parquet or .csv with a sample_id column")
    p.add_argument("--manifest", type=Path, required=True, help="the manifest whose samples the rows are")
    p.add_argument("--key", required=True, help="store key (the name used in experiments' `stores`)")
    p.add_argument("--kind", default="embedding", choices=["embedding", "tabular"],
                   help="embedding: finite vectors; tabular: numeric/categorical columns, empty = missing")
    p.add_argument("--ids", type=Path, help="for .npy/.npz: sample ids, one per line (or a .npy of strings)")
    p.add_argument("--modality", help="modality recorded in the store (default: image for embeddings, tabular for tables)")
    p.add_argument("--model", help="what computed the vectors (recorded; must match on later imports to the same key)")
    p.add_argument("--note", default="", help="free text recorded with this import")
    p.add_argument("--id-column", default="sample_id", help="id column of a CSV/Parquet file")
    p.add_argument("--numeric", action="append", default=[], help="tabular: force a column numeric (repeatable)")
    p.add_argument("--categorical", action="append", default=[], help="tabular: force a column categorical (repeatable)")
    p.add_argument("--rebuild", action="store_true", help="move the existing store to quarantine/ and import anew")
    _add_common(p)

    p = verbs.add_parser("tabular", help="write a structured block derived from manifest columns (e.g. openi_context)")
    p.add_argument("--manifest", type=Path, required=True, help="artifacts/manifests/<dataset>.csv")
    p.add_argument("--from-manifest", required=True, dest="builder",
                   help="context table to derive: openi_context (sex, prior exam, indication keyword flags)")
    p.add_argument("--key", help="store key (default: the table name)")
    p.add_argument("--rebuild", action="store_true", help="move the existing store to quarantine/ and write anew")
    _add_common(p)

    p = verbs.add_parser("classify", help="run the benchmark grid of an experiment file")
    p.add_argument("--config", type=Path, required=True, help="experiment TOML, e.g. experiments/demo.toml")
    p.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="parallel fits, or -1 for all cores (default: the experiment's n_jobs)")
    p.add_argument("--dry-run", action="store_true", help="list the cells that would be computed, and why")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (runs cells x folds on the cluster)")
    p.add_argument("--metric", default="roc_auc", help="metric of the paired tests printed (default roc_auc)")
    _add_common(p)

    p = verbs.add_parser("report", help="write the HTML/Markdown/CSV/LaTeX report of an experiment")
    p.add_argument("--config", type=Path, required=True, help="experiment TOML, e.g. experiments/demo.toml")
    p.add_argument("--metric", default="roc_auc", help="metric for picking the best fused cell (default roc_auc)")
    p.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                   help="skip the modality-shuffle test (it refits the best fused cell on 5 folds)")
    _add_common(p)

    p = verbs.add_parser("fit-final", help="fit a chosen cell on all labelled samples; write a model bundle")
    p.add_argument("--config", type=Path, required=True, help="experiment TOML whose results hold the cell")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--cell", help="cell label (feature_set/fusion/sampler/classifier) or cell key")
    which.add_argument("--best", action="store_true", help="the stored cell with the best mean --metric")
    p.add_argument("--metric", default="roc_auc", help="metric for --best (default roc_auc)")
    p.add_argument("--feature-set", help="with --best: only cells of this feature set (e.g. fused)")
    p.add_argument("--name", help="bundle name (default <experiment>-<cell label with '-'>)")
    p.add_argument("--threshold", default=None,
                   help="decision rule: argmax (default) | a probability | max_f1 | youden | "
                        "sensitivity=0.90 (chosen on the cell's out-of-fold predictions)")
    p.add_argument("--exclude-manifest", type=Path,
                   help="leave the samples and patients of this manifest out of the fit (a held-out slice)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle of the same name")
    _add_common(p)

    p = verbs.add_parser("predict", help="apply a model bundle to a (new) manifest")
    p.add_argument("--model", type=Path, required=True, help="bundle folder, e.g. artifacts/models/<name>")
    p.add_argument("--manifest", type=Path, required=True, help="manifest CSV of the samples to predict")
    p.add_argument("--out", type=Path, help="predictions CSV (default artifacts/predictions/<model>/<dataset>.csv)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=None, help="image decoding workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for metric CIs (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--lock-timeout", type=float, default=0.0, help="seconds to wait for a store lock")
    _add_common(p)

    p = verbs.add_parser("compare", help="compare two saved benchmark runs cell by cell")
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    _add_common(p)

    p = verbs.add_parser("list", help="registered encoders/fusions/samplers/classifiers and stores on disk")
    _add_common(p)

    p = verbs.add_parser("verify", help="check feature stores and result cells (content digests, checksums)")
    p.add_argument("paths", nargs="*", type=Path,
                   help="stores, cell folders or folders to search (default: <artifacts>/features and <artifacts>/results)")
    _add_common(p)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.logs import setup_logging

    log_file = None
    try:  # logging is set up inside: a log folder that cannot be written is not fatal
        log_file = setup_logging(args.verb, args.artifacts / "logs", verbose=args.verbose)
        code = _VERBS[args.verb](args)
    except PipelineError as exc:
        log.error("%s", exc)
        _log_file_note(log_file)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted; everything already computed is kept - re-run the same command to resume")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if is_os_fault(exc):  # an OS fault no stage named more precisely
            target = getattr(exc, "filename", None)
            op = (f"complete `pipeline {args.verb}`: a file operation "
                  + (f"on {target} " if target else "") + "failed")
            log.error("%s", storage_error(exc, op, path=""))
            log.debug("details", exc_info=True)
            _log_file_note(log_file)
            return EXIT_USER_ERROR
        log.exception("internal error (please report it with the log file %s)", log_file or "- none, see above")
        return EXIT_INTERNAL
    _log_file_note(log_file)
    return code


def console() -> None:
    """Entry point of ``python -m pipeline`` and ``cxr-pipeline``: exit with :func:`main`'s code.

    After an HDF5 write that the system refused, the process ends with ``os._exit`` once its
    output is flushed: HDF5 would crash tearing down that file (see ``UNCLOSABLE_HDF5``).
    """
    code = main()
    if UNCLOSABLE_HDF5:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _log_file_note(log_file: Path | None) -> None:
    if log_file is not None:
        log.info("log file: %s", log_file)


# --- verbs --------------------------------------------------------------------------
def _cmd_data(args: argparse.Namespace) -> int:
    from pipeline.build import build_manifest

    names = ("name", "reports", "image_root", "view_csv", "metadata_csv", "labels_csv", "reports_dir",
             "uncertain", "split", "split_csv", "path", "label_rule", "frontal_only", "one_per_report",
             "drop_empty_text", "allow_absolute_paths", "drop_missing_images", "limit")
    options = {k: getattr(args, k) for k in names if getattr(args, k) not in (None, False)}
    if not args.check_images:
        options["check_images"] = False
    manifest = build_manifest(args.source, artifacts_root=args.artifacts, **options)
    meta = manifest.meta
    print(f"manifest {manifest.name}: {meta['n_rows']} samples, {meta['n_patients']} patients/groups")
    print(f"  labels ({meta['label_rule'] or 'from the label column'}; source {meta['label_source']}): "
          + ", ".join(f"{k}={v}" for k, v in meta["label_counts"].items()))
    if meta.get("chexpert_values"):
        print(f"  CheXpert cells ({meta['uncertain_policy']}): "
              + ", ".join(f"{k}={v}" for k, v in meta["chexpert_values"].items()))
    if meta.get("image_check"):
        check = meta["image_check"]
        print(f"  images: {check['found']} of {check['checked']} found ({check['seconds']}s)")
    examples, studies = meta.get("dropped_examples", {}), meta.get("dropped_studies", {})
    for reason, n in meta["dropped"].items():
        extra = [f"{studies[reason]} studies"] if reason in studies else []
        extra += [f"e.g. {', '.join(examples[reason])}"] if examples.get(reason) else []
        print(f"  dropped {n:>6}  {reason}" + (f"  ({'; '.join(extra)})" if extra else ""))
    if meta.get("dropped_file"):
        print(f"  dropped ids and reasons: {Path(args.artifacts) / 'manifests' / meta['dropped_file']}")
    for note in meta.get("notes", []):
        print(f"  note: {note}")
    return EXIT_OK


#: ``pipeline extract`` flags that pick what to run and where, not how: everything else
#: becomes a field of ExtractOptions (tests/extract/test_options.py checks the mapping).
EXTRACT_ROUTING_ARGS = ("manifest", "encoder", "scheduler", "artifacts", "verbose", "verb")


def extract_options(args: argparse.Namespace) -> ExtractOptions:
    """The one ExtractOptions of an ``extract`` command, for the local and the Dask path alike."""
    from extract.options import ExtractOptions

    values = {k: v for k, v in vars(args).items() if k not in EXTRACT_ROUTING_ARGS}
    values["progress"] = False if values.pop("no_progress") else None
    return ExtractOptions(**values)


def _cmd_extract(args: argparse.Namespace) -> int:
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
        print(summary.render())
        if summary.failed:
            code = EXIT_PARTIAL
    return code


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.importer import ImportRequest, run_import
    from pipeline.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    req = ImportRequest(path=args.path, key=args.key, kind=args.kind, ids_path=args.ids,
                        modality=args.modality, model=args.model, note=args.note,
                        id_column=args.id_column, numeric=tuple(args.numeric),
                        categorical=tuple(args.categorical), rebuild=args.rebuild)
    s = run_import(req, manifest, args.artifacts / "features")
    print(f"{s.path}: {s.n_added} rows added, {s.n_already} already stored, {s.n_rows} in all")
    return EXIT_OK


def _cmd_tabular(args: argparse.Namespace) -> int:
    from pipeline.context import write_context_store
    from pipeline.manifest import load_manifest
    from pipeline.store import FeatureStore

    manifest = load_manifest(args.manifest)
    s = write_context_store(manifest, args.builder, args.artifacts / "features", key=args.key,
                            rebuild=args.rebuild)
    store = FeatureStore(s.path)
    print(f"{s.path}: {s.n_added} rows added, {s.n_already} already stored, {s.n_rows} in all")
    missing = store.provenance.get("missing_per_column", {})
    for col in store.schema.columns:
        cats = f" {list(col.categories)}" if col.categories else ""
        print(f"  {col.name:<20} {col.type:<11} missing {missing.get(col.name, 0):>5}{cats}")
    return EXIT_OK


def _cmd_classify(args: argparse.Namespace) -> int:
    from classify.ablation import ablation_table
    from classify.analysis import best_and_equivalent, calibration_of, tuning_of
    from classify.benchmark import run_benchmark
    from classify.experiment import load_experiment
    from classify.stats import compare_within_feature_sets
    from classify.tables import ablation_table as render_ablation
    from classify.tables import choice_summary, comparison_table, render_benchmark, tuning_table

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    result = run_benchmark(experiment, n_jobs=args.n_jobs, dry_run=args.dry_run, scheduler=args.scheduler)
    print(render_benchmark(result))
    if not result.dry_run and result.cells:
        eq = experiment.equivalence
        for comparison in compare_within_feature_sets(
                result, args.metric, rope=eq.rope_for(args.metric),
                decision_probability=eq.decision_probability):
            print("\n" + comparison_table(comparison))
        ablation = ablation_table(result)
        print("\n" + render_ablation(ablation, args.metric))
        if ablation.subsets is not None and len(ablation.subsets) and result.split is not None:
            from classify.subsets import render_subset_ablation

            print("\n" + render_subset_ablation(ablation.subsets, args.metric,
                                                 result.split.test_train_ratio))
        best = best_and_equivalent(result, args.metric, eq)
        calibration = calibration_of(result, [best.best]) if best is not None else ()
        tuned = tuning_table(tuning_of(result, args.metric, eq))
        if tuned:
            print("\n" + tuned)
        summary = choice_summary(best, calibration[0] if calibration else None)
        if summary:
            print("\n" + summary)
    if experiment.imbalance is not None and not args.dry_run:
        from classify.imbalance import render_sweep, run_prevalence_sweep

        print("\n" + render_sweep(run_prevalence_sweep(experiment, n_jobs=args.n_jobs)))
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from classify.ablation import run_shuffle
    from classify.analysis import analyse_benchmark
    from classify.benchmark import load_benchmark
    from classify.experiment import load_experiment
    from classify.report import write_report
    from pipeline.manifest import load_manifest

    experiment = load_experiment(args.config, artifacts=args.artifacts)
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
    from classify.report_inputs import add_context

    analysis = add_context(analysis, experiment)  # the stored prevalence sweep, indication audit
    paths = write_report(
        analysis,
        args.artifacts / "reports",
        experiment_text=Path(args.config).read_text(encoding="utf-8"),
        provenance=provenance,
    )
    for kind, path in paths.items():
        print(f"{kind:>12}: {path}")
    return EXIT_OK


def _cmd_fit_final(args: argparse.Namespace) -> int:
    from classify.bundle.final import fit_final
    from classify.bundle.render import render_fit_final
    from classify.experiment import load_experiment

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    fit = fit_final(experiment, cell=args.cell, best=args.best, metric=args.metric,
                    feature_set=args.feature_set, name=args.name, threshold=args.threshold,
                    exclude_manifest=args.exclude_manifest, models_root=args.artifacts / "models",
                    overwrite=args.force)
    print(render_fit_final(fit))
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from classify.bundle.io import load_bundle
    from classify.bundle.predict import run_predict
    from classify.bundle.render import render_prediction
    from extract.reproduce import extract_like
    from pipeline.manifest import load_manifest

    bundle = load_bundle(args.model)  # digests, schema and trusted types checked first
    manifest = load_manifest(args.manifest)
    features = args.artifacts / "features"

    def build_store(requirement) -> Path:  # classify never imports extract: wired here
        summary = extract_like(
            manifest, requirement.to_dict(), features, batch_size=args.batch_size,
            num_workers=args.num_workers, device=args.device, lock_timeout=args.lock_timeout,
            progress=False if args.no_progress else None,
        )
        print(summary.render())
        return summary.store

    out = args.out or args.artifacts / "predictions" / bundle.card.name / f"{manifest.name}.csv"
    result = run_predict(bundle, manifest, features_root=features, build_store=build_store,
                         out=out, n_boot=args.bootstrap)
    print(render_prediction(result))
    return EXIT_PARTIAL if result.failed else EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from classify.compare import compare_runs, render_comparison_of_runs

    print(render_comparison_of_runs(compare_runs(args.run_a, args.run_b)))
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from classify.fusion import FUSIONS
    from classify.models import CLASSIFIERS
    from classify.samplers import SAMPLERS
    from extract.encoders import IMAGE_ENCODERS, TEXT_ENCODERS, availability
    from pipeline.labels import LABEL_RULES
    from pipeline.sources import DATASET_FORMATS
    from pipeline.store import FeatureStore, store_files
    from pipeline.store_kinds import kind_summary

    print("image encoders (offline = pretrained weights present on this machine):")
    for entry in IMAGE_ENCODERS:
        avail = availability(entry.name)
        state = "offline" if avail.available else f"missing - {avail.detail}"
        print(f"  {entry.name:<22} dim {entry.meta.get('dim')!s:>5}  trained on {','.join(entry.meta.get('trained_on', []))}  [{state}]")
    print("text encoders (spec: name[:model][#cls|#mean][@findings|impression|both|indication][+masked]):")
    for entry in TEXT_ENCODERS:
        state = "offline" if entry.meta.get("offline") else "needs the model in the Hugging Face cache or a local folder"
        print(f"  {entry.name:<22} dim {entry.meta.get('dim') or '-'!s:>5}  [{state}]")
    for title, registry in (("dataset formats", DATASET_FORMATS), ("label rules", LABEL_RULES),
                            ("fusions", FUSIONS), ("samplers", SAMPLERS), ("classifiers", CLASSIFIERS)):
        print(f"{title}: {', '.join(registry.names())}")
    paths = store_files(args.artifacts / "features")
    print(f"feature stores under {args.artifacts / 'features'}: {len(paths) or 'none yet (run pipeline extract)'}"
          " (contents not verified here; `pipeline verify` does)")
    for path in paths:
        try:
            store = FeatureStore(path, verify=False)
        except PipelineError as exc:
            print(f"  {path.parent.name}/{path.name:<24} DAMAGED: {exc}")
            continue
        prov = store.provenance
        kind = "" if store.kind == "embedding" else f"  {kind_summary(prov)}"
        print(f"  {prov.get('dataset', store.path.parent.name)}/{store.encoder_key:<24} {prov['modality']:<5} "
              f"{len(store):>7} rows  dim {store.dim:>5}  failed {len(store.failed):>4}  weights {prov['weights_name']}{kind}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from classify.results_store import read_cell
    from pipeline.verify import verify_paths

    def check_cell(path: Path) -> str:
        cell = read_cell(path.parent.parent, path.name)
        return f"{cell.spec.label}; {len(cell.scores)} scores, checksums verified"

    paths = args.paths or [args.artifacts / "features", args.artifacts / "results"]
    if not args.paths:
        paths = [p for p in paths if p.exists()]
    verdicts = verify_paths(paths, check_cell)
    for verdict in verdicts:
        print(verdict.line())
    bad = [v for v in verdicts if not v.ok]
    print(f"{len(verdicts)} checked, {len(verdicts) - len(bad)} OK, {len(bad)} failed"
          + ("" if verdicts else f" (nothing found under {', '.join(map(str, paths)) or args.artifacts})"))
    return EXIT_USER_ERROR if bad else EXIT_OK


_VERBS = {
    "data": _cmd_data,
    "extract": _cmd_extract,
    "import": _cmd_import,
    "tabular": _cmd_tabular,
    "classify": _cmd_classify,
    "report": _cmd_report,
    "fit-final": _cmd_fit_final,
    "predict": _cmd_predict,
    "compare": _cmd_compare,
    "list": _cmd_list,
    "verify": _cmd_verify,
}

if __name__ == "__main__":  # pragma: no cover
    console()
