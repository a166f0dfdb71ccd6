"""Data sources: one parser per public release, each registering itself in ``DATASET_FORMATS``.

Importing this package registers every source: ``openi`` and ``openi_demo``
(:mod:`pipeline.sources.openi`), ``mimic_cxr`` (:mod:`pipeline.sources.mimic_cxr`) and ``csv``
(:mod:`pipeline.sources.csv`). A builder returns a :class:`~pipeline.sources.base.SourceTable`;
:func:`pipeline.dataset.build.build_manifest` applies the common filters and the label rule to it.
"""

from __future__ import annotations

from pipeline.sources import csv, mimic_cxr, openi  # noqa: F401  (registers the formats)
from pipeline.sources.base import DATASET_FORMATS, SourceTable, normalize_view

__all__ = ["DATASET_FORMATS", "SourceTable", "normalize_view"]
