"""One imblearn Pipeline per benchmark cell: [prepare ->] fusion -> StandardScaler -> sampler -> classifier.

Because the whole chain is one estimator fitted on the training rows of a split,
fusion statistics, scaling and resampling never see test rows (imblearn applies
samplers in ``fit`` only, so prediction rows are never resampled).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imblearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from classify.models.classifiers import CLASSIFIERS, build_classifier
from classify.models.fusion import build_fusion
from classify.models.samplers import FoldSampler, uses_class_weight
from classify.models.tabular_blocks import BlockPreprocessor, TablesSpec
from classify.results.types import CellSpec

STEP_NAMES = ("fusion", "scale", "sampler", "classifier")


def build_pipeline(
    spec: CellSpec, blocks: Sequence[tuple[str, int, int]], *, random_state: int = 0,
    tables: TablesSpec = None,
) -> Pipeline:
    """The unfitted estimator of ``spec`` for a matrix laid out as ``blocks``.

    ``tables`` (the schema of the tabular blocks, :func:`classify.run.feature_sets.tables_spec`)
    puts a :class:`~classify.models.tabular_blocks.BlockPreprocessor` step (``prepare``: imputation with
    missing indicators, one-hot, scaling) before the fusion, which is then built for the
    preprocessor's output layout. Without tabular blocks the pipeline is unchanged.
    """
    prepare = None
    if tables:
        prepare = BlockPreprocessor(tuple(blocks), tables)
        blocks = prepare.output_blocks()
    fusion = build_fusion(spec.fusion, tuple(blocks), random_state=random_state,
                          **spec.component_params("fusion"))
    sampler = FoldSampler(spec.sampler, spec.component_params("sampler") or None,
                          random_state=random_state)
    clf = build_classifier(spec.classifier, random_state=random_state,
                           balanced=uses_class_weight(spec.sampler),
                           **spec.component_params("classifier"))
    steps = [
        ("fusion", fusion),
        ("scale", StandardScaler()),
        ("sampler", sampler),
        ("classifier", clf),
    ]
    return Pipeline(([("prepare", prepare)] if prepare is not None else []) + steps)


def spec_notes(spec: CellSpec) -> tuple[str, ...]:
    """Static caveats of a cell (e.g. class_weight requested for a model without it)."""
    notes: list[str] = []
    if uses_class_weight(spec.sampler) and not CLASSIFIERS.meta(spec.classifier).get("class_weight"):
        notes.append(f"{spec.classifier} has no class weights: sampler 'class_weight' had no effect")
    return tuple(notes)


def fitted_step(pipe: Pipeline, name: str) -> Any:
    """A fitted step of a cell pipeline by name (``fusion``, ``sampler``, ...)."""
    return pipe.named_steps[name]
