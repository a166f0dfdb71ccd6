"""Cell names for readers: ``image + report, concatenated, soft voting`` for
``fused/concat/smote/voting_soft``.

The parts every cell of a run shares (e.g. the one sampler of the demo) are left out, so the
name says only what tells the cells apart; the report lists the shared parts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from classify.results.types import CellResult

#: What a modality is called for a reader (text features come from the radiology report).
MODALITY_WORDS: Mapping[str, str] = {"image": "image", "text": "report", "tabular": "structured data"}
FUSION_WORDS: Mapping[str, str] = {
    "single": "", "concat": "concatenated", "attention": "attention fusion",
    "weighted_sum": "weighted sum"}
SAMPLER_WORDS: Mapping[str, str] = {
    "none": "no resampling", "class_weight": "class weights", "smote": "SMOTE",
    "borderline_smote": "Borderline-SMOTE", "adasyn": "ADASYN", "smote_tomek": "SMOTE + Tomek",
    "random_under": "random undersampling"}
CLASSIFIER_WORDS: Mapping[str, str] = {
    "logistic": "logistic regression", "knn": "k-nearest neighbours",
    "decision_tree": "decision tree", "random_forest": "random forest", "xgboost": "XGBoost",
    "gbdt": "gradient boosting", "mlp": "MLP", "voting_soft": "soft voting",
    "voting_hard": "hard voting"}


def data_words(cell: CellResult) -> str:
    """The data a cell sees: ``image + report`` (store keys when two share a modality)."""
    mods = list(cell.spec.modalities)
    if len(set(mods)) < len(mods) or not mods:
        return " + ".join(cell.spec.stores)
    return " + ".join(MODALITY_WORDS.get(m, m) for m in mods)


def reader_names(cells: Sequence[CellResult]) -> dict[str, str]:
    """Cell label -> a name for readers; components shared by all ``cells`` are left out
    (the classifier is always named)."""
    def parts(c: CellResult) -> tuple[str, str, str, str]:
        tuned = " (tuned)" if "tuning" in c.spec.params else ""
        return (data_words(c), FUSION_WORDS.get(c.spec.fusion, c.spec.fusion),
                SAMPLER_WORDS.get(c.spec.sampler, c.spec.sampler),
                CLASSIFIER_WORDS.get(c.spec.classifier, c.spec.classifier) + tuned)

    all_parts = [parts(c) for c in cells]
    varying = [i for i in range(4) if i in (0, 3) or len({p[i] for p in all_parts}) > 1]
    names = {c.label: ", ".join(p[i] for i in varying if p[i])
             for c, p in zip(cells, all_parts, strict=True)}
    if len(set(names.values())) < len(names):  # two cells differ only in parameters
        return {c.label: f"{names[c.label]} [{c.label}]" for c in cells}
    return names


def shared_parts(cells: Sequence[CellResult]) -> str:
    """What every cell shares and :func:`reader_names` therefore leaves out, e.g.
    ``sampler: SMOTE``; ``""`` when nothing is shared."""
    out = []
    for what, words, get in (("fusion", FUSION_WORDS, lambda c: c.spec.fusion),
                             ("sampler", SAMPLER_WORDS, lambda c: c.spec.sampler)):
        values = {get(c) for c in cells}
        if len(values) == 1 and cells:
            v = values.pop()
            out.append(f"{what}: {words.get(v, v) or v}")
    return "; ".join(out)
