"""The Python API: the functions the ``pipeline`` verbs call, for notebooks and scripts.

Part of the CLI layer (with :mod:`pipeline.cli` and :mod:`pipeline.commands`): it imports the
stages lazily inside each function, so importing it loads neither torch nor scikit-learn.

* :func:`build_data` / :func:`data_from_frame`: a manifest (+ its profile, + the clinical
  tabular store of ``tabular`` columns) from a registered source or from a DataFrame and a
  column mapping (``pipeline data``);
* :func:`classify`: the benchmark grid of an experiment TOML -> a typed
  :class:`~classify.results.types.BenchmarkResult` (``pipeline classify``);
* :func:`predict_csv` / :func:`predict`: a model bundle applied to a site export (file or
  DataFrame) with the column mapping recorded in the bundle -> one prediction row per input
  row, carrying the export's identifier columns (``pipeline predict --csv``).

Every function writes under ``artifacts`` exactly what the verb writes, so the CLI and a
notebook can take turns on the same project folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, ManifestError

if TYPE_CHECKING:
    import pandas as pd

    from classify.bundle.io import Bundle
    from classify.bundle.predict import PredictionResult
    from classify.config.experiment import Experiment
    from classify.results.types import BenchmarkResult
    from pipeline.dataset.profile import DataProfile
    from pipeline.manifest import Manifest
    from pipeline.store.tabular_writer import WriteSummary

log = logging.getLogger(__name__)

#: Where a function sends the text a verb would show (summaries); ``None``: the log.
Show = Callable[[str], None] | None


@dataclass(frozen=True)
class DataResult:
    """What the data step built: the manifest, its profile, and the tabular store of
    ``tabular`` columns (None without them)."""

    manifest: Manifest
    profile: DataProfile | None
    tabular: WriteSummary | None = None
    tabular_key: str | None = None


def _show(show: Show, text: str) -> None:
    (show or log.info)(text)


def build_data(source: str, *, artifacts: str | Path = "artifacts", tabular_key: str | None = None,
               **options: Any) -> DataResult:
    """``pipeline data <source> ...``: build the manifest (options as the verb's flags, e.g.
    ``path``, ``image_root``, ``columns``, ``label_source``, ``positive_label``, ``tabular``,
    ``unlabelled``), save its profile, and write the ``tabular`` columns as the tabular store
    ``tabular_key`` (default ``clinical``)."""
    from pipeline.dataset.build import build_manifest
    from pipeline.dataset.clinical import DEFAULT_KEY, write_columns_store
    from pipeline.dataset.profile import load_profile

    if tabular_key and not options.get("tabular"):
        raise ConfigError("--tabular-key names the store of --tabular: pass --tabular COLUMNS too")
    artifacts = Path(artifacts)
    manifest = build_manifest(source, artifacts_root=artifacts, **options)
    profile_file = manifest.meta.get("profile_file")
    manifest_dir = Path(options.get("manifest_dir") or artifacts / "manifests")
    profile = load_profile(manifest_dir / profile_file) if profile_file else None
    summary, key = None, None
    if options.get("tabular"):
        key = tabular_key or DEFAULT_KEY
        summary = write_columns_store(manifest, manifest.meta["csv_input"]["tabular"],
                                      artifacts / "features", key=key)
    return DataResult(manifest, profile, summary, key)


def _input_csv(frame: pd.DataFrame, name: str, artifacts: Path) -> Path:
    """``frame`` saved as ``<artifacts>/inputs/<name>.csv`` (the file the manifest records)."""
    from pipeline.helpers import atomic_write

    path = artifacts / "inputs" / f"{name}.csv"
    atomic_write(path, frame.to_csv(index=False))
    return path


def data_from_frame(frame: pd.DataFrame, *, name: str, image_root: str | Path,
                    columns: str | Mapping[str, str] | None = None,
                    artifacts: str | Path = "artifacts", **options: Any) -> DataResult:
    """:func:`build_data` for a DataFrame: it is saved as ``<artifacts>/inputs/<name>.csv`` (the
    manifest records where its rows came from) and read as ``pipeline data csv`` reads a file.
    ``columns``: manifest field -> your column, e.g. ``{"sample_id": "Accession"}``."""
    artifacts = Path(artifacts)
    path = _input_csv(frame, name, artifacts)
    return build_data("csv", artifacts=artifacts, name=name, path=path, image_root=image_root,
                      columns=dict(columns) if isinstance(columns, Mapping) else columns,
                      **options)


def classify(config: str | Path | Experiment, *, artifacts: str | Path | None = None,
             n_jobs: int | None = None, dry_run: bool = False,
             scheduler: Any = None) -> BenchmarkResult:
    """``pipeline classify --config ...``: compute (or reuse) every cell of the experiment (a
    TOML path, or an already loaded Experiment) and return the typed
    :class:`~classify.results.types.BenchmarkResult`."""
    from classify.config.experiment import Experiment, load_experiment
    from classify.run.benchmark import run_benchmark

    experiment = (config if isinstance(config, Experiment)
                  else load_experiment(config, artifacts=artifacts))
    return run_benchmark(experiment, n_jobs=n_jobs, dry_run=dry_run, scheduler=scheduler)


def manifest_for_bundle(bundle: Bundle, path: str | Path, *, image_root: str | Path | None,
                        name: str, artifacts: str | Path = "artifacts") -> Manifest:
    """The manifest of a site export of new cases, read with the column mapping recorded in
    ``bundle`` (its training data's ``pipeline data csv --columns``). Every row is kept; the
    label column is optional (scores are given only where it is present)."""
    import pandas as pd

    from pipeline.dataset.build import build_manifest

    recorded = dict(bundle.card.training.get("data_input") or {})
    columns = dict(recorded.get("columns") or {})
    header = pd.read_csv(path, nrows=0, dtype=str).columns if Path(path).is_file() else []
    if columns.get("label") and columns["label"] not in header:
        columns.pop("label")  # new cases without labels: predictions only
    if not recorded:
        log.info("bundle %s records no column mapping (its training manifest was not built by "
                 "`pipeline data csv`); %s is read with the manifest's own column names",
                 bundle.card.name, path)
    options: dict[str, Any] = {"columns": columns or None, "unlabelled": True,
                               "label_source": recorded.get("label_source")}
    if recorded.get("tabular"):
        options["tabular"] = list(recorded["tabular"])
    return build_manifest("csv", path=Path(path), image_root=image_root, name=name,
                          artifacts_root=Path(artifacts),
                          **{k: v for k, v in options.items() if v is not None})


def _store_builder(manifest: Manifest, features: Path, show: Show, extract_options: Mapping[str, Any]
                   ) -> Callable[[Any], Path]:
    """``build_store`` for :func:`classify.bundle.predict.run_predict`: the card's encoders
    through ``extract``, its clinical columns through the tabular writer (same encoding)."""
    from pipeline.dataset.clinical import BUILDER, write_columns_store

    def build_store(requirement: Any) -> Path:
        pre = dict(requirement.preprocessing or {})
        if requirement.modality == "tabular" and pre.get("builder") == BUILDER:
            summary = write_columns_store(manifest, pre["columns"], features,
                                          key=requirement.encoder_key, like=pre)
            _show(show, f"{requirement.encoder_key}: {summary.n_added} rows added to {summary.path}")
            return summary.path
        from extract.reproduce import extract_like

        summary = extract_like(manifest, requirement.to_dict(), features, **extract_options)
        _show(show, summary.render())
        return summary.store

    return build_store


def predict_manifest(model: str | Path | Bundle, manifest: Manifest, *,
                     artifacts: str | Path = "artifacts", out: str | Path | None = None,
                     n_boot: int = 1000, show: Show = None, carry: Sequence[str] | None = None,
                     **extract_options: Any) -> PredictionResult:
    """``pipeline predict --model M --manifest X``: embed ``manifest`` with the card's encoders
    and predict every row; the CSV goes to ``out`` (default
    ``<artifacts>/predictions/<model>/<dataset>.csv``). ``carry``: manifest columns copied into
    the predictions (default: the export's identifier columns, for a ``pipeline data csv``
    manifest). ``extract_options``: batch_size, num_workers, device, lock_timeout, progress."""
    from classify.bundle.io import Bundle, load_bundle
    from classify.bundle.predict import run_predict

    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    artifacts = Path(artifacts)
    features = artifacts / "features"
    if carry is None:
        carry = (manifest.meta.get("csv_input") or {}).get("id_columns") or ()
    out_path = Path(out) if out else artifacts / "predictions" / bundle.card.name / f"{manifest.name}.csv"
    return run_predict(bundle, manifest, features_root=features,
                       build_store=_store_builder(manifest, features, show, extract_options),
                       out=out_path, n_boot=n_boot, carry=tuple(carry))


def predict_csv(model: str | Path | Bundle, path: str | Path, *,
                image_root: str | Path | None = None,
                name: str | None = None, artifacts: str | Path = "artifacts",
                out: str | Path | None = None, n_boot: int = 1000, show: Show = None,
                **extract_options: Any) -> PredictionResult:
    """``pipeline predict --model M --csv new_cases.csv --image-root DIR``: the export read with
    the bundle's recorded column mapping, embedded with the card's encoders, one prediction
    row per input row carrying every identifier column of the export."""
    from classify.bundle.io import Bundle, load_bundle

    # digests, schema and trusted types checked first (by whoever loaded it)
    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    name = name or Path(path).stem
    if name == bundle.card.training.get("dataset"):
        raise ManifestError(f"the new cases would be named {name!r}, the name of the model's "
                            "training data set; pass --name (another name) so their stores and "
                            "manifest do not mix with the training ones")
    manifest = manifest_for_bundle(bundle, path, image_root=image_root, name=name,
                                   artifacts=artifacts)
    return predict_manifest(bundle, manifest, artifacts=artifacts, out=out, n_boot=n_boot,
                            show=show, **extract_options)


def predict(model: str | Path, frame: pd.DataFrame, *, image_root: str | Path,
            name: str = "new_cases", artifacts: str | Path = "artifacts", n_boot: int = 1000,
            **extract_options: Any) -> pd.DataFrame:
    """:func:`predict_csv` for a DataFrame (saved as ``<artifacts>/inputs/<name>.csv``): the
    predictions, one row per input row, as a DataFrame."""
    path = _input_csv(frame, name, Path(artifacts))
    return predict_csv(model, path, image_root=image_root, name=name, artifacts=artifacts,
                       n_boot=n_boot, **extract_options).predictions
