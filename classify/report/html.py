"""Render a report :class:`~classify.report.model.Document` as one self-contained HTML page.

Inline CSS, figures embedded as base64 PNG data URIs, every user-provided text escaped.
"""

from __future__ import annotations

import base64
import html

from classify.report.model import (
    Block,
    Callout,
    Code,
    Document,
    Heading,
    KeyValues,
    Paragraph,
    RenderedFigure,
    Section,
    Table,
    WarningList,
)

#: Tables with more rows show only their first TOP_ROWS rows and link to their CSV file.
COLLAPSE_ROWS = 30
TOP_ROWS = 12
#: Sections shown open; every other section is collapsed (<details>) under its title.
LEAD_SECTIONS = ("answer", "summary", "warnings")

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--accent:#2f5d8a;--bg:#f5f7fa;
--warn-bg:#fff8e6;--warn-line:#f0b429;--best:#e3f0fb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#102a43;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 6px;font-size:24px;font-weight:600}
header .sub{color:#bcccdc;font-size:13px}
.chips{margin-top:12px;display:flex;flex-wrap:wrap;gap:8px}
.chip{background:#243b53;border-radius:12px;padding:3px 10px;font-size:12px;color:#d9e2ec}
nav{background:#fff;border-bottom:1px solid var(--line);padding:10px 40px;position:sticky;top:0;
z-index:5}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:13px;font-weight:500}
main{max-width:1320px;margin:0 auto;padding:24px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 26px;
margin:0 0 22px}
h2{font-size:19px;margin:0 0 14px;padding-bottom:8px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:22px 0 8px;color:#243b53}
p{margin:6px 0 10px}
.muted{color:var(--muted)}
.table-block{margin:12px 0 20px}
.table-title{font-weight:600;margin-bottom:6px}
.table-scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;width:auto;min-width:50%}
th{background:#f0f4f8;font-weight:600;border-bottom:2px solid #9fb3c8;padding:6px 8px}
td{padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#eef4fb}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.txt,td.txt{text-align:left}
td.best{background:var(--best)}
.ci{display:block;font-size:10.5px;color:var(--muted);font-weight:normal}
ul.notes{margin:6px 0 0;padding-left:18px;color:var(--muted);font-size:12px}
figure{margin:16px 0 24px;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;
background:#fff}
figcaption{font-size:12.5px;color:var(--muted);max-width:900px;margin:6px auto 0;
text-align:left}
figcaption b{color:var(--ink)}
.warnbox{background:var(--warn-bg);border:1px solid var(--warn-line);
border-left:6px solid var(--warn-line);border-radius:6px;padding:12px 18px}
.warnbox h2{border:0;margin:0 0 6px;padding:0}
.warnbox ul{margin:0;padding-left:0;list-style:none}
.warnbox li{margin:4px 0;padding-left:0}
.tag{display:inline-block;min-width:86px;font-size:11px;font-weight:600;text-transform:uppercase;
letter-spacing:.03em;color:#8d2b0b;background:#ffe8d9;border-radius:3px;padding:1px 6px;
margin-right:8px;text-align:center}
.ok{background:#e3f9e5;border:1px solid #7bc47f;border-left:6px solid #3f9142}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:6px 28px}
.kv{font-size:13px;display:grid;grid-template-columns:160px 1fr}.kv b{color:#334e68}
pre{background:#f0f4f8;border:1px solid var(--line);border-radius:4px;padding:12px;overflow-x:auto;
font-size:12px;line-height:1.4}
.callout{background:#f0f4f8;border-radius:6px;padding:10px 14px;margin:10px 0}
details summary{cursor:pointer;color:var(--accent);font-size:12.5px;margin:4px 0}
details.sec>summary{list-style:none;margin:0}details.sec>summary h2{display:inline-block;margin:0;
border:0;padding:0}details.sec>summary::before{content:"\\25B8  ";color:var(--accent)}
details.sec[open]>summary::before{content:"\\25BE  "}
#answer .callout{font-size:14.5px;background:#e3f0fb;margin-top:2px}#answer h3{margin:14px 0 2px}
.callout.strong,#answer .callout.strong{background:var(--warn-bg);border-left:5px solid var(--warn-line)}
@media print{nav{display:none}details.sec>summary::before{content:""}}
footer{text-align:center;color:var(--muted);font-size:12px;padding:10px}
"""

e = html.escape


def table_to_html(t: Table) -> str:
    """A table block: title, scrollable table (collapsed when long), notes."""
    head = "".join(f'<th class="{"num" if i >= t.numeric_from else "txt"}">{e(c)}</th>'
                   for i, c in enumerate(t.columns))
    body = []
    shown = t.rows if len(t.rows) <= COLLAPSE_ROWS else t.rows[:TOP_ROWS]
    for row in shown:
        tds = []
        for i, c in enumerate(row):
            cls = ["num" if i >= t.numeric_from else "txt"] + (["best"] if c.bold else [])
            inner = f"<strong>{e(c.text)}</strong>" if c.bold else e(c.text)
            if c.sub:
                inner += f'<span class="ci">{e(c.sub)}</span>'
            tds.append(f'<td class="{" ".join(cls)}">{inner}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    notes = "".join(f"<li>{e(n)}</li>" for n in t.notes)
    table = (f'<div class="table-scroll"><table><thead><tr>{head}</tr></thead><tbody>'
             f'{"".join(body)}</tbody></table></div>')
    if len(t.rows) > COLLAPSE_ROWS:
        table += (f'<p class="muted">First {TOP_ROWS} of {len(t.rows)} rows; all rows in '
                  f'<a href="tables/{e(t.name)}.csv">tables/{e(t.name)}.csv</a>.</p>')
    return (f'<div class="table-block" id="tab-{e(t.name)}"><div class="table-title">{e(t.title)}'
            f"</div>{table}" + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</div>")


def figure_to_html(f: RenderedFigure) -> str:
    """A ``<figure>`` with the PNG as a data URI and its caption."""
    b64 = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img id="{e(f.id)}" alt="{e(f.id)}: {e(f.title)}" '
            f'src="data:image/png;base64,{b64}"><figcaption><b>{e(f.title)}.</b> {e(f.caption)}'
            "</figcaption></figure>")


def block_to_html(b: Block) -> str:
    """One block of a section."""
    if isinstance(b, Table):
        return table_to_html(b)
    if isinstance(b, RenderedFigure):
        return figure_to_html(b)
    if isinstance(b, KeyValues):
        kv = "".join(f'<div class="kv"><b>{e(k)}</b>{e(v)}</div>' for k, v in b.items)
        return f'<div class="grid2">{kv}</div>'
    if isinstance(b, Callout):
        return f'<div class="callout{" strong" if b.strong else ""}">{e(b.text)}</div>'
    if isinstance(b, Paragraph):
        return f'<p class="muted">{e(b.text)}</p>' if b.muted else f"<p>{e(b.text)}</p>"
    if isinstance(b, Heading):
        return f"<h3>{e(b.text)}</h3>"
    if isinstance(b, Code):
        return f"<pre>{e(b.text)}</pre>"
    if isinstance(b, WarningList):
        if not b.items:
            return "<p>No warnings were raised.</p>"
        return "<ul>" + "".join(f'<li><span class="tag">{e(w.category)}</span>{e(w.text)}</li>'
                                for w in b.items) + "</ul>"
    raise TypeError(f"no HTML renderer for {type(b).__name__}")


def section_to_html(s: Section) -> str:
    """A section; the lead sections (:data:`LEAD_SECTIONS`) open, the others collapsed."""
    cls = {"warnings": ' class="warnbox"', "warnings-ok": ' class="warnbox ok"'}.get(s.kind, "")
    inner = "".join(block_to_html(b) for b in s.blocks)
    if s.id in LEAD_SECTIONS:
        return f'<section id="{e(s.id)}"{cls}><h2>{e(s.title)}</h2>{inner}</section>'
    return (f'<section id="{e(s.id)}"{cls}><details class="sec"><summary><h2>{e(s.title)}</h2>'
            f"</summary>{inner}</details></section>")


def render_html(doc: Document) -> str:
    """The whole page."""
    nav = "".join(f'<a href="#{e(s.id)}">{e(s.nav)}</a>' for s in doc.sections)
    header = (f"<header><h1>{e(doc.title)}</h1><div class=\"sub\">{e(doc.subtitle)}</div>"
              '<div class="chips">' + "".join(f'<span class="chip">{e(c)}</span>'
                                              for c in doc.chips) + "</div></header>")
    body = (header + f"<nav>{nav}</nav><main>"
            + "".join(section_to_html(s) for s in doc.sections)
            + f"</main><footer>classify.report · {e(doc.title)} · {e(doc.generated)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(doc.title)} — benchmark report</title><style>{_CSS}</style></head>"
            f"<body>{body}</body></html>\n")
