"""`pipeline verify`: find feature stores and result cells under some paths and check each one.

Stores are opened with full verification (:class:`pipeline.store.feature_store.FeatureStore`: attributes,
shapes, finite values, SHA-256 content digest). Result cells are checked by a function the
caller passes in (classify's :func:`classify.results.cell_store.read_cell`; ``pipeline`` does not
import the stages). Folders the pipeline keeps for itself are skipped: ``quarantine/``,
``<store>.h5.parts/``, ``.shards/`` and hidden folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.store.quarantine import QUARANTINE

CELLS = "cells"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one file or cell folder."""

    kind: str  # "store" | "cell" | "path"
    path: Path
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.kind:<5}  {self.path}  {self.detail}"


def _skip(name: str) -> bool:
    return name == QUARANTINE or name.startswith(".") or name.endswith(".parts")


def find_targets(paths: Iterable[Path]) -> Iterator[tuple[str, Path]]:
    """``(kind, path)`` for every store file (``*.h5``) and every result cell folder (a
    folder inside a ``cells/`` folder) at or below ``paths``; ``("path", p)`` for a missing path."""
    for top in paths:
        top = Path(top)
        if top.is_file():
            yield ("store" if top.suffix == ".h5" else "path"), top
        elif top.is_dir() and top.parent.name == CELLS:
            yield "cell", top
        elif top.is_dir():
            for folder, dirs, files in os.walk(top):
                here = Path(folder)
                dirs[:] = sorted(d for d in dirs if not _skip(d))
                if here.name == CELLS:
                    yield from (("cell", here / d) for d in dirs)
                    dirs[:] = []
                    continue
                yield from (("store", here / f) for f in sorted(files) if f.endswith(".h5"))
        else:
            yield "path", top


def check_store(path: Path) -> str:
    """Fully verify one store; the detail line of its verdict (PipelineError when damaged)."""
    from pipeline.store.feature_store import FeatureStore

    store = FeatureStore(path, verify=True)
    digest = (f"content digest {store.content_digest[:19]}... verified" if store.verified else
              "no content digest (older store): rows checked, bytes cannot be verified; run "
              "`pipeline extract` on it once to add one")
    return f"{len(store)} rows, dim {store.dim}; {digest}"


def verify_paths(paths: Iterable[Path], check_cell: Callable[[Path], str]) -> list[Verdict]:
    """One :class:`Verdict` per store and cell found under ``paths``."""
    out = []
    for kind, path in find_targets(paths):
        if kind == "path":
            what = "does not exist" if not path.exists() else "is neither a store nor a cell"
            out.append(Verdict(kind, path, False, what))
            continue
        check = check_store if kind == "store" else check_cell
        try:
            out.append(Verdict(kind, path, True, check(path)))
        except PipelineError as exc:
            out.append(Verdict(kind, path, False, str(exc)))
    return out
