"""Label-vocabulary audit of pre-read text: how many indications mention a label term at all.

An indication ("rule out pneumonia", "follow-up of known effusion") is written before the
read, so it cannot copy the radiologist's finding; but it may name the finding the label is
made of, as a question or as history. :func:`label_term_audit` counts the texts that contain
any term of a :class:`~pipeline.labels.LabelMask` (the same terms ``--mask-labels`` hides)
so a report can state that share next to the score instead of a blanket leakage warning.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.labels.masking import LabelMask


@dataclass(frozen=True)
class TermAudit:
    """How many texts contain label-vocabulary terms.

    Attributes:
        n_texts: texts audited (empty ones included).
        n_nonempty: texts with any content.
        n_with_terms: non-empty texts containing at least one label term.
        top_terms: ``(term, number of texts containing it)``, most frequent first (<= 10).
        rule: the label rule whose terms were searched.
    """

    n_texts: int
    n_nonempty: int
    n_with_terms: int
    top_terms: tuple[tuple[str, int], ...]
    rule: str

    @property
    def share(self) -> float:
        """Share of the non-empty texts that contain a label term (NaN without any text)."""
        return self.n_with_terms / self.n_nonempty if self.n_nonempty else float("nan")

    def sentence(self, what: str = "indications") -> str:
        """One line for logs and reports."""
        top = ", ".join(f"'{t}' {n}" for t, n in self.top_terms[:5]) or "none"
        return (f"{self.n_with_terms} of {self.n_nonempty} non-empty {what} "
                f"({100 * self.share:.1f}%) contain a term of the label vocabulary of rule "
                f"{self.rule} (most frequent: {top}); such a mention is a clinical question or "
                "history written before the read, not the radiologist's finding")


def _term_regex(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"(?:e?s)?\b", re.IGNORECASE)


def label_term_audit(texts: Iterable[str], mask: LabelMask, *, top: int = 10) -> TermAudit:
    """Count the ``texts`` that contain any of ``mask``'s terms (word boundaries, any case,
    optional plural ending), and the most frequent terms."""
    texts = ["" if t is None else str(t) for t in texts]
    nonempty = [t for t in texts if t.strip()]
    patterns = [(term, _term_regex(term)) for term in mask.terms]
    counts: Counter[str] = Counter()
    n_hit = 0
    for text in nonempty:
        hits = {term for term, rx in patterns if rx.search(text)}
        if hits:
            n_hit += 1
            counts.update(hits)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return TermAudit(len(texts), len(nonempty), n_hit, tuple(ranked), mask.rule)
