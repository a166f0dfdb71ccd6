"""The analyst report: a section model built from frozen results, rendered to HTML, Markdown, CSV and LaTeX.

Compute with :func:`classify.analysis.analyse.analyse_benchmark`, then write with
:func:`write_report`::

    analysis = analyse_benchmark(benchmark, shuffles=shuffles)
    paths = write_report(analysis, Path("artifacts/reports"))

Modules: :mod:`~classify.report.model` (section model), :mod:`~classify.report.tables`
(table builders), :mod:`~classify.report.figures` and :mod:`~classify.report.plots`
(figures), :mod:`~classify.report.sections` (the one section list),
:mod:`~classify.report.html` / :mod:`~classify.report.markdown` /
:mod:`~classify.report.exports` (renderers), :mod:`~classify.report.writer` (files).
Nothing in this package computes statistics; importing it does not import matplotlib.
May import: analysis/, run/, config/, models/, results/ and :mod:`pipeline` (never bundle/).
"""

from classify.report.writer import write_report

__all__ = ["write_report"]
