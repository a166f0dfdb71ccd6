"""Labels: finding-tag normalisation, label rules and label-term masking (public names re-exported here).

Labels live in the manifest (never in a feature store) and are derived from a
row's *normalised finding tags* (``Manifest.frame['tags']``, ';'-joined) by a
registered **label rule**:

``normal_vs_abnormal``
    ``normal`` if the only finding tag is ``normal``, ``abnormal`` if there is
    any other finding tag. Rows with no usable tag (OpenI "No Indexing", an empty
    CheXpert row) are dropped as ``unlabelled``; a row tagged ``normal`` *and*
    with findings is dropped as ``conflicting_normal``.
``finding_vs_rest`` (param ``finding``)
    ``<finding>`` if the finding tag is present, else ``other``.
``top_k_multiclass`` (params ``k``, ``include_normal=False``)
    single-label multiclass over the ``k`` most frequent finding tags of the
    table (ties broken by name; ``normal`` is excluded from the ranking and added
    as an extra class when ``include_normal``). Rows with none of the classes
    are dropped as ``no_top_k_finding``, rows with several as ``multiple_top_k_findings``.

Every dropped row carries a reason; :func:`apply_label_rule` counts them. Rows may also
carry *uncertain* findings (CheXpert -1): under U-Zeros a row whose only mentions are
uncertain is ``other`` for ``finding_vs_rest`` and dropped as ``uncertain_only`` by the
other rules; U-Ones reads them as present; U-Ignore drops a row as ``uncertain`` when its
label depends on them.

Tag normalisation (:func:`normalize_tag`) maps OpenI MeSH headings such as
``'Pulmonary Atelectasis/base/left'`` to finding names (``'atelectasis'``) via
:data:`MESH_HEADING_MAP` / :data:`MESH_SUBHEADING_MAP` (documented below); an
unmapped heading becomes its lower-case slug (``'Thoracic Vertebrae'`` ->
``'thoracic_vertebrae'``).

Leakage audit: OpenI labels come from the MeSH tags of the very report a text
encoder embeds, so a text-only score near 1.0 is the label leaking. Use
:func:`mask_label_terms` to replace a rule's own terms (and simple negations of
them, e.g. "no pleural effusion") with ``[MASK]`` before embedding. Pass the
table's own tag vocabulary (:func:`manifest_tag_vocabulary`): for
``normal_vs_abnormal`` *any* tag makes a report abnormal ('Spine/degenerative',
'Aorta/tortuous', 'Hernia, Hiatal'), so every heading (phrase, words, MeSH
re-ordering) and descriptive subheading is masked; anatomical/positional/degree
words (:data:`KEEP_WORDS`, e.g. 'lung', 'right', 'upper lobe') are not.
:class:`LabelMask` carries the resulting terms and their sha256 for provenance.

Modules: :mod:`~pipeline.labels.vocabulary` (data tables), :mod:`~pipeline.labels.tags`
(normalisation), :mod:`~pipeline.labels.rules` (rules and their registry),
:mod:`~pipeline.labels.masking` (label-term masking).
"""

from __future__ import annotations

from pipeline.labels.masking import (
    MASK_TOKEN,
    LabelMask,
    finding_terms,
    label_terms_for_rule,
    manifest_tag_vocabulary,
    mask_label_terms,
    mask_terms,
    tag_vocabulary,
    vocabulary_entry_terms,
)
from pipeline.labels.rules import LABEL_RULES, LabelAssignment, LabelRule, apply_label_rule
from pipeline.labels.tags import normalize_finding, normalize_tag, normalize_tags, split_tags
from pipeline.labels.vocabulary import (
    ABNORMAL,
    FINDING_TERMS,
    HEADING_SYNONYMS,
    KEEP_WORDS,
    MESH_HEADING_MAP,
    MESH_SUBHEADING_MAP,
    NON_FINDING_TAGS,
    NORMAL,
    OTHER,
    UNMASKED_HEADING_TERMS,
)

__all__ = [
    "ABNORMAL",
    "FINDING_TERMS",
    "HEADING_SYNONYMS",
    "KEEP_WORDS",
    "LABEL_RULES",
    "MASK_TOKEN",
    "MESH_HEADING_MAP",
    "MESH_SUBHEADING_MAP",
    "NON_FINDING_TAGS",
    "NORMAL",
    "OTHER",
    "UNMASKED_HEADING_TERMS",
    "LabelAssignment",
    "LabelMask",
    "LabelRule",
    "apply_label_rule",
    "finding_terms",
    "label_terms_for_rule",
    "manifest_tag_vocabulary",
    "mask_label_terms",
    "mask_terms",
    "normalize_finding",
    "normalize_tag",
    "normalize_tags",
    "split_tags",
    "tag_vocabulary",
    "vocabulary_entry_terms",
]
