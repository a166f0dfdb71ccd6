"""Experiment configuration: a frozen dataclass loaded from TOML and validated on load.

Example (``experiments/demo.toml``)::

    name = "demo"
    dataset = "openi_demo"
    # manifest = "artifacts/manifests/openi_demo.csv"   # default from dataset
    # label_rule = "normal_vs_abnormal"                  # relabel from the manifest's tags
    positive_label = "abnormal"
    stores = ["efficientnet_lite0", "minilm"]            # or "all" (every store of the dataset)
    fusions = ["single", "concat", "attention"]
    samplers = ["smote"]
    classifiers = ["logistic", "xgboost"]
    metrics = ["accuracy", "f1_weighted", "roc_auc"]     # displayed; all are stored
    n_jobs = 2

    [feature_sets]                                       # named store combinations
    image = ["efficientnet_lite0"]
    text = ["minilm"]
    fused = ["efficientnet_lite0", "minilm"]

    [cv]
    folds = 5
    repeats = 5
    seed = 0

    [params.fusion.concat]                               # per-component parameter overrides
    reduce = "pca"
    n_components = 128

Optional: ``ablation = "leave_one_out"`` (or ``"all_subsets"``) adds a feature set per
subset of every multi-store feature set (:mod:`classify.analysis.ablation.block_subsets`); an ``[imbalance]``
section runs the prevalence sweep (:mod:`classify.analysis.prevalence_sweep`). Neither changes the keys
of the other cells.

Optional: ``tasks = ["cardiomegaly", "effusion"]`` (or ``"all"``: every ``label:<task>`` column of
the manifest) runs the grid once per binary task, each on its own rows, split plan and cell
keys (:mod:`classify.run.tasks`; labels from :mod:`pipeline.labels.tasks`); ``uncertain =
"zeros" | "ones" | "ignore"`` is the policy for uncertain (CheXpert -1) task labels, or a table
per task (``[uncertain]`` with ``atelectasis = "ones"``); default: the manifest's, else
``zeros``. Without ``tasks`` nothing changes.

The grid is feature_sets x fusions x samplers x classifiers, where fusion ``single``
applies to one-store feature sets and the other fusions to multi-store ones.
Relative paths are resolved against the current working directory (the repository
root when run through ``make``/``python -m pipeline``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classify.config.sections import (
    EquivalenceConfig,
    HoldoutConfig,
    ImbalanceConfig,
    OperatingPointConfig,
    TuningConfig,
    check_keys,
    parse_equivalence,
    parse_holdout,
    parse_imbalance,
    parse_operating_point,
    parse_tuning,
)
from classify.config.vocabulary import check_mode, subset_feature_sets
from classify.models.classifiers import CLASSIFIERS, build_classifier
from classify.models.fusion import FUSIONS, build_fusion, fusion_arity
from classify.models.samplers import SAMPLERS
from classify.results.metrics import HEADLINE, METRICS
from pipeline.errors import ConfigError, UnknownNameError
from pipeline.helpers import did_you_mean

COMPONENTS = ("fusion", "sampler", "classifier")


@dataclass(frozen=True)
class CVConfig:
    """Repeated grouped stratified K-fold settings."""

    folds: int = 5
    repeats: int = 5
    seed: int = 0


@dataclass(frozen=True)
class Experiment:
    """A benchmark definition. See the module docstring for the TOML form.

    Attributes:
        name: experiment name (reports, logs).
        dataset: dataset name (feature stores live in ``features_root/<dataset>/``).
        manifest: manifest CSV (default ``artifacts/manifests/<dataset>.csv``).
        features_root, results_root: artifact roots.
        label_rule: None = the manifest's ``label`` column; else a ``pipeline.labels``
            rule spec applied to the manifest's ``tags``.
        positive_label: positive class for binary metrics (default: minority class).
        stores: encoder keys used, or None for every store of the dataset on disk.
        feature_sets: name -> encoder keys (default: one set per store, plus ``fused``
            with all stores when there are several).
        fusions, samplers, classifiers: registry names forming the grid.
        params: component -> name -> parameter overrides.
        cv: split settings (also the model seed).
        metrics: metrics shown in tables (all metrics are always computed and stored).
        n_jobs: joblib workers over cells x folds.
        threads_per_task: BLAS/OpenMP threads inside one task (1 keeps results identical
            for any n_jobs).
        source: the TOML file it came from.
        equivalence: ROPE and decision probability of the practical-equivalence test
            (``[equivalence]``, see :mod:`classify.config.sections`).
        operating_point: threshold rule / inner folds / calibration chosen inside each
            training fold (``[operating_point]``); None = argmax only (no key change).
        tuning: nested hyper-parameter search (``[tuning]``); adds a tuned cell (label
            suffix ``+tuned``) next to each default cell; None = defaults only.
        ablation: ``leave_one_out`` / ``all_subsets``: block-subset feature sets were added
            (:func:`classify.analysis.ablation.block_subsets.subset_feature_sets`); None: none.
        imbalance: the prevalence sweep (:mod:`classify.analysis.prevalence_sweep`), None without one.
        holdout: a test set kept out of CV, tuning, calibration, selection and the final fit
            (``[holdout]``, :mod:`classify.run.holdout`); None: no held-out set.
        tasks: the binary tasks of a multi-task experiment (``"all"``: every ``label:<task>``
            column of the manifest); None: one task, the manifest's label or ``label_rule``.
        task: set on the one-task experiments a multi-task one is split into
            (:func:`classify.run.tasks.task_experiment`): the task whose labels it uses.
        uncertain: policy for uncertain task labels (``zeros``/``ones``/``ignore``), or
            ``(task, policy)`` pairs (``[uncertain]`` table; other tasks: the default); None:
            the manifest's recorded policy, else ``zeros``.
    """

    name: str
    dataset: str
    manifest: Path
    features_root: Path = Path("artifacts/features")
    results_root: Path = Path("artifacts/results")
    label_rule: str | None = None
    positive_label: str | None = None
    stores: tuple[str, ...] | None = None
    feature_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    fusions: tuple[str, ...] = ("single", "concat")
    samplers: tuple[str, ...] = ("smote",)
    classifiers: tuple[str, ...] = ("logistic",)
    params: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict, hash=False)
    cv: CVConfig = CVConfig()
    metrics: tuple[str, ...] = HEADLINE
    n_jobs: int = 1
    threads_per_task: int = 1
    source: Path | None = None
    equivalence: EquivalenceConfig = EquivalenceConfig()
    operating_point: OperatingPointConfig | None = None
    tuning: TuningConfig | None = None
    ablation: str | None = None
    imbalance: ImbalanceConfig | None = None
    holdout: HoldoutConfig | None = None
    tasks: tuple[str, ...] | str | None = None
    task: str | None = None
    uncertain: str | tuple[tuple[str, str], ...] | None = None

    @property
    def results_dir(self) -> Path:
        return Path(self.results_root) / self.dataset

    def component_params(self, component: str, name: str) -> dict[str, Any]:
        return dict(self.params.get(component, {}).get(name, {}))


_TOP_KEYS = {
    "name", "dataset", "manifest", "features_root", "results_root", "label_rule",
    "positive_label", "stores", "feature_sets", "fusions", "samplers", "classifiers",
    "params", "cv", "metrics", "n_jobs", "threads_per_task", "equivalence",
    "operating_point", "tuning", "ablation", "imbalance", "holdout", "tasks", "uncertain",
}
_CV_KEYS = {"folds", "repeats", "seed"}


def _str_list(value: Any, key: str, src: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise ConfigError(f"{src}: {key!r} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{src}: {key!r} lists a name twice: {value!r}; list each once")
    return tuple(value)


def _check_names(kind_key: str, names: Sequence[str], registry: Any, src: str) -> None:
    for i, n in enumerate(names):
        try:
            registry.get(n)
        except UnknownNameError as exc:
            raise ConfigError(f"{src}: {kind_key}[{i}]: {exc}") from None


def _text(data: Mapping[str, Any], key: str, src: str, example: str) -> str | None:
    """The text value of ``key`` (None when absent); ConfigError naming the key otherwise."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{src}: {key!r} must be a non-empty text value, e.g. {key} = "
                          f"{example}, got {value!r}")
    return value


