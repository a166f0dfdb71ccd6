"""kill -9 during fit-final and predict (issue 21): no half bundle and no half predictions file
is ever visible, a bundle moved aside by a killed --force replacement comes back, the leftovers
of the killed run are cleaned up, and the re-run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from classify.bundle.io import load_bundle, read_card

WORKER = [sys.executable, str(Path(__file__).with_name("_bundle_worker.py"))]
ROOT = Path(__file__).resolve().parents[2]


def _run(target: Path, mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*WORKER, str(target), mode], env=env, check=False).returncode


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_kill_while_the_model_is_written_leaves_no_bundle_and_the_rerun_completes(tmp_path):
    folder = tmp_path / "models" / "m"
    assert _run(folder, "model") == -signal.SIGKILL
    assert not folder.exists()  # never half a bundle under the real name
    assert _leftovers(folder)  # the killed run's temporary folder
    assert _run(folder, "none") == 0
    assert load_bundle(folder).card.name == "m" and not _leftovers(folder)


def test_kill_between_the_renames_of_a_forced_replacement_keeps_the_old_bundle(tmp_path):
    folder = tmp_path / "models" / "m"
    assert _run(folder, "none") == 0
    digest = read_card(folder).files
    assert _run(folder, "swap") == -signal.SIGKILL
    assert not folder.exists() and _leftovers(folder)  # old bundle aside, new not in place
    assert read_card(folder).files == digest  # restored on the next read
    assert not _leftovers(folder)
    assert _run(folder, "none") == 0 and load_bundle(folder).card.name == "m"


def test_kill_while_predictions_are_written_leaves_the_old_file_or_none(tmp_path):
    out = tmp_path / "pred" / "p.csv"
    assert _run(out, "predictions") == -signal.SIGKILL
    assert not out.exists() and _leftovers(out)  # only the killed run's temporary
    out.write_text("old\n")
    assert _run(out, "predictions") == -signal.SIGKILL
    assert out.read_text() == "old\n"  # never half a file
    from classify.bundle.io import recover_interrupted

    assert recover_interrupted(out) and not _leftovers(out)
