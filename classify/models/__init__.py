"""The estimator of one benchmark cell: fusion -> scaling -> sampler -> classifier.

Registries of classifiers, samplers and fusions, the in-fold tabular preprocessing and the
:mod:`imblearn` pipeline factory. May import: :mod:`classify.results.types` (the cell's spec) and
:mod:`pipeline` only.
"""
