"""Stage 2: feature stores -> fusion -> samplers -> classifiers -> CV scores -> paired stats.

Sub-packages, in the data's way through the stage (each opens with its job and what it may
import; imports run one way, from the top down):

=================  ===========================================================================
``report/``        renders frozen results (terminal, HTML, Markdown, CSV, LaTeX); computes nothing
``bundle/``        fit-final, the model card, predict
``analysis/``      stats, equivalence, ablation, summaries, tuning and prevalence-sweep analyses
``run/``           feature sets, saved split plans, cells x folds, tuning, operating point, joblib/Dask
``config/``        the experiment TOML, its sections and vocabularies
``models/``        classifiers, samplers, fusions, tabular preprocessing, the cell's pipeline
``results/``       typed frozen results, fold metrics, the on-disk cell store
=================  ===========================================================================

report/bundle -> analysis -> run -> config -> models/results. ``tests/test_structure.py``
checks that direction and that no import cycle exists.

Entry points: :func:`classify.config.experiment.load_experiment`,
:func:`classify.run.benchmark.run_benchmark`, :func:`classify.analysis.analyse.analyse_benchmark`
(everything a report shows, as one frozen result), renderers in :mod:`classify.report.console`
(terminal) and :mod:`classify.report` (HTML, Markdown, CSV, LaTeX).
Nothing is imported here (no work at import time; torch is only imported inside
attention fusion's ``fit``).
"""
