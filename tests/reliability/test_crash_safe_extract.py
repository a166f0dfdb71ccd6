"""Promise 1: killing a real `python -m pipeline extract` run (SIGKILL) part-way, several
times, then re-running it yields exactly the store of an uninterrupted run (same ids, same
vectors, same identity). The store-level SIGKILL/lock tests are in test_crash_safe_store.py."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import out, popen, run

ENCODER = "tfidf_svd"  # deterministic, CPU only; batch size 1 = one durable part per report


def _extract(manifest: Path, artifacts: Path) -> list[str]:
    return ["extract", "--manifest", manifest, "--encoder", ENCODER, "--batch-size", 1,
            "--no-progress", "--artifacts", artifacts]


def _n_parts(parts: Path, pid: int) -> int:
    """Durable parts written by process ``pid``; the folder may vanish mid-scan (a merge)."""
    try:
        return len(list(parts.glob(f"part-{pid}-*.h5")))
    except FileNotFoundError:
        return 0


def _rows(store: FeatureStore) -> dict[str, np.ndarray]:
    return dict(zip(store.ids.tolist(), store.read(), strict=True))


@pytest.mark.slow
def test_sigkilled_extract_resumes_to_the_uninterrupted_store(demo_manifest: Path, tmp_path: Path):
    ref_art, art = tmp_path / "ref", tmp_path / "killed"
    proc = run(*_extract(demo_manifest, ref_art))
    assert proc.returncode == 0, out(proc)
    ref = FeatureStore(ref_art / "features" / "openi_demo" / f"{ENCODER}.h5")
    assert len(ref) > 40

    path = art / "features" / "openi_demo" / f"{ENCODER}.h5"
    parts = path.with_name(path.name + ".parts")
    rng = random.Random(0)
    mid_loop_kills = 0
    # each run is killed once it has made `target` batches durable (plus a random delay), so
    # later runs also merge the parts left by the killed ones
    for attempt, target in enumerate([2, 9, 4]):
        p = popen(*_extract(demo_manifest, art))
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline:
            if _n_parts(parts, p.pid) >= target:  # this run's parts
                break
            time.sleep(0.005)
        time.sleep(0.01 * rng.random())
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            mid_loop_kills += 1
        p.communicate()
        if path.exists():  # whatever a kill leaves must be readable, without duplicate rows
            store = FeatureStore(path)
            assert len(set(store.ids.tolist())) == len(store), f"duplicates after kill {attempt}"
    assert mid_loop_kills == 3, "the extraction finished before it could be killed mid-run"
    assert parts.is_dir() and any(parts.glob("part-*.h5")), "the last kill left no part to resume"

    proc = run(*_extract(demo_manifest, art))
    assert proc.returncode == 0, out(proc)
    assert "already stored" in proc.stdout
    got = FeatureStore(path)
    assert sorted(got.ids.tolist()) == sorted(ref.ids.tolist())
    assert len(set(got.ids.tolist())) == len(got)
    ref_rows, got_rows = _rows(ref), _rows(got)
    for sid, row in ref_rows.items():
        np.testing.assert_array_equal(got_rows[sid], row, err_msg=sid)
    assert got.identity == ref.identity
    assert got.failed == ref.failed == {}
    assert not parts.exists()
