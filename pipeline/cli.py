"""Command line: ``python -m pipeline <verb>``. Thin: parse, call one stage function, print.

This is the only module that imports both stages, and it does so lazily inside each
verb, so ``pipeline classify`` never loads torch or transformers.

Exit codes: 0 success; 2 bad input or configuration (nothing was run); 3 the run
finished but some items failed (listed in the summary and the store); 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import EXIT_INTERNAL, EXIT_OK, EXIT_PARTIAL, PipelineError

if TYPE_CHECKING:
    from extract.options import ExtractOptions

log = logging.getLogger("pipeline")

ARTIFACTS = Path("artifacts")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="output root (default: artifacts)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")


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
    p.add_argument("--image-root", type=Path, help="image folder (e.g. NLMCXR_png, or MIMIC-CXR-JPG files/)")
    p.add_argument("--view-csv", type=Path, help="openi: per-image view table (enables --frontal-only)")
    p.add_argument("--metadata-csv", type=Path, help="mimic_cxr: mimic-cxr-2.0.0-metadata.csv")
    p.add_argument("--labels-csv", type=Path, help="mimic_cxr: mimic-cxr-2.0.0-chexpert.csv")
    p.add_argument("--reports-dir", type=Path, help="mimic_cxr: folder of report .txt files")
    p.add_argument("--path", type=Path, help="csv: the manifest-shaped CSV file")
    p.add_argument("--label-rule", default=None,
                   help="normal_vs_abnormal | finding_vs_rest:Cardiomegaly | top_k_multiclass:k=4")
    p.add_argument("--frontal-only", action="store_true", help="keep PA/AP views only")
    p.add_argument("--one-per-report", action="store_true", help="keep one image per report (frontal first)")
    p.add_argument("--drop-empty-text", action="store_true", help="drop reports with empty findings+impression")
    p.add_argument("--allow-absolute-paths", action="store_true", help="allow image paths outside the image root")
    p.add_argument("--limit", type=int, help="only the first N reports (quick trials)")
    _add_common(p)

    p = verbs.add_parser("extract", help="embed images/reports of a manifest into HDF5 stores")
    p.add_argument("--manifest", type=Path, required=True, help="artifacts/manifests/<dataset>.csv")
    p.add_argument("--encoder", action="append", required=True, help="encoder name (repeatable); see `pipeline list`")
    p.add_argument("--text-mode", default="both", choices=["both", "findings", "impression"])
    p.add_argument("--mask-labels", action="store_true", help="mask the label's own terms in the text")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=None, help="image decoding worker processes (default: min(4, cpus) on GPU; on CPU 0 up to 2 cores, cores/4 above)")
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
    _add_common(p)

    p = verbs.add_parser("classify", help="run the benchmark grid of an experiment file")
    p.add_argument("--config", type=Path, required=True, help="experiment TOML, e.g. experiments/demo.toml")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default: the experiment's n_jobs)")
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

    p = verbs.add_parser("compare", help="compare two saved benchmark runs cell by cell")
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    _add_common(p)

    p = verbs.add_parser("list", help="registered encoders/fusions/samplers/classifiers and stores on disk")
    _add_common(p)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.logs import setup_logging

    log_file = setup_logging(args.verb, args.artifacts / "logs", verbose=args.verbose)
    try:
        code = _VERBS[args.verb](args)
    except PipelineError as exc:
        log.error("%s", exc)
        log.info("log file: %s", log_file)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted; everything already computed is kept - re-run the same command to resume")
        return 130
    except Exception:
        log.exception("internal error (please report it with the log file %s)", log_file)
        return EXIT_INTERNAL
    log.info("log file: %s", log_file)
    return code


# --- verbs --------------------------------------------------------------------------
def _cmd_data(args: argparse.Namespace) -> int:
    from pipeline.datasets import build_manifest

    names = ("name", "reports", "image_root", "view_csv", "metadata_csv", "labels_csv", "reports_dir",
             "path", "label_rule", "frontal_only", "one_per_report", "drop_empty_text",
             "allow_absolute_paths", "limit")
    options = {k: getattr(args, k) for k in names if getattr(args, k) not in (None, False)}
    manifest = build_manifest(args.source, artifacts_root=args.artifacts, **options)
    meta = manifest.meta
    print(f"manifest {manifest.name}: {meta['n_rows']} samples, {meta['n_patients']} patients/groups")
    print(f"  labels ({meta['label_rule'] or 'from the label column'}; source {meta['label_source']}): "
          + ", ".join(f"{k}={v}" for k, v in meta["label_counts"].items()))
    for reason, n in meta["dropped"].items():
        print(f"  dropped {n:>6}  {reason}")
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
    from pipeline.datasets import load_manifest

    manifest = load_manifest(args.manifest)
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


def _cmd_classify(args: argparse.Namespace) -> int:
    from classify.ablation import ablation_table
    from classify.benchmark import run_benchmark
    from classify.experiment import load_experiment
    from classify.stats import compare_within_feature_sets
    from classify.tables import ablation_table as render_ablation
    from classify.tables import comparison_table, render_benchmark

    experiment = load_experiment(args.config, artifacts=args.artifacts)
    result = run_benchmark(experiment, n_jobs=args.n_jobs, dry_run=args.dry_run, scheduler=args.scheduler)
    print(render_benchmark(result))
    if not result.dry_run and result.cells:
        for comparison in compare_within_feature_sets(result, args.metric):
            print("\n" + comparison_table(comparison))
        print("\n" + render_ablation(ablation_table(result), args.metric))
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from classify.ablation import run_shuffle
    from classify.benchmark import load_benchmark
    from classify.experiment import load_experiment
    from classify.report import write_report
    from pipeline.datasets import load_manifest

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
    paths = write_report(
        benchmark,
        args.artifacts / "reports",
        shuffles=shuffles,
        experiment_text=Path(args.config).read_text(encoding="utf-8"),
        provenance=provenance,
    )
    for kind, path in paths.items():
        print(f"{kind:>12}: {path}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from classify.compare import compare_runs, render_comparison_of_runs

    print(render_comparison_of_runs(compare_runs(args.run_a, args.run_b)))
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from classify.fusion import FUSIONS
    from classify.models import CLASSIFIERS
    from classify.samplers import SAMPLERS
    from extract.encoders import IMAGE_ENCODERS, TEXT_ENCODERS, availability
    from pipeline.datasets import DATASET_FORMATS
    from pipeline.labels import LABEL_RULES
    from pipeline.store import list_stores

    print("image encoders (offline = pretrained weights present on this machine):")
    for entry in IMAGE_ENCODERS:
        avail = availability(entry.name)
        state = "offline" if avail.available else f"missing - {avail.detail}"
        print(f"  {entry.name:<22} dim {entry.meta.get('dim')!s:>5}  trained on {','.join(entry.meta.get('trained_on', []))}  [{state}]")
    print("text encoders (spec: name[:model][#cls|#mean][@findings|impression|both][+masked]):")
    for entry in TEXT_ENCODERS:
        state = "offline" if entry.meta.get("offline") else "needs the model in the Hugging Face cache or a local folder"
        print(f"  {entry.name:<22} dim {entry.meta.get('dim') or '-'!s:>5}  [{state}]")
    for title, registry in (("dataset formats", DATASET_FORMATS), ("label rules", LABEL_RULES),
                            ("fusions", FUSIONS), ("samplers", SAMPLERS), ("classifiers", CLASSIFIERS)):
        print(f"{title}: {', '.join(registry.names())}")
    stores = list_stores(args.artifacts / "features")
    print(f"feature stores under {args.artifacts / 'features'}: {len(stores) or 'none yet (run pipeline extract)'}")
    for store in stores:
        prov = store.provenance
        print(f"  {prov.get('dataset', store.path.parent.name)}/{store.encoder_key:<24} {prov['modality']:<5} "
              f"{len(store):>7} rows  dim {store.dim:>5}  failed {len(store.failed):>4}  weights {prov['weights_name']}")
    return EXIT_OK


_VERBS = {
    "data": _cmd_data,
    "extract": _cmd_extract,
    "classify": _cmd_classify,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "list": _cmd_list,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
