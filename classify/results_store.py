"""On-disk cell results: ``<results>/<dataset>/cells/<cell_key>/``.

A cell directory holds plain tables only (no pickle):

* ``cell.json``      spec, key, configuration identities (store identities, split hash, seed,
                     label rule), classes, fit seconds, warnings, library versions.
* ``scores.csv``     long-form per-split scores (:data:`classify.results.SCORE_COLUMNS`).
* ``folds.csv``      per-split sizes and timings.
* ``counts.csv``     training-fold class counts before/after the sampler.
* ``attention.csv``  mean attention per store per split (attention fusion only).
* ``oof.npz``        out-of-fold predictions (``allow_pickle=False``): sample_id, repeat, fold,
                     y_true (class code), proba ``[n, n_classes]``, classes.

The directory is written under a temporary name and renamed into place
(``os.replace``), so a cell is either complete or absent; a re-run computes
exactly the cells whose directory is missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.results import CellResult, CellSpec

log = logging.getLogger(__name__)

CELL_FILE = "cell.json"


def cells_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "cells"


def cell_dir(results_dir: Path, key: str) -> Path:
    return cells_dir(results_dir) / key


def has_cell(results_dir: Path, key: str) -> bool:
    return (cell_dir(results_dir, key) / CELL_FILE).is_file()


def _versions() -> dict[str, str]:
    import imblearn
    import scipy
    import sklearn

    out = {"numpy": np.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__,
           "imblearn": imblearn.__version__, "scipy": scipy.__version__}
    try:
        import xgboost

        out["xgboost"] = xgboost.__version__
    except ImportError:  # optional at read time
        pass
    return out


def oof_frame(sample_ids: np.ndarray, repeat: np.ndarray, fold: np.ndarray, y_true: np.ndarray,
              proba: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """The in-memory OOF table of :attr:`CellResult.oof` from its array form."""
    cls = np.asarray(classes, dtype=object)
    df = pd.DataFrame({
        "sample_id": np.asarray(sample_ids).astype(str),
        "repeat": repeat.astype(int),
        "fold": fold.astype(int),
        "y_true": cls[y_true.astype(int)],
        "y_pred": cls[proba.argmax(axis=1)],
    })
    for k, c in enumerate(classes):
        df[f"proba:{c}"] = proba[:, k]
    return df


def write_cell(results_dir: Path, result: CellResult, meta: Mapping[str, Any],
               classes: tuple[str, ...]) -> Path:
    """Write ``result`` atomically; ``meta`` = identities recorded in ``cell.json``."""
    final = cell_dir(results_dir, result.key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{result.key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    result.scores.to_csv(tmp / "scores.csv", index=False)
    result.folds.to_csv(tmp / "folds.csv", index=False)
    result.class_counts.to_csv(tmp / "counts.csv", index=False)
    if result.attention is not None:
        result.attention.to_csv(tmp / "attention.csv", index=False)
    oof = result.oof
    code = {c: i for i, c in enumerate(classes)}
    np.savez(
        tmp / "oof.npz",
        sample_id=oof["sample_id"].to_numpy().astype(str),
        repeat=oof["repeat"].to_numpy(dtype=np.int64),
        fold=oof["fold"].to_numpy(dtype=np.int64),
        y_true=oof["y_true"].map(code).to_numpy(dtype=np.int64),
        proba=oof[[f"proba:{c}" for c in classes]].to_numpy(dtype=np.float64),
        classes=np.asarray(classes).astype(str),
    )
    doc = {
        "key": result.key,
        "spec": result.spec.to_dict(),
        "classes": list(classes),
        "fit_seconds": result.fit_seconds,
        "warnings": list(result.warnings),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        **dict(meta),
    }
    (tmp / CELL_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    if final.exists():  # a concurrent run finished the same cell first; keep theirs
        shutil.rmtree(tmp)
        log.info("cell %s already stored by another run", result.key)
        return final
    os.replace(tmp, final)
    return final


def read_cell(results_dir: Path, key: str) -> CellResult:
    """Load a stored cell (status ``reused``)."""
    d = cell_dir(results_dir, key)
    doc = json.loads((d / CELL_FILE).read_text())
    with np.load(d / "oof.npz", allow_pickle=False) as z:
        classes = tuple(z["classes"].tolist())
        oof = oof_frame(z["sample_id"], z["repeat"], z["fold"], z["y_true"], z["proba"], classes)
    att = pd.read_csv(d / "attention.csv") if (d / "attention.csv").exists() else None
    return CellResult(
        spec=CellSpec.from_dict(doc["spec"]),
        key=key,
        scores=pd.read_csv(d / "scores.csv"),
        oof=oof,
        class_counts=pd.read_csv(d / "counts.csv", dtype={"class": str}),
        folds=pd.read_csv(d / "folds.csv"),
        fit_seconds=float(doc["fit_seconds"]),
        attention=att,
        status="reused",
        path=d,
        warnings=tuple(doc.get("warnings", ())),
    )


def iter_cell_docs(results_dir: Path) -> Iterator[dict[str, Any]]:
    """``cell.json`` of every stored cell (for dry-run reasons)."""
    root = cells_dir(results_dir)
    if not root.is_dir():
        return
    for p in sorted(root.glob(f"*/{CELL_FILE}")):
        try:
            yield json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable cell record %s (ignored; delete the directory)", p)
