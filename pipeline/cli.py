"""Command line: ``python -m pipeline <verb>``. Thin: parse, call one verb, map errors to exit codes.

The verbs themselves live in :mod:`pipeline.commands`; the two modules are the CLI layer, the
only code that imports both stages, lazily inside each verb, so ``pipeline classify`` never
loads torch or transformers.

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

from pipeline import commands
from pipeline.commands import EXTRACT_ROUTING_ARGS, extract_options
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    UNCLOSABLE_HDF5,
    PipelineError,
    is_os_fault,
    storage_error,
)

__all__ = ["EXTRACT_ROUTING_ARGS", "build_parser", "console", "extract_options", "main"]

log = logging.getLogger("pipeline")

ARTIFACTS = Path("artifacts")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="output root (default: artifacts)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging on the console; classify: every table, not just the answer")


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
    p.add_argument("--path", type=Path, help="csv: the CSV file (a site export; see --columns)")
    p.add_argument("--columns",
                   help="csv: manifest field=your column, comma-separated, e.g. sample_id=Accession,"
                        "patient_id=MRN,image_path=FilePath,report_text=ReportText,label=Finding")
    p.add_argument("--label-source", choices=["report", "external"],
                   help="csv: where the labels come from: report (read off the report text: the "
                        "leakage ceiling and masking apply) | external (default)")
    p.add_argument("--positive-label", help="csv: the label value of the positive class (e.g. Yes)")
    p.add_argument("--tabular",
                   help="csv: columns of the same file written as a tabular store, e.g. "
                        "PatientAge,PatientSex (typed, missing kept; key: --tabular-key)")
    p.add_argument("--tabular-key", default=None, help="csv: store key of --tabular (default clinical)")
    p.add_argument("--unlabelled", action="store_true",
                   help="csv: new cases to predict: keep every row, labelled or not")
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
    p.add_argument("--num-workers", type=int, default=None, help="image decoding worker processes (default: min(4, cpus) on GPU; on CPU 0 up to 2 cores, cores/4 above; 0 = decode one batch ahead in a thread)")
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

    p = verbs.add_parser("evaluate", help="score the selected cells once on the experiment's "
                         "[holdout] test set (patients CV never saw)")
    p.add_argument("--config", type=Path, required=True, help="experiment TOML with a [holdout]")
    p.add_argument("--metric", default="roc_auc",
                   help="pick the best cell of each feature set by this CV metric (default roc_auc)")
    p.add_argument("--cell", action="append",
                   help="score this cell (label; repeatable) instead of the best per feature set")
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
    p.add_argument("--task", help="multi-task experiment (tasks = [...]): the task whose cell to fit")
    _add_common(p)

    p = verbs.add_parser("predict", help="apply a model bundle to a (new) manifest")
    p.add_argument("--model", type=Path, required=True, help="bundle folder, e.g. artifacts/models/<name>")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--manifest", type=Path, help="manifest CSV of the samples to predict")
    which.add_argument("--csv", type=Path,
                       help="a site export of new cases, read with the column mapping recorded in "
                            "the model (labels optional)")
    p.add_argument("--image-root", type=Path, help="with --csv: the folder its image paths are relative to")
    p.add_argument("--name", help="with --csv: data set name of the new cases (default: the file's stem)")
    p.add_argument("--out", type=Path, help="predictions CSV (default artifacts/predictions/<model>/<dataset>.csv)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=None, help="image decoding workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for metric CIs (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--lock-timeout", type=float, default=0.0, help="seconds to wait for a store lock")
    p.add_argument("--task", help="the task the model must have been fitted for (fit-final --task); "
                                  "new rows are scored on that task's labels")
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
        code = _VERBS[args.verb](args, show)
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


def show(text: str) -> None:
    """Write a verb's text (summaries, tables) to stdout: the only place the CLI prints."""
    print(text, flush=True)


def _log_file_note(log_file: Path | None) -> None:
    if log_file is not None:
        log.info("log file: %s", log_file)


#: verb name -> its implementation in :mod:`pipeline.commands`, called as ``verb(args, show)``
#: (tests swap entries).
_VERBS = {
    "data": commands.cmd_data,
    "extract": commands.cmd_extract,
    "import": commands.cmd_import,
    "tabular": commands.cmd_tabular,
    "classify": commands.cmd_classify,
    "report": commands.cmd_report,
    "evaluate": commands.cmd_evaluate,
    "fit-final": commands.cmd_fit_final,
    "predict": commands.cmd_predict,
    "compare": commands.cmd_compare,
    "list": commands.cmd_list,
    "verify": commands.cmd_verify,
}

if __name__ == "__main__":  # pragma: no cover
    console()
