"""Apply a loaded bundle to a new manifest (``pipeline predict``): check stores, predict, score if labelled.

:func:`run_predict` never imports the extract stage: the caller passes ``build_store``,
a function that builds or extends the new data set's store for one
:class:`~classify.bundle.card.StoreRequirement` and returns its path (``pipeline/commands.py``
wires it to ``extract``). Every store is checked against the card before and after it is
built: another encoder, weights digest, text mode, masking, backend, width or
preprocessing is refused (exit 2) with the differences listed.

Every row of the manifest gets a row in the output: predicted rows carry
``probability`` (of the positive class; of the predicted class for multiclass models),
``predicted_label`` (at the card's threshold), ``decision_rule`` and ``threshold`` (the rule
and the probability cut that made the decision; empty for argmax), per-class probabilities
and, for attention models, the per-sample attention weight of every store; rows whose image or report failed
carry ``status = failed`` and the reasons. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.bundle.card import StoreRequirement
from classify.bundle.io import Bundle, recover_interrupted
from classify.bundle.threshold import ThresholdChoice, apply_threshold
from classify.results.metrics import METRICS, higher_is_better, score_fold
from pipeline.errors import BundleError, StoreError
from pipeline.helpers import atomic_write

log = logging.getLogger(__name__)

#: Bootstrap resamples (by patient) for the confidence intervals of new-data metrics.
N_BOOTSTRAP = 1000


@dataclass(frozen=True)
class MetricRow:
    """One metric on the new data next to the CV evidence the model was chosen on.

    ``flag``: ``"DROP"`` when the new data's 95% interval lies entirely on the bad side of
    the CV 95% interval (below it; above it for ``brier``): a drop larger than both
    intervals, not explained by the sampling noise of either. ``"below CV"`` when only the
    point estimate is on the bad side (the intervals overlap: within noise; a few hundred
    new samples give intervals several times wider than the CV one). Without bootstrap
    intervals (``n_boot=0``) the point estimate decides ``"DROP"``.
    """

    metric: str
    value: float
    ci95_low: float
    ci95_high: float
    cv_mean: float = math.nan
    cv_low: float = math.nan
    cv_high: float = math.nan
    flag: str = ""

    @property
    def dropped(self) -> bool:
        return self.flag == "DROP"


@dataclass(frozen=True)
class PredictionResult:
    """What ``pipeline predict`` computed.

    Attributes:
        bundle: bundle name; manifest: the manifest file; dataset: its name.
        predictions: one row per manifest row (see the module docstring for the columns).
        failed: sample id -> reasons, for rows that could not be predicted.
        stores: store key -> path of the new data set's store.
        metrics: scores on the labelled rows (None when the manifest has no usable labels).
        n_labelled: rows scored; notes: what was left out of scoring and why, etc.
        out: where the predictions were written (None if not written).
    """

    bundle: str
    manifest: str
    dataset: str
    predictions: pd.DataFrame = field(repr=False)
    failed: Mapping[str, str] = field(default_factory=dict)
    stores: Mapping[str, Path] = field(default_factory=dict)
    metrics: tuple[MetricRow, ...] | None = None
    n_labelled: int = 0
    threshold_rule: str = "argmax"
    threshold_value: float | None = None
    notes: tuple[str, ...] = ()
    out: Path | None = None

    @property
    def n_predicted(self) -> int:
        return int((self.predictions["status"] == "ok").sum())


# ----------------------------------------------------------------------------- stores
def check_store(req: StoreRequirement, path: Path, dataset: str) -> Any:
    """Open ``path`` and refuse it (StoreError, exit 2) unless it matches ``req``."""
    from pipeline.store.feature_store import FeatureStore

    store = FeatureStore(path)
    have = StoreRequirement.from_provenance(store.provenance)
    diff = req.mismatches(have)
    if diff:
        hint = ""
        if req.architecture == "tfidf+truncated_svd":
            hint = (" tfidf_svd is fitted on the corpus it embeds (transductive), so a new "
                    "manifest always gives another digest: a bundle using it cannot be applied "
                    "to new data; choose a cell with a frozen text encoder.")
        raise StoreError(
            f"store {path} of data set {dataset!r} does not match what the model was trained on: "
            + "; ".join(diff) + f".{hint} Embed this data set with exactly the encoder the model "
            "card names (give the manifest another name, or delete this store to rebuild it)"
        )
    return store


def ensure_stores(bundle: Bundle, dataset: str, features_root: Path,
                  build_store: Callable[[StoreRequirement], Path]) -> dict[str, Any]:
    """Check, build/extend and re-check every store the bundle needs; key -> FeatureStore."""
    from pipeline.store.feature_store import store_path

    out = {}
    for req in bundle.card.stores:
        path = store_path(features_root, dataset, req.encoder_key)
        if path.exists():
            check_store(req, path, dataset)  # refuse before spending time on extraction
        built = Path(build_store(req))
        out[req.encoder_key] = check_store(req, built, dataset)
    return out


# ----------------------------------------------------------------------------- labels
def _labels(bundle: Bundle, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Label strings per manifest row under the card's label rule ('' = none) and notes."""
    rule = bundle.card.label_rule
    if not rule or rule.startswith("manifest:"):
        return frame["label"].astype(str).str.strip().to_numpy(dtype=object), []
    if rule.startswith("task:"):  # one task of a multi-task experiment
        return _task_labels(rule, frame)
    from pipeline.labels import apply_label_rule

    tags = frame["tags"].fillna("").astype(str).tolist() if "tags" in frame.columns else None
    if tags is None or not any(tags):
        return np.full(len(frame), "", dtype=object), [
            f"the model's labels come from rule {rule!r} applied to the 'tags' column, which this "
            "manifest does not fill: not scored"]
    assignment = apply_label_rule(rule, tags)
    return np.array([lab or "" for lab in assignment.labels], dtype=object), []


