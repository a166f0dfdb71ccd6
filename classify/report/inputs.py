"""Report inputs beyond the benchmark's cells: the stored prevalence sweep, the held-out scores, the indication audit.

:func:`add_context` returns the :class:`~classify.analysis.analyse.Analysis` with both attached, so
``pipeline report`` shows them; nothing is computed that is not already stored, except the
label-term audit of the manifest's indications (a text scan, seconds).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from classify.analysis.analyse import Analysis
from classify.analysis.prevalence_sweep import load_prevalence_sweep
from classify.run.leakage import indication_term_audit, is_pre_read_store

log = logging.getLogger(__name__)


def add_context(analysis: Analysis, experiment: Any) -> Analysis:
    """``analysis`` with the experiment's stored prevalence sweep (when it has an
    ``[imbalance]`` section) and, when a pre-read text store (``<encoder>@indication``) is
    among the cells, the label-term audit of the indications."""
    from pipeline.manifest import load_manifest

    sweep = load_prevalence_sweep(experiment)
    if sweep is not None and sweep.missing:
        log.warning("%d cell(s) of the prevalence sweep are not computed yet and are missing "
                    "from the report; run `pipeline classify` to add them", sweep.missing)
    audit = None
    stores = {k for c in analysis.benchmark.cells for k in c.spec.stores}
    if any(is_pre_read_store(k) for k in stores):
        manifest = load_manifest(experiment.manifest)
        rule = experiment.label_rule or manifest.meta.get("label_rule")
        classes = manifest.meta.get("label_classes")
        if experiment.task is not None:  # one task of a multi-task experiment: its finding
            rule, classes = f"finding_vs_rest:{experiment.task}", None
        audit = indication_term_audit(manifest.frame, rule, classes)
        if audit is not None:
            log.info("indication audit: %s", audit.sentence())
    from classify.analysis.holdout_test import evaluate_holdout

    holdout = evaluate_holdout(experiment, metric=analysis.primary, compute=False,
                               benchmark=analysis.benchmark)
    if holdout is not None and holdout.missing:
        log.warning("%d selected cell(s) are not scored on the held-out test set yet; run "
                    "`pipeline evaluate --config ...` to score them once", len(holdout.missing))
    return dataclasses.replace(analysis, prevalence=sweep, indication_audit=audit,
                               holdout=holdout)
