"""Promise: verified results. Every stored cell carries SHA256SUMS (written last); reading a
cell checks it, and a cell that fails the check or cannot be parsed is never used: it is moved
to <results>/quarantine/, listed in a warning and recomputed. Issue 11, observation 3 (an
edited or truncated scores.csv was reused and reported; a corrupt cell.json or a truncated or
missing oof.npz made classify and report exit 1 with a traceback)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.errors import EXIT_OK, EXIT_USER_ERROR
from tests.reliability._cli import copy_project, rel_experiment, rel_project

#: the two computed cells of the project
CLASSIFIERS = ("logistic", "knn")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """artifacts with a tfidf_svd store and two computed cells (logistic, knn)."""
    return rel_project(tmp_path_factory.mktemp("results"), CLASSIFIERS)


def _exp(art: Path) -> Path:
    return rel_experiment(art, CLASSIFIERS)


def _cells(art: Path) -> Path:
    return art / "results" / "rel" / "cells"


def _scores(art: Path) -> pd.DataFrame:
    frames = [pd.read_csv(d / "scores.csv") for d in sorted(_cells(art).iterdir())]
    return pd.concat(frames).sort_values(["cell_key", "repeat", "fold", "metric"]).reset_index(
        drop=True)


def _victim(art: Path) -> Path:
    return sorted(_cells(art).iterdir())[0]


def _all_0999(cell: Path) -> None:
    df = pd.read_csv(cell / "scores.csv")
    df["value"] = 0.999
    df.to_csv(cell / "scores.csv", index=False)


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE = {
    "scores.csv edited (all 0.999)": (_all_0999, "scores.csv was changed"),
    "scores.csv cut to two lines": (
        lambda c: (c / "scores.csv").write_text(
            "".join((c / "scores.csv").read_text().splitlines(keepends=True)[:2])),
        "scores.csv was changed"),
    "oof.npz truncated": (lambda c: _truncate(c / "oof.npz", 100), "oof.npz was changed"),
    "oof.npz missing": (lambda c: (c / "oof.npz").unlink(), "oof.npz is missing"),
    "cell.json corrupt": (lambda c: (c / "cell.json").write_text("{\"key\": [unclosed"),
                          "cell.json was changed"),
    "written before checksums": (lambda c: (c / "SHA256SUMS").unlink(), "no SHA256SUMS"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
@pytest.mark.slow  # > 0.9 s: keeps make test-fast under 60 s
def test_damaged_cell_is_quarantined_and_recomputed_to_the_same_scores(base, tmp_path, capsys,
                                                                        case):
    art = copy_project(base, tmp_path / "art", CLASSIFIERS)
    expected = _scores(art)
    victim = _victim(art)
    damage, reason = DAMAGE[case]
    damage(victim)
    code = main(["classify", "--config", str(_exp(art)), "--artifacts", str(art)])
    cap = capsys.readouterr()
    text = cap.err
    assert code == EXIT_OK, text
    assert "1 stored cell(s) failed verification" in text and victim.name in text
    assert reason in text and "recomputed" in text
    assert "1 computed, 1 reused" in cap.out
    moved = list((art / "results" / "rel" / "quarantine").glob(victim.name + ".*Z"))
    assert len(moved) == 1  # kept aside, not deleted
    pd.testing.assert_frame_equal(_scores(art), expected)
    # and the recomputed cell verifies
    code = main(["verify", str(_cells(art)), "--artifacts", str(art)])
    assert code == EXIT_OK, capsys.readouterr()


def test_report_never_uses_a_damaged_cell(base, tmp_path, capsys):
    art = copy_project(base, tmp_path / "art", CLASSIFIERS)
    victim = _victim(art)
    _all_0999(victim)
    code = main(["report", "--config", str(_exp(art)), "--no-shuffle", "--artifacts", str(art)])
    cap = capsys.readouterr()
    assert code == EXIT_OK, cap.err
    assert "failed verification" in cap.err and "run `pipeline classify`" in cap.err
    tables = "".join(p.read_text() for p in (art / "reports").rglob("*.csv"))
    assert "0.999" not in tables
    assert not victim.exists()


def test_verify_names_each_damaged_cell(base, tmp_path, capsys):
    art = copy_project(base, tmp_path / "art", CLASSIFIERS)
    (_victim(art) / "oof.npz").write_bytes(b"")
    code = main(["verify", "--artifacts", str(art)])
    lines = capsys.readouterr().out.splitlines()
    assert code == EXIT_USER_ERROR
    fails = [line for line in lines if line.startswith("FAIL")]
    assert len(fails) == 1 and _victim(art).name in fails[0] and "oof.npz" in fails[0]
    assert sum(line.startswith("OK") for line in lines) == 2  # the store and the other cell
    assert _victim(art).exists()  # verify only reports; classify moves it aside
