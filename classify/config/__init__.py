"""Configuration of an experiment: the TOML file, its sections and the vocabularies they name.

Parsed and validated here into frozen dataclasses (:mod:`classify.config.experiment`,
:mod:`classify.config.sections`). May import: :mod:`classify.models.classifiers`, :mod:`classify.results.types`
and :mod:`pipeline` (never run/, analysis/, report/ or bundle/).
"""
