"""The model card of a bundle: what the model needs, what it was trained on, and the evidence it was chosen on.

A :class:`ModelCard` is written twice into the bundle: ``model_card.json`` (read back by
``pipeline predict``) and ``model_card.md`` (for people). Field names are a stable
contract within one :data:`~classify.bundle.io.BUNDLE_SCHEMA`; add fields with defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from classify.bundle.threshold import ThresholdChoice

#: Provenance keys a store of new data must match exactly for the model to apply.
MATCH_KEYS = ("encoder_key", "modality", "architecture", "weights_name", "weights_sha256",
              "dim", "backend", "text_mode", "masked", "preprocessing")


@dataclass(frozen=True)
class StoreRequirement:
    """One feature store the model reads, as the training store described it.

    Attributes:
        encoder_key: store key (e.g. ``efficientnet_lite0``, ``minilm@findings``).
        modality: ``image`` / ``text``.
        architecture, weights_name, weights_sha256: the encoder and the digest of its weights.
        dim: vector width (the model's block width).
        backend: inference backend recorded by the store (``torch`` when it records none).
        text_mode, masked: text stores only (``both``/``findings``/``impression``; label terms
            masked); None for images.
        preprocessing: the store's full preprocessing record (image size, pooling, ...).
        layers: extra layers the store holds (not read by the model).
        trained_on: data sets the encoder's weights were trained on.
        training_identity: content identity of the training store (for the record).
        mask: masked text stores only: the label rule, the terms hidden and the tag
            vocabulary size of the TRAINING data (``pipeline predict`` masks new reports with
            exactly these terms, never with terms derived from the new manifest).
    """

    encoder_key: str
    modality: str
    architecture: str
    weights_name: str
    weights_sha256: str
    dim: int
    backend: str = "torch"
    text_mode: str | None = None
    masked: bool | None = None
    preprocessing: Mapping[str, Any] = field(default_factory=dict, hash=False)
    layers: tuple[str, ...] = ()
    trained_on: tuple[str, ...] = ()
    training_identity: str = ""
    mask: Mapping[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_provenance(cls, prov: Mapping[str, Any], identity: str = "") -> StoreRequirement:
        pre = dict(prov.get("preprocessing") or {})
        text = prov.get("modality") == "text"
        return cls(
            encoder_key=str(prov["encoder_key"]),
            modality=str(prov["modality"]),
            architecture=str(prov.get("architecture", "")),
            weights_name=str(prov.get("weights_name", "")),
            weights_sha256=str(prov.get("weights_sha256", "")),
            dim=int(prov["dim"]),
            backend=backend_name(prov),
            text_mode=str(pre.get("text_mode", "both")) if text else None,
            masked=bool(pre.get("masked", False)) if text else None,
            preprocessing=pre,
            layers=tuple(prov.get("layers") or ()),
            trained_on=tuple(prov.get("trained_on") or ()),
            training_identity=identity,
        )

    def mismatches(self, other: StoreRequirement) -> list[str]:
        """``"<key>: model needs X, store has Y"`` for every :data:`MATCH_KEYS` that differs."""
        out = []
        for k in MATCH_KEYS:
            mine, theirs = getattr(self, k), getattr(other, k)
            if k == "preprocessing":
                mine, theirs = dict(mine), dict(theirs)
            if mine != theirs:
                if k == "preprocessing":
                    keys = sorted(set(mine) | set(theirs))
                    diff = [f"{p}={mine.get(p)!r} vs {theirs.get(p)!r}" for p in keys
                            if mine.get(p) != theirs.get(p)]
                    out.append(f"preprocessing: model needs vs store has: {'; '.join(diff)}")
                else:
                    out.append(f"{k}: model needs {mine!r}, store has {theirs!r}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["preprocessing"] = dict(self.preprocessing)
        d["layers"], d["trained_on"] = list(self.layers), list(self.trained_on)
        if self.mask is None:
            d.pop("mask")
        else:
            d["mask"] = {**self.mask, "terms": list(self.mask["terms"])}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreRequirement:
        d = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        d["layers"] = tuple(d.get("layers", ()))
        d["trained_on"] = tuple(d.get("trained_on", ()))
        return cls(**d)


def backend_name(prov: Mapping[str, Any]) -> str:
    """The inference backend a store records in ``inference.backend`` (``torch`` when it
    records none: stores made before the ONNX Runtime backend existed)."""
    b = prov.get("inference")
    if isinstance(b, Mapping):
        b = b.get("backend")
    return str(b or "torch")


@dataclass(frozen=True)
class ModelCard:
    """Everything ``pipeline predict`` and a reader need to know about a bundle.

    Attributes:
        name: bundle name (folder name under ``artifacts/models``).
        bundle_schema: layout version of the bundle (see :mod:`classify.bundle.io`).
        created: UTC time of the fit.
        cell: the cell spec (:meth:`classify.results.types.CellSpec.to_dict`), its label and key.
        selection: how the cell was chosen (``--cell`` or ``--best`` by a metric, among which cells).
        stores: the stores the model reads, in block order.
        classes: class labels in code order (the model's probability columns).
        positive_label: positive class of a binary model (None for multiclass).
        label_rule: the label rule id of the training data (``manifest:...`` = the manifest's
            ``label`` column, else a rule applied to ``tags``).
        threshold: the decision rule applied by ``pipeline predict``.
        cv: the chosen cell's CV evidence: metric -> mean, std, n_splits, ci95_low/high.
        equivalence: cells practically equivalent to it, when known (else None).
        training: data the final model was fitted on (manifest digests, sample counts,
            excluded samples, label source, split plan of the CV).
        warnings: scientific warnings that applied to its data (leakage ceiling, pretraining
            overlap, synthetic images, ...).
        versions: library versions at fit time.
        experiment: experiment name, file and its text.
        files: bundle file name -> sha256 (every file except ``model_card.json``, which
            carries its own digest as ``card_sha256``).
        cv_at_rule: the CV's sensitivity, specificity, PPV and NPV at the shipped decision
            rule (:func:`classify.bundle.procedure.cv_at_rule`).
        procedure: what the final fit re-ran: ``tuning`` (settings, chosen values, inner
            score) and ``operating_point`` (rule, calibration, threshold, inner estimates).
        calibration: the calibrator ``pipeline predict`` applies to the positive-class
            probability (:meth:`classify.models.calibration.ProbabilityCalibrator.to_record`),
            None when the model is uncalibrated.
    """

    name: str
    bundle_schema: int
    created: str
    cell: Mapping[str, Any] = field(hash=False)
    selection: Mapping[str, Any] = field(hash=False)
    stores: tuple[StoreRequirement, ...]
    classes: tuple[str, ...]
    positive_label: str | None
    label_rule: str
    threshold: ThresholdChoice
    cv: Mapping[str, Mapping[str, float]] = field(hash=False)
    equivalence: Any = None
    training: Mapping[str, Any] = field(default_factory=dict, hash=False)
    warnings: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict, hash=False)
    experiment: Mapping[str, Any] = field(default_factory=dict, hash=False)
    files: Mapping[str, str] = field(default_factory=dict, hash=False)
    cv_at_rule: Mapping[str, Any] = field(default_factory=dict, hash=False)
    procedure: Mapping[str, Any] = field(default_factory=dict, hash=False)
    calibration: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def positive_index(self) -> int | None:
        return None if self.positive_label is None else self.classes.index(self.positive_label)

    @property
    def is_attention(self) -> bool:
        return self.cell.get("spec", {}).get("fusion") == "attention"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bundle_schema": self.bundle_schema,
            "created": self.created,
            "cell": dict(self.cell),
            "selection": dict(self.selection),
            "stores": [s.to_dict() for s in self.stores],
            "classes": list(self.classes),
            "positive_label": self.positive_label,
            "label_rule": self.label_rule,
            "threshold": self.threshold.to_dict(),
            "cv": {k: dict(v) for k, v in self.cv.items()},
            "equivalence": self.equivalence,
            "training": dict(self.training),
            "warnings": list(self.warnings),
            "versions": dict(self.versions),
            "experiment": dict(self.experiment),
            "files": dict(self.files),
            "cv_at_rule": dict(self.cv_at_rule),
            "procedure": dict(self.procedure),
            "calibration": None if self.calibration is None else dict(self.calibration),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        return cls(
            name=str(d["name"]),
            bundle_schema=int(d["bundle_schema"]),
            created=str(d.get("created", "")),
            cell=dict(d["cell"]),
            selection=dict(d.get("selection", {})),
            stores=tuple(StoreRequirement.from_dict(s) for s in d["stores"]),
            classes=tuple(str(c) for c in d["classes"]),
            positive_label=d.get("positive_label"),
            label_rule=str(d.get("label_rule", "")),
            threshold=ThresholdChoice.from_dict(dict(d.get("threshold") or {})),
            cv={k: dict(v) for k, v in dict(d.get("cv", {})).items()},
            equivalence=d.get("equivalence"),
            training=dict(d.get("training", {})),
            warnings=tuple(d.get("warnings", ())),
            versions=dict(d.get("versions", {})),
            experiment=dict(d.get("experiment", {})),
            files=dict(d.get("files", {})),
            cv_at_rule=dict(d.get("cv_at_rule") or {}),
            procedure=dict(d.get("procedure") or {}),
            calibration=None if d.get("calibration") is None else dict(d["calibration"]),
        )


# ----------------------------------------------------------------------------- Markdown
def _f(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def _md(text: Any) -> str:
    """Plain text safe inside a Markdown table cell or line (no HTML, no pipes)."""
    import html

    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def render_card_markdown(card: ModelCard) -> str:
    """The human-readable model card (``model_card.md``)."""
    spec = card.cell.get("spec", {})
    t = card.threshold
    lines = [
        f"# Model card: {_md(card.name)}",
        "",
        f"Bundle schema {card.bundle_schema}, fitted {_md(card.created)}. "
        "Load it only with `pipeline predict` (digests verified, trusted types only).",
        "",
        "## Cell",
        "",
        f"* cell: `{_md(card.cell.get('label'))}` (key `{_md(card.cell.get('key'))}`)",
        f"* feature set `{_md(spec.get('feature_set'))}`: stores "
        + ", ".join(f"`{_md(s)}`" for s in spec.get("stores", [])),
        f"* fusion `{_md(spec.get('fusion'))}`, sampler `{_md(spec.get('sampler'))}`, "
        f"classifier `{_md(spec.get('classifier'))}`, parameters `{_md(spec.get('params') or {})}`",
        f"* chosen by: {_md(card.selection.get('how', ''))}",
        "",
        "## Labels and decision rule",
        "",
        f"* classes (probability columns, in order): {', '.join(_md(c) for c in card.classes)}",
        f"* positive class: {_md(card.positive_label)}; label rule: `{_md(card.label_rule)}`",
        f"* decision rule: **{_md(t.rule)}**"
        + (f", threshold P({_md(card.positive_label)}) >= {t.value:.4f}" if t.value is not None else "")
        + f" (source: {_md(t.source)}"
        + (f"; chosen on {_md(t.chosen_on)}" if t.chosen_on else "") + ")",
    ]
    if t.oof_sensitivity is not None:
        lines.append(f"* at that threshold on the predictions it was chosen on: sensitivity "
                     f"{_f(t.oof_sensitivity)}, specificity {_f(t.oof_specificity)}")
    lines += _procedure_lines(card)
    lines += ["", "## Stores the model needs", "",
              "| store | modality | encoder | weights | weights sha256 | backend | text mode | masked | dim |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in card.stores:
        lines.append(f"| `{_md(s.encoder_key)}` | {s.modality} | {_md(s.architecture)} | "
                     f"{_md(s.weights_name)} | `{s.weights_sha256[:16]}…` | {_md(s.backend)} | "
                     f"{_md(s.text_mode or '-')} | {'-' if s.masked is None else s.masked} | {s.dim} |")
    lines += ["", "## Cross-validation evidence (the scores it was chosen on)", "",
              "Mean over the experiment's CV splits with a 95% t-interval; the splits share "
              "training data, so the interval is optimistic (too narrow).", "",
              "| metric | mean | std | 95% CI | splits |", "|---|---|---|---|---|"]
    for m, v in card.cv.items():
        lines.append(f"| {m} | {_f(v.get('mean'))} | {_f(v.get('std'))} | "
                     f"[{_f(v.get('ci95_low'))}, {_f(v.get('ci95_high'))}] | {v.get('n_splits')} |")
    rule = card.cv_at_rule
    if rule.get("metrics"):
        lines += ["", f"At the shipped decision rule ({_md(rule.get('rule'))}: "
                      f"{_md(rule.get('how'))}), per split, mean with a Nadeau-Bengio "
                      "corrected 95% interval:", "",
                  "| quantity | mean | 95% CI | splits | undefined |", "|---|---|---|---|---|"]
        for q, v in rule["metrics"].items():
            lines.append(f"| {q} | {_f(v.get('mean'))} | [{_f(v.get('ci95_low'))}, "
                         f"{_f(v.get('ci95_high'))}] | {v.get('n_splits')} | "
                         f"{v.get('n_undefined')} |")
    eq = card.equivalence
    if eq:
        lines += ["", f"Practical equivalence on {_md(eq.get('metric'))} within feature set "
                      f"`{_md(eq.get('feature_set'))}` (ROPE {eq.get('rope')}, decision at "
                      f"P >= {eq.get('decision_probability')}): best `{_md(eq.get('best'))}`; "
                      f"this cell: {_md(eq.get('chosen_verdict'))}; practically equivalent to the "
                      f"best: {_md(', '.join(eq.get('equivalent') or []) or 'none')}; undecided: "
                      f"{_md(', '.join(eq.get('undecided') or []) or 'none')}."]
    else:
        lines += ["", "Practical equivalence: not computed (fewer than two comparable cells)."]
    tr = card.training
    lines += ["", "## Training data", "",
              f"* dataset `{_md(tr.get('dataset'))}`, manifest `{_md(tr.get('manifest'))}` "
              f"(sha256 `{_md(tr.get('manifest_sha256', ''))[:16]}…`)",
              f"* fitted on {tr.get('n_samples')} samples of {tr.get('n_groups')} patients; "
              f"class counts {_md(tr.get('class_counts'))}; label source `{_md(tr.get('label_source'))}`"]
    ex = tr.get("excluded") or {}
    if ex:
        lines.append(f"* excluded from the fit: {ex.get('n_samples')} samples of "
                     f"{ex.get('n_groups')} patients listed in `{_md(ex.get('manifest'))}`")
    lines += ["", "## Warnings that applied to its data", ""]
    lines += [f"* {_md(w)}" for w in card.warnings] or ["* none"]
    lines += ["", "## Library versions", "",
              ", ".join(f"{_md(k)} {_md(v)}" for k, v in card.versions.items()),
              "", "## Files", ""]
    lines += [f"* `{_md(n)}` sha256 `{d}`" for n, d in card.files.items()]
    lines.append("* `model_card.json` carries its own digest (`card_sha256`)")
    return "\n".join(lines) + "\n"


def _procedure_lines(card: ModelCard) -> list[str]:
    """What the final fit re-ran: the search's choice and the operating point."""
    out = []
    tuning = card.procedure.get("tuning")
    if tuning:
        chosen = ", ".join(f"{k} = {v!r}" for k, v in sorted(tuning.get("chosen", {}).items()))
        out.append(f"* tuned on the final training set ({_md(tuning.get('search'))} search, "
                   f"budget {tuning.get('budget')}, {tuning.get('inner_folds')} inner folds by "
                   f"patient, {_md(tuning.get('metric'))}): chosen **{_md(chosen)}** (inner "
                   f"{_md(tuning.get('metric'))} {_f(tuning.get('inner_score'))})")
    op = card.procedure.get("operating_point")
    if op:
        out.append(f"* operating point re-fitted on the final training set: rule "
                   f"`{_md(op.get('rule'))}`, calibration `{_md(op.get('calibration'))}`, "
                   f"threshold {_f(op.get('threshold'), 4)}; inner sensitivity "
                   f"{_f(op.get('inner_sensitivity'))}, specificity "
                   f"{_f(op.get('inner_specificity'))} ({op.get('inner_folds')} folds)")
    if card.calibration:
        out.append(f"* probabilities are calibrated ({_md(card.calibration.get('method'))}) "
                   "before the threshold is applied")
    return out
