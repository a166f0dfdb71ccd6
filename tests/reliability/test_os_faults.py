"""Promise: exit codes. Faults of the operating system - read-only folders, permission denied,
a full disk, a size limit, a path through a file - end with exit 2 naming the path, the
operation and the fix, at every verb, and lose nothing already computed; a log folder that
cannot be written falls back to the console and says so. Issue 11, observation 4 (every
verb exited 1 with a traceback on a read-only artifacts folder, because logging was set up
before the error handling; read-only results/features and a full disk gave raw OSErrors).

How the faults are made real:
* permission denied: ``chmod a-w`` plus a child process in which root's override
  capabilities are dropped (``tests/reliability/_privileges.py``), so the kernel says EACCES;
* file size limit: ``RLIMIT_FSIZE`` in a child process (the kernel says EFBIG inside HDF5);
* full disk: HDF5's own ENOSPC error raised from ``h5py.File`` by a monkeypatch (the same
  exception text h5py gives on a full tmpfs), and, where the machine allows mounting, a real
  tiny tmpfs (slow test);
* missing folder: ``--artifacts`` pointing below a regular file (ENOTDIR).
"""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.dataset.build import build_manifest
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from pipeline.store.feature_store import FeatureStore
from tests.reliability._cli import (
    REL_ROWS,
    ROOT,
    cmd,
    copy_project,
    env,
    out,
    rel_experiment,
    rel_project,
    run,
    run_in_process,
    text_rows,
    write_csv_manifest,
)
from tests.reliability._privileges import make_read_only, make_writable, run_unprivileged

N = REL_ROWS


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """artifacts: manifest 'rel', its tfidf_svd store, one computed cell."""
    return rel_project(tmp_path_factory.mktemp("osfaults"))


@pytest.fixture
def art(base: Path, tmp_path: Path):
    art = copy_project(base, tmp_path / "art")
    yield art
    make_writable(art)  # let pytest clean up


def _clean_exit_2(proc: subprocess.CompletedProcess, *needles: str) -> str:
    text = out(proc)
    assert proc.returncode == EXIT_USER_ERROR, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Fix:" in text
    return text


def _snapshot(art: Path) -> dict[str, bytes]:
    return {str(p.relative_to(art)): p.read_bytes()
            for p in sorted(art.rglob("*")) if p.is_file() and "logs" not in p.parts}


@pytest.mark.slow  # several CLI processes
def test_read_only_artifacts_every_verb(art: Path):
    before = _snapshot(art)
    rel_experiment(art, classifiers=("logistic", "knn"))  # classify has one new cell to write
    make_read_only(art)
    manifest = art / "manifests" / "rel.csv"

    listing = run_unprivileged("list", "--artifacts", art)
    assert listing.returncode == EXIT_OK, out(listing)
    assert "cannot write the log file" in listing.stderr and "console only" in listing.stderr
    assert "Permission denied [EACCES]" in listing.stderr
    assert "tfidf_svd" in listing.stdout

    verify = run_unprivileged("verify", "--artifacts", art)
    assert verify.returncode == EXIT_OK and "2 checked, 2 OK" in verify.stdout, out(verify)

    _clean_exit_2(run_unprivileged("data", "csv", "--path", art / "src.csv", "--name", "rel2",
                                   "--artifacts", art),
                  "Permission denied [EACCES]", str(art / "manifests"))
    _clean_exit_2(run_unprivileged("extract", "--manifest", manifest, "--encoder", "tfidf_svd",
                                   "--no-progress", "--artifacts", art),
                  "cannot create the store folder and its lock file",
                  str(art / "features" / "rel" / "tfidf_svd.h5.lock"), "[EACCES]")
    _clean_exit_2(run_unprivileged("classify", "--config", art / "exp.toml", "--artifacts", art),
                  "cannot write the result cell", str(art / "results" / "rel" / "cells"),
                  "[EACCES]")
    _clean_exit_2(run_unprivileged("report", "--config", art / "exp.toml", "--no-shuffle",
                                   "--artifacts", art),
                  "[EACCES]", str(art / "reports"))
    make_writable(art)
    after = _snapshot(art)
    after.pop("exp.toml"), before.pop("exp.toml")
    assert after == before  # nothing computed was lost or changed


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_read_only_results_after_a_cell_was_computed(art: Path):
    cells = sorted((art / "results" / "rel" / "cells").iterdir())
    rel_experiment(art, classifiers=("logistic", "knn"))
    make_read_only(art / "results")
    proc = run_unprivileged("classify", "--config", art / "exp.toml", "--artifacts", art)
    _clean_exit_2(proc, "cannot write the result cell", "Permission denied [EACCES]",
                  "chmod u+rwX")
    logs = sorted((art / "logs").glob("*-classify-*.log"))
    assert logs and "cannot write the result cell" in logs[-1].read_text()  # logs still work
    assert sorted((art / "results" / "rel" / "cells").iterdir()) == cells


