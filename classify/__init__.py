"""Stage 2: feature stores -> fusion -> samplers -> classifiers -> CV scores -> paired stats.

Entry points: :func:`classify.experiment.load_experiment`,
:func:`classify.benchmark.run_benchmark`, :func:`classify.analysis.analyse_benchmark`
(everything a report shows, as one frozen result), renderers in :mod:`classify.tables`
(terminal) and :mod:`classify.report` (HTML, Markdown, CSV, LaTeX).
Nothing is imported here (no work at import time; torch is only imported inside
attention fusion's ``fit``).
"""
