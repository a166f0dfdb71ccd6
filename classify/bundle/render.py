"""Terminal summaries of ``pipeline fit-final`` and ``pipeline predict`` (renderers take only results)."""

from __future__ import annotations

import math

from classify.bundle.final import FinalFit
from classify.bundle.predict import PredictionResult
from pipeline.helpers import text_table

_SHOW_FAILED = 20
_CV_SHOWN = ("roc_auc", "pr_auc", "balanced_accuracy", "f1_weighted", "accuracy", "brier")


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):.{digits}f}"


def render_fit_final(fit: FinalFit) -> str:
    """What ``pipeline fit-final`` prints: the bundle, its cell, data, rule, evidence, warnings."""
    c = fit.card
    tr = c.training
    t = c.threshold
    lines = [
        f"model bundle {fit.path}",
        f"  cell {c.cell['label']} (key {c.cell['key']}); {c.selection.get('how', '')}",
        f"  fitted on {tr['n_samples']} samples of {tr['n_groups']} patients of "
        f"{tr['dataset']!r} in {tr['fit_seconds']:.1f} s; classes "
        + ", ".join(f"{k}={v}" for k, v in tr["class_counts"].items()),
    ]
    ex = tr.get("excluded") or {}
    if ex:
        lines.append(f"  excluded from the fit: {ex['n_samples']} samples of {ex['n_groups']} "
                     f"patients listed in {ex['manifest']}")
    if tr.get("holdout"):
        h = {k: v for k, v in tr["holdout"].items() if v is not None}
        lines.append(f"  the experiment's [holdout] ({', '.join(f'{k}={v}' for k, v in h.items())}) "
                     "was left out of the fit, as out of CV")
    rule = t.rule if t.value is None else f"{t.rule}: P({c.positive_label}) >= {t.value:.4f}"
    lines.append(f"  decision rule: {rule} (source: {t.source})")
    if t.oof_sensitivity is not None:
        on = t.chosen_on or "the CV out-of-fold predictions"
        lines.append(f"    on {on}: sensitivity {_f(t.oof_sensitivity)}, "
                     f"specificity {_f(t.oof_specificity)}")
    tuning = c.procedure.get("tuning")
    if tuning:
        lines.append(f"  tuned again on the final training set ({tuning['search']}/"
                     f"{tuning['budget']}, {tuning['inner_folds']} inner folds by patient): "
                     + ", ".join(f"{k}={v!r}" for k, v in sorted(tuning["chosen"].items()))
                     + f" (inner {tuning['metric']} {_f(tuning['inner_score'])})")
    if c.calibration:
        lines.append(f"  probabilities calibrated ({c.calibration['method']}) before the threshold")
    at_rule = c.cv_at_rule.get("metrics") or {}
    if at_rule:
        lines.append(f"  CV at this rule ({c.cv_at_rule.get('how')}): " + ", ".join(
            f"{q} {_f(v['mean'])} [{_f(v['ci95_low'])}, {_f(v['ci95_high'])}]"
            + (f" ({v['n_undefined']} split(s) undefined)" if v.get("n_undefined") else "")
            for q, v in at_rule.items()))
    lines.append("  stores it needs: " + ", ".join(
        f"{s.encoder_key} ({s.weights_name}, sha256 {s.weights_sha256[:12]}..., {s.backend})"
        for s in c.stores))
    rows = [(m, _f(v["mean"]), _f(v["std"]), f"[{_f(v['ci95_low'])}, {_f(v['ci95_high'])}]",
             v["n_splits"]) for m, v in c.cv.items() if m in _CV_SHOWN]
    lines.append(text_table(("metric", "CV mean", "std", "95% CI", "splits"), rows,
                            title="  CV evidence of the cell (stored by `pipeline classify`):",
                            indent="  "))
    lines += [f"  WARNING: {w}" for w in c.warnings]
    lines.append("  files: " + ", ".join(f"{n} (sha256 {d[:12]}...)" for n, d in c.files.items())
                 + ", model_card.json")
    return "\n".join(lines)


def render_prediction(res: PredictionResult) -> str:
    """What ``pipeline predict`` prints: counts, failures with reasons, metrics vs CV."""
    n = len(res.predictions)
    rule = res.threshold_rule if res.threshold_value is None else (
        f"{res.threshold_rule} (threshold {res.threshold_value:.4f})")
    lines = [
        f"predict with {res.bundle} on {res.dataset!r}: {n} samples, {res.n_predicted} predicted, "
        f"{len(res.failed)} failed; decision rule {rule}",
    ]
    if res.out is not None:
        lines.append(f"  predictions: {res.out}")
    counts = res.predictions.loc[res.predictions["status"] == "ok", "predicted_label"].value_counts()
    if len(counts):
        lines.append("  predicted: " + ", ".join(f"{k}={v}" for k, v in counts.sort_index().items()))
    att = [c for c in res.predictions.columns if c.startswith("attention:")]
    if att:
        means = res.predictions[att].mean()
        lines.append("  mean attention: " + ", ".join(
            f"{c.split(':', 1)[1]}={means[c]:.3f}" for c in att))
    for sid, why in list(res.failed.items())[:_SHOW_FAILED]:
        lines.append(f"  FAILED {sid}: {why}")
    if len(res.failed) > _SHOW_FAILED:
        lines.append(f"  ... and {len(res.failed) - _SHOW_FAILED} more failed samples (status "
                     "'failed' in the predictions file, with reasons)")
    if res.metrics:
        rows = [(m.metric, _f(m.value), f"[{_f(m.ci95_low)}, {_f(m.ci95_high)}]", _f(m.cv_mean),
                 f"[{_f(m.cv_low)}, {_f(m.cv_high)}]", m.flag)
                for m in res.metrics]
        lines.append(text_table(
            ("metric", "new data", "95% CI (bootstrap by patient)", "CV mean", "CV 95% CI", "flag"),
            rows, title=f"  scores on the {res.n_labelled} labelled samples (argmax, as in CV; "
                        "'@threshold' rows at the card's threshold, beside its out-of-fold value):",
            indent="  "))
        dropped = [m.metric for m in res.metrics if m.dropped]
        if dropped:
            lines.append(f"  WARNING: {', '.join(dropped)}: the new data's 95% interval lies "
                         "wholly on the bad side of the CV interval: the model does worse on this "
                         "data than the evidence it was chosen on")
        below = [m.metric for m in res.metrics if m.flag == "below CV"]
        if below:
            lines.append(f"  note: {len(below)} metric(s) are below the CV interval but within the "
                         "new data's sampling noise (intervals overlap; 'below CV')")
    lines += [f"  note: {x}" for x in res.notes]
    return "\n".join(lines)