@pytest.mark.slow  # several CLI processes
def test_read_only_features_folder_lock_file(art: Path):
    make_read_only(art / "features")
    proc = run_unprivileged("extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                            "tfidf_svd", "--no-progress", "--artifacts", art)
    _clean_exit_2(proc, "lock file", "[EACCES]")


def test_log_folder_below_a_file_falls_back_to_the_console(tmp_path: Path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where artifacts/ should be")
    assert main(["list", "--artifacts", str(blocker)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "cannot write the log file" in err and "[ENOTDIR]" in err and "console only" in err
    src = write_csv_manifest(tmp_path / "src.csv", text_rows(6))
    code = main(["data", "csv", "--path", str(src), "--artifacts", str(blocker)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and str(blocker) in err and "[ENOTDIR]" in err
    assert "a part of that path is a file" in err and "Traceback" not in err


def _identity_of_complete_run(tmp_path: Path, manifest: Path) -> str:
    ref = tmp_path / "ref"
    assert run_in_process("extract", "--manifest", manifest, "--encoder", "tfidf_svd",
                          "--no-progress", "--artifacts", ref) == EXIT_OK
    return FeatureStore(ref / "features" / "rel" / "tfidf_svd.h5").identity


def test_full_disk_during_extract_exits_2_and_the_rerun_completes(tmp_path, monkeypatch, capsys):
    """The third part file hits a full disk (ENOSPC from the write, as the kernel reports it);
    the two parts written before survive and the next run resumes from them."""
    import pipeline.store.feature_store as store_module

    art = tmp_path / "art"
    write_csv_manifest(tmp_path / "src.csv", text_rows(N))
    build_manifest("csv", path=tmp_path / "src.csv", name="rel", artifacts_root=art)
    manifest = art / "manifests" / "rel.csv"
    real_write = store_module.atomic_write
    writes = []

    def full_after_two_parts(path, data):
        writes.append(path)
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    monkeypatch.setattr(store_module, "atomic_write", full_after_two_parts)
    args = ["extract", "--manifest", str(manifest), "--encoder", "tfidf_svd", "--batch-size", "8",
            "--no-progress", "--artifacts", str(art)]
    code = main(args)
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "cannot write a part file of the feature store" in err
    assert "No space left on device [ENOSPC]" in err and "free some space" in err
    parts = art / "features" / "rel" / "tfidf_svd.h5.parts"
    assert len(list(parts.glob("part-*.h5"))) == 2
    monkeypatch.setattr(store_module, "atomic_write", real_write)  # space freed
    code = main(args)
    text = capsys.readouterr().out
    assert code == EXIT_OK and "16 already stored, 20 embedded" in text, text
    store = FeatureStore(art / "features" / "rel" / "tfidf_svd.h5")
    assert len(store) == N and store.identity == _identity_of_complete_run(tmp_path, manifest)


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, tuple]:
    """A 240-row manifest whose store (about 200 kB) exceeds a 96 kB file size limit."""
    art = tmp_path / "art"
    write_csv_manifest(tmp_path / "src.csv", text_rows(240))
    build_manifest("csv", path=tmp_path / "src.csv", name="rel", artifacts_root=art)
    return art, ("extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                 "tfidf_svd", "--batch-size", "16", "--no-progress", "--artifacts", art)


def _limited(argv: list[str], limit: int) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=240, preexec_fn=_file_size_limit(limit))


def _parts_kept_and_rerun_completes(art: Path, args: tuple) -> None:
    store = art / "features" / "rel" / "tfidf_svd.h5"
    assert not list(store.parent.glob("*.merge-*.tmp"))  # no half-written merge left
    assert len(list(store.with_name(store.name + ".parts").glob("part-*.h5"))) == 15
    again = run(*args)
    assert again.returncode == EXIT_OK, out(again)
    assert len(FeatureStore(store)) == 240


@pytest.mark.slow  # several CLI processes
def test_file_size_limit_is_refused_before_the_merge_starts(big):
    """A real limit (RLIMIT_FSIZE): the parts are written, the merge would not fit."""
    art, args = big
    proc = _limited(cmd(*args), 96_000)
    _clean_exit_2(proc, "cannot write the merged feature store", "File too large [EFBIG]",
                  "ulimit -f", "file size limit is 93 kB")
    _parts_kept_and_rerun_completes(art, args)


@pytest.mark.slow  # several CLI processes
def test_a_write_hdf5_cannot_finish_still_exits_2_without_a_crash(big):
    """Without the check above HDF5 itself hits the limit (EFBIG) mid-merge; h5py cannot close
    such a file and used to crash the process (SIGSEGV) after the error message."""
    art, args = big
    script = ("import sys, pipeline.store.merge as m, pipeline.cli as c; "
              "m._preflight = lambda *a, **k: None; sys.argv[1:] = " + repr([str(a) for a in args])
              + "; c.console()")
    proc = _limited([sys.executable, "-c", script], 96_000)
    _clean_exit_2(proc, "cannot write the merged feature store", "File too large [EFBIG]")
    _parts_kept_and_rerun_completes(art, args)


@pytest.mark.slow
def test_real_full_and_read_only_file_systems(tmp_path: Path):
    """A real tmpfs: full (ENOSPC) during extract, then remounted read-only (EROFS).
    Needs the right to mount (root with CAP_SYS_ADMIN); skipped elsewhere."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        art = mnt / "art"
        src = write_csv_manifest(tmp_path / "src.csv", text_rows(240))
        proc = run("data", "csv", "--path", src, "--name", "rel", "--artifacts", art)
        assert proc.returncode == EXIT_OK, out(proc)
        proc = run("extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                   "tfidf_svd", "--batch-size", "16", "--no-progress", "--artifacts", art)
        _clean_exit_2(proc, "No space left on device [ENOSPC]", "free some space")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        proc = run("data", "csv", "--path", src, "--name", "rel2", "--artifacts", art)
        _clean_exit_2(proc, "Read-only file system [EROFS]", "remount it read-write")
        assert "console only" in proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
