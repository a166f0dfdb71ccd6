"""Promise 6: bad experiment configs fail with a clear error (did-you-mean for names) BEFORE
any work starts: no split plan, no result is written. Unknown encoder/fusion/sampler/
classifier/store/metric/key names, a label rule that leaves one class, a minority class too
small for SMOTE in some training fold, and more folds than patient groups. Issue 11,
observation 7 (`params = {fusion = 3}` and `--n-jobs 0` exited 1) and the fold part of 5 (a
one-patient manifest got the impossible advice "lower cv.folds to <= 1")."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.dataset.build import build_manifest
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from tests.reliability._cli import (
    experiment,
    out,
    run,
    run_in_process,
    text_rows,
    write_csv_manifest,
)


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three manifests with tfidf_svd stores: 'cfg' (30 rows, 6 patient groups), 'tiny'
    (20 rows, only 2 of the minority class) and 'solo' (12 rows, all of one patient)."""
    art = tmp_path_factory.mktemp("cfg")
    for name, rows in (("cfg", text_rows(30, n_groups=6)), ("tiny", text_rows(20, minority=2)),
                       ("solo", text_rows(12, n_groups=1))):
        build_manifest("csv", path=write_csv_manifest(art / f"{name}.src.csv", rows), name=name,
                       artifacts_root=art)
        code = run_in_process("extract", "--manifest", art / "manifests" / f"{name}.csv",
                              "--encoder", "tfidf_svd", "--no-progress", "--artifacts", art)
        assert code == EXIT_OK
    return art


def _config(art: Path, tmp: Path, dataset: str = "cfg", **over: object) -> Path:
    keys = dict(name="bad", dataset=dataset, stores=["tfidf_svd"], fusions=["single"],
                samplers=["none"], classifiers=["logistic"], n_jobs=1,
                results_root=str(tmp / "results"), features_root=str(art / "features"),
                cv={"folds": 3, "repeats": 1, "seed": 0})
    keys.update(over)
    return experiment(tmp / "exp.toml", **keys)


CASES = {
    "classifier": (dict(classifiers=["logistc"]), ["'logistc'", "Did you mean 'logistic'"]),
    "fusion": (dict(fusions=["singel"]), ["'singel'", "Did you mean 'single'"]),
    "sampler": (dict(samplers=["smot"]), ["'smot'", "Did you mean 'smote'"]),
    "metric": (dict(metrics=["roc_acu"]), ["'roc_acu'", "Did you mean 'roc_auc'"]),
    "key": (dict(clasifiers=["logistic"]), ["'clasifiers'", "Did you mean 'classifiers'"]),
    "store": (dict(stores=["tfidf_sv"]), ["'tfidf_sv'", "Did you mean 'tfidf_svd'",
                                          "pipeline extract"]),
    "one_class": (dict(label_rule="finding_vs_rest:opacity"),
                  ["only one class", "'opacity'", "label rule"]),
    "folds_gt_groups": (dict(cv={"folds": 8, "repeats": 1, "seed": 0}),
                        ["cv.folds = 8", "6 patient groups", "lower cv.folds"]),
    "smote_too_small": (dict(dataset="tiny", samplers=["smote"], cv={"folds": 2, "repeats": 1,
                                                                      "seed": 0}),
                        ["'rare' has only 1 sample", "training part", "lower cv.folds",
                         "'class_weight'", "Nothing was computed"]),
    # observation 7: type errors in the file name the key (they were exit 1, "internal error")
    "params_not_a_table": (dict(params={"fusion": 3}),
                           ["params.fusion must be a table", "got 3"]),
    "name_not_text": (dict(name=3), ["'name' must be a non-empty text value", "got 3"]),
    "manifest_not_text": (dict(manifest=["a.csv"]), ["'manifest' must be a non-empty text"]),
    "n_jobs_zero": (dict(n_jobs=0), ["'n_jobs' must be a positive number", "-1", "got 0"]),
    # observation 5: the real cause, not "lower cv.folds to <= 1"
    "one_patient": (dict(dataset="solo"), ["only 1 patient group", "patient_id",
                                           "needs at least cv.folds = 3 groups"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_fails_before_any_work(art: Path, tmp_path: Path, capsys, case: str):
    over, expected = CASES[case]
    cfg = _config(art, tmp_path, **over)
    code = main(["classify", "--config", str(cfg), "--artifacts", str(art)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    for text in expected:
        assert text in err, (text, err)
    assert "internal error" not in err and "<= 1" not in err
    assert not (tmp_path / "results").exists(), "work started before the config was refused"


def test_n_jobs_zero_on_the_command_line_exits_2_naming_the_option(art: Path, tmp_path: Path):
    proc = run("classify", "--config", _config(art, tmp_path), "--n-jobs", "0", "--artifacts", art)
    assert proc.returncode == EXIT_USER_ERROR, out(proc)
    assert "--n-jobs" in proc.stderr and "-1 for all cores" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dry_run_also_refuses_an_infeasible_sampler(art: Path, tmp_path: Path, capsys):
    cfg = _config(art, tmp_path, dataset="tiny", samplers=["smote"],
                  cv={"folds": 2, "repeats": 1, "seed": 0})
    code = main(["classify", "--config", str(cfg), "--dry-run", "--artifacts", str(art)])
    assert code == EXIT_USER_ERROR
    assert "SMOTE-type samplers need >= 2" in capsys.readouterr().err


def test_a_good_config_runs(art: Path, tmp_path: Path, capsys):
    """The control: the same experiment without the defect computes and writes results."""
    code = main(["classify", "--config", str(_config(art, tmp_path)), "--artifacts", str(art)])
    assert code == EXIT_OK, capsys.readouterr().err
    assert any((tmp_path / "results").rglob("*"))


def test_unknown_encoder_suggests_the_close_name(art: Path, capsys):
    code = main(["extract", "--manifest", str(art / "manifests" / "cfg.csv"), "--encoder",
                 "efficientnet_lite", "--artifacts", str(art)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "unknown encoder 'efficientnet_lite'" in err and "Did you mean 'efficientnet_lite0'" in err
