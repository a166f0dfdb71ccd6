"""Fit a chosen benchmark cell on all labelled samples and write it as a model bundle (``pipeline fit-final``).

The final model is the cell's whole ``imblearn`` pipeline (fusion -> scaler -> sampler ->
classifier, built by :func:`classify.models.cell_pipeline.build_pipeline` with the cell's
parameters and the experiment's seed), fitted on every row the experiment's CV used
(the same id-aligned :class:`~classify.run.feature_sets.FeatureSet`), minus the samples of
the experiment's ``[holdout]`` set and of an optional ``exclude_manifest`` (matched by
sample id and by patient, so a held-out patient contributes no image to the fit).

The cell's in-fold procedure is reproduced on that training set
(:mod:`classify.bundle.procedure`): a tuned cell runs its nested search again (same space,
budget, metric, grouped inner folds, seed) and is fitted with the chosen parameters; a cell
with an ``[operating_point]`` fits its calibrator and threshold on inner out-of-fold
predictions, and the bundle outputs calibrated probabilities cut at that threshold. The
card records the chosen parameters, the calibration, the threshold with its inner
sensitivity/specificity, the cell's stored CV evidence, and the CV's sensitivity,
specificity, PPV and NPV at the shipped decision rule. A ``--threshold`` is chosen on the
cell's out-of-fold predictions, which are on the scale the bundle outputs (calibrated when
the cell calibrates).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from classify.bundle.card import ModelCard, StoreRequirement
from classify.bundle.io import BUNDLE_SCHEMA, write_bundle
from classify.bundle.procedure import cv_at_rule, threshold_choice
from classify.bundle.threshold import ThresholdChoice, choose_threshold, parse_rule
from classify.config.experiment import Experiment
from classify.results.metrics import METRICS, higher_is_better
from classify.results.types import BenchmarkResult, CellResult
from pipeline.errors import BundleError, ConfigError, DataError, PipelineError
from pipeline.helpers import CORE_PACKAGES, did_you_mean, file_sha256, library_versions
from pipeline.manifest import load_manifest_meta

log = logging.getLogger(__name__)

MODELS_DIR = Path("artifacts/models")


@dataclass(frozen=True)
class FinalFit:
    """Result of :func:`fit_final`: where the bundle is, its card and the fitted estimator."""

    path: Path
    card: ModelCard
    estimator: Any = field(repr=False)
    fit_seconds: float = 0.0


# ----------------------------------------------------------------------------- choice
def equivalence_evidence(benchmark: BenchmarkResult, chosen: CellResult, metric: str,
                         exp: Experiment) -> dict[str, Any] | None:
    """The practical-equivalence set around the chosen cell's feature set, for the model card.

    Compares every stored cell of the chosen cell's feature set with the best of them on
    ``metric`` (Bayesian correlated t-test with the experiment's ROPE and decision
    probability, :func:`classify.analysis.equivalence.equivalent_to_best`). None when it cannot be
    computed (one cell, no split plan, too few splits), with the reason logged.
    """
    from classify.analysis.equivalence import equivalent_to_best

    cells = [c for c in benchmark.cells if c.spec.feature_set == chosen.spec.feature_set]
    if benchmark.split is None or len(cells) < 2:
        return None
    try:
        eq = equivalent_to_best(cells, metric, test_train_ratio=benchmark.split.test_train_ratio,
                                rope=exp.equivalence.rope_for(metric),
                                decision_probability=exp.equivalence.decision_probability)
    except PipelineError as exc:
        log.warning("practical equivalence not recorded in the card: %s", exc)
        return None
    return {"metric": metric, "feature_set": chosen.spec.feature_set, "rope": eq.rope,
            "decision_probability": eq.decision_probability, "best": eq.best,
            "chosen_is_best": eq.best == chosen.label,
            "chosen_verdict": "best" if eq.best == chosen.label else next(
                (r["verdict"] for _, r in eq.table.iterrows() if r["cell"] == chosen.label), None),
            "equivalent": list(eq.equivalent), "undecided": list(eq.undecided)}


def select_cell(benchmark: BenchmarkResult, *, cell: str | None = None, best: bool = False,
                metric: str = "roc_auc", feature_set: str | None = None
                ) -> tuple[CellResult, dict[str, Any]]:
    """The stored cell named ``cell`` (label or key), or the best by ``metric``.

    ``best`` ranks the mean ``metric`` over the CV splits among all stored cells (or those
    of ``feature_set``); ties go to the cell listed first in the experiment.
    """
    if (cell is None) == (not best):
        raise ConfigError("give exactly one of --cell LABEL and --best")
    cells = list(benchmark.cells)
    if cell is not None:
        for c in cells:
            if cell in (c.label, c.key):
                return c, {"how": f"--cell {c.label}", "cell": c.label}
        raise ConfigError(
            f"no stored cell {cell!r} in experiment {benchmark.experiment!r}."
            f"{did_you_mean(cell, [c.label for c in cells])} Stored cells: "
            f"{', '.join(c.label for c in cells)}"
        )
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}.{did_you_mean(metric, METRICS)} "
                          f"Valid: {', '.join(METRICS)}")
    if feature_set is not None:
        names = sorted({c.spec.feature_set for c in cells})
        cells = [c for c in cells if c.spec.feature_set == feature_set]
        if not cells:
            raise ConfigError(f"no stored cell of feature set {feature_set!r}."
                              f"{did_you_mean(feature_set, names)} Feature sets: {', '.join(names)}")
    sign = 1.0 if higher_is_better(metric) else -1.0
    scored = [(sign * c.summary(metric)[0], -i, c) for i, c in enumerate(cells)]
    scored = [s for s in scored if math.isfinite(s[0])]
    if not scored:
        raise ConfigError(f"no stored cell has a finite {metric}; choose another --metric")
    _, _, chosen = max(scored, key=lambda t: (t[0], t[1]))
    among = f"of feature set {feature_set!r} " if feature_set else ""
    return chosen, {
        "how": f"--best: highest mean {metric} ({chosen.summary(metric)[0]:.4f}) among the "
               f"{len(cells)} stored cells {among}of experiment {benchmark.experiment!r}",
        "cell": chosen.label, "metric": metric, "feature_set": feature_set,
        "n_candidates": len(cells),
    }


# ----------------------------------------------------------------------------- evidence
def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """t-interval of the mean of ``values`` (NaNs ignored); ``(nan, nan)`` for < 2 values."""
    from scipy import stats as sps

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + level / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return float(v.mean()) - half, float(v.mean()) + half


def cv_evidence(cell: CellResult) -> dict[str, dict[str, float]]:
    """metric -> mean, std, n_splits, 95% t-interval of the cell's stored per-split scores."""
    out = {}
    for m in METRICS:
        v = cell.metric_values(m).to_numpy(dtype=float)
        if not np.isfinite(v).any():
            continue
        lo, hi = t_interval(v)
        mean, std = cell.summary(m)
        out[m] = {"mean": mean, "std": std, "n_splits": int(np.isfinite(v).sum()),
                  "ci95_low": lo, "ci95_high": hi}
    return out


