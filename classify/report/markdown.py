"""Render a report :class:`~classify.report.model.Document` as Markdown (figures linked).

Markdown passes raw HTML through, so every text that can come from data (sample ids,
report text, experiment and cell names) is HTML-escaped here, as the HTML report does.
"""

from __future__ import annotations

import html

from classify.report.html import COLLAPSE_ROWS, TOP_ROWS
from classify.report.model import (
    Block,
    Callout,
    Code,
    Document,
    Heading,
    KeyValues,
    Paragraph,
    RenderedFigure,
    Table,
    WarningList,
)


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell or line: HTML escaped (``<script>`` stays text),
    pipes escaped, one line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def table_to_markdown(t: Table) -> str:
    """A GitHub table with a bold title and the notes as a quote."""
    head = "| " + " | ".join(md_escape(c) for c in t.columns) + " |"
    sep = "|" + "|".join(":---" if i < t.numeric_from else "---:"
                         for i in range(len(t.columns))) + "|"
    body = []
    shown = t.rows if len(t.rows) <= COLLAPSE_ROWS else t.rows[:TOP_ROWS]
    for row in shown:
        cells = []
        for c in row:
            txt = md_escape(c.text) + (f" ({md_escape(c.sub)})" if c.sub else "")
            cells.append(f"**{txt}**" if c.bold else txt)
        body.append("| " + " | ".join(cells) + " |")
    out = [f"**{md_escape(t.title)}**", "", head, sep, *body]
    if len(t.rows) > len(shown):
        out += ["", f"_First {len(shown)} of {len(t.rows)} rows; all rows in "
                    f"[tables/{md_escape(t.name)}.csv](tables/{md_escape(t.name)}.csv)._"]
    if t.notes:
        out += [""] + [f"> {md_escape(n)}  " for n in t.notes]
    return "\n".join(out) + "\n"


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def block_to_markdown(b: Block, figure_dir: str) -> list[str]:
    """The lines of one block."""
    if isinstance(b, Table):
        return [table_to_markdown(b)]
    if isinstance(b, RenderedFigure):
        alt = md_escape(b.title).replace("[", "(").replace("]", ")")
        return [f"![{alt}]({figure_dir}/{md_escape(b.id)}.png)\n\n_{md_escape(b.caption)}_\n"]
    if isinstance(b, KeyValues):
        return [f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in b.items] + [""]
    if isinstance(b, Callout):
        return [f"**{md_escape(b.text)}**" if b.strong else md_escape(b.text), ""]
    if isinstance(b, Paragraph):
        return [f"_{md_escape(b.text)}_" if b.muted else md_escape(b.text), ""]
    if isinstance(b, Heading):
        return [f"### {md_escape(b.text)}", ""]
    if isinstance(b, Code):
        fence = _fence(b.text)
        return [f"{fence}{b.language}", b.text.rstrip(), fence, ""]
    if isinstance(b, WarningList):
        return [f"- **{md_escape(w.category)}:** {md_escape(w.text)}" for w in b.items] \
            or ["- none"]
    raise TypeError(f"no Markdown renderer for {type(b).__name__}")


def render_markdown(doc: Document, figure_dir: str = "figures") -> str:
    """The whole report; figures are linked from ``figure_dir``."""
    out = [f"# {md_escape(doc.title)}", "", f"_Generated {md_escape(doc.generated)}_", ""]
    for s in doc.sections:
        out += [f"## {md_escape(s.title)}", ""]
        for b in s.blocks:
            out += block_to_markdown(b, figure_dir)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
