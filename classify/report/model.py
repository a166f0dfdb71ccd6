"""The report's section model: a document is an ordered list of sections of typed blocks.

Built once from frozen results (:mod:`classify.report.sections`) and rendered by
every output format (:mod:`classify.report.html`, :mod:`classify.report.markdown`);
adding a section or a table means adding it to the one list, never to a renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from classify.analysis.run_warnings import ReportWarning


@dataclass(frozen=True)
class TCell:
    """One displayed table cell: text, bold flag and an optional second line."""

    text: str
    bold: bool = False
    sub: str = ""


@dataclass(frozen=True)
class Table:
    """A table: display cells for HTML/Markdown/LaTeX and raw numbers for CSV."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[TCell, ...], ...]
    raw: pd.DataFrame = field(hash=False)
    notes: tuple[str, ...] = ()
    numeric_from: int = 1  # first right-aligned column


@dataclass(frozen=True)
class RenderedFigure:
    """A figure rendered to PNG once, with its stable id, title and caption."""

    id: str
    title: str
    caption: str
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class Paragraph:
    """Running text; ``muted`` for secondary remarks."""

    text: str
    muted: bool = False


@dataclass(frozen=True)
class Callout:
    """A highlighted sentence; ``strong`` when it flags a problem."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class KeyValues:
    """A list of ``(key, value)`` facts."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Code:
    """Verbatim text (e.g. the experiment file)."""

    text: str
    language: str = ""


@dataclass(frozen=True)
class WarningList:
    """The report's warnings; empty means none were raised."""

    items: tuple[ReportWarning, ...]


Block = Paragraph | Callout | KeyValues | Heading | Code | WarningList | Table | RenderedFigure


@dataclass(frozen=True)
class Section:
    """One section: anchor id, navigation label, title and its blocks in order."""

    id: str
    nav: str
    title: str
    blocks: tuple[Block, ...]
    kind: str = ""  # "warnings" / "warnings-ok" styles the section


@dataclass(frozen=True)
class Document:
    """The whole report."""

    title: str
    subtitle: str
    chips: tuple[str, ...]
    generated: str
    sections: tuple[Section, ...]

    def tables(self) -> list[Table]:
        """Every table of the document, in order (for the CSV and LaTeX files)."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[RenderedFigure]:
        """Every figure of the document, in order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, RenderedFigure)]
