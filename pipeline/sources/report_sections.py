"""Free-text report sections (MIMIC-CXR style): headings in any case, WET READ / FINAL REPORT, read vs context.

A heading starts a line and ends with a colon (``FINDINGS:``, ``Findings :``,
``  impression:``). Known headings (:data:`HEADING_ALIASES`) are recognised in any case;
any other ALL-CAPS heading (``PA AND LATERAL VIEWS OF THE CHEST:``) starts a section of
its own. ``FINAL REPORT`` and ``WET READ`` need no colon. From the sections:

* ``findings``: the FINDINGS section; without one, the text under unknown headings and
  before the first heading (the read written under another name); '' if there is none.
* ``impression``: IMPRESSION, else CONCLUSION (both when both exist).
* ``indication``: INDICATION, HISTORY, CLINICAL HISTORY and REASON FOR EXAM, in report order
  (written when the exam was ordered, before the read).
* ``comparison``: COMPARISON.

A pre-read section (INDICATION, HISTORY, ..., COMPARISON) ends at its first blank line: a
paragraph that follows it without a heading of its own is the read written without a heading
(``HISTORY: Cough.`` + blank line + ``Portable AP chest radiograph demonstrates ...``), and goes
to ``findings`` in report order, never to the pre-read columns (which the text-only leakage
ceiling exempts).

A WET READ (the preliminary read before FINAL REPORT), EXAMINATION, TECHNIQUE, NOTIFICATION,
RECOMMENDATION and ADDENDUM text never goes into findings or impression. A report with no
heading at all is returned whole as findings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Heading as written (upper case, single spaces) -> canonical section name.
HEADING_ALIASES: Mapping[str, str] = {
    "FINDINGS": "FINDINGS",
    "FINDING": "FINDINGS",
    "IMPRESSION": "IMPRESSION",
    "IMPRESSIONS": "IMPRESSION",
    "CONCLUSION": "CONCLUSION",
    "CONCLUSIONS": "CONCLUSION",
    "INDICATION": "INDICATION",
    "INDICATIONS": "INDICATION",
    "CLINICAL INDICATION": "INDICATION",
    "HISTORY": "HISTORY",
    "CLINICAL HISTORY": "CLINICAL HISTORY",
    "REASON FOR EXAM": "REASON FOR EXAM",
    "REASON FOR EXAMINATION": "REASON FOR EXAM",
    "REASON FOR STUDY": "REASON FOR EXAM",
    "COMPARISON": "COMPARISON",
    "COMPARISONS": "COMPARISON",
    "EXAMINATION": "EXAMINATION",
    "EXAM": "EXAMINATION",
    "TECHNIQUE": "TECHNIQUE",
    "PROCEDURE": "TECHNIQUE",
    "WET READ": "WET READ",
    "FINAL REPORT": "FINAL REPORT",
    "NOTIFICATION": "NOTIFICATION",
    "RECOMMENDATION": "RECOMMENDATION",
    "RECOMMENDATIONS": "RECOMMENDATION",
    "RECOMMENDATION(S)": "RECOMMENDATION",
    "ADDENDUM": "ADDENDUM",
}
#: Sections written before the read (the non-leaking clinical context).
INDICATION_SECTIONS = ("INDICATION", "HISTORY", "CLINICAL HISTORY", "REASON FOR EXAM")
#: Pre-read sections: written before the read, they end at their first blank line.
_PRE_READ = frozenset((*INDICATION_SECTIONS, "COMPARISON"))
#: Name of a headingless paragraph split off a pre-read section (read text).
_UNHEADED = "(unheaded read)"
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
#: Known sections that are neither the read nor its context.
_NOT_THE_READ = frozenset(HEADING_ALIASES.values()) - {"FINDINGS", "IMPRESSION", "CONCLUSION"}

_HEADING_RE = re.compile(
    r"^[ \t]*(?:(?P<bare>FINAL REPORT|WET READ)\b[ \t]*:?|(?P<head>[A-Za-z][A-Za-z &/()-]{1,40}?)[ \t]*:)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class ReportSections:
    """The parts of one report that the manifest uses, plus every section found (canonical names)."""

    findings: str
    impression: str
    indication: str = ""
    comparison: str = ""
    sections: Mapping[str, str] = field(default_factory=dict)


_WS = re.compile(r"\s+")
_NOT_UPPER = re.compile(r"[^A-Z]")


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _heading(match: re.Match[str]) -> str | None:
    """Canonical name of a heading match; an unknown ALL-CAPS heading keeps its own name;
    None for text that only looks like one ('Heart size: normal')."""
    if match.group("bare"):
        return match.group("bare")
    raw = _WS.sub(" ", match.group("head")).strip()
    key = raw.upper()
    if key in HEADING_ALIASES:
        return HEADING_ALIASES[key]
    if raw == key and len(_NOT_UPPER.sub("", raw)) >= 3:
        return key
    return None


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p)


def parse_report(text: str) -> ReportSections:
    """Split a free-text report into its sections (see the module docstring)."""
    text = text or ""
    heads = [(m, name) for m in _HEADING_RE.finditer(text) if (name := _heading(m)) is not None]
    if not heads:
        return ReportSections(findings=_clean(text), impression="")
    order: list[tuple[str, str]] = []
    preamble = _clean(text[: heads[0][0].start()])
    for i, (m, name) in enumerate(heads):
        end = heads[i + 1][0].start() if i + 1 < len(heads) else len(text)
        body = text[m.end() : end]
        if name in _PRE_READ:  # its first paragraph; a headingless paragraph after it is read
            first, *rest = _BLANK_LINE.split(body.strip(), maxsplit=1)
            order.append((name, _clean(first)))
            if rest and _clean(rest[0]):
                order.append((_UNHEADED, _clean(rest[0])))
        else:
            order.append((name, _clean(body)))
    sections: dict[str, str] = {}
    for name, body in order:
        if name != _UNHEADED:
            sections[name] = _join([sections.get(name, ""), body])
    findings = _join([body for name, body in order if name in ("FINDINGS", _UNHEADED)])
    if "FINDINGS" not in sections:
        unknown = [body for name, body in order if name not in _NOT_THE_READ
                   and name not in {"IMPRESSION", "CONCLUSION"}]
        findings = _join([preamble, *unknown])
    impression = _join([sections.get("IMPRESSION", ""), sections.get("CONCLUSION", "")])
    indication = _join([body for name, body in order if name in INDICATION_SECTIONS])
    return ReportSections(
        findings=findings,
        impression=impression,
        indication=indication,
        comparison=sections.get("COMPARISON", ""),
        sections=sections,
    )


def parse_report_sections(text: str) -> tuple[str, str]:
    """(findings, impression) of a free-text report (see :func:`parse_report`)."""
    parsed = parse_report(text)
    return parsed.findings, parsed.impression
