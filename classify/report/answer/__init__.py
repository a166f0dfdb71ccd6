"""The answer first: the report's opening section (:mod:`.blocks`) and the one-page,
print-friendly ``summary.html`` for a clinician (:mod:`.summary_page`)."""

from classify.report.answer.blocks import answer_blocks, caveats
from classify.report.answer.summary_page import render_summary_html

__all__ = ["answer_blocks", "caveats", "render_summary_html"]
