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

