"""Write the report of an :class:`~classify.analysis.analyse.Analysis` to disk, every file atomically.

Layout of ``<out_dir>/<experiment>/``::

    report.html      everything, images embedded as base64 PNG data URIs, inline CSS; the
                     Answer first, the details collapsed
    summary.html     one print-friendly page for a clinician (question, data, answer, chosen
                     model's operating point, caveats)
    report.md        the same sections in Markdown; figures linked from figures/
    figures/*.png    the figures (for the Markdown report and slides)
    tables/*.csv     one CSV per table (numbers unformatted: mean, std, CI bounds)
    latex/*.tex      one booktabs table per table (needs \\usepackage{booktabs})

Every file goes through :func:`pipeline.helpers.atomic_write`, so a reader never
sees a half-written report; tables and figures of an earlier run that this run no
longer has are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classify.analysis.analyse import Analysis
from classify.report.answer import render_summary_html
from classify.report.exports import table_to_csv, table_to_latex
from classify.report.figures import render_figures
from classify.report.html import render_html
from classify.report.markdown import render_markdown
from classify.report.sections import build_document
from classify.report.tables import slug
from pipeline.helpers import CORE_PACKAGES, atomic_write, library_versions

log = logging.getLogger(__name__)

#: Packages listed in the report's provenance.
VERSION_PACKAGES = (*CORE_PACKAGES, "matplotlib", "torch", "transformers")


def _sync_dir(directory: Path, files: Mapping[str, bytes | str], pattern: str) -> None:
    """Write ``files`` into ``directory`` and delete stale files matching ``pattern``."""
    for name, data in files.items():
        atomic_write(directory / name, data)
    for old in directory.glob(pattern):
        if old.name not in files:
            old.unlink()


def report_versions(provenance: Mapping[str, Any]) -> dict[str, str]:
    """Package versions shown in the report (``provenance["versions"]`` wins)."""
    if isinstance(provenance.get("versions"), Mapping):
        return {str(k): str(v) for k, v in provenance["versions"].items()}
    return library_versions(VERSION_PACKAGES)


def write_report(analysis: Analysis, out_dir: Path, *, experiment_text: str | None = None,
                 provenance: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write the report of ``analysis`` under ``out_dir/<experiment>/``.

    Args:
        analysis: from :func:`classify.analysis.analyse.analyse_benchmark`.
        out_dir: reports root, e.g. ``artifacts/reports``.
        experiment_text: the experiment file's text, shown verbatim.
        provenance: extra facts shown in the provenance section (e.g. ``label_source``,
            ``command``, ``manifest``, ``versions`` to override the detected versions).

    Returns:
        ``{"html", "summary", "markdown", "csv_dir", "latex_dir", "figures_dir"}`` paths.
    """
    prov = dict(provenance or {})
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures = render_figures(analysis)
    doc = build_document(analysis, figures, generated=generated,
                         versions=report_versions(prov), provenance=prov,
                         experiment_text=experiment_text)
    root = Path(out_dir) / slug(analysis.benchmark.experiment)
    csv_dir, latex_dir, fig_dir = root / "tables", root / "latex", root / "figures"
    tables = doc.tables()
    _sync_dir(csv_dir, {f"{t.name}.csv": table_to_csv(t) for t in tables}, "*.csv")
    _sync_dir(latex_dir, {f"{t.name}.tex": table_to_latex(t) for t in tables}, "*.tex")
    _sync_dir(fig_dir, {f"{f.id}.png": f.png for f in doc.figures()}, "*.png")
    md = atomic_write(root / "report.md", render_markdown(doc, "figures"))
    page = atomic_write(root / "report.html", render_html(doc))
    summary = atomic_write(root / "summary.html", render_summary_html(analysis, generated=generated))
    log.info("report written: %s (%d tables, %d figures, %d warnings)", page, len(tables),
             len(doc.figures()), len(analysis.warnings))
    return {"html": page, "summary": summary, "markdown": md, "csv_dir": csv_dir,
            "latex_dir": latex_dir, "figures_dir": fig_dir}