def _n_jobs(value: Any, src: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise ConfigError(f"{src}: 'n_jobs' must be a positive number of parallel fits or -1 "
                          f"(all cores), got {value!r}")
    return value


def _int(value: Any, key: str, src: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{src}: {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def experiment_from_dict(data: Mapping[str, Any], source: str | Path = "<dict>", *,
                         artifacts: str | Path | None = None) -> Experiment:
    """Validate a parsed TOML document and build the :class:`Experiment`.

    ``artifacts`` (default ``artifacts``) is the root of the default paths
    ``<artifacts>/manifests/<dataset>.csv``, ``<artifacts>/features``, ``<artifacts>/results``;
    paths given in the document win.
    """
    src = str(source)
    art = Path(artifacts) if artifacts is not None else Path("artifacts")
    check_keys("", data, _TOP_KEYS, src, quoted=True)
    for req in ("dataset",):
        if req not in data:
            raise ConfigError(f"{src}: missing required key {req!r}; e.g. dataset = \"openi_demo\"")
    dataset = _text(data, "dataset", src, '"openi_demo"')
    name = _text(data, "name", src, '"demo"') or (Path(src).stem if src != "<dict>" else dataset)
    paths = {key: _text(data, key, src, f'"artifacts/{key.split("_")[0]}"')
             for key in ("manifest", "features_root", "results_root")}
    positive_label = _text(data, "positive_label", src, '"abnormal"')

    stores_raw = data.get("stores", "all")
    stores = None if stores_raw == "all" else _str_list(stores_raw, "stores", src)

    fs_raw = data.get("feature_sets", {})
    if not isinstance(fs_raw, Mapping):
        raise ConfigError(f"{src}: [feature_sets] must be a table of name = [encoder keys]")
    feature_sets = {str(k): _str_list(v, f"feature_sets.{k}", src) for k, v in fs_raw.items()}
    if stores is not None:
        for fs_name, keys in feature_sets.items():
            for k in keys:
                if k not in stores:
                    raise ConfigError(
                        f"{src}: feature_sets.{fs_name} uses store {k!r} which is not in "
                        f"stores = {list(stores)}.{did_you_mean(k, stores)} Add it to `stores`."
                    )
        if not feature_sets:
            feature_sets = default_feature_sets(stores)

    ablation = check_mode(data.get("ablation"), src)
    if ablation is not None:
        if not feature_sets:
            raise ConfigError(f"{src}: ablation = {ablation!r} needs the stores listed "
                              "(`stores = [...]`) or [feature_sets]")
        feature_sets = subset_feature_sets(feature_sets, ablation)
    imbalance = parse_imbalance(data.get("imbalance"), src)
    if imbalance is not None and imbalance.feature_sets and feature_sets:
        unknown = [n for n in imbalance.feature_sets if n not in feature_sets]
        if unknown:
            raise ConfigError(f"{src}: imbalance.feature_sets names {unknown}, not feature sets "
                              f"of the experiment ({', '.join(feature_sets)})")

    fusions = _str_list(data.get("fusions", ["single", "concat"]), "fusions", src)
    samplers = _str_list(data.get("samplers", ["smote"]), "samplers", src)
    classifiers = _str_list(data.get("classifiers", ["logistic"]), "classifiers", src)
    metrics = _str_list(data.get("metrics", list(HEADLINE)), "metrics", src)
    _check_names("fusions", fusions, FUSIONS, src)
    _check_names("samplers", samplers, SAMPLERS, src)
    _check_names("classifiers", classifiers, CLASSIFIERS, src)
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise ConfigError(
                f"{src}: metrics[{i}]: unknown metric {m!r}.{did_you_mean(m, list(METRICS))} "
                f"Valid names: {', '.join(METRICS)}."
            )

    if feature_sets:
        arities = {len(v) > 1 for v in feature_sets.values()}
        usable = [f for f in fusions if (fusion_arity(f) == "many") in arities]
        if not usable:
            raise ConfigError(
                f"{src}: no fusion in {list(fusions)} applies to the feature sets "
                f"{dict(feature_sets)} ('single' needs one store, the others >= 2)"
            )

    cv_raw = data.get("cv", {})
    if not isinstance(cv_raw, Mapping):
        raise ConfigError(f"{src}: [cv] must be a table with folds, repeats, seed")
    check_keys("cv", cv_raw, _CV_KEYS, src, quoted=True)
    cv = CVConfig(
        folds=_int(cv_raw.get("folds", 5), "cv.folds", src, 2),
        repeats=_int(cv_raw.get("repeats", 5), "cv.repeats", src, 1),
        seed=_int(cv_raw.get("seed", 0), "cv.seed", src, 0),
    )

    params_raw = data.get("params", {})
    if not isinstance(params_raw, Mapping):
        raise ConfigError(f"{src}: [params] must be tables like [params.classifier.knn]")
    check_keys("params", params_raw, set(COMPONENTS), src, quoted=True)
    registries = {"fusion": FUSIONS, "sampler": SAMPLERS, "classifier": CLASSIFIERS}
    params: dict[str, dict[str, dict[str, Any]]] = {}
    for comp, per_name in params_raw.items():
        if not isinstance(per_name, Mapping):
            raise ConfigError(f"{src}: params.{comp} must be a table of per-name tables like "
                              f"[params.{comp}.<name>], got {per_name!r}")
        params[comp] = {}
        for n, p in dict(per_name).items():
            _check_names(f"params.{comp}", [n], registries[comp], src)
            if not isinstance(p, Mapping):
                raise ConfigError(f"{src}: params.{comp}.{n} must be a table of parameters")
            params[comp][n] = dict(p)
            _validate_params(comp, n, dict(p), src)

    manifest = Path(paths["manifest"] or art / "manifests" / f"{dataset}.csv")
    label_rule = (None if data.get("label_rule") == "" else  # "" = the manifest's labels
                  _text(data, "label_rule", src, '"normal_vs_abnormal"'))
    if label_rule is not None:
        from pipeline.labels import LabelRule

        try:
            label_rule = LabelRule.from_spec(label_rule).spec
        except (ConfigError, UnknownNameError) as exc:
            raise ConfigError(f"{src}: label_rule: {exc}") from None

    tasks, uncertain = _tasks(data, src, label_rule, positive_label, imbalance,
                              data.get("holdout"))
    return Experiment(
        name=name,
        dataset=dataset,
        manifest=manifest,
        features_root=Path(paths["features_root"] or art / "features"),
        results_root=Path(paths["results_root"] or art / "results"),
        label_rule=label_rule,
        positive_label=positive_label,
        stores=stores,
        feature_sets=feature_sets,
        fusions=fusions,
        samplers=samplers,
        classifiers=classifiers,
        params=params,
        cv=cv,
        metrics=metrics,
        n_jobs=_n_jobs(data.get("n_jobs", 1), src),
        threads_per_task=_int(data.get("threads_per_task", 1), "threads_per_task", src, 1),
        source=Path(source) if src != "<dict>" else None,
        equivalence=parse_equivalence(data.get("equivalence", {}), src, METRICS),
        operating_point=parse_operating_point(data.get("operating_point"), src),
        tuning=parse_tuning(data.get("tuning"), src, METRICS, classifiers),
        ablation=ablation,
        imbalance=imbalance,
        holdout=parse_holdout(data.get("holdout"), src),
        tasks=tasks,
        uncertain=uncertain,
    )


def _tasks(data: Mapping[str, Any], src: str, label_rule: str | None, positive_label: str | None,
           imbalance: ImbalanceConfig | None, holdout: Any = None) -> tuple[Any, Any]:
    """``tasks`` and ``uncertain`` of the document (see the module docstring)."""
    from pipeline.labels.rules import UNCERTAIN_POLICY_NAMES
    from pipeline.labels.tasks import check_task_name

    raw_policy = data.get("uncertain")
    uncertain: str | tuple[tuple[str, str], ...] | None = None
    if isinstance(raw_policy, Mapping):  # per task, e.g. {atelectasis = "ones"}
        uncertain = tuple((str(k), v) for k, v in raw_policy.items()) or None
    elif raw_policy is not None:
        uncertain = (("", raw_policy),)
    for task, policy in uncertain or ():
        if policy not in UNCERTAIN_POLICY_NAMES:
            where = f"uncertain.{task}" if task else "uncertain"
            raise ConfigError(f"{src}: {where!r} must be one of "
                              f"{', '.join(UNCERTAIN_POLICY_NAMES)}, got {policy!r}")
    if uncertain and uncertain[0][0] == "":
        uncertain = uncertain[0][1]
    raw = data.get("tasks")
    if raw is None:
        if uncertain is not None:
            raise ConfigError(f"{src}: 'uncertain' applies to task labels; add tasks = [...] or "
                              "remove it")
        return None, None
    tasks = "all" if raw == "all" else _str_list(raw, "tasks", src)
    if tasks != "all":
        for t in tasks:
            check_task_name(t, f"{src}: tasks")
        unknown = [t for t, _ in (uncertain if isinstance(uncertain, tuple) else ())
                   if t not in tasks]
        if unknown:
            raise ConfigError(f"{src}: uncertain names {unknown}, not tasks of the experiment "
                              f"({', '.join(tasks)})")
    clash = [k for k, v in (("label_rule", label_rule), ("positive_label", positive_label),
                            ("[imbalance]", imbalance), ("[holdout]", holdout))
             if v is not None]
    if clash:
        raise ConfigError(f"{src}: {' and '.join(clash)} cannot be combined with tasks (each task "
                          "is binary: its finding is the positive class; a held-out set per task "
                          "is not supported yet); remove "
                          f"{'them' if len(clash) > 1 else 'it'} or remove tasks")
    return tasks, uncertain


def _validate_params(comp: str, name: str, p: dict[str, Any], src: str) -> None:
    try:
        if comp == "fusion":
            build_fusion(name, None, **p)
        elif comp == "classifier":
            build_classifier(name, **p)
        else:
            SAMPLERS.get(name)(random_state=0, **p)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{src}: params.{comp}.{name}: {exc}") from None


def default_feature_sets(stores: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """One feature set per store, plus ``fused`` (all stores) when there are several."""
    out = {k: (k,) for k in stores}
    if len(stores) > 1:
        out["fused"] = tuple(stores)
    return out


def load_experiment(path: str | Path, *, artifacts: str | Path | None = None) -> Experiment:
    """Read and validate an experiment TOML (ConfigError naming the file and key).

    ``artifacts``: root of the default manifest/features/results paths (CLI ``--artifacts``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist; see experiments/demo.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); fix the syntax") from None
    return experiment_from_dict(data, path, artifacts=artifacts)
