"""Label rules, finding-tag normalisation and label-term masking.

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

Every dropped row carries a reason; :func:`apply_label_rule` counts them.

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
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.errors import ConfigError
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

MASK_TOKEN = "[MASK]"
NORMAL = "normal"
OTHER = "other"
ABNORMAL = "abnormal"

#: Tags that say nothing about the image; a row with only these is "unlabelled".
NON_FINDING_TAGS = frozenset({"no_indexing"})

#: OpenI MeSH *heading* (text before the first '/', lower case) -> finding name.
#: Covers the frequent headings of the 3,955 IU reports; anything else is slugged.
MESH_HEADING_MAP: Mapping[str, str] = MappingProxyType(
    {
        "normal": "normal",
        "no indexing": "no_indexing",
        "pulmonary atelectasis": "atelectasis",
        "atelectasis": "atelectasis",
        "atelectases": "atelectasis",
        "pleural effusion": "effusion",
        "pleural effusions": "effusion",
        "effusion": "effusion",
        "opacity": "opacity",
        "lung opacity": "opacity",
        "airspace disease": "airspace_disease",
        "consolidation": "consolidation",
        "pneumonia": "pneumonia",
        "infiltrate": "infiltrate",
        "infiltrates": "infiltrate",
        "cardiomegaly": "cardiomegaly",
        "calcified granuloma": "granuloma",
        "granuloma": "granuloma",
        "granulomatous disease": "granuloma",
        "nodule": "nodule",
        "nodules": "nodule",
        "mass": "mass",
        "lung lesion": "lung_lesion",
        "pulmonary emphysema": "emphysema",
        "emphysema": "emphysema",
        "pulmonary edema": "edema",
        "edema": "edema",
        "pulmonary congestion": "congestion",
        "pneumothorax": "pneumothorax",
        "cicatrix": "scarring",
        "calcinosis": "calcinosis",
        "catheters, indwelling": "device",
        "implanted medical device": "device",
        "surgical instruments": "device",
        "medical device": "device",
        "tube, inserted": "device",
        "stents": "device",
        "support devices": "device",
        "technical quality of image unsatisfactory": "technical_quality",
        "fractures, bone": "fracture",
        "fracture": "fracture",
        "pulmonary disease, chronic obstructive": "copd",
        "hernia, hiatal": "hiatal_hernia",
        "lung diseases, interstitial": "interstitial_disease",
        "pulmonary fibrosis": "fibrosis",
        "enlarged cardiomediastinum": "enlarged_cardiomediastinum",
        "no finding": "normal",
        "pleural other": "pleural_other",
    }
)

#: (heading, first subheading) pairs whose meaning is in the subheading.
MESH_SUBHEADING_MAP: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("cardiac shadow", "enlarged"): "cardiomegaly",
        ("heart", "enlarged"): "cardiomegaly",
        ("lung", "hypoinflation"): "hypoinflation",
        ("lung", "hyperdistention"): "hyperinflation",
    }
)

#: Finding name -> terms (with common synonyms) used by :func:`mask_label_terms`.
FINDING_TERMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "normal": (
            "normal",
            "normally",
            "within normal limits",
            "no acute",
            "unremarkable",
            "clear",
            "no active disease",
            "no abnormality",
            "no abnormalities",
            "negative chest",
            "no acute cardiopulmonary",
            "no acute disease",
        ),
        "cardiomegaly": (
            "cardiomegaly",
            "enlarged heart",
            "heart is enlarged",
            "heart size is enlarged",
            "heart is large",
            "cardiac enlargement",
            "heart enlargement",
            "enlarged cardiac silhouette",
            "cardiac silhouette is enlarged",
            "enlargement of the cardiac silhouette",
            "enlarged cardiomediastinal silhouette",
            "cardiomediastinal silhouette is enlarged",
            "enlarged cardiac shadow",
            "cardiac shadow is enlarged",
            "enlarged cardiac",
            "cardiac contour is enlarged",
            "enlarged cardiomediastinal",
        ),
        "effusion": (
            "effusion",
            "effusions",
            "pleural effusion",
            "pleural effusions",
            "pleural fluid",
            "hydrothorax",
            "blunting of the costophrenic angle",
            "blunting of the costophrenic angles",
            "blunted costophrenic angle",
            "blunted costophrenic angles",
            "costophrenic blunting",
            "costophrenic angle blunting",
        ),
        "opacity": (
            "opacity",
            "opacities",
            "opacification",
            "opacifications",
            "opacified",
            "density",
            "densities",
            "airspace disease",
            "air space disease",
            "airspace opacity",
            "infiltrate",
            "infiltrates",
            "consolidation",
        ),
        "pneumonia": (
            "pneumonia",
            "pneumonias",
            "pneumonic",
            "parapneumonic",
            "pneumonitis",
            "bronchopneumonia",
            "consolidation",
            "consolidations",
            "consolidative",
            "infiltrate",
            "infiltrates",
            "airspace disease",
            "air space disease",
            "infection",
            "infectious process",
        ),
        "consolidation": (
            "consolidation",
            "consolidations",
            "consolidative",
            "consolidated",
            "airspace disease",
            "air space disease",
        ),
        "infiltrate": ("infiltrate", "infiltrates", "infiltration", "infiltrative"),
        "airspace_disease": ("airspace disease", "air space disease", "airspace opacity"),
        "atelectasis": (
            "atelectasis",
            "atelectases",
            "atelectatic",
            "volume loss",
            "collapse",
            "collapsed",
            "plate-like",
            "platelike",
            "discoid",
        ),
        "nodule": (
            "nodule",
            "nodules",
            "nodular",
            "nodularity",
            "micronodular",
            "micronodules",
            "fibronodular",
            "reticulonodular",
            "mass",
            "masses",
            "granuloma",
            "granulomas",
            "granulomata",
            "granulomatous",
        ),
        "mass": ("mass", "masses", "lesion", "lesions", "neoplasm", "tumor", "tumour"),
        "granuloma": (
            "granuloma",
            "granulomas",
            "granulomata",
            "granulomatous",
            "calcified nodule",
            "calcified nodules",
        ),
        "edema": (
            "edema",
            "oedema",
            "vascular congestion",
            "congestion",
            "cephalization",
            "kerley",
            "interstitial markings",
        ),
        "congestion": ("congestion", "vascular congestion", "cephalization", "edema"),
        "pneumothorax": ("pneumothorax", "pneumothoraces"),
        "emphysema": (
            "emphysema",
            "emphysematous",
            "hyperinflation",
            "hyperinflated",
            "hyperexpanded",
            "hyperexpansion",
            "copd",
            "chronic obstructive",
        ),
        "hyperinflation": (
            "hyperinflation",
            "hyperinflated",
            "hyperexpanded",
            "hyperexpansion",
            "hyperaeration",
            "emphysema",
        ),
        "hypoinflation": (
            "hypoinflation",
            "hypoinflated",
            "low lung volumes",
            "low lung volume",
            "hypoventilatory",
            "poor inspiration",
            "shallow inspiration",
        ),
        "scarring": ("scarring", "scar", "scars", "cicatrix", "fibrotic"),
        "calcinosis": ("calcinosis", "calcification", "calcifications", "calcified"),
        "fracture": ("fracture", "fractures", "fractured"),
        "device": (
            "catheter",
            "catheters",
            "tube",
            "tubes",
            "line",
            "lines",
            "pacemaker",
            "stent",
            "stents",
            "device",
            "devices",
            "clips",
            "sternotomy wires",
        ),
    }
)

# Words that may sit between the words of a term ("heart is *mildly* enlarged").
_MODIFIERS = (
    r"(?:(?:mildly|moderately|markedly|severely|slightly|minimally|significantly|stably|again|borderline"
    r"|still|now|somewhat|probably|likely)\s+)?"
)
# Negation prefix: "no", "without", "negative for", "no evidence of a", ... plus up to four
# short words before the term ("no focal airspace disease", "no XXXX of a pleural effusion").
_NEGATION = r"(?:\b(?:no|not|without|negative\s+for|free\s+of|absence\s+of|resolved)\s+(?:[\w-]+\s+){0,4}?)?"


@dataclass(frozen=True)
class LabelRule:
    """A label rule by name with its parameters (see the module docstring).

    Build with :meth:`from_spec` (``'finding_vs_rest:Cardiomegaly'``,
    ``'top_k_multiclass:k=5,include_normal=true'`` or a dict); the constructor
    is validated the same way.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fn_meta = _rule_meta(self.name)
        object.__setattr__(
            self,
            "params",
            MappingProxyType(_validate_params(self.name, fn_meta, dict(self.params))),
        )

    def __hash__(self) -> int:
        return hash(self.spec)

    @classmethod
    def from_spec(cls, spec: str | Mapping[str, Any] | LabelRule) -> LabelRule:
        """Parse ``'name'``, ``'name:value'``, ``'name:key=value,key=value'`` or a dict
        (``{'name': ..., 'params': {...}}`` or ``{'name': ..., key: value}``)."""
        if isinstance(spec, LabelRule):
            return spec
        if isinstance(spec, Mapping):
            data = dict(spec)
            name = data.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(
                    f"label rule spec {spec!r} has no 'name'; write e.g. "
                    f"{{'name': 'finding_vs_rest', 'finding': 'cardiomegaly'}}. Valid rules: "
                    f"{', '.join(LABEL_RULES.names())}."
                )
            params = dict(data.pop("params", {}) or {})
            params.update(data)
            return cls(name, params)
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError(
                f"label rule spec {spec!r} is not a string or mapping; write e.g. "
                f"'normal_vs_abnormal' or 'finding_vs_rest:cardiomegaly'."
            )
        name, _, rest = spec.strip().partition(":")
        name = name.strip()
        meta = _rule_meta(name)
        params: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                primary = meta.get("primary")
                if primary is None or primary in params:
                    raise ConfigError(
                        f"label rule spec {spec!r}: cannot assign positional value {part!r}; "
                        f"write key=value pairs (parameters of {name!r}: "
                        f"{', '.join(meta.get('params', {})) or 'none'})."
                    )
                key, value = primary, part
            params[key.strip()] = value.strip()
        return cls(name, params)

    @property
    def spec(self) -> str:
        """Canonical string form, accepted by :meth:`from_spec`."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.params.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class LabelAssignment:
    """Result of applying a rule to a sequence of tag lists (one per row).

    ``labels[i]`` is the class name or None when row ``i`` is dropped, in which
    case ``reasons[i]`` says why. ``dropped`` counts the reasons.
    """

    rule: LabelRule
    labels: tuple[str | None, ...]
    reasons: tuple[str | None, ...]
    classes: tuple[str, ...]
    dropped: Mapping[str, int]

    @property
    def kept(self) -> tuple[bool, ...]:
        return tuple(lab is not None for lab in self.labels)

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(lab for lab in self.labels if lab is not None).items()))


RuleFn = Callable[..., tuple[list[str | None], list[str | None], tuple[str, ...]]]
LABEL_RULES: Registry[RuleFn] = Registry("label rule")


# --------------------------------------------------------------------------- tags


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def normalize_tag(raw: str) -> str:
    """Map one raw tag (an OpenI MeSH heading path or a finding name) to a finding name.

    ``'Pulmonary Atelectasis/base/left'`` -> ``'atelectasis'``,
    ``'Cardiac Shadow/enlarged'`` -> ``'cardiomegaly'``, ``'Pleural Effusion'`` -> ``'effusion'``,
    ``'Thoracic Vertebrae/degenerative'`` -> ``'thoracic_vertebrae'``.
    """
    parts = [p.strip().lower() for p in str(raw).split("/")]
    heading = re.sub(r"\s+", " ", parts[0])
    if len(parts) > 1 and (heading, parts[1]) in MESH_SUBHEADING_MAP:
        return MESH_SUBHEADING_MAP[(heading, parts[1])]
    if heading in MESH_HEADING_MAP:
        return MESH_HEADING_MAP[heading]
    slug = _slug(heading)
    return MESH_HEADING_MAP.get(slug.replace("_", " "), slug)


def normalize_tags(raw_tags: Iterable[str]) -> list[str]:
    """Normalise and de-duplicate (first occurrence order); empty tags are skipped."""
    out: list[str] = []
    for raw in raw_tags:
        if raw is None or not str(raw).strip():
            continue
        tag = normalize_tag(raw)
        if tag and tag not in out:
            out.append(tag)
    return out


def split_tags(joined: str | float | None) -> list[str]:
    """Split a manifest ``tags`` cell (';'-joined) into a list."""
    if joined is None or not isinstance(joined, str):
        return []
    return [t.strip() for t in joined.split(";") if t.strip()]


def normalize_finding(name: str) -> str:
    """A user-given finding name ('Cardiomegaly', 'Pleural Effusion') -> finding tag."""
    return normalize_tag(str(name))


# --------------------------------------------------------------------------- rules


def _rule_meta(name: str) -> dict[str, Any]:
    return LABEL_RULES.meta(name)  # raises UnknownNameError listing valid rules


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _coerce(rule: str, key: str, kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
    elif kind is int:
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            pass
    elif kind is str:
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise ConfigError(
        f"label rule {rule!r}: parameter {key!r}={value!r} is not a valid {kind.__name__}; "
        f"fix the label rule spec (e.g. '{rule}:{key}=...')."
    )


def _validate_params(name: str, meta: Mapping[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    schema: Mapping[str, type] = meta.get("params", {})
    defaults: Mapping[str, Any] = meta.get("defaults", {})
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise ConfigError(
            f"label rule {name!r} got unknown parameter(s) {unknown}; valid parameters: "
            f"{', '.join(schema) or 'none'}."
        )
    out: dict[str, Any] = {}
    for key, kind in schema.items():
        if key in params:
            out[key] = _coerce(name, key, kind, params[key])
        elif key in defaults:
            out[key] = defaults[key]
        else:
            raise ConfigError(
                f"label rule {name!r} needs parameter {key!r}; write e.g. '{name}:{key}=...'"
                + (" (e.g. 'finding_vs_rest:cardiomegaly')." if key == "finding" else ".")
            )
    if "finding" in out:
        out["finding"] = normalize_finding(out["finding"])
    if name == "top_k_multiclass" and out["k"] < 2:
        raise ConfigError(
            f"label rule 'top_k_multiclass' needs k >= 2 (got {out['k']}); "
            f"use 'finding_vs_rest:<finding>' for a single finding."
        )
    return out


def _finding_tags(tags: Iterable[str]) -> set[str]:
    return {t for t in tags if t not in NON_FINDING_TAGS}


@LABEL_RULES.register("normal_vs_abnormal", params={}, primary=None)
def _normal_vs_abnormal(rows: Sequence[Sequence[str]]):
    labels: list[str | None] = []
    reasons: list[str | None] = []
    for tags in rows:
        found = _finding_tags(tags)
        if not found:
            labels.append(None)
            reasons.append("unlabelled")
        elif found == {NORMAL}:
            labels.append(NORMAL)
            reasons.append(None)
        elif NORMAL in found:
            labels.append(None)
            reasons.append("conflicting_normal")
        else:
            labels.append(ABNORMAL)
            reasons.append(None)
    return labels, reasons, (ABNORMAL, NORMAL)


@LABEL_RULES.register("finding_vs_rest", params={"finding": str}, primary="finding")
def _finding_vs_rest(rows: Sequence[Sequence[str]], *, finding: str):
    labels: list[str | None] = []
    reasons: list[str | None] = []
    seen = Counter()
    for tags in rows:
        found = _finding_tags(tags)
        seen.update(found)
        if not found:
            labels.append(None)
            reasons.append("unlabelled")
        else:
            labels.append(finding if finding in found else OTHER)
            reasons.append(None)
    if rows and seen and finding not in seen:
        common = ", ".join(t for t, _ in seen.most_common(15))
        raise ConfigError(
            f"label rule 'finding_vs_rest': finding {finding!r} never occurs in the tags; "
            f"pick one that does (most frequent: {common})."
        )
    return labels, reasons, (finding, OTHER)


@LABEL_RULES.register(
    "top_k_multiclass",
    params={"k": int, "include_normal": bool},
    defaults={"include_normal": False},
    primary="k",
)
def _top_k_multiclass(rows: Sequence[Sequence[str]], *, k: int, include_normal: bool):
    freq = Counter()
    for tags in rows:
        freq.update(_finding_tags(tags) - {NORMAL})
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) < k:
        raise ConfigError(
            f"label rule 'top_k_multiclass': k={k} but only {len(ranked)} distinct findings occur; "
            f"lower k."
        )
    classes = [t for t, _ in ranked[:k]] + ([NORMAL] if include_normal else [])
    wanted = set(classes)
    labels: list[str | None] = []
    reasons: list[str | None] = []
    for tags in rows:
        found = _finding_tags(tags)
        hit = sorted(found & wanted)
        if not found:
            labels.append(None)
            reasons.append("unlabelled")
        elif len(hit) == 1:
            labels.append(hit[0])
            reasons.append(None)
        elif not hit:
            labels.append(None)
            reasons.append("no_top_k_finding")
        else:
            labels.append(None)
            reasons.append("multiple_top_k_findings")
    return labels, reasons, tuple(classes)


def apply_label_rule(
    rule: LabelRule | str | Mapping[str, Any], rows: Sequence[Sequence[str] | str]
) -> LabelAssignment:
    """Apply ``rule`` to one tag list per row (a list of tags or a ';'-joined string)."""
    rule = LabelRule.from_spec(rule)
    tag_rows = [split_tags(r) if isinstance(r, str) or r is None else list(r) for r in rows]
    fn = LABEL_RULES.get(rule.name)
    labels, reasons, classes = fn(tag_rows, **dict(rule.params))
    dropped = dict(sorted(Counter(r for r in reasons if r is not None).items()))
    if dropped:
        logger.info("label rule %s dropped %s", rule.spec, dropped)
    return LabelAssignment(
        rule, tuple(labels), tuple(reasons), tuple(classes), MappingProxyType(dropped)
    )


# --------------------------------------------------------------------------- masking


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


#: Words a tag-vocabulary entry never contributes *on its own* (they are still masked inside
#: a full heading phrase such as "pulmonary artery"): anatomy, position, degree/extent and
#: stop words. OpenI MeSH subheadings are mostly such words ("lung", "right", "upper lobe",
#: "mild"); masking them would blank out every report without hiding the label. Subheading
#: words *not* listed here are descriptors of the finding ("tortuous", "degenerative",
#: "blunted", "enlarged") and are masked.
KEEP_WORDS = frozenset(
    """
    a an and the of in on to for with without by or at as is are not other
    lung lungs pulmonary heart cardiac chest thorax thoracic image bone bones body bodies
    disease diseases tissue shadow angle angles vessel vessels blood artery arteries valve valves
    right left bilateral unilateral upper lower middle base bases apex apices lobe lobes lobar
    multilobar hilum hila hilar lingula pleura pleural lymph node nodes rib ribs trachea carina
    bronchi bronchus alveoli breast abdomen neck shoulder clavicle sternum humerus mitral aortic
    coronary cervical lumbar atria atrium ventricle ventricles azygos paratracheal retrocardiac
    supracardiac cardiophrenic costophrenic posterior anterior medial lateral
    mild moderate severe small large multiple diffuse focal scattered borderline minimal
    chronic acute bilaterally
    """.split()
)

#: Normalised heading terms that are ordinary anatomical words used by almost every report,
#: normal or not ("lungs are clear", "heart size is normal"); the rare tags with only such a
#: heading ('Lung/hilum', 'Heart/right') are not masked. Documented residual: tests allow
#: < 2% of abnormal reports to keep their own heading term because of this list.
UNMASKED_HEADING_TERMS = frozenset({"lung", "heart"})

#: Report wording of frequent OpenI headings that are not findings in FINDING_TERMS
#: (adjective forms, common synonyms). Used only through a tag vocabulary.
HEADING_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "aorta": ("aortic knob", "aortic arch", "aortic contour", "aortic calcification",
                  "aortic tortuosity", "ectatic", "ectasia", "unfolded", "unfolding",
                  "tortuosity", "tortuous"),
        "atherosclerosis": ("atherosclerotic", "atheromatous"),
        "spine": ("spinal", "degenerative", "degenerative changes", "spondylitic"),
        "thoracic_vertebrae": ("degenerative", "degenerative changes", "vertebral", "vertebra",
                               "vertebral bodies", "thoracic spine"),
        "diaphragm": ("hemidiaphragm", "hemidiaphragms", "diaphragmatic", "diaphragms"),
        "scoliosis": ("scoliotic", "curvature"),
        "spondylosis": ("spondylitic", "spondylotic", "degenerative"),
        "osteophyte": ("osteophytes", "osteophytic", "spurring", "spurs", "spur"),
        "hiatal_hernia": ("hiatal hernia", "hiatus hernia", "hernia"),
        "kyphosis": ("kyphotic", "kyphoscoliosis"),
        "deformity": ("deformities", "deformed"),
        "markings": ("interstitial markings", "interstitial prominence", "prominent interstitial"),
        "thickening": ("thickened",),
        "arthritis": ("arthritic", "degenerative"),
        "mediastinum": ("mediastinal widening", "widened mediastinum"),
        "shift": ("shifted", "deviation", "deviated"),
        "lucency": ("lucencies", "lucent"),
        "costophrenic_angle": ("costophrenic", "blunting", "blunted"),
    }
)


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
