"""Run the CLI in a subprocess for which file permissions really apply, even under root.

Root ignores permission bits because of the capabilities CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH and CAP_FOWNER. When the tests run as root, the child process drops
them from its capability bounding set (``prctl(PR_CAPBSET_DROP)``) before ``exec``, so after
``chmod a-w`` the kernel refuses writes with a real EACCES; the child stays uid 0, so it can
still read the interpreter and the project. As a normal user nothing needs dropping.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest

from tests.reliability._cli import ROOT, cmd, env

_PR_CAPBSET_DROP = 24
_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_capabilities() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(97)


def run_unprivileged(*args: object, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m pipeline <args>`` where chmod'ed permissions hold (skips if impossible)."""
    pre = _drop_capabilities if os.geteuid() == 0 else None
    proc = subprocess.run(cmd(*args), env=env(PYTHONDONTWRITEBYTECODE="1"), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=pre)
    if proc.returncode == 97:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here, so root would ignore permissions")
    return proc


def make_read_only(*paths: Path) -> None:
    """``chmod -R a-w`` on each path (folders keep r-x so they stay readable)."""
    for top in paths:
        for folder, _dirs, files in os.walk(top):
            for name in files:
                p = Path(folder, name)
                p.chmod(p.stat().st_mode & ~0o222)
            Path(folder).chmod(Path(folder).stat().st_mode & ~0o222)


def make_writable(*paths: Path) -> None:
    for top in paths:
        for folder, _dirs, files in os.walk(top):
            Path(folder).chmod(Path(folder).stat().st_mode | 0o200)
            for name in files:
                p = Path(folder, name)
                p.chmod(p.stat().st_mode | 0o200)