def _oof_threshold(rule: Any, source: str, cell: CellResult, classes: tuple[str, ...],
                   positive: str | None) -> ThresholdChoice:
    name, _ = parse_rule(rule)
    if name in ("argmax", "fixed"):
        return choose_threshold(rule, n_classes=len(classes), source=source)
    if positive is None:
        raise ConfigError(f"threshold rule {rule!r} needs a binary model with a positive class")
    oof = cell.oof
    y_pos = (oof["y_true"].astype(str) == positive).to_numpy()
    p_pos = oof[f"proba:{positive}"].to_numpy(dtype=float)
    n_rep = oof["repeat"].nunique()
    return choose_threshold(rule, y_pos, p_pos, n_classes=len(classes), source=source,
                            chosen_on=f"the out-of-fold predictions of cell {cell.label} "
                                      f"({len(oof)} rows, {n_rep} CV repeat(s))")


def _file_sha256(path: Path) -> str:
    return file_sha256(path) if path.is_file() else ""


# ----------------------------------------------------------------------------- fit
def fit_final(experiment: Experiment, *, cell: str | None = None, best: bool = False,
              metric: str = "roc_auc", feature_set: str | None = None, name: str | None = None,
              threshold: str | float | None = None, exclude_manifest: str | Path | None = None,
              models_root: str | Path = MODELS_DIR, overwrite: bool = False) -> FinalFit:
    """Fit the chosen cell on all labelled samples and write ``<models_root>/<name>/``.

    Args:
        cell / best / metric / feature_set: which stored cell (see :func:`select_cell`).
        name: bundle name (default ``<experiment>-<feature set>-<fusion>-<sampler>-<classifier>``).
        threshold: decision rule (:mod:`classify.bundle.threshold`); default: the experiment's
            ``threshold`` when it defines one, else ``argmax``.
        exclude_manifest: a manifest whose samples and patients are left out of the fit
            (e.g. a held-out slice to predict later).
        overwrite: replace an existing bundle of the same name.
    """
    from threadpoolctl import threadpool_limits

    from classify.models.cell_pipeline import build_pipeline
    from classify.run.benchmark import dataset_provenance, load_benchmark, load_feature_set
    from classify.run.feature_sets import blocks_spec, tables_spec
    from classify.run.procedure.final_procedure import reproduce_procedure
    from pipeline.store.feature_store import FeatureStore

    exp = experiment
    benchmark = load_benchmark(exp)
    chosen, selection = select_cell(benchmark, cell=cell, best=best, metric=metric,
                                    feature_set=feature_set)
    spec = chosen.spec
    _check_reproducible(exp, spec.stores)
    name = name or f"{exp.name}-{spec.label.replace('/', '-')}"
    _check_name(name)
    folder = Path(models_root) / name
    if folder.exists() and not overwrite:  # before spending time on the fit
        raise BundleError(f"model bundle {folder} already exists; pick another name (--name) "
                          "or pass --force to replace it")
    fs, rule_id = load_feature_set(exp)
    keep = np.ones(fs.n, dtype=bool)
    excluded: dict[str, Any] = {}
    if exclude_manifest is not None:
        keep, excluded = _exclusion(fs, Path(exclude_manifest))
    ids, y, groups = fs.ids[keep], fs.y[keep], fs.groups[keep]
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(f"after excluding {excluded.get('n_samples', 0)} samples only one class "
                        "is left to fit; exclude fewer samples")
    cols, blocks = fs.columns(spec.stores)
    X = np.asarray(fs.X[keep][:, cols], dtype=np.float64)

    def build() -> Any:
        return build_pipeline(spec, blocks_spec(blocks), random_state=exp.cv.seed,
                              tables=tables_spec(blocks))

    classes = fs.classes
    positive = fs.report.positive_label
    t0 = time.perf_counter()
    with threadpool_limits(limits=exp.threads_per_task):
        procedure = reproduce_procedure(spec, build, X, y, groups,
                                        positive=fs.positive_index, n_classes=len(classes),
                                        seed=exp.cv.seed)
        pipe = build().set_params(**procedure.params)
        pipe.fit(X, y)
    seconds = time.perf_counter() - t0
    log.info("fitted %s on %d samples in %.1f s", spec.label, len(ids), seconds)

    in_fold = False
    if threshold is not None:
        choice = _oof_threshold(threshold, "command line", chosen, classes, positive)
    elif procedure.fold is not None:
        choice, in_fold = threshold_choice(procedure), True
    elif getattr(exp, "threshold", None) is not None:
        choice = _oof_threshold(exp.threshold, "experiment file", chosen, classes, positive)
    else:
        choice = ThresholdChoice()
    ratio = benchmark.split.test_train_ratio if benchmark.split else 0.0
    at_rule = cv_at_rule(chosen, positive, choice, in_fold=in_fold, test_train_ratio=ratio)

    infos = {s.encoder_key: s for s in fs.report.stores}
    stores = tuple(_with_mask(StoreRequirement.from_provenance(
        FeatureStore(infos[k].path).provenance, identity=infos[k].identity), exp)
        for k in spec.stores)
    prov = dataset_provenance(exp)
    warnings = list(benchmark.warnings) + list(chosen.warnings)
    warnings += _data_warnings(exp, stores, prov, chosen, benchmark)
    codes, counts = np.unique(y, return_counts=True)
    manifest = Path(exp.manifest)
    training = {
        "dataset": exp.dataset,
        "manifest": str(manifest),
        "manifest_sha256": _file_sha256(manifest),
        "manifest_sidecar_sha256": _file_sha256(manifest.with_suffix(".json")),
        "label_source": prov["label_source"],
        "source_dataset": prov["source_dataset"],
        "synthetic_images": prov["synthetic_images"],
        "n_samples": int(len(ids)),
        "n_groups": int(len(set(groups.tolist()))),
        "class_counts": {classes[c]: int(n) for c, n in zip(codes, counts, strict=True)},
        "sample_ids_sha256": hashlib.sha256("\n".join(ids.tolist()).encode()).hexdigest(),
        "excluded": excluded,
        "holdout": exp.holdout.key() if exp.holdout is not None else None,
        "seed": exp.cv.seed,
        "split_plan_sha256": benchmark.split.hash if benchmark.split else "",
        "fit_seconds": round(seconds, 3),
        "dropped_by_join": {k: len(v) for k, v in fs.report.dropped.items()},
        # how a site export maps onto the manifest (`pipeline predict --csv` applies it again)
        "data_input": load_manifest_meta(manifest).get("csv_input"),
    }
    source = Path(exp.source) if exp.source else None
    card = ModelCard(
        name=name,
        bundle_schema=BUNDLE_SCHEMA,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        cell={"label": spec.label, "key": chosen.key, "spec": spec.to_dict()},
        selection=selection,
        stores=stores,
        classes=tuple(classes),
        positive_label=positive,
        label_rule=rule_id,
        threshold=choice,
        cv=cv_evidence(chosen),
        cv_at_rule=at_rule,
        procedure=procedure.record(),
        calibration=(procedure.fold.calibrator.to_record()
                     if procedure.fold is not None and procedure.fold.calibrator is not None
                     else None),
        equivalence=equivalence_evidence(benchmark, chosen, metric, exp),
        training=training,
        warnings=tuple(dict.fromkeys(warnings)),
        versions=library_versions((*CORE_PACKAGES, "skops", "torch")),
        experiment={"name": exp.name, "file": str(source) if source else None,
                    "text": source.read_text(encoding="utf-8") if source and source.is_file() else None},
    )
    card = write_bundle(folder, pipe, card, overwrite=overwrite)
    return FinalFit(folder, card, pipe, seconds)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"bundle name {name!r} must be a plain folder name (letters, digits, "
                          "'-', '_', '.'; not starting with '.')")


