"""Clinical columns of the data set's own file -> a tabular store, in the data step (``--tabular``).

``pipeline data csv --tabular PatientAge,PatientSex`` keeps those columns in the manifest and
writes them as the tabular store ``<features>/<dataset>/clinical.h5``: numeric where every
value parses as a number, else categorical (sorted vocabulary), missing cells kept as missing.
The column types and vocabularies are recorded in the store's preprocessing, so ``predict``
writes a new data set's store with the same encoding (the model card requires it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import DataError
from pipeline.manifest import Manifest
from pipeline.store.tabular_writer import (
    WriteSummary,
    table_from_frame,
    tabular_provenance,
    write_store,
)

#: Default store key of ``--tabular``.
DEFAULT_KEY = "clinical"
BUILDER = "csv_columns"
VERSION = 1


def write_columns_store(manifest: Manifest, columns: Sequence[str], features_root: Path, *,
                        key: str = DEFAULT_KEY, like: Mapping[str, Any] | None = None,
                        rebuild: bool = False) -> WriteSummary:
    """Write ``columns`` of ``manifest`` as the tabular store ``key``. ``like``: the
    preprocessing record of a training store (``predict``): the same types and categories."""
    from pipeline.store.feature_store import store_path

    absent = [c for c in columns if c not in manifest.frame.columns]
    if absent:
        raise DataError(f"manifest {manifest.name!r} has no column(s) {absent} for the tabular "
                        f"store {key!r}; rebuild it with `pipeline data csv --tabular ...`")
    types = dict((like or {}).get("types") or {})
    frame = manifest.frame[["sample_id", *columns]]
    table = table_from_frame(
        frame, source=f"manifest {manifest.name!r} ({key})", line_offset=None,
        numeric=[c for c in columns if types.get(c) == "numeric"],
        categorical=[c for c in columns if types.get(c) == "categorical"],
        categories=(like or {}).get("categories"))
    preprocessing = {
        "builder": BUILDER, "version": VERSION, "columns": list(columns),
        "types": {c.name: c.type for c in table.schema.columns},
        "categories": {c.name: list(c.categories) for c in table.schema.columns if c.categories},
    }
    prov = tabular_provenance(key, table, dataset=manifest.name, modality="tabular",
                              architecture="csv-columns", weights_name=f"{BUILDER}/v{VERSION}",
                              preprocessing=preprocessing)
    return write_store(store_path(features_root, manifest.name, key), prov, list(table.ids),
                       table.values, rebuild=rebuild)