def _task_labels(rule: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Labels of the card's task: the manifest's ``label:<task>`` column, else its tags."""
    from pipeline.labels.tasks import TASK_PREFIX, labels_for_rule, task_of_rule

    task = task_of_rule(rule)
    column = f"{TASK_PREFIX}{task}"
    tags = frame["tags"].fillna("").astype(str) if "tags" in frame.columns else None
    if column not in frame.columns and (tags is None or not tags.str.strip().any()):
        return np.full(len(frame), "", dtype=object), [
            f"the model is for task {task!r}, whose labels come from a {column!r} column or the "
            "'tags' column; this manifest has neither: not scored"]
    return np.array(labels_for_rule(frame, rule).labels, dtype=object), []


def check_task(bundle: Bundle, task: str, where: Any = "the model") -> None:
    """BundleError unless ``bundle`` was fitted for ``task`` (``predict --task``)."""
    from pipeline.labels.tasks import task_of_rule

    fitted = task_of_rule(bundle.card.label_rule)
    if fitted != task:
        what = (f"task {fitted!r}" if fitted else
                f"a single-task experiment (label rule {bundle.card.label_rule!r})")
        raise BundleError(f"{where} was fitted for {what}, not task {task!r}; pass the bundle "
                          f"of that task (`pipeline fit-final --task {task} ...`) or drop --task")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else math.nan


THRESHOLD_METRICS = ("sensitivity@threshold", "specificity@threshold", "ppv@threshold",
                     "npv@threshold")


def _scores(y: np.ndarray, proba: np.ndarray, positive: int | None,
            choice: ThresholdChoice) -> dict[str, float]:
    """:func:`score_fold` metrics (argmax, as in CV) plus, for a binary model with a threshold,
    sensitivity/specificity/PPV/NPV at that threshold."""
    out = score_fold(y, proba, positive)
    if choice.value is not None and positive is not None and proba.shape[1] == 2:
        pred = apply_threshold(proba, choice, positive) == positive
        true = y == positive
        out["sensitivity@threshold"] = _ratio((pred & true).sum(), true.sum())
        out["specificity@threshold"] = _ratio((~pred & ~true).sum(), (~true).sum())
        out["ppv@threshold"] = _ratio((pred & true).sum(), pred.sum())
        out["npv@threshold"] = _ratio((~pred & ~true).sum(), (~pred).sum())
    return out


def _bootstrap(y: np.ndarray, proba: np.ndarray, groups: np.ndarray, positive: int | None,
               choice: ThresholdChoice, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals of every metric, resampling patients with replacement."""
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([rows_of[g] for g in pick])
        for m, v in _scores(y[idx], proba[idx], positive, choice).items():
            draws.setdefault(m, []).append(v)
    out = {}
    for m, v in draws.items():
        a = np.asarray(v, dtype=float)
        a = a[np.isfinite(a)]
        out[m] = (float(np.percentile(a, 2.5)), float(np.percentile(a, 97.5))) if len(a) else (
            math.nan, math.nan)
    return out


def _flag(metric: str, value: float, new_lo: float, new_hi: float, cv_lo: float,
          cv_hi: float) -> str:
    """``"DROP"`` / ``"below CV"`` / ``""`` (see :class:`MetricRow`)."""
    good = higher_is_better(metric)
    edge = cv_lo if good else cv_hi
    sign = 1.0 if good else -1.0  # sign * (x - edge) < 0: x is on the bad side of the CV interval
    if not math.isfinite(edge) or sign * (value - edge) >= 0:
        return ""
    near = new_hi if good else new_lo  # the new interval's end nearest to the CV interval
    if not math.isfinite(near) or sign * (near - edge) < 0:
        return "DROP"
    return "below CV"


def score_new_data(bundle: Bundle, y: np.ndarray, proba: np.ndarray, groups: np.ndarray, *,
                   n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[MetricRow, ...]:
    """Metrics on new labelled rows with bootstrap CIs, each beside the card's CV interval
    (threshold metrics beside the rule's out-of-fold value, when the card has a threshold)."""
    positive = bundle.card.positive_index
    choice = bundle.card.threshold
    point = _scores(y, proba, positive, choice)
    cis = _bootstrap(y, proba, groups, positive, choice, n_boot, seed) if n_boot > 0 else {}
    oof = {"sensitivity@threshold": choice.oof_sensitivity,
           "specificity@threshold": choice.oof_specificity}
    at_rule = dict(bundle.card.cv_at_rule.get("metrics") or {})  # the CV at the shipped rule
    rows = []
    for m in (*METRICS, *THRESHOLD_METRICS):
        v = point.get(m, math.nan)
        if not math.isfinite(v):
            continue
        if m in THRESHOLD_METRICS:  # the CV at the shipped rule, else the rule's own estimate
            c_lo, c_hi = cis.get(m, (math.nan, math.nan))
            cv = at_rule.get(m.split("@", 1)[0])
            if cv:
                lo, hi = cv.get("ci95_low", math.nan), cv.get("ci95_high", math.nan)
                flag = _flag("op_" + m.split("@", 1)[0], v, c_lo, c_hi, lo, hi)
                rows.append(MetricRow(m, float(v), c_lo, c_hi, cv.get("mean", math.nan), lo, hi,
                                      flag))
                continue
            ref = oof.get(m)
            rows.append(MetricRow(m, float(v), c_lo, c_hi,
                                  math.nan if ref is None else float(ref)))
            continue
        cv = bundle.card.cv.get(m, {})
        lo, hi = cv.get("ci95_low", math.nan), cv.get("ci95_high", math.nan)
        c_lo, c_hi = cis.get(m, (math.nan, math.nan))
        rows.append(MetricRow(m, float(v), c_lo, c_hi, cv.get("mean", math.nan), lo, hi,
                              _flag(m, v, c_lo, c_hi, lo, hi)))
    return tuple(rows)


# ----------------------------------------------------------------------------- predict
def calibrated(proba: np.ndarray, card: Any) -> np.ndarray:
    """``proba`` with the card's calibrator applied to the positive class (binary models with
    a calibrated operating point; unchanged otherwise): the scale the threshold was chosen on."""
    if card.calibration is None or card.positive_index is None or proba.shape[1] != 2:
        return proba
    from classify.models.calibration import ProbabilityCalibrator

    pos = card.positive_index
    p = ProbabilityCalibrator.from_record(card.calibration).transform(proba[:, pos])
    out = np.empty_like(proba)
    out[:, pos], out[:, 1 - pos] = p, 1.0 - p
    return out


def run_predict(bundle: Bundle, manifest: Any, *, features_root: str | Path,
                build_store: Callable[[StoreRequirement], Path], out: str | Path | None = None,
                n_boot: int = N_BOOTSTRAP, seed: int = 0,
                carry: Sequence[str] = ()) -> PredictionResult:
    """Build/check the stores of ``manifest``, predict every row that has all of them, score
    the labelled rows and write the predictions CSV to ``out`` (atomically). ``carry``:
    manifest columns copied into the predictions after ``sample_id`` (a site export's own
    identifiers, e.g. MRN and Accession)."""
    card = bundle.card
    frame = manifest.frame
    ids = frame["sample_id"].astype(str).tolist()
    stores = ensure_stores(bundle, manifest.name, Path(features_root), build_store)

    reasons: dict[str, list[str]] = {}
    ok = np.ones(len(ids), dtype=bool)
    for key, store in stores.items():
        present = store.has(ids)
        failed = store.failed
        for i in np.flatnonzero(~present):
            why = failed.get(ids[i], "not in the store (extraction did not reach it)")
            reasons.setdefault(ids[i], []).append(f"{key}: {why}")
        ok &= present
    ok_ids = [s for s, k in zip(ids, ok, strict=True) if k]

    n_classes = len(card.classes)
    table = pd.DataFrame({"sample_id": ids})
    for col in carry:
        if col != "sample_id" and col in frame.columns:
            table[col] = frame[col].astype(str).to_numpy()
    proba = np.full((len(ids), n_classes), np.nan)
    pred = np.full(len(ids), "", dtype=object)
    att_cols: dict[str, np.ndarray] = {}
    if ok_ids:
        X = np.hstack([np.asarray(stores[r.encoder_key].read(ok_ids), dtype=np.float64)
                       for r in card.stores])
        est = bundle.estimator
        raw = est.predict_proba(X)
        p = np.zeros((len(ok_ids), n_classes))
        p[:, np.asarray(est.classes_, dtype=int)] = raw
        p = calibrated(p, card)
        proba[ok] = p
        codes = apply_threshold(p, card.threshold, card.positive_index)
        pred[ok] = np.asarray(card.classes, dtype=object)[codes]
        fusion = est.named_steps["fusion"]
        if hasattr(fusion, "attention_weights"):
            att = fusion.attention_weights(X)
            for j, name in enumerate(fusion.modality_names_):
                col = np.full(len(ids), np.nan)
                col[ok] = att[:, j]
                att_cols[f"attention:{name}"] = col
    pos = card.positive_index
    if pos is not None:
        table["probability"] = proba[:, pos]
    else:
        table["probability"] = np.where(ok, np.nanmax(np.where(ok[:, None], proba, 0), axis=1),
                                        np.nan)
    table["predicted_label"] = pred
    for k, c in enumerate(card.classes):
        table[f"proba:{c}"] = proba[:, k]
    for col, v in att_cols.items():
        table[col] = v
    table["decision_rule"] = card.threshold.rule
    table["threshold"] = np.nan if card.threshold.value is None else card.threshold.value
    table["status"] = np.where(ok, "ok", "failed")
    table["reason"] = ["; ".join(reasons.get(s, [])) for s in ids]

    metrics, n_lab, notes = _score(bundle, frame, ok, proba, n_boot, seed)
    out_path = None
    if out is not None:
        out_path = Path(out)
        recover_interrupted(out_path)  # a half file of a killed run is never left behind
        atomic_write(out_path, table.to_csv(index=False))
        log.info("wrote %d predictions (%d failed) to %s", int(ok.sum()), int((~ok).sum()), out_path)
    return PredictionResult(
        bundle=card.name, manifest=str(getattr(manifest, "source", "") or manifest.name),
        dataset=manifest.name, predictions=table,
        failed={s: "; ".join(r) for s, r in reasons.items()},
        stores={k: s.path for k, s in stores.items()}, metrics=metrics, n_labelled=n_lab,
        threshold_rule=card.threshold.rule, threshold_value=card.threshold.value,
        notes=tuple(notes), out=out_path,
    )


def _score(bundle: Bundle, frame: pd.DataFrame, ok: np.ndarray, proba: np.ndarray,
           n_boot: int, seed: int) -> tuple[tuple[MetricRow, ...] | None, int, list[str]]:
    card = bundle.card
    labels, notes = _labels(bundle, frame)
    has = labels != ""
    if not has.any():
        return None, 0, notes or ["the manifest has no labels: predictions only"]
    known = np.isin(labels, np.asarray(card.classes, dtype=object))
    other = has & ~known
    if other.any():
        shown = sorted(set(labels[other].tolist()))[:5]
        notes.append(f"{int(other.sum())} labelled row(s) have labels outside the model's classes "
                     f"{list(card.classes)} (e.g. {shown}): not scored")
    use = has & known & ok
    if (has & known & ~ok).any():
        notes.append(f"{int((has & known & ~ok).sum())} labelled row(s) failed and are not scored")
    if not use.any():
        notes.append("no labelled row could be predicted: no metrics")
        return None, 0, notes
    code = {c: i for i, c in enumerate(card.classes)}
    y = np.array([code[v] for v in labels[use]], dtype=np.int64)
    groups = frame["patient_id"].astype(str).to_numpy()[use]
    if len(np.unique(y)) < 2:
        notes.append("the scored rows hold one class only: ranking metrics (ROC/PR AUC) are "
                     "undefined")
    rows = score_new_data(bundle, y, proba[use], groups, n_boot=n_boot, seed=seed)
    return rows, int(use.sum()), notes
