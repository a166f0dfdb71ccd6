"""Moving damaged or unexpected files aside, never deleting them, so that a run can proceed.

A quarantined file or folder keeps its name plus a UTC time stamp, and gets a
``<name>.<stamp>.why.txt`` beside it saying what was wrong. Nothing reads quarantine
folders: restore a file by moving it back (without the stamp) once it is repaired.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import os_faults
from pipeline.helpers import atomic_write, fsync_dir

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"


def move_aside(path: str | os.PathLike, quarantine_dir: str | os.PathLike, reason: str) -> Path:
    """Move ``path`` (file or folder) into ``quarantine_dir`` with a time stamp; return where.

    ``quarantine_dir`` must be on the same file system (a sibling folder), so the move is one
    atomic rename. Logs a warning naming both places and the reason.
    """
    path, qdir = Path(path), Path(quarantine_dir)
    with os_faults("move a damaged file aside into", qdir):
        qdir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        dest = qdir / f"{path.name}.{stamp}"
        os.replace(path, dest)
        fsync_dir(path.parent)
        atomic_write(qdir / f"{dest.name}.why.txt", f"moved here from {path}\n{reason}\n")
    log.warning("moved %s to %s: %s", path, dest, reason)
    return dest