def _exclusion(fs: Any, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows of ``fs`` to keep: those whose sample id and patient are not in manifest ``path``."""
    from pipeline.manifest import load_manifest

    other = load_manifest(path)
    sids = set(other.frame["sample_id"].astype(str))
    pats = set(other.frame["patient_id"].astype(str))
    drop = np.array([s in sids or g in pats for s, g in zip(fs.ids, fs.groups, strict=True)],
                    dtype=bool)
    if drop.all():
        raise DataError(f"--exclude-manifest {path} covers every training sample; nothing is left "
                        "to fit")
    log.info("excluded %d of %d samples (%d patients) listed in %s", int(drop.sum()), fs.n,
             len(set(fs.groups[drop].tolist())), path)
    return ~drop, {
        "manifest": str(path),
        "manifest_sha256": _file_sha256(path),
        "n_samples": int(drop.sum()),
        "n_groups": int(len(set(fs.groups[drop].tolist()))),
        "n_listed": len(sids),
    }


def _with_mask(req: StoreRequirement, exp: Experiment) -> StoreRequirement:
    """``req`` with the training mask terms of a masked text store (from the training
    manifest's label rule and tags, checked against the digest the store recorded)."""
    if not req.masked:
        return req
    import dataclasses

    from pipeline.labels import LabelMask, LabelRule, manifest_tag_vocabulary
    from pipeline.manifest import load_manifest

    manifest = load_manifest(Path(exp.manifest))
    spec = req.preprocessing.get("label_rule") or manifest.meta.get("label_rule")
    if not spec:
        raise BundleError(f"store {req.encoder_key} is masked but neither it nor {exp.manifest} "
                          "records the label rule; the mask cannot be carried to new data")
    mask = LabelMask.for_rule(LabelRule.from_spec(spec), manifest.meta.get("label_classes"),
                              manifest_tag_vocabulary(manifest.frame))
    recorded = req.preprocessing.get("mask_terms_sha256")
    if recorded and recorded != mask.sha256:
        raise BundleError(
            f"store {req.encoder_key} was masked with other terms (sha256 {str(recorded)[:12]}...) "
            f"than {exp.manifest} gives now ({mask.sha256[:12]}...); the manifest changed after "
            "the extraction: re-extract the masked store, re-run `pipeline classify`, then "
            "fit-final")
    return dataclasses.replace(req, mask={"rule": mask.rule, "terms": list(mask.terms),
                                          "vocabulary_size": mask.vocabulary_size})


def _check_reproducible(exp: Experiment, stores: Sequence[str]) -> None:
    """ConfigError for a cell on a store `pipeline predict` cannot make for new data: an
    imported matrix or a tabular (structured) block (issue 13 stores; not supported yet),
    except the clinical columns of a CSV (`pipeline data csv --tabular`), which predict writes
    again from the new export's same columns."""
    from pipeline.dataset.clinical import BUILDER
    from pipeline.store.feature_store import FeatureStore, store_path

    for key in stores:
        prov = FeatureStore(store_path(exp.features_root, exp.dataset, key), verify=False).provenance
        if (prov.get("preprocessing") or {}).get("builder") == BUILDER:
            continue
        if prov.get("kind") == "tabular" or prov.get("architecture") == "imported":
            what = "a tabular store" if prov.get("kind") == "tabular" else "an imported store"
            raise ConfigError(
                f"store {key!r} is {what}; `pipeline predict` re-embeds new data with the "
                "registered encoders and cannot rebuild it, so model bundles do not support it "
                "yet. Choose a cell without it (--cell or --feature-set)")


def _data_warnings(exp: Experiment, stores: Sequence[StoreRequirement], prov: dict[str, Any],
                   chosen: CellResult, benchmark: BenchmarkResult) -> list[str]:
    from classify.run.leakage import flagged_text_cells

    out = []
    if prov["synthetic_images"]:
        out.append(f"the images of {exp.dataset!r} are synthetic (the demo's phantoms), not "
                   "radiographs: image scores say nothing about clinical performance")
    if any(lab == chosen.label for lab, _ in flagged_text_cells(benchmark.cells,
                                                               prov["label_source"])):
        out.append(f"the chosen cell {chosen.label} is text-only and above the leakage ceiling: "
                   "its score reflects labels read off the report, not skill")
    for s in stores:
        if s.architecture == "tfidf+truncated_svd":
            out.append(f"store {s.encoder_key} is tfidf_svd, fitted on the corpus it embedded "
                       "(transductive): new data re-fits it with another digest, so "
                       "`pipeline predict` will refuse new manifests for this bundle")
        if s.weights_name == "random-init":
            out.append(f"store {s.encoder_key} was made with RANDOM encoder weights (tests only)")
    return out
