"""The answer first: planned comparisons for the experiment's questions, names for readers and
positive-class headline metrics (:mod:`.planned`, :mod:`.names`, :mod:`.positive`)."""

from classify.analysis.answer.names import reader_names
from classify.analysis.answer.planned import ANSWER_COLUMNS, QUESTIONS, Answer, answer_questions
from classify.analysis.answer.positive import PositiveClassSummary, positive_class_summary

__all__ = ["ANSWER_COLUMNS", "QUESTIONS", "Answer", "PositiveClassSummary", "answer_questions",
           "positive_class_summary", "reader_names"]
