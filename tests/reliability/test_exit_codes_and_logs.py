"""Promise 8: exit codes are distinct and mean one thing each (0 success, 2 user error, 3
partial failure, 1 internal error), for `python -m pipeline` and `pipeline.cli.main`; every
run writes its own log file under <artifacts>/logs/ holding the error (or traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.cli as cli
from pipeline.errors import EXIT_INTERNAL, EXIT_OK, EXIT_PARTIAL, EXIT_USER_ERROR
from tests.reliability._cli import out, run, text_rows, write_csv_manifest


def _logs(art: Path) -> list[Path]:
    return sorted((art / "logs").glob("*.log"))


def test_codes_are_distinct():
    assert len({EXIT_OK, EXIT_INTERNAL, EXIT_USER_ERROR, EXIT_PARTIAL}) == 4
    assert (EXIT_OK, EXIT_INTERNAL, EXIT_USER_ERROR, EXIT_PARTIAL) == (0, 1, 2, 3)


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
    def boom(args):
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
