"""Typed, frozen result objects of the classify stage.

Every computation in :mod:`classify` returns one of these; renderers
(:mod:`classify.report.console`, the HTML report) consume only these objects and never
recompute anything. Field names and table column names are a stable contract:
add fields at the end with defaults, never rename or repurpose one.

Conventions used in every table below:

* ``repeat`` / ``fold`` are 0-based indices into the saved split plan; the pair
  identifies one train/test split, and the same pair means the same rows for
  every cell (paired tests rely on it).
* metric names are those of :data:`classify.results.metrics.METRICS` (``accuracy``,
  ``precision_weighted``, ``roc_auc``, ...). Larger is better except ``brier``.
* class labels are the manifest's label strings; ``classes`` fixes their order
  (probability column ``k`` of an OOF matrix is ``classes[k]``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: Bump when the meaning of stored cell results changes; part of every cell key.
RESULTS_SCHEMA = 1

#: Column order of the long-form per-fold score table (:attr:`CellResult.scores`).
SCORE_COLUMNS = ("cell_key", "repeat", "fold", "metric", "value")
#: Column order of :attr:`CellResult.class_counts`.
COUNT_COLUMNS = ("cell_key", "repeat", "fold", "stage", "class", "count")
#: Column order of :attr:`CellResult.folds`.
FOLD_COLUMNS = (
    "cell_key", "repeat", "fold", "n_train", "n_test", "fit_seconds", "predict_seconds",
    "k_neighbors",
)
#: Column order of :attr:`CellResult.attention`.
ATTENTION_COLUMNS = ("cell_key", "repeat", "fold", "store", "modality", "weight")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class CellSpec:
    """What one benchmark cell computes: ``(feature set, fusion, sampler, classifier)``.

    Attributes:
        feature_set: name of the feature set in the experiment (e.g. ``"fused"``).
        stores: encoder keys of the feature stores joined into it, in block order.
        modalities: modality (``"image"``/``"text"``) of each store, aligned with ``stores``.
        fusion: fusion registry name (``single``, ``concat``, ``weighted_sum``, ``attention``).
        sampler: sampler registry name (``none``, ``smote``, ``class_weight``, ...).
        classifier: classifier registry name (``logistic``, ``xgboost``, ...).
        params: non-default parameters per component:
            ``{"fusion": {...}, "sampler": {...}, "classifier": {...}}`` (JSON-able values),
            plus ``"operating_point"`` / ``"tuning"`` settings when the experiment has them
            (absent otherwise, so untuned cells keep their keys).
    """

    feature_set: str
    stores: tuple[str, ...]
    modalities: tuple[str, ...]
    fusion: str
    sampler: str
    classifier: str
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        """Human-readable unique name: ``feature_set/fusion/sampler/classifier``, with
        ``+tuned`` appended for a cell tuned by nested search."""
        tuned = "+tuned" if "tuning" in self.params else ""
        return f"{self.feature_set}/{self.fusion}/{self.sampler}/{self.classifier}{tuned}"

    def component_params(self, component: str) -> dict[str, Any]:
        """Parameters of ``component`` (``fusion``/``sampler``/``classifier``), a copy."""
        return dict(self.params.get(component, {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_set": self.feature_set,
            "stores": list(self.stores),
            "modalities": list(self.modalities),
            "fusion": self.fusion,
            "sampler": self.sampler,
            "classifier": self.classifier,
            "params": {k: dict(v) for k, v in sorted(self.params.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        return cls(
            feature_set=str(data["feature_set"]),
            stores=tuple(data["stores"]),
            modalities=tuple(data["modalities"]),
            fusion=str(data["fusion"]),
            sampler=str(data["sampler"]),
            classifier=str(data["classifier"]),
            params={k: dict(v) for k, v in dict(data.get("params", {})).items()},
        )


def cell_key(
    spec: CellSpec,
    *,
    dataset: str,
    label_rule: str,
    store_identities: Mapping[str, str],
    split_hash: str,
    seed: int,
) -> str:
    """Content key of a cell: 16 hex chars of sha256 over its full configuration.

    Includes the spec (components and their parameters; the feature-set *name* is
    excluded so renaming a feature set does not invalidate results), the dataset,
    the label rule, the content identity of every store used, the split plan hash,
    the model seed and :data:`RESULTS_SCHEMA`. Anything that changes a score
    changes the key; a re-run computes only keys with no stored result.
    """
    d = spec.to_dict()
    d.pop("feature_set")
    payload = {
        "schema": RESULTS_SCHEMA,
        "spec": d,
        "dataset": dataset,
        "label_rule": label_rule,
        "stores": {k: store_identities[k] for k in spec.stores},
        "split": split_hash,
        "seed": int(seed),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FoldScore:
    """One row of the long-form score table (see :data:`SCORE_COLUMNS`)."""

    cell_key: str
    repeat: int
    fold: int
    metric: str
    value: float


@dataclass(frozen=True)
class SplitPlanInfo:
    """The saved split plan every cell of an experiment is scored on.

    Attributes:
        hash: sha256 (hex) of the plan table; part of every cell key.
        path: CSV of the plan (``sample_id, patient_id, label, r0, r1, ...``; ``rK`` =
            test fold of the sample in repeat K); a JSON sidecar holds this metadata.
        n_folds, n_repeats, seed: StratifiedGroupKFold settings (repeat r uses seed + r).
        n_samples, n_groups: rows and distinct patients in the plan.
        class_counts: samples per class label.
        test_train_ratio: mean n_test / n_train over all splits (the Nadeau-Bengio n2/n1).
        warnings: e.g. a test fold lacking a class.
    """

    hash: str
    path: Path
    n_folds: int
    n_repeats: int
    seed: int
    n_samples: int
    n_groups: int
    class_counts: Mapping[str, int]
    test_train_ratio: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreInfo:
    """A feature store as used by a run: key, modality, dim, content identity, provenance bits."""

    encoder_key: str
    modality: str
    dim: int
    identity: str
    path: Path
    trained_on: tuple[str, ...] = ()
    n_failed: int = 0


@dataclass(frozen=True)
class DataReport:
    """How the joined feature matrix was built (nothing is dropped silently).

    Attributes:
        n_samples: rows kept (present in every store and in the manifest with a label).
        classes: class labels in code order.
        class_counts: kept samples per class.
        positive_label: the positive class for binary metrics (None if multiclass).
        stores: the stores joined, in block order.
        dropped: reason -> sample ids dropped for it, e.g.
            ``"missing from store minilm"``, ``"not in manifest (store minilm)"``,
            ``"no label"``, ``"failed in store efficientnet_lite0"``.
    """

    n_samples: int
    classes: tuple[str, ...]
    class_counts: Mapping[str, int]
    positive_label: str | None
    stores: tuple[StoreInfo, ...]
    dropped: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class CellResult:
    """Everything measured for one cell over all splits of the plan.

    Attributes:
        spec: what was computed.
        key: :func:`cell_key` of the spec; also the directory name under ``cells/``.
        scores: long form, columns :data:`SCORE_COLUMNS`, one row per (split, metric).
        oof: out-of-fold predictions, one row per (sample, repeat): ``sample_id, repeat,
            fold, y_true, y_pred`` (class labels) and ``proba:<class>`` per class.
            For ``voting_hard`` the "probabilities" are member vote shares.
        class_counts: training-fold class counts ``before`` and ``after`` the sampler,
            columns :data:`COUNT_COLUMNS` (``stage`` is ``before``/``after``).
        folds: per-split sizes and timings, columns :data:`FOLD_COLUMNS`
            (``k_neighbors`` = neighbours the sampler actually used, -1 if n/a).
        fit_seconds: total fit time over all splits (sum of ``folds.fit_seconds``).
        attention: mean attention weight per store per split (attention fusion only),
            columns :data:`ATTENTION_COLUMNS`; None otherwise.
        status: ``"computed"`` in this run or ``"reused"`` from disk.
        path: directory of the stored result, or None if not stored.
        warnings: per-cell notes (k_neighbors reduced, class_weight unsupported, ...).
    """

    spec: CellSpec
    key: str
    scores: pd.DataFrame = field(hash=False)
    oof: pd.DataFrame = field(hash=False)
    class_counts: pd.DataFrame = field(hash=False)
    folds: pd.DataFrame = field(hash=False)
    fit_seconds: float
    attention: pd.DataFrame | None = field(default=None, hash=False)
    status: str = "computed"
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.spec.label

    def metric_values(self, metric: str) -> pd.Series:
        """Scores of ``metric`` indexed by ``(repeat, fold)``, sorted."""
        s = self.scores[self.scores["metric"] == metric]
        return s.set_index(["repeat", "fold"])["value"].sort_index()

    def summary(self, metric: str) -> tuple[float, float]:
        """``(mean, std)`` of ``metric`` over splits (std with ddof=1; NaN-safe)."""
        v = self.metric_values(metric)
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


@dataclass(frozen=True)
class PlannedCell:
    """One cell of a run's plan (what ``dry_run`` reports).

    Attributes:
        spec, key: the cell.
        action: ``"compute"`` or ``"reuse"``.
        reason: why it is (re)computed: ``"never run"``, ``"new store <key>"``,
            ``"store content changed: <key>"``, ``"split plan changed"``, or
            ``"stored result found"`` for reuse.
    """

    spec: CellSpec
    key: str
    action: str
    reason: str


@dataclass(frozen=True)
class BenchmarkResult:
    """A whole experiment run (or dry run).

    Attributes:
        experiment: experiment name; dataset, label_rule: what was classified.
        data: how the feature matrix was built (dropped ids, classes, stores).
        split: the split plan used (None in a dry run that failed before planning).
        planned: every cell of the grid with its action and reason.
        cells: results of all cells (computed + reused); empty in a dry run.
        n_computed, n_reused: cell counts by status.
        metrics: metrics to display (all are always stored).
        headline_average: averaging used for the headline precision/recall/F1:
            ``"weighted"`` (as the reference OpenI study).
        dry_run: True if nothing was computed.
        results_dir: ``artifacts/results/<dataset>``.
        wall_seconds: run time.
        warnings: run-level scientific warnings (text-only ceiling near 1.0 = label
            leakage, pretraining overlap, folds lacking a class, ...).
        label_source: where the manifest's labels come from (``'mesh:report'``,
            ``'chexpert:report'``, ``'external'``; ``''`` = unknown); see
            :mod:`classify.run.leakage`.
        source_dataset: the manifest's data-set family (``'openi'``, ``'mimic_cxr'``;
            ``''`` = unknown), compared with the stores' ``trained_on``.
        synthetic_images: the manifest's images are synthetic (the demo's phantoms).
    """

    experiment: str
    dataset: str
    label_rule: str
    data: DataReport
    split: SplitPlanInfo | None
    planned: tuple[PlannedCell, ...]
    cells: tuple[CellResult, ...]
    n_computed: int
    n_reused: int
    metrics: tuple[str, ...]
    headline_average: str = "weighted"
    dry_run: bool = False
    results_dir: Path | None = None
    wall_seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    label_source: str = ""
    source_dataset: str = ""
    synthetic_images: bool = False

    def cell(self, label: str) -> CellResult:
        """The cell whose :attr:`CellSpec.label` is ``label`` (KeyError naming valid labels)."""
        for c in self.cells:
            if c.label == label:
                return c
        raise KeyError(f"no cell {label!r}; cells: {', '.join(c.label for c in self.cells)}")


@dataclass(frozen=True)
class ComparisonResult:
    """Paired statistical comparison of cells on one metric over the same splits.

    Attributes:
        metric: compared metric; higher_is_better: False for ``brier``.
        cells: cell labels compared (order of ``average_ranks``).
        n_splits: number of paired splits J (= folds x repeats).
        test_train_ratio: n2/n1 used by the Nadeau-Bengio correction.
        alpha: significance level for CD and the "significant" flags.
        pairwise: one row per compared pair, columns ``a, b, mean_a, mean_b, mean_diff``
            (a - b), ``nb_t, nb_df, nb_p, nb_p_holm`` (Nadeau-Bengio corrected
            resampled t-test: the HEADLINE test), ``wilcoxon_stat, wilcoxon_p,
            wilcoxon_p_holm`` (NaN when the design cannot reach ``alpha``),
            ``rank_biserial`` (matched-pairs effect size, +1 = a always better),
            ``n_pairs`` (non-tied pairs used by Wilcoxon), ``nb_significant``,
            ``wilcoxon_significant``, and the Bayesian correlated t-test with a ROPE:
            ``p_a_better, p_equivalent, p_b_better`` and ``decision`` (``A better``,
            ``equivalent``, ``B better`` or ``undecided``).
        average_ranks: mean rank per cell over splits (1 = best), ascending.
        friedman_stat, friedman_p: Friedman chi-square test (None for < 3 cells; NaN when
            every split ties all cells: "all tied").
        nemenyi_cd: Nemenyi critical difference in average rank (None for < 3 cells).
        nemenyi_p: square DataFrame of Nemenyi pairwise p-values (None for < 3 cells).
        min_wilcoxon_p: smallest two-sided exact Wilcoxon p attainable with the
            number of splits (2 / 2**n); if > alpha Wilcoxon is refused.
        warnings: caveats (CV folds overlap so Wilcoxon/Friedman are optimistic, ...).
        rope: half-width of the region of practical equivalence (metric units).
        decision_probability: posterior probability a decision needs.
    """

    metric: str
    higher_is_better: bool
    cells: tuple[str, ...]
    n_splits: int
    test_train_ratio: float
    alpha: float
    pairwise: pd.DataFrame = field(hash=False)
    average_ranks: pd.Series = field(hash=False)
    friedman_stat: float | None
    friedman_p: float | None
    nemenyi_cd: float | None
    nemenyi_p: pd.DataFrame | None = field(hash=False)
    min_wilcoxon_p: float
    warnings: tuple[str, ...] = ()
    rope: float = 0.01
    decision_probability: float = 0.95


@dataclass(frozen=True)
class AblationResult:
    """Modality ablation: image-only / text-only / concat / attention per classifier.

    Attributes:
        metrics: metrics in the table.
        table: columns ``classifier, variant`` (``image-only``, ``text-only``, ``concat``,
            ``weighted_sum``, ``attention``), ``cell`` (label), ``metric, mean, std, n``.
            Variants absent from the benchmark are simply missing rows.
        attention_weights: mean attention weight per (classifier, store) over splits,
            columns ``classifier, store, modality, weight`` (empty without attention cells).
        warnings: e.g. text-only ceiling near 1.0 (label leakage).
        subsets: every full-fusion cell against its cells on subsets of the blocks, with the
            corrected paired test (columns :data:`classify.analysis.ablation.block_subsets.SUBSET_COLUMNS`); None
            when not computed, empty when no cell has subset partners.
    """

    metrics: tuple[str, ...]
    table: pd.DataFrame = field(hash=False)
    attention_weights: pd.DataFrame = field(hash=False)
    warnings: tuple[str, ...] = ()
    subsets: pd.DataFrame | None = field(default=None, hash=False)


@dataclass(frozen=True)
class ShuffleResult:
    """Modality-shuffle test of one fused cell.

    In each evaluated split the cell is refitted on the training rows; then one
    store's block is permuted across rows of the test fold (breaking its link to
    the label while keeping its marginal distribution) and the cell is rescored.

    Attributes:
        cell: label of the cell; key: its cell key.
        metric: scored metric.
        n_permutations: permutations per split and store.
        per_split: columns ``repeat, fold, store, permutation, baseline, shuffled, drop``.
        summary: one row per store: ``store, modality, baseline_mean, shuffled_mean,
            drop_mean, drop_std, n_splits`` (drop = baseline - shuffled; a large drop
            means the model relies on that modality).
    """

    cell: str
    key: str
    metric: str
    n_permutations: int
    per_split: pd.DataFrame = field(hash=False)
    summary: pd.DataFrame = field(hash=False)
    warnings: tuple[str, ...] = ()
