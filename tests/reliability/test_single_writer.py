"""Promise 2: one writer per store. While another process holds a store's write lock, a real
`pipeline extract` on that store fails at once with a clear message and exit code 2 and writes
nothing; with --lock-timeout it waits for the lock and then finishes; two runs started together
with --lock-timeout leave one intact store with no duplicated row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from filelock import FileLock

from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import popen, run


def _extract(manifest: Path, artifacts: Path, *extra: object) -> list[object]:
    return ["extract", "--manifest", manifest, "--encoder", "tfidf_svd", "--batch-size", 4,
            "--no-progress", "--artifacts", artifacts, *extra]


def _store(artifacts: Path) -> Path:
    return artifacts / "features" / "openi_demo" / "tfidf_svd.h5"


@pytest.mark.slow
def test_a_locked_store_is_refused_with_exit_2_and_left_untouched(demo_manifest: Path, tmp_path: Path):
    path = _store(tmp_path)
    path.parent.mkdir(parents=True)
    with FileLock(str(path) + ".lock"):  # another writer holds the store
        proc = run(*_extract(demo_manifest, tmp_path))
    assert proc.returncode == EXIT_USER_ERROR, proc.stdout + proc.stderr
    assert "another process is writing" in proc.stderr
    assert str(path) in proc.stderr and "--lock-timeout" in proc.stderr  # names the store and the fix
    assert not path.exists() and not path.with_name(path.name + ".parts").exists()


@pytest.mark.slow
def test_a_waiting_writer_proceeds_once_the_lock_is_released(demo_manifest: Path, tmp_path: Path):
    path = _store(tmp_path)
    path.parent.mkdir(parents=True)
    lock = FileLock(str(path) + ".lock")
    lock.acquire()
    try:
        proc = popen(*_extract(demo_manifest, tmp_path, "--lock-timeout", 300))
        time.sleep(3)
        assert proc.poll() is None, "the second writer should be waiting for the lock"
    finally:
        lock.release()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_OK, out + err
    store = FeatureStore(path)
    assert len(store) > 40 and f"{len(store)} embedded" in out


@pytest.mark.slow
def test_two_concurrent_runs_leave_one_intact_store(demo_manifest: Path, tmp_path: Path):
    procs = [popen(*_extract(demo_manifest, tmp_path, "--lock-timeout", 300)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [EXIT_OK, EXIT_OK], outs
    store = FeatureStore(_store(tmp_path))
    n = len(store)
    assert n > 40 and len(set(store.ids.tolist())) == n and store.failed == {}
    # one run embedded everything, the other found it all stored
    stdout = "".join(o for o, _ in outs)
    assert f"{n} embedded" in stdout and f"{n} already stored, 0 embedded" in stdout
    assert not _store(tmp_path).with_name("tfidf_svd.h5.parts").exists()
