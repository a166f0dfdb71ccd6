"""The free-text section parser (MIMIC-CXR and the CSV route): read text never lands in the pre-read columns."""

from __future__ import annotations

import pytest

from pipeline.sources.report_sections import parse_report

EFFUSION = ("Single portable AP chest radiograph demonstrates a new large right pleural "
            "effusion with adjacent atelectasis.")


@pytest.mark.parametrize("heading", ["HISTORY", "INDICATION", "CLINICAL HISTORY", "COMPARISON"])
def test_a_headingless_read_after_a_pre_read_section_is_findings(heading):
    """Issue 21 item 2: the paragraph after a blank line is the read, not the pre-read text."""
    parsed = parse_report(f"{heading}: Shortness of breath.\n\n{EFFUSION}\n\nIMPRESSION: Effusion.")
    assert parsed.findings == EFFUSION
    assert "effusion" not in parsed.indication.lower()
    assert "effusion" not in parsed.comparison.lower()
    assert parsed.impression == "Effusion."
    pre_read = parsed.indication or parsed.comparison
    assert pre_read == "Shortness of breath."


def test_a_headingless_read_before_findings_joins_findings_in_report_order():
    parsed = parse_report(f"INDICATION: Cough.\n\n{EFFUSION}\n\nFINDINGS: Heart normal.")
    assert parsed.indication == "Cough."
    assert parsed.findings == f"{EFFUSION} Heart normal."


def test_a_pre_read_section_on_several_lines_without_a_blank_line_stays_whole():
    parsed = parse_report("HISTORY: Cough,\nfever for two days.\nFINDINGS: Clear lungs.")
    assert parsed.indication == "Cough, fever for two days."
    assert parsed.findings == "Clear lungs."


def test_a_heading_alone_on_its_line_keeps_its_text_below():
    """'INDICATION:' then a blank line then the question: the question is still the indication."""
    parsed = parse_report("INDICATION:\n\nRule out pneumonia.\n\nFINDINGS: Clear.")
    assert parsed.indication == "Rule out pneumonia."
    assert parsed.findings == "Clear."
