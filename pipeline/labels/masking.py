"""Label-term masking: the terms that reveal a rule's label, and replacing them by ``[MASK]``."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.labels.rules import LabelRule
from pipeline.labels.tags import normalize_finding, normalize_tag, split_tags
from pipeline.labels.vocabulary import (
    FINDING_TERMS,
    HEADING_SYNONYMS,
    KEEP_WORDS,
    NON_FINDING_TAGS,
    NORMAL,
    OTHER,
    UNMASKED_HEADING_TERMS,
)

MASK_TOKEN = "[MASK]"

# Words that may sit between the words of a term ("heart is *mildly* enlarged").
_MODIFIERS = (
    r"(?:(?:mildly|moderately|markedly|severely|slightly|minimally|significantly|stably|again|borderline"
    r"|still|now|somewhat|probably|likely)\s+)?"
)
# Negation prefix: "no", "without", "negative for", "no evidence of a", ... plus up to four
# short words before the term ("no focal airspace disease", "no XXXX of a pleural effusion").
_NEGATION = r"(?:\b(?:no|not|without|negative\s+for|free\s+of|absence\s+of|resolved)\s+(?:[\w-]+\s+){0,4}?)?"



def finding_terms(finding: str) -> list[str]:
    """The finding's own term plus common report synonyms (lower case).

    Unknown findings give their name with '_' read as a space (e.g. ``'hiatal hernia'``).
    """
    tag = normalize_finding(finding)
    base = tag.replace("_", " ")
    terms = list(FINDING_TERMS.get(tag, ()))
    if base not in terms:
        terms.insert(0, base)
    return terms


def _singular(word: str) -> str | None:
    """A naive singular for a plural heading word ('fractures' -> 'fracture'), else None."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ae") and len(word) > 4:
        return word[:-1]
    if word.endswith("s") and not word.endswith(("ss", "is", "us")) and len(word) > 3:
        return word[:-1]
    return None


def _heading_phrases(heading: str) -> list[str]:
    """'hernia, hiatal' -> ['hernia, hiatal', 'hernia hiatal', 'hiatal hernia']."""
    heading = re.sub(r"\s+", " ", heading.strip().lower())
    out = [heading]
    if "," in heading:
        parts = [p.strip() for p in heading.split(",") if p.strip()]
        out += [" ".join(parts), " ".join(reversed(parts))]
    return out


def _content_words(text: str) -> list[str]:
    words = []
    for w in re.findall(r"[a-z][a-z-]+", text.lower()):
        if len(w) > 2 and w not in KEEP_WORDS:
            words.append(w)
            sing = _singular(w)
            if sing and sing not in KEEP_WORDS:
                words.append(sing)
    return words


def tag_vocabulary(
    tags: Iterable[str | float | None] = (), mesh_major: Iterable[str | float | None] = ()
) -> tuple[str, ...]:
    """The distinct tag entries of a table, sorted: each ';'-separated raw tag of ``mesh_major``
    (the MeSH heading path, lower case, e.g. ``'calcified granuloma/lung/upper lobe/right'``)
    and each normalised tag of ``tags`` (``'granuloma'``). Deterministic; used as the
    ``vocabulary`` of :func:`label_terms_for_rule`."""
    entries: set[str] = set()
    for column in (mesh_major, tags):
        for cell in column:
            for raw in split_tags(cell):
                entry = "/".join(re.sub(r"\s+", " ", p.strip().lower()) for p in raw.split("/"))
                if entry:
                    entries.add(entry)
    return tuple(sorted(entries))


def manifest_tag_vocabulary(frame: Any) -> tuple[str, ...]:
    """:func:`tag_vocabulary` of a manifest frame (columns ``tags`` and, when present,
    ``mesh_major``)."""
    cols = getattr(frame, "columns", ())
    tags = frame["tags"].tolist() if "tags" in cols else []
    major = frame["mesh_major"].tolist() if "mesh_major" in cols else []
    return tag_vocabulary(tags, major)


def vocabulary_entry_terms(entry: str) -> tuple[str, list[str]]:
    """(finding tag, terms) of one vocabulary entry (a raw tag path or a normalised tag).

    Terms: the finding's :func:`finding_terms` and :data:`HEADING_SYNONYMS`, the heading
    phrase (also re-ordered when MeSH-inverted: 'hernia, hiatal' -> 'hiatal hernia') and
    its content words, and the descriptive subheading words (not :data:`KEEP_WORDS`).
    A heading whose meaning is in its subheading ('lung/hypoinflation') contributes the
    subheading's finding, not the heading. Headings in :data:`UNMASKED_HEADING_TERMS`
    contribute only their descriptive subheadings.
    """
    tag = normalize_tag(entry)
    parts = [p.strip() for p in entry.lower().replace("_", " ").split("/")]
    heading, subs = parts[0], [p for p in parts[1:] if p]
    base = tag.replace("_", " ")
    terms: list[str] = []
    if base not in UNMASKED_HEADING_TERMS:
        terms += finding_terms(tag)
        terms += list(HEADING_SYNONYMS.get(tag, ()))
        if normalize_tag(heading) == tag:  # not a subheading-mapped heading ('lung/...')
            for phrase in _heading_phrases(heading):
                terms.append(phrase)
                terms += _content_words(phrase)
        terms += _content_words(base)
    for sub in subs:
        terms += _content_words(sub)
    return tag, terms


