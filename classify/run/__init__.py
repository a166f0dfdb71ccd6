"""Executing an experiment: feature sets, saved split plans, cells x folds, tuning, operating point.

Joblib locally, the Dask joblib backend on a cluster. May import: :mod:`classify.config`,
:mod:`classify.models.classifiers`, :mod:`classify.results.types` and :mod:`pipeline` (never analysis/,
report/ or bundle/).
"""
