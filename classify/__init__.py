"""Stage 2: feature stores -> fusion -> samplers -> classifiers -> CV scores -> paired stats.

Entry points: :func:`classify.experiment.load_experiment`,
:func:`classify.benchmark.run_benchmark`, renderers in :mod:`classify.tables`.
Nothing is imported here (no work at import time; torch is only imported inside
attention fusion's ``fit``).
"""
