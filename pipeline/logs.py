"""Logging setup for CLI runs: console output plus one log file per run under artifacts/logs/."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from pipeline.errors import storage_error

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(verb: str, log_dir: Path, verbose: bool = False) -> Path | None:
    """Send INFO (DEBUG if ``verbose``) to stderr and everything to a per-run log file.

    When the log folder cannot be created or written (read-only disk, no permission, disk
    full) the run logs to the console only, says so in a warning, and returns None.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):  # a previous run's log file in this process
            handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(console)
    for noisy in ("matplotlib", "PIL", "h5py", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    # microseconds + pid: one file per run, even for runs started in the same second
    log_file = Path(log_dir) / f"{datetime.now():%Y%m%d-%H%M%S-%f}-{verb}-{os.getpid()}.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        why = storage_error(exc, "write the log file", log_file)
        logging.getLogger("pipeline").warning("%s. Logging to the console only for this run.", why)
        return None
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(file_handler)
    return log_file
