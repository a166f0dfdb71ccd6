"""Promise 8: exit codes are distinct and mean one thing each (0 success, 2 user error, 3
partial failure, 1 internal error), for `python -m pipeline` and `pipeline.cli.main`; every
run writes its own log file under <artifacts>/logs/ holding the error (or traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.cli as cli
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USER_ERROR,
)
from tests.reliability._cli import out, run, text_rows, write_csv_manifest


def _logs(art: Path) -> list[Path]:
    return sorted((art / "logs").glob("*.log"))


def test_codes_are_distinct():
    assert len({EXIT_OK, EXIT_INTERNAL, EXIT_USER_ERROR, EXIT_PARTIAL}) == 4
    assert (EXIT_OK, EXIT_INTERNAL, EXIT_USER_ERROR, EXIT_PARTIAL) == (0, 1, 2, 3)


@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_process_exit_status_success_and_user_error(tmp_path: Path):
    src = write_csv_manifest(tmp_path / "src.csv", text_rows(6))
    ok = run("data", "csv", "--path", src, "--name", "m", "--artifacts", tmp_path)
    assert ok.returncode == EXIT_OK, out(ok)
    bad = run("extract", "--manifest", tmp_path / "nope.csv", "--encoder", "tfidf_svd",
              "--artifacts", tmp_path)
    assert bad.returncode == EXIT_USER_ERROR, out(bad)
    assert "nope.csv" in bad.stderr and "pipeline data" in bad.stderr
    usage = run("extract", "--encoder", "tfidf_svd", "--artifacts", tmp_path)  # no --manifest
    assert usage.returncode == EXIT_USER_ERROR and "--manifest" in usage.stderr
    logs = _logs(tmp_path)
    assert [p.name.split("-")[3] for p in logs] == ["data", "extract"]  # one file per run
    assert "does not exist" in logs[1].read_text(encoding="utf-8")


def test_partial_failure_is_3_and_logged(tmp_path: Path, capsys):
    rows = text_rows(6)
    rows[2].update(findings="", impression="")
    src = write_csv_manifest(tmp_path / "src.csv", rows)
    assert cli.main(["data", "csv", "--path", str(src), "--name", "m",
                     "--artifacts", str(tmp_path)]) == EXIT_OK
    code = cli.main(["extract", "--manifest", str(tmp_path / "manifests" / "m.csv"), "--encoder",
                     "tfidf_svd", "--no-progress", "--artifacts", str(tmp_path)])
    assert code == EXIT_PARTIAL, capsys.readouterr().err
    log = _logs(tmp_path)[-1].read_text(encoding="utf-8")
    assert "failed s002: empty text" in log


def test_internal_error_is_1_with_a_traceback_in_the_log(tmp_path: Path, monkeypatch, capsys):
    def boom(args, out):
        raise RuntimeError("simulated bug")

    monkeypatch.setitem(cli._VERBS, "list", boom)
    code = cli.main(["list", "--artifacts", str(tmp_path)])
    assert code == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "internal error" in err and "please report it with the log file" in err
    log = _logs(tmp_path)[-1].read_text(encoding="utf-8")
    assert "Traceback" in log and "RuntimeError: simulated bug" in log


def test_usage_errors_exit_2_in_process():
    with pytest.raises(SystemExit) as exc:
        cli.main(["extract", "--encoder", "tfidf_svd"])
    assert exc.value.code == EXIT_USER_ERROR


def test_every_run_gets_its_own_log_file(tmp_path: Path, capsys):
    for _ in range(3):  # three runs within the same second
        cli.main(["extract", "--manifest", str(tmp_path / "missing.csv"), "--encoder", "x",
                  "--artifacts", str(tmp_path)])
    capsys.readouterr()
    logs = _logs(tmp_path)
    assert len(logs) == 3
    assert all("missing.csv" in p.read_text(encoding="utf-8") for p in logs)


def test_exit_code_130_is_documented_with_the_others():
    """Issue 11, observation 12: Ctrl-C exits 130, which the documented list did not mention."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "experiments.md").read_text(
        encoding="utf-8")
    section = page[page.index("## Exit codes"):]
    section = section[: section.index("\n## ", 3)] if "\n## " in section[3:] else section
    for code in ("`0`", "`1`", "`2`", "`3`", "`130`"):
        assert code in section, code
    assert "Ctrl-C" in section and "kept" in section


def test_ctrl_c_is_130_in_process(tmp_path: Path, monkeypatch, capsys):
    def interrupted(args, out):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._VERBS, "list", interrupted)
    assert cli.main(["list", "--artifacts", str(tmp_path)]) == EXIT_INTERRUPTED == 130
    assert "interrupted; everything already computed is kept" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_during_classify_exits_130_and_keeps_finished_cells(tmp_path: Path):
    import signal
    import time

    from pipeline.dataset.build import build_manifest
    from tests.reliability._cli import experiment, popen

    build_manifest("csv", path=write_csv_manifest(tmp_path / "src.csv", text_rows(90)),
                   name="m", artifacts_root=tmp_path)
    proc = run("extract", "--manifest", tmp_path / "manifests" / "m.csv", "--encoder",
               "tfidf_svd", "--no-progress", "--artifacts", tmp_path)
    assert proc.returncode == EXIT_OK, out(proc)
    cfg = experiment(tmp_path / "exp.toml", name="m", dataset="m", stores=["tfidf_svd"],
                     fusions=["single"], samplers=["none", "smote", "random_under"],
                     classifiers=["logistic", "knn", "decision_tree", "random_forest"],
                     n_jobs=1, cv={"folds": 5, "repeats": 5, "seed": 0})
    running = popen("classify", "--config", cfg, "--artifacts", tmp_path)
    cells = tmp_path / "results" / "m" / "cells"
    deadline = time.time() + 120
    def finished() -> int:  # cell folders in place (not the hidden ones being written)
        return len([p for p in cells.iterdir() if not p.name.startswith(".")]) if cells.is_dir() else 0

    while not finished() and time.time() < deadline:
        assert running.poll() is None, running.communicate()
        time.sleep(0.2)
    n_before = finished()
    assert n_before >= 1
    running.send_signal(signal.SIGINT)
    stdout, stderr = running.communicate(timeout=60)
    assert running.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted; everything already computed is kept" in stderr
    done = run("verify", cells, "--artifacts", tmp_path)
    assert done.returncode == EXIT_OK and " OK" in done.stdout, out(done)  # finished cells intact
    n_after = finished()
    assert n_after >= n_before and f"{n_after} checked, {n_after} OK, 0 failed" in done.stdout
