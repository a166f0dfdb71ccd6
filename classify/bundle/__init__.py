"""Carry a chosen cell to new patients: final fit, a safe model bundle with its card, and prediction.

* :mod:`classify.bundle.final`      ``fit_final``: fit the chosen cell on all labelled samples.
* :mod:`classify.bundle.card`       ``ModelCard``: what the model needs and the evidence behind it.
* :mod:`classify.bundle.io`         ``write_bundle`` / ``load_bundle``: skops + digests + schema check.
* :mod:`classify.bundle.threshold`  decision rules (argmax, fixed, max_f1, youden, sensitivity=s).
* :mod:`classify.bundle.predict`    ``run_predict``: check stores, predict, score labelled rows.
* :mod:`classify.bundle.render`     terminal summaries.

May import: analysis/, run/, config/, models/, results/ and :mod:`pipeline` (never report/).
"""

from classify.bundle.card import ModelCard, StoreRequirement
from classify.bundle.final import FinalFit, fit_final
from classify.bundle.io import BUNDLE_SCHEMA, Bundle, load_bundle, read_card, trusted_types
from classify.bundle.predict import PredictionResult, run_predict

__all__ = [
    "BUNDLE_SCHEMA", "Bundle", "FinalFit", "ModelCard", "PredictionResult", "StoreRequirement",
    "fit_final", "load_bundle", "read_card", "run_predict", "trusted_types",
]
