"""Label rules: a ``LabelRule`` spec, the registered rules, and ``apply_label_rule`` with drop reasons."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.errors import ConfigError
from pipeline.labels.tags import normalize_finding, split_tags
from pipeline.labels.vocabulary import ABNORMAL, NON_FINDING_TAGS, NORMAL, OTHER
from pipeline.registry import Registry

logger = logging.getLogger(__name__)


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


def _no_finding_reason(was_read: bool, read_reason: str) -> str:
    return read_reason if was_read else "unlabelled"


@LABEL_RULES.register("normal_vs_abnormal", params={}, primary=None)
def _normal_vs_abnormal(rows: Sequence[Sequence[str]], *, read: Sequence[bool]):
    labels: list[str | None] = []
    reasons: list[str | None] = []
    for tags, was_read in zip(rows, read, strict=True):
        found = _finding_tags(tags)
        if not found:
            labels.append(None)
            reasons.append(_no_finding_reason(was_read, "uncertain_only"))
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
def _finding_vs_rest(rows: Sequence[Sequence[str]], *, read: Sequence[bool], finding: str):
    labels: list[str | None] = []
    reasons: list[str | None] = []
    seen = Counter()
    for tags, was_read in zip(rows, read, strict=True):
        found = _finding_tags(tags)
        seen.update(found)
        if not found and not was_read:
            labels.append(None)
            reasons.append("unlabelled")
        else:  # a read row without a positive finding is 'other' (the rule's "else other")
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
def _top_k_multiclass(
    rows: Sequence[Sequence[str]],
    *,
    read: Sequence[bool],
    k: int,
    include_normal: bool,
    classes: Sequence[str] | None = None,
):
    if classes is None:
        freq = Counter()
        for tags in rows:
            freq.update(_finding_tags(tags) - {NORMAL})
        ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(ranked) < k:
            raise ConfigError(
                f"label rule 'top_k_multiclass': k={k} but only {len(ranked)} distinct findings "
                f"occur; lower k."
            )
        classes = [t for t, _ in ranked[:k]] + ([NORMAL] if include_normal else [])
    wanted = set(classes)
    labels: list[str | None] = []
    reasons: list[str | None] = []
    for tags, was_read in zip(rows, read, strict=True):
        found = _finding_tags(tags)
        hit = sorted(found & wanted)
        if not found:
            labels.append(None)
            reasons.append(_no_finding_reason(was_read, "no_top_k_finding"))
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


#: How a row's uncertain findings (e.g. CheXpert -1) enter the rule: ``zeros`` (negative),
#: ``ones`` (positive), ``ignore`` (drop the row when its label depends on them).
UNCERTAIN_POLICY_NAMES = ("zeros", "ones", "ignore")


def _tag_rows(rows: Sequence[Sequence[str] | str | None]) -> list[list[str]]:
    return [split_tags(r) if isinstance(r, str) or r is None else list(r) for r in rows]


def apply_label_rule(
    rule: LabelRule | str | Mapping[str, Any],
    rows: Sequence[Sequence[str] | str],
    *,
    uncertain: Sequence[Sequence[str] | str] | None = None,
    policy: str = "zeros",
) -> LabelAssignment:
    """Apply ``rule`` to one tag list per row (a list of tags or a ';'-joined string).

    ``uncertain`` (one tag list per row, e.g. a study's CheXpert -1 findings) applies the
    uncertainty ``policy``: ``zeros`` reads them as negative (a row whose only mentions are
    uncertain has no positive finding: ``other`` for ``finding_vs_rest``, dropped as
    ``uncertain_only`` otherwise), ``ones`` as positive, ``ignore`` drops a row as
    ``uncertain`` when its label differs between the two. Without ``uncertain`` a row with no
    finding tag is ``unlabelled``.
    """
    rule = LabelRule.from_spec(rule)
    if policy not in UNCERTAIN_POLICY_NAMES:
        raise ConfigError(
            f"uncertain policy {policy!r} is invalid; use one of {', '.join(UNCERTAIN_POLICY_NAMES)}."
        )
    tag_rows = _tag_rows(rows)
    unc_rows = _tag_rows(uncertain) if uncertain is not None else [[] for _ in tag_rows]
    if len(unc_rows) != len(tag_rows):
        raise ValueError(f"{len(unc_rows)} uncertain rows for {len(tag_rows)} tag rows")
    fn = LABEL_RULES.get(rule.name)
    params = dict(rule.params)
    ones_rows = [list(dict.fromkeys([*t, *u])) for t, u in zip(tag_rows, unc_rows, strict=True)]
    if policy == "ones":
        labels, reasons, classes = fn(ones_rows, read=[False] * len(tag_rows), **params)
    else:
        labels, reasons, classes = fn(tag_rows, read=[bool(u) for u in unc_rows], **params)
    labels, reasons = list(labels), list(reasons)
    if policy == "ignore" and any(unc_rows):
        extra = {"classes": classes} if rule.name == "top_k_multiclass" else {}
        ones_labels, _, _ = fn(ones_rows, read=[False] * len(tag_rows), **params, **extra)
        for i, unc in enumerate(unc_rows):
            if unc and labels[i] != ones_labels[i]:
                labels[i], reasons[i] = None, "uncertain"
    dropped = dict(sorted(Counter(r for r in reasons if r is not None).items()))
    if dropped:
        logger.info("label rule %s dropped %s", rule.spec, dropped)
    return LabelAssignment(
        rule, tuple(labels), tuple(reasons), tuple(classes), MappingProxyType(dropped)
    )
