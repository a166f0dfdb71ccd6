"""Computations over stored results: paired statistics, equivalence, ablation, summaries, sweeps.

Pure functions returning frozen results; renderers (:mod:`classify.report`) take only those.
May import: run/, config/, models/, results/ and :mod:`pipeline` (never report/ or bundle/).
"""
