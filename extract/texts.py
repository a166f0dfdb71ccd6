"""Report texts of a manifest for the text encoders: text mode selection and label-term masking."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, ManifestError

if TYPE_CHECKING:
    from pipeline.labels import LabelMask
    from pipeline.manifest import Manifest


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def select_text(row: dict[str, Any], mode: str) -> str:
    """The text a row contributes in ``mode`` ('findings', 'impression', 'both', 'indication').

    'both' is the manifest's ``report_text`` (findings + impression by contract, the same
    as ``Manifest.text('both')``); when that is empty, findings and impression are joined.
    'indication' is the clinical question written before the read (manifest column
    ``indication``). Whitespace is normalised.
    """
    if mode == "indication":
        return _clean(row.get("indication"))
    findings, impression = _clean(row.get("findings")), _clean(row.get("impression"))
    if mode == "findings":
        return findings
    if mode == "impression":
        return impression
    if mode != "both":
        raise ConfigError(
            f"text mode {mode!r} is not one of findings, impression, both, indication"
        )
    return _clean(row.get("report_text")) or " ".join(t for t in (findings, impression) if t)


def manifest_label_mask(manifest: Manifest) -> LabelMask:
    """The :class:`pipeline.labels.LabelMask` of a manifest: its label rule's terms plus the
    terms of every tag of its own vocabulary the rule uses (``tags`` and ``mesh_major``
    columns, :func:`pipeline.labels.manifest_tag_vocabulary`), so that e.g. an OpenI report
    labelled 'abnormal' because of a 'Spine/degenerative' tag has 'spine'/'degenerative'
    masked too. A CSV whose labels come from the report column of a finding records that
    finding as ``mask_rule`` instead (``finding_vs_rest:<column>``). Deterministic for a given
    manifest; its hash goes into store provenance."""
    spec = manifest.meta.get("label_rule") or manifest.meta.get("mask_rule")
    if not spec:
        raise ConfigError(
            f"mask_labels needs the label rule of manifest {manifest.name!r}, but its sidecar JSON "
            "has no 'label_rule'; rebuild the manifest with `pipeline data` (it records the rule) "
            "or run without --mask-labels"
        )
    from pipeline.labels import LabelMask, LabelRule, manifest_tag_vocabulary

    rule = LabelRule.from_spec(spec)
    classes = manifest.meta.get("label_classes")
    return LabelMask.for_rule(rule, classes, manifest_tag_vocabulary(manifest.frame))


def manifest_texts(
    manifest: Manifest, mode: str, masked: bool, label_mask: LabelMask | None = None
) -> tuple[list[str], str | None]:
    """Texts of every manifest row (manifest order) and the label-rule spec used to mask
    (``label_mask`` defaults to :func:`manifest_label_mask`)."""
    columns = ["findings", "impression", "report_text"]
    if mode == "indication":
        if "indication" not in manifest.frame.columns:
            raise ManifestError(
                f"text mode 'indication' needs the manifest column 'indication', which manifest "
                f"{manifest.name!r} lacks (it was built before the clinical context was parsed); "
                "rebuild it with `pipeline data` (same arguments)"
            )
        columns.append("indication")
    records = manifest.frame[columns].to_dict("records")
    texts = [select_text(r, mode) for r in records]
    if not masked:
        return texts, None
    mask = label_mask if label_mask is not None else manifest_label_mask(manifest)
    return [mask.apply(t) if t else t for t in texts], mask.rule
