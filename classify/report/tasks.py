"""The cross-task section of a multi-task experiment: a text table, a heat map, a Markdown page
and CSVs, rendered from a :class:`classify.analysis.tasks.TasksAnswer` (nothing is computed here).

Layout of ``<reports>/<experiment>/`` (the tasks' own full reports are in
``<reports>/<experiment>-<task>/``, written by :func:`classify.report.writer.write_report`)::

    tasks.md                   the table, the verdicts, the heat map, links to each task's report
    tables/tasks.csv           one row per task x feature set (TASK_COLUMNS)
    tables/tasks_verdicts.csv  one row per task (VERDICT_COLUMNS)
    figures/tasks_heatmap.png  task x feature set, the metric's mean, prevalence per task
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from classify.analysis.tasks import TasksAnswer
from classify.report.plots.base import figure_to_png, new_figure, rc
from classify.report.tables import slug
from pipeline.helpers import atomic_write

log = logging.getLogger(__name__)

HEATMAP = "tasks_heatmap.png"


def _f(x: float, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _rows(answer: TasksAnswer) -> list[list[str]]:
    return [[r.task, str(r.n), str(r.positives), f"{100 * r.prevalence:.1f}%", r.feature_set,
             r.best_cell, f"{_f(r.mean)} [{_f(r.ci_low)}, {_f(r.ci_high)}]",
             r.verdict_vs_single or ""] for r in answer.rows]


def _verdict_rows(answer: TasksAnswer) -> list[list[str]]:
    return [[v.task, f"{100 * v.prevalence:.1f}%", v.fused_cell, _f(v.fused_mean), v.single_cell,
             _f(v.single_mean), f"{v.difference:+.3f}", _p(v.p), _p(v.p_holm), v.verdict]
            for v in answer.verdicts]


_HEAD = ["task", "n", "positives", "prevalence", "feature set", "best cell", "{m} mean [95% CI]",
         "fusion vs best single"]
_VHEAD = ["task", "prevalence", "best fused cell", "{m}", "best single cell", "{m}",
          "difference", "p", "p (Holm)", "verdict"]


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_tasks_text(answer: TasksAnswer) -> str:
    """The cross-task table and verdicts as terminal text."""
    m = answer.metric
    return "\n".join([
        f"Cross-task answer of {answer.experiment!r} ({m}; best cell per task x feature set)",
        _text_table([h.format(m=m) for h in _HEAD], _rows(answer)), "",
        "Fusion vs the best single modality, per task (Holm across tasks)",
        _text_table([h.format(m=m) for h in _VHEAD], _verdict_rows(answer)), "",
        *answer.notes])


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in esc)])


def render_tasks_markdown(answer: TasksAnswer, figure: str | None = f"figures/{HEATMAP}",
                          task_reports: Mapping[str, str] | None = None) -> str:
    """The cross-task page (``tasks.md``); ``task_reports``: task -> link of its own report."""
    m = answer.metric
    parts = [f"# Cross-task answer: {answer.experiment}", "",
             f"Best cell per task x feature set on **{m}** (mean over the task's splits, 95% "
             "t-interval), with each task's prevalence.", "",
             _md_table([h.format(m=m) for h in _HEAD], _rows(answer)), "",
             "## Fusion vs the best single modality", "",
             _md_table([h.format(m=m) for h in _VHEAD], _verdict_rows(answer)), "",
             *[f"* {n}" for n in answer.notes], ""]
    if figure:
        parts += [f"![{m} per task and feature set]({figure})", ""]
    if task_reports:
        parts += ["## Each task's report", ""]
        parts += [f"* [{t}]({link})" for t, link in task_reports.items()] + [""]
    return "\n".join(parts)


def tasks_heatmap_png(answer: TasksAnswer) -> bytes:
    """Task x feature set heat map of the metric's mean (prevalence in the row labels)."""
    heat = answer.heat()
    prevalence = {r.task: r.prevalence for r in answer.rows}
    values = heat.to_numpy(dtype=float)
    fig = new_figure(1.6 + 1.3 * heat.shape[1], 1.0 + 0.45 * heat.shape[0])
    with rc():
        ax = fig.add_subplot()
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        im = ax.imshow(values, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1e-6,
                       aspect="auto")
        ax.set_xticks(range(heat.shape[1]), list(heat.columns))
        ax.set_yticks(range(heat.shape[0]),
                      [f"{t} ({100 * prevalence[t]:.1f}%)" for t in heat.index])
        ax.grid(False)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    dark = values[i, j] < (lo + hi) / 2
                    ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
        ax.set_title(f"{answer.metric} by task (prevalence) and feature set")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return figure_to_png(fig)


def write_tasks_report(answer: TasksAnswer, out_dir: Path,
                       task_reports: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Write the cross-task page under ``out_dir/<experiment>/`` (every file atomically)."""
    root = Path(out_dir) / slug(answer.experiment)
    links = {t: Path("..") / p.relative_to(Path(out_dir)) if p.is_relative_to(Path(out_dir)) else p
             for t, p in (task_reports or {}).items()}
    table = atomic_write(root / "tables" / "tasks.csv", answer.table().to_csv(index=False))
    verdicts = atomic_write(root / "tables" / "tasks_verdicts.csv",
                            answer.verdict_table().to_csv(index=False))
    figure = atomic_write(root / "figures" / HEATMAP, tasks_heatmap_png(answer))
    page = atomic_write(root / "tasks.md", render_tasks_markdown(
        answer, f"figures/{HEATMAP}", {t: str(p) for t, p in links.items()}))
    log.info("cross-task report written: %s", page)
    return {"tasks_md": page, "tasks_csv": table, "verdicts_csv": verdicts, "heatmap": figure}
