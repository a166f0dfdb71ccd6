"""Finding-tag normalisation: raw OpenI MeSH headings / CheXpert names -> finding tags, and tag cells."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.labels.vocabulary import MESH_HEADING_MAP, MESH_SUBHEADING_MAP


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
