"""Promise 1 and 2: SIGKILL at any point loses nothing already flushed, duplicates nothing,
never leaves an unreadable file; a second writer waits or fails clearly (file lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import StoreLockedError
from pipeline.store.feature_store import FeatureStore, StoreWriter

WORKER = [sys.executable, str(Path(__file__).with_name("_store_worker.py"))]
ROOT = Path(__file__).resolve().parents[2]
N, BATCH = 600, 7


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(path: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen([*WORKER, str(path), str(N), str(BATCH), str(delay)], env=_env())


def _as_dict(store: FeatureStore, layer=None) -> dict[str, np.ndarray]:
    return dict(zip(store.ids.tolist(), store.read(layer=layer), strict=True))


@pytest.mark.slow
def test_sigkill_repeatedly_then_resume_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "ref.h5"
    subprocess.run([*WORKER, str(reference), str(N), str(BATCH), "0"], env=_env(), check=True)

    killed = tmp_path / "killed.h5"
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(5):
        proc = _run(killed, delay=0.05)
        time.sleep(float(rng.uniform(0.3, 1.0)))  # includes start-up, mid-batch and mid-merge
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if killed.exists():  # whatever is on disk after a kill must be readable
            store = FeatureStore(killed)
            assert len(set(store.ids.tolist())) == len(store)
    assert kills >= 3, "the worker finished too early to test kills; slow it down"
    subprocess.run([*WORKER, str(killed), str(N), str(BATCH), "0"], env=_env(), check=True)

    ref, got = FeatureStore(reference), FeatureStore(killed)
    assert len(got) == N and len(set(got.ids.tolist())) == N
    ref_rows, got_rows = _as_dict(ref), _as_dict(got)
    assert ref_rows.keys() == got_rows.keys()
    for sid, row in ref_rows.items():
        np.testing.assert_array_equal(got_rows[sid], row)
    assert _as_dict(got, "early").keys() == ref_rows.keys()
    assert got.identity == ref.identity
    assert not killed.with_name(killed.name + ".parts").exists()


def test_a_second_writer_fails_clearly_while_the_first_runs(tmp_path):
    path = tmp_path / "busy.h5"
    proc = _run(path, delay=0.05)
    try:
        deadline = time.time() + 20
        while not path.with_name(path.name + ".parts").exists() and time.time() < deadline:
            time.sleep(0.05)
        from tests.reliability._store_worker import PROV

        with pytest.raises(StoreLockedError, match="another process is writing"):
            with StoreWriter(path, PROV, lock_timeout=0):
                pass
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_a_waiting_writer_proceeds_after_the_first_finishes(tmp_path):
    path = tmp_path / "queued.h5"
    first = _run(path, delay=0.0)
    second = _run(path, delay=0.0)  # lock_timeout=30 in the worker: it waits, then finds all done
    assert first.wait(60) == 0 and second.wait(60) == 0
    store = FeatureStore(path)
    assert len(store) == N and len(set(store.ids.tolist())) == N
