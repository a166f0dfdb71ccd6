"""``summary.html``: one print-friendly page for a clinician.

The question, the data, the answer (one sentence per question), the chosen model's operating
point with 95 % intervals, and the caveats. No figures, no JavaScript; A4 print styles.
"""

from __future__ import annotations

import html

from classify.analysis.analyse import Analysis
from classify.analysis.answer import QUESTIONS
from classify.analysis.answer.positive import POSITIVE_METRICS, TITLES
from classify.report.answer.blocks import caveats
from classify.report.console import label_words

e = html.escape

_CSS = """
body{font:14px/1.45 Georgia,"Times New Roman",serif;color:#111;max-width:760px;margin:24px auto;
padding:0 20px}
h1{font-size:21px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px;border-bottom:1px solid #999;
padding-bottom:2px;text-transform:uppercase;letter-spacing:.04em}
.sub{color:#444;font-size:12.5px}p,li{margin:4px 0}ul{padding-left:20px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.caveat{border-left:4px solid #b44;padding:2px 10px;background:#fbeeee}
footer{color:#555;font-size:11px;margin-top:16px}
@page{size:A4;margin:14mm}
@media print{body{margin:0;max-width:none;font-size:11.5px}h2{margin-top:10px}}
"""


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def render_summary_html(analysis: Analysis, *, generated: str) -> str:
    """The one-page summary of ``analysis``."""
    b = analysis.benchmark
    d = b.data
    a = analysis.answer
    names = dict(a.names) if a is not None else {}
    pos = analysis.positive
    stores = ", ".join(f"{s.encoder_key} ({s.modality})" for s in d.stores)
    data = [f"Data set <b>{e(b.dataset)}</b>: {d.n_samples} samples"
            + (f" from {b.split.n_groups} patients" if b.split is not None else "")
            + f"; classes {e(', '.join(f'{k} {v}' for k, v in d.class_counts.items()))}.",
            f"Labels: {e(label_words(b.label_rule))}"
            + (f" (source: {e(analysis.label_source)})" if analysis.label_source else "") + ".",
            f"Features: {e(stores)}."]
    if pos is not None:
        data.append(f"Positive class <b>{e(pos.positive)}</b>, prevalence {pos.prevalence:.1%}.")
    if b.split is not None:
        data.append(f"Evaluation: {b.split.n_folds}-fold cross-validation x {b.split.n_repeats} "
                    "repeats, grouped by patient (no patient in both training and test); "
                    f"{len(b.cells)} models compared on the same splits.")
    answer = "".join(f"<li><b>{e(QUESTIONS[q])}</b> {e(s)}</li>" for q, s in a.sentences) \
        if a is not None else "<li>No computed cells.</li>"
    op = ""
    best = a.best if a is not None else None
    if best is not None and pos is not None:
        r = pos.row(best)
        rows = "".join(f"<tr><td>{TITLES[m]}</td><td>{_fmt(r[f'{m}_mean'])}</td>"
                       f"<td>{_fmt(r[f'{m}_ci_low'])} – {_fmt(r[f'{m}_ci_high'])}</td></tr>"
                       for m in POSITIVE_METRICS)
        op = (f"<h2>Chosen model and its operating point</h2><p><b>{e(names.get(best, best))}"
              f"</b> ({e(best)}), the best model on {e(a.metric)} "
              f"({b.cell(best).summary(a.metric)[0]:.3f}). At the most probable class "
              "(threshold 0.5):</p><table><thead><tr><th>Measure</th><th>Mean</th>"
              f"<th>95 % interval over CV splits</th></tr></thead><tbody>{rows}</tbody></table>")
        cal = next((c for c in analysis.calibration if c.cell == best and c.rule), None)
        if cal is not None:
            at = {r2["quantity"]: r2 for _, r2 in cal.operating.iterrows()}
            parts = "; ".join(
                f"{q} {_fmt(at[q]['at_threshold_mean'])} ({_fmt(at[q]['at_threshold_ci_low'])}–"
                f"{_fmt(at[q]['at_threshold_ci_high'])})" for q in ("sensitivity", "specificity",
                                                                   "ppv", "npv") if q in at)
            op += (f"<p>At the threshold chosen inside each training fold ({e(cal.rule)}): "
                   f"{e(parts)}.</p>")
    cav = "".join(f'<p class="caveat">{e(c)}</p>' for c in caveats(analysis))
    question = ("Does combining the chest X-ray with its radiology report (fusion) classify "
                "better than either alone, and which model should be used?")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(b.experiment)} — summary</title><style>{_CSS}</style></head><body>"
            f"<h1>{e(b.experiment)}: summary</h1><div class=\"sub\">Generated {e(generated)}; "
            "the full report (report.html) has every table and figure.</div>"
            f"<h2>Question</h2><p>{e(question)}</p>"
            f"<h2>Data</h2><ul>{''.join(f'<li>{x}</li>' for x in data)}</ul>"
            f"<h2>Answer</h2><ul>{answer}</ul>{op}<h2>Caveats</h2>{cav}"
            f"<footer>classify.report · {e(b.experiment)} · {e(generated)}</footer>"
            "</body></html>\n")