def label_terms_for_rule(
    rule: LabelRule | str | Mapping[str, Any],
    classes: Sequence[str] | None = None,
    vocabulary: Iterable[str] | None = None,
) -> list[str]:
    """Terms that reveal ``rule``'s label (deterministic order, no duplicates).

    Without ``vocabulary``: the known terms (:data:`FINDING_TERMS`) of the rule's findings;
    ``normal_vs_abnormal`` and ``top_k_multiclass`` without ``classes`` use every known
    finding; pass the resolved ``classes`` (``manifest.meta['label_classes']``) to narrow
    ``top_k``. With ``vocabulary`` (:func:`manifest_tag_vocabulary`, the table's own tags):
    additionally every entry's terms (:func:`vocabulary_entry_terms`) whose finding the
    rule uses - for ``normal_vs_abnormal`` *every* finding tag, since any tag other than
    ``normal`` makes a report abnormal.
    """
    rule = LabelRule.from_spec(rule)
    if rule.name == "finding_vs_rest":
        findings = [rule.params["finding"]]
    elif rule.name == "top_k_multiclass" and classes:
        findings = [c for c in classes if c != OTHER]
    else:
        findings = [NORMAL, *sorted(set(FINDING_TERMS) - {NORMAL})]
    terms: list[str] = []
    seen: set[str] = set()

    def add(items: Iterable[str]) -> None:
        for t in items:
            t = re.sub(r"\s+", " ", t.strip().lower())
            if t and t not in seen:
                seen.add(t)
                terms.append(t)

    for f in findings:
        add(finding_terms(f))
    if vocabulary is not None:
        every = rule.name == "normal_vs_abnormal" or (
            rule.name == "top_k_multiclass" and not classes
        )
        wanted = {normalize_finding(f) for f in findings}
        for entry in sorted(set(vocabulary)):
            tag, entry_terms = vocabulary_entry_terms(entry)
            if tag in NON_FINDING_TAGS or not (every or tag in wanted):
                continue
            add(entry_terms)
    return terms


@dataclass(frozen=True)
class LabelMask:
    """The masking of one rule over one tag vocabulary: its terms and their identity.

    Build with :meth:`for_rule`; ``sha256``/``size`` go into a store's provenance so that a
    masked store records exactly which vocabulary hid the label.
    """

    rule: str
    terms: tuple[str, ...]
    vocabulary_size: int

    @classmethod
    def for_rule(
        cls,
        rule: LabelRule | str | Mapping[str, Any],
        classes: Sequence[str] | None = None,
        vocabulary: Iterable[str] | None = None,
    ) -> LabelMask:
        rule = LabelRule.from_spec(rule)
        vocab = None if vocabulary is None else tuple(sorted(set(vocabulary)))
        terms = label_terms_for_rule(rule, classes, vocab)
        return cls(rule.spec, tuple(terms), len(vocab or ()))

    @property
    def size(self) -> int:
        return len(self.terms)

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.terms)).encode("utf-8")).hexdigest()

    def apply(self, text: str) -> str:
        return mask_terms(text, self.terms)

    def provenance(self) -> dict[str, Any]:
        return {
            "mask_terms_sha256": self.sha256,
            "mask_terms_size": self.size,
            "mask_tag_vocabulary_size": self.vocabulary_size,
        }


@functools.lru_cache(maxsize=64)
def _mask_regex(terms: tuple[str, ...]) -> re.Pattern[str]:
    alts = []
    for term in sorted(set(terms), key=lambda t: (-len(t), t)):
        words = [re.escape(w) for w in term.split()]
        alts.append((r"\s+" + _MODIFIERS).join(words))
    body = "|".join(alts)
    # optional plural ending: 'granuloma' also masks 'granulomas', 'mass' 'masses'
    return re.compile(rf"{_NEGATION}\b(?:{body})(?:e?s)?\b", re.IGNORECASE)


def mask_terms(text: str, terms: Sequence[str]) -> str:
    """Replace each term (and a negated form such as 'no ...' / 'without ...') by ``[MASK]``."""
    if not text or not terms:
        return text or ""
    return _mask_regex(tuple(terms)).sub(MASK_TOKEN, text)


def mask_label_terms(
    text: str,
    rule: LabelRule | str | Mapping[str, Any],
    classes: Sequence[str] | None = None,
    vocabulary: Iterable[str] | None = None,
) -> str:
    """Mask the terms of ``rule``'s label in ``text`` (case-insensitive, word boundaries).

    Pass the table's tag ``vocabulary`` (:func:`manifest_tag_vocabulary`) whenever labels
    come from tags; for many texts build a :class:`LabelMask` once instead.
    """
    return mask_terms(text, label_terms_for_rule(rule, classes, vocabulary))
