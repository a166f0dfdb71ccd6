"""Small shared helpers: did-you-mean hints, durable atomic writes, file digests, library versions, p-values, text tables.

Each helper exists once here; the stages import it instead of keeping their own copy.
Nothing here imports either stage, torch or matplotlib.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import math
import os
import platform
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "did_you_mean",
    "file_sha256",
    "format_p",
    "fsync_dir",
    "fsync_file",
    "library_versions",
    "text_table",
]


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """``" Did you mean 'a' or 'b'?"`` for the closest valid names, or ``""`` when none is close.

    Closeness is difflib's ratio >= 0.5, at most three suggestions; the result starts with a
    space so it can be appended to a sentence.
    """
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s data to the disk."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename inside it) to the disk; a no-op where unsupported."""
    with contextlib.suppress(OSError):  # not supported on every platform (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    Protocol: write a temporary file beside ``path``, fsync it, ``os.replace`` it over ``path``,
    fsync the folder. A crash at any point leaves either the old content or the new; the
    temporary file is removed on error. ``str`` is written as UTF-8.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


# Distribution names whose versions decide the numbers this project computes.
CORE_PACKAGES = (
    "numpy", "pandas", "scipy", "scikit-learn", "imbalanced-learn", "xgboost-cpu", "xgboost",
    "h5py", "joblib",
)


def library_versions(packages: Sequence[str] = CORE_PACKAGES) -> dict[str, str]:
    """``{"python": ..., <distribution>: <version>}`` for the installed ``packages``.

    Versions come from the installed distributions' metadata (``importlib.metadata``), so
    nothing is imported; packages that are not installed are left out.
    """
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def format_p(p: Any) -> str:
    """A p-value for tables: ``"<1e-4"`` below 1e-4, else four decimals; ``"n/a"`` when missing."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    return "<1e-4" if v < 1e-4 else f"{v:.4f}"


def text_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, title: str = "",
               notes: Sequence[str] = (), indent: str = "") -> str:
    """The one fixed-width text table of the project (terminal output, logs, benchmarks).

    Columns are left-aligned and separated by two spaces, with a dashed rule under the header;
    an optional title line above and ``* note`` lines below; ``indent`` prefixes every table line.
    """
    cols = [str(c) for c in header]
    body = [[str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
    out = [title] if title else []
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    out += [indent + line for line in lines]
    out += [f"* {n}" for n in notes]
    return "\n".join(out)
