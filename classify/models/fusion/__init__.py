"""Fusion transformers: turn a multi-block feature matrix into one vector per sample.

All are scikit-learn transformers fitted inside the CV fold (first step of the cell
pipeline), clone()-able, with ``get_feature_names_out``; they address modalities
through the ``blocks`` parameter: ``((name, start, stop), ...)`` column ranges (see
:func:`classify.run.feature_sets.blocks_spec`).

Registered fusions (``FUSIONS``), one module per family:

* :mod:`classify.models.fusion.simple`: ``single`` (one block as is, or standardised and reduced
  like ``concat`` reduces each block), ``concat`` (per-block
  standardisation and optional PCA/FastICA, then concatenation), ``weighted_sum``
  (blocks projected to a common PCA space and summed with fixed weights).
* :mod:`classify.models.fusion.attention`: ``attention``, learned attention over modalities;
  torch is imported only inside ``fit``; ``transform`` is pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.base import BaseEstimator

from classify.models.fusion.attention import AttentionFusion
from classify.models.fusion.base import FUSIONS, BlockFusion, BlocksSpec, resolve_blocks
from classify.models.fusion.simple import ConcatFusion, SingleFusion, WeightedSumFusion
from pipeline.errors import ConfigError
from pipeline.helpers import did_you_mean

__all__ = [
    "FUSIONS", "AttentionFusion", "BlockFusion", "BlocksSpec", "ConcatFusion", "SingleFusion",
    "WeightedSumFusion", "build_fusion", "fusion_arity", "resolve_blocks",
    "unknown_parameters_message",
]


def build_fusion(
    name: str, blocks: BlocksSpec, *, random_state: int = 0, **params: Any
) -> BaseEstimator:
    """Instantiate fusion ``name`` for ``blocks`` with ``params`` (ConfigError on bad params)."""
    cls = FUSIONS.get(name)
    valid = sorted(set(cls().get_params()) - {"blocks"})
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise ConfigError(unknown_parameters_message(f"fusion {name!r}", unknown, valid))
    kwargs = dict(params)
    if "random_state" in valid:
        kwargs.setdefault("random_state", random_state)
    return cls(blocks=blocks, **kwargs)


def unknown_parameters_message(what: str, unknown: Sequence[str], valid: Sequence[str]) -> str:
    """``"<what>: unknown parameter(s) 'x'. Did you mean ...? Valid parameters: ..."``.

    Only the unknown names are listed as bad; the valid ones follow as a hint.
    """
    hints = "".join(did_you_mean(u, valid) for u in unknown[:3])
    return (f"{what}: unknown parameter(s) {', '.join(repr(u) for u in unknown)}.{hints} "
            f"Valid parameters: {', '.join(valid)}")


def fusion_arity(name: str) -> str:
    """``"one"`` if fusion ``name`` takes a single store, ``"many"`` if it needs >= 2."""
    return str(FUSIONS.meta(name)["n_blocks"])
