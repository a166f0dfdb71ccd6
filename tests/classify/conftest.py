"""Shared fixtures of the classify tests: tiny HDF5 stores + a manifest, synthetic result objects."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.results.types import (
    ATTENTION_COLUMNS,
    COUNT_COLUMNS,
    FOLD_COLUMNS,
    SCORE_COLUMNS,
    AblationResult,
    BenchmarkResult,
    CellResult,
    CellSpec,
    ComparisonResult,
    DataReport,
    PlannedCell,
    ShuffleResult,
    SplitPlanInfo,
    StoreInfo,
)
from pipeline.manifest import Manifest, save_manifest
from pipeline.store.feature_store import StoreWriter, store_path

DATASET = "toyset"
N = 120  # samples; 2 per patient -> 60 patients
POS_RATE = 0.38


def toy_labels(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.permutation(n)[: int(round(POS_RATE * n))]] = 1
    return y


def write_store(root: Path, key: str, modality: str, ids: list[str], X: np.ndarray,
                **prov_extra) -> Path:
    path = store_path(root, DATASET, key)
    prov = {"encoder_key": key, "modality": modality, "architecture": "toy",
            "weights_name": f"{key}-w", "weights_sha256": "0" * 8, "preprocessing": {},
            "dim": int(X.shape[1]), "dataset": DATASET, "trained_on": ["toyimagenet"],
            **prov_extra}
    with StoreWriter(path, prov) as w:
        w.add(ids, {"X": X})
    return path


def write_manifest(root: Path, ids: list[str], y: np.ndarray, *, extra_ids: int = 0) -> Path:
    """Manifest for ``ids`` (+ ``extra_ids`` rows that have no features)."""
    all_ids = list(ids) + [f"extra{i}" for i in range(extra_ids)]
    labels = ["abnormal" if v else "normal" for v in y] + ["normal"] * extra_ids
    n = len(all_ids)
    frame = pd.DataFrame({
        "sample_id": all_ids,
        "patient_id": [f"p{i // 2:03d}" for i in range(n)],
        "image_path": [f"{s}.png" for s in all_ids],
        "report_id": [f"r{i // 2:03d}" for i in range(n)],
        "findings": "", "impression": "", "report_text": "",
        "tags": ["cardiomegaly" if lab == "abnormal" else "normal" for lab in labels],
        "label": labels, "label_source": "external", "view": "PA",
    })
    path = root / "manifests" / f"{DATASET}.csv"
    save_manifest(Manifest(DATASET, frame, root / "images", {"label_rule": "test"}), path)
    return path


@pytest.fixture
def toy_project(tmp_path: Path) -> dict:
    """Stores ``img`` (informative; column 0 = row number) and ``txt`` (noise) + manifest.

    Returns a dict with paths, ids, labels and a ``config(**over)`` experiment-dict builder.
    """
    rng = np.random.default_rng(1)
    ids = [f"s{i:04d}" for i in range(N)]
    y = toy_labels()
    img = rng.normal(size=(N, 12)).astype(np.float32)
    img[:, 1:5] += 1.2 * y[:, None]
    img[:, 0] = np.arange(N)  # row identity, used by the leakage canary
    txt = rng.normal(size=(N, 6)).astype(np.float32)
    feats = tmp_path / "features"
    write_store(feats, "img", "image", ids, img)
    write_store(feats, "txt", "text", ids, txt)
    manifest = write_manifest(tmp_path, ids, y)

    def config(**over) -> dict:
        cfg = {
            "name": "toy", "dataset": DATASET, "manifest": str(manifest),
            "features_root": str(feats), "results_root": str(tmp_path / "results"),
            "positive_label": "abnormal", "stores": ["img", "txt"],
            "feature_sets": {"image": ["img"], "text": ["txt"], "fused": ["img", "txt"]},
            "fusions": ["single", "concat"], "samplers": ["smote"],
            "classifiers": ["logistic"], "cv": {"folds": 3, "repeats": 2, "seed": 0},
            "n_jobs": 1,
        }
        cfg.update(over)
        return cfg

    return {"root": tmp_path, "features": feats, "manifest": manifest, "ids": ids, "y": y,
            "img": img, "txt": txt, "config": config}


# --------------------------------------------------------------------------- synthetic results
CLASSES = ("abnormal", "normal")
METRICS = ("accuracy", "balanced_accuracy", "precision_weighted", "recall_weighted",
           "f1_weighted", "roc_auc", "pr_auc", "mcc", "brier")
# mean accuracy of each cell over the 4 splits (the per-split values average to these exactly)
ACCURACY = {"logistic": 0.813, "random_forest": 0.737, "knn": 0.665, "mlp": 0.701}


def make_cell(classifier: str, *, fusion: str = "attention", sampler: str = "smote",
              feature_set: str = "fused", seed: int = 0, n: int = 40,
              stores: tuple[str, ...] = ("densenet", "minilm"),
              modalities: tuple[str, ...] = ("image", "text"),
              key: str | None = None, status: str = "computed",
              accuracy: float | None = None,
              overrides: dict[str, float] | None = None) -> CellResult:
    """One cell: 2 classes, 2 repeats x 2 folds, seeded scores and OOF probabilities."""
    rng = np.random.default_rng(seed)
    spec = CellSpec(feature_set, stores, modalities, fusion, sampler, classifier)
    key = key or hashlib.sha256(spec.label.encode()).hexdigest()[:16]
    acc = ACCURACY[classifier] if accuracy is None else accuracy
    rows = []
    offsets = np.array([-0.03, 0.01, 0.03, -0.01])  # sums to 0: mean accuracy is exactly `acc`
    for i, (r, f) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for m in METRICS:
            v = acc + offsets[i] if m == "accuracy" else float(rng.uniform(0.55, 0.95))
            if m == "brier":
                v = float(rng.uniform(0.1, 0.3))
            if overrides and m in overrides:
                v = overrides[m] + offsets[i] / 10
            rows.append((key, r, f, m, v))
    scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    ids = np.array([f"s{i:03d}" for i in range(n)])
    y = np.array([CLASSES[i % 3 == 0] for i in range(n)])  # 1/3 normal
    oof = []
    for r in range(2):
        p_norm = np.clip((y == "normal") * 0.35 + rng.uniform(0, 0.65, n), 0, 1)
        fold = (np.arange(n) + r) % 2
        df = pd.DataFrame({"sample_id": ids, "repeat": r, "fold": fold, "y_true": y,
                           "y_pred": np.where(p_norm > 0.5, "normal", "abnormal"),
                           "proba:abnormal": 1 - p_norm, "proba:normal": p_norm})
        oof.append(df)
    counts = []
    for r in range(2):
        for f in range(2):
            counts += [(key, r, f, "before", "abnormal", 14), (key, r, f, "before", "normal", 6)]
            after = 14 if sampler == "smote" else 6
            counts += [(key, r, f, "after", "abnormal", 14), (key, r, f, "after", "normal", after)]
    folds = pd.DataFrame([(key, r, f, 20, 20, 0.5, 0.01, 5 if sampler == "smote" else -1)
                          for r in range(2) for f in range(2)], columns=list(FOLD_COLUMNS))
    att = None
    if fusion == "attention":
        w = rng.uniform(0.3, 0.7, 4)
        att = pd.DataFrame(
            [(key, r, f, s, mod, float(w[2 * r + f] if s == stores[0] else 1 - w[2 * r + f]))
             for r in range(2) for f in range(2) for s, mod in zip(stores, modalities, strict=True)],
            columns=list(ATTENTION_COLUMNS))
    return CellResult(spec=spec, key=key, scores=scores, oof=pd.concat(oof, ignore_index=True),
                      class_counts=pd.DataFrame(counts, columns=list(COUNT_COLUMNS)),
                      folds=folds, fit_seconds=2.0, attention=att, status=status)


def make_benchmark(tmp_path=None, cells=None) -> BenchmarkResult:  # noqa: ANN001
    cells = cells or (make_cell("logistic", seed=1), make_cell("random_forest", seed=2),
                      make_cell("knn", seed=3, status="reused"))
    from pathlib import Path

    root = Path(tmp_path) if tmp_path is not None else Path("/nonexistent")
    stores = (StoreInfo("densenet", "image", 1024, "a" * 64, root / "densenet.h5",
                        trained_on=("nih", "openi"), n_failed=1),
              StoreInfo("minilm", "text", 384, "b" * 64, root / "minilm.h5"))
    data = DataReport(n_samples=40, classes=CLASSES, class_counts={"abnormal": 26, "normal": 14},
                      positive_label="abnormal", stores=stores,
                      dropped={"missing from store densenet": ("s900", "s901")})
    split = SplitPlanInfo(hash="c" * 64, path=root / "plan.csv", n_folds=2, n_repeats=2, seed=7,
                          n_samples=40, n_groups=40, class_counts={"abnormal": 26, "normal": 14},
                          test_train_ratio=1.0)
    planned = tuple(PlannedCell(c.spec, c.key, "compute" if c.status == "computed" else "reuse",
                                "never run" if c.status == "computed" else "stored result found")
                    for c in cells)
    return BenchmarkResult(
        experiment="openi demo", dataset="openi", label_rule="mesh:normal-vs-abnormal", data=data,
        split=split, planned=planned, cells=tuple(cells),
        n_computed=sum(c.status == "computed" for c in cells),
        n_reused=sum(c.status == "reused" for c in cells), metrics=METRICS,
        results_dir=root / "results", wall_seconds=12.5,
        warnings=("pretraining overlap: store densenet was trained on ['openi']",))


def make_comparison(bench: BenchmarkResult, *, wilcoxon: bool = False) -> ComparisonResult:
    labels = [c.label for c in bench.cells]
    rows = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            p = 0.01 * (i + j + 1)
            rows.append({"a": labels[i], "b": labels[j], "mean_a": 0.8, "mean_b": 0.7,
                         "mean_diff": 0.1, "nb_t": 2.5, "nb_df": 3, "nb_p": p,
                         "nb_p_holm": min(1.0, 3 * p), "wilcoxon_stat": 0.0 if wilcoxon else np.nan,
                         "wilcoxon_p": 0.04 if wilcoxon else np.nan,
                         "wilcoxon_p_holm": 0.12 if wilcoxon else np.nan, "rank_biserial": 1.0,
                         "n_pairs": 4, "nb_significant": 3 * p < 0.05,
                         "wilcoxon_significant": False, "p_a_better": 0.9, "p_equivalent": 0.08,
                         "p_b_better": 0.02, "decision": "undecided"})
    ranks = pd.Series([1.25, 2.0, 2.75], index=labels).sort_values()
    return ComparisonResult(
        metric="accuracy", higher_is_better=True, cells=tuple(labels), n_splits=4,
        test_train_ratio=1.0, alpha=0.05, pairwise=pd.DataFrame(rows), average_ranks=ranks,
        friedman_stat=6.5, friedman_p=0.0388, nemenyi_cd=1.66,
        nemenyi_p=pd.DataFrame(np.full((3, 3), 0.2), index=labels, columns=labels),
        min_wilcoxon_p=0.125, warnings=("CV folds overlap: Wilcoxon/Friedman are optimistic",))


def make_ablation() -> AblationResult:
    rows = []
    for clf, base in (("logistic", 0.8), ("random_forest", 0.75)):
        for k, variant in enumerate(("image-only", "text-only", "concat", "attention")):
            rows.append({"classifier": clf, "variant": variant,
                         "cell": f"x/{variant}/smote/{clf}", "metric": "accuracy",
                         "mean": base + 0.02 * k, "std": 0.01, "n": 4})
    att = pd.DataFrame({"classifier": ["logistic", "logistic"], "store": ["densenet", "minilm"],
                        "modality": ["image", "text"], "weight": [0.35, 0.65]})
    return AblationResult(metrics=("accuracy",), table=pd.DataFrame(rows), attention_weights=att,
                          warnings=("text-only ceiling near 1.0",))


def make_shuffle(cell: CellResult) -> ShuffleResult:
    summary = pd.DataFrame({"store": ["densenet", "minilm"], "modality": ["image", "text"],
                            "baseline_mean": [0.81, 0.81], "shuffled_mean": [0.78, 0.61],
                            "drop_mean": [0.03, 0.20], "drop_std": [0.01, 0.04],
                            "n_splits": [4, 4]})
    per = pd.DataFrame({"repeat": [0], "fold": [0], "store": ["densenet"], "permutation": [0],
                        "baseline": [0.8], "shuffled": [0.77], "drop": [0.03]})
    return ShuffleResult(cell=cell.label, key=cell.key, metric="accuracy", n_permutations=5,
                         per_split=per, summary=summary)


def render_report(bench: BenchmarkResult, out: Path, *, comparisons=None, ablation=None,  # noqa: ANN001
                  shuffles=(), experiment_text=None, provenance=None) -> dict:  # noqa: ANN001
    """analyse_benchmark + write_report, as ``pipeline report`` does."""
    from classify.analysis.analyse import analyse_benchmark
    from classify.report import write_report

    prov = dict(provenance or {})
    analysis = analyse_benchmark(bench, comparisons=comparisons, ablation=ablation,
                                 shuffles=tuple(shuffles or ()),
                                 label_source=prov.get("label_source"))
    return write_report(analysis, out, experiment_text=experiment_text, provenance=prov)
