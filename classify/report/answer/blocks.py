"""The report's Answer section: one sentence per question, the planned comparisons
(``tables/answer.csv``), the positive-class metrics of the leading cells and the caveats."""

from __future__ import annotations

import pandas as pd

from classify.analysis.analyse import Analysis
from classify.analysis.answer import ANSWER_COLUMNS, QUESTIONS
from classify.analysis.answer.positive import POSITIVE_METRICS, TITLES
from classify.report.model import Block, Callout, Heading, Paragraph, Table, TCell
from classify.results.metrics import COLUMN_TITLES
from classify.run import leakage
from pipeline.helpers import format_p

#: Cells in the Answer section's positive-class table (all cells are in the CSV).
TOP_CELLS = 8


def _num(x: float, digits: int = 3, sign: bool = False) -> str:
    if not pd.notna(x):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def answer_table(analysis: Analysis) -> Table | None:
    """The planned comparisons; raw = :data:`ANSWER_COLUMNS` (written as tables/answer.csv)."""
    a = analysis.answer
    if a is None or a.table.empty:
        return None
    rows = tuple((TCell(f"({r.question})"), TCell(r.comparison), TCell(_num(r.difference, 4, True)),
                  TCell(f"{_num(r.ci_low, 4, True)} to {_num(r.ci_high, 4, True)}"),
                  TCell(format_p(r.p_holm)), TCell(_num(r.p_rope, 2)),
                  TCell(r.verdict, bold=r.verdict in ("better", "equivalent")))
                 for r in a.table.itertuples(index=False))
    return Table(name="answer", title=f"Planned comparisons on {a.metric} (A vs B, A − B)",
                 columns=("Q", "Comparison (A vs B)", "A − B", "95 % CI", "p (Holm)",
                          "P(equivalent)", "Verdict for A"),
                 rows=rows, raw=a.csv_frame(), numeric_from=2,
                 notes=(f"Holm within each question (a small pre-declared family, not all cell "
                        f"pairs); p and 95 % CI from the Nadeau-Bengio corrected t-test "
                        f"(n2/n1 = {a.test_train_ratio:.3f}); P(equivalent) = posterior "
                        f"probability that |A − B| <= {a.rope:g} (Bayesian correlated t-test). "
                        f"Verdict: equivalent when P(equivalent) >= {a.decision_probability:g}, "
                        f"else better/worse when p (Holm) < {a.alpha:g}, else undecided.",))


def positive_table(analysis: Analysis, top: int | None = TOP_CELLS) -> Table | None:
    """Positive-class metrics (mean and 95 % CI over splits) of the best ``top`` cells on the
    primary metric (all cells in the CSV)."""
    pos, a = analysis.positive, analysis.answer
    if pos is None:
        return None
    names = dict(a.names) if a is not None else {}
    b = analysis.benchmark
    primary = analysis.primary
    sign = -1.0 if primary == "brier" else 1.0
    means = {c.label: c.summary(primary)[0] for c in b.cells}
    order = sorted(pos.table["cell"], key=lambda lab: -sign * pd.Series([means[lab]]).fillna(
        -float("inf")).iloc[0])
    shown = order if top is None else order[:top]
    by = pos.table.set_index("cell")
    rows = []
    for lab in shown:
        r = by.loc[lab]
        rows.append((TCell(names.get(lab, lab)), TCell(_num(means[lab])),
                     *[TCell(_num(r[f"{m}_mean"]),
                             sub=f"{_num(r[f'{m}_ci_low'])}–{_num(r[f'{m}_ci_high'])}")
                       for m in POSITIVE_METRICS]))
    raw = pos.table.assign(name=[names.get(lab, lab) for lab in pos.table["cell"]],
                           prevalence=pos.prevalence)
    title = COLUMN_TITLES.get(primary, primary)
    return Table(name="positive-class", title=(
        f"Positive class '{pos.positive}' (prevalence {pos.prevalence:.1%}: {pos.n_positive} of "
        f"{pos.n_samples}): the {len(shown)} best cells by {title}"),
        columns=("Cell", title, *[TITLES[m] for m in POSITIVE_METRICS]), rows=tuple(rows),
        raw=raw, notes=("Mean over CV splits with a 95 % t-interval over splits (optimistic: "
                        "training sets overlap). Sensitivity, specificity, PPV and NPV at the "
                        "most probable class (threshold 0.5 for two classes), from the stored "
                        "out-of-fold predictions; weighted precision/recall/F1 are in the "
                        "classifier tables below." + (f" All {len(order)} cells: "
                                                      "tables/positive-class.csv."
                                                      if len(order) > len(shown) else ""),))


def caveats(analysis: Analysis) -> list[str]:
    """What a reader must know before trusting the numbers (leakage ceiling, synthetic images,
    internal validation only)."""
    b = analysis.benchmark
    out = []
    lk = analysis.leakage
    if lk.ceiling is not None:
        cell, val, metric = lk.ceiling
        name = analysis.answer.names.get(cell, cell) if analysis.answer is not None else cell
        if lk.flagged:
            out.append(f"Label leakage: the labels come from the report text ({lk.label_source}) "
                       f"and the report alone ({name}) reaches {metric} {val:.3f} > "
                       f"{leakage.TEXT_CEILING}; report-based and fused scores are a ceiling, "
                       "not diagnostic skill.")
        elif lk.from_report:
            out.append(f"The labels come from the report text ({lk.label_source}); the report "
                       f"alone reaches {metric} {val:.3f}, the ceiling to judge fusion against.")
    if b.synthetic_images:
        out.append("The images are synthetic (the demo's phantoms), not chest X-rays: image "
                   "scores say nothing about real images.")
    out.append("Internal validation only: cross-validation on one data set (grouped by "
               "patient); intervals over CV splits are optimistic. Validate on an external "
               "holdout before any clinical use.")
    return out


def answer_blocks(analysis: Analysis) -> list[Block]:
    """The Answer section: the sentences, the planned comparisons, the positive-class table
    and the caveats."""
    a = analysis.answer
    if a is None:
        return [Paragraph("No answer: the run has no computed cells.", muted=True)]
    blocks: list[Block] = []
    for q, sentence in a.sentences:
        blocks += [Heading(f"({q}) {QUESTIONS[q]}"), Callout(sentence)]
    table = answer_table(analysis)
    if table is not None:
        blocks.append(table)
    pos = positive_table(analysis)
    if pos is not None:
        blocks.append(pos)
    blocks += [Callout("Caveat: " + c, strong=True) for c in caveats(analysis)]
    return blocks


__all__ = ["ANSWER_COLUMNS", "answer_blocks", "answer_table", "caveats", "positive_table"]
