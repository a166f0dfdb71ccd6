"""docs/own-data.md runs as written: a generated site export -> manifest + profile + clinical store
-> stores -> fused table with the label-source caveat -> final model -> predictions for the
unlabelled new studies carrying MRN/Accession; then the page's Python example (slow: real encoders)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.reliability._cli import ROOT, env

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "own-data.md"


def page_commands(text: str) -> list[str]:
    """The commands of the page's ```bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.strip():
                commands.append(re.sub(r"\s+", " ", cmd.strip()))
    return commands


def _localise(cmd: str) -> str:
    return (cmd.replace(".venv/bin/python", sys.executable)
            .replace("docs/examples/", f"{ROOT / 'docs' / 'examples'}/"))


def test_the_page_runs_as_written_and_shows_what_it_printed(tmp_path):
    text = PAGE.read_text(encoding="utf-8")
    commands = page_commands(text)
    verbs = [c.split()[3] if " -m pipeline " in c else "export" for c in commands]
    assert verbs == ["export", "data", "extract", "classify", "fit-final", "predict"]
    outputs = []
    for cmd, verb in zip(commands, verbs, strict=True):
        proc = subprocess.run(_localise(cmd), shell=True, cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=900)
        expected = 3 if verb == "extract" else 0  # two films fail, by name (exit 3: partial)
        assert proc.returncode == expected, cmd + "\n" + proc.stdout + proc.stderr
        outputs.append(proc.stdout)
    data, _, classify, final, predict = outputs[1:]

    # the page shows what the commands printed (measured figures only)
    for line in ("labels (from the label column; source csv:report): No=181, Yes=18",
                 "classes: No=181 (91.0%), Yes=18 (9.0%)",
                 "image files: 1 missing, 1 unreadable of 199",
                 "patients: 100; studies per patient min 1, median 2, max 2"):
        assert line in data and line in text, line
    assert "decision rule: youden: P(Yes) >= 0.7464" in final
    assert "60 samples, 60 predicted, 0 failed" in predict and "predicted: No=57, Yes=3" in predict

    art = tmp_path / "artifacts"
    profile = json.loads((art / "manifests" / "site.profile.json").read_text())
    assert profile["classes"] == {"No": 181, "Yes": 18} and profile["n_patients"] == 100
    assert profile["images"]["unreadable_examples"] == ["ACC26000010"]
    assert (art / "features" / "site" / "clinical.h5").is_file()

    # the fused table, with the caveat that labels from the report always bring
    fused = "image + report + structured data, concatenated, class weights, logistic regression"
    assert fused in classify and fused in text
    assert "ANSWER" in classify and "Does fusion beat each single modality?" in classify
    assert "label-source caveat" in classify and "csv:report" in classify

    card = json.loads((art / "models" / "site-fused" / "model_card.json").read_text())
    assert card["training"]["data_input"]["columns"]["sample_id"] == "Accession"
    assert [s["encoder_key"] for s in card["stores"]] == ["efficientnet_lite0", "minilm", "clinical"]

    new = pd.read_csv(tmp_path / "site_export" / "new_cases.csv", dtype=str, keep_default_na=False)
    pred = pd.read_csv(art / "predictions" / "site-fused" / "new_cases.csv", dtype=str,
                       keep_default_na=False)
    assert pred["MRN"].tolist() == new["MRN"].tolist()
    assert pred["Accession"].tolist() == new["Accession"].tolist()
    assert (pred["status"] == "ok").all() and set(pred["decision_rule"]) == {"youden"}
    assert pred["threshold"].astype(float).round(4).eq(0.7464).all()
    assert "ReportText" not in pred.columns and "Cardiomegaly" not in pred.columns

    # the page's Python example, in the same folder (stored cells reused)
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "own_data_api.py")],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "199 studies, 100 patients, classes {'No': 181, 'Yes': 18}" in proc.stdout
    assert "image/single/class_weight/logistic       roc_auc 0.992" in proc.stdout
    assert "MRN0700200 ACC26000400" in proc.stdout
    pred_nb = pd.read_csv(art / "predictions" / "site-fused" / "new_cases_nb.csv", dtype=str,
                          keep_default_na=False)
    assert pred_nb["probability"].tolist() == pred["probability"].tolist()
