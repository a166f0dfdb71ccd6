"""Helpers for the end-to-end reliability tests: run the real CLI in a subprocess and
build small manifests/fixtures on the fly (no binary blobs in the repository)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "pipeline", *map(str, args)]


def run(*args: object, timeout: float = 240, **extra_env: str) -> subprocess.CompletedProcess:
    """``python -m pipeline <args>``; returns the finished process (text stdout/stderr)."""
    return subprocess.run(
        cmd(*args), env=env(**extra_env), cwd=ROOT, capture_output=True, text=True,
        timeout=timeout,
    )


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A test run started in the
    background by a non-interactive shell inherits SIGINT as *ignored*, and Python keeps an
    inherited SIG_IGN, so a Ctrl-C test would otherwise never interrupt the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(*args: object, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(
        cmd(*args), env=env(**extra_env), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
    )


def run_in_process(*args: object) -> int:
    """``pipeline.cli.main(args)`` in this process, for fixtures that only prepare inputs (a
    subprocess spends ~3 s of CPU importing torch and scikit-learn). The root log handlers that
    the CLI installs are removed and the previous ones (and the root level) restored afterwards.
    Returns the exit code."""
    import logging

    from pipeline.cli import main

    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        return main([str(a) for a in args])
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        for handler in before:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def out(proc: subprocess.CompletedProcess) -> str:
    """stdout + stderr, for assertions and failure messages."""
    return (proc.stdout or "") + (proc.stderr or "")


def write_csv_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    """A generic-CSV source table (the `pipeline data csv` input)."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def text_rows(n: int, *, n_groups: int | None = None, minority: int | None = None,
              tags: str = "opacity") -> list[dict[str, str]]:
    """``n`` labelled report rows (abnormal/normal), for text-only experiments."""
    words = ("opacity", "effusion", "clear", "heart", "size", "normal", "lungs", "base", "left",
             "right", "mild", "no", "acute", "process", "stable", "small")
    rows = []
    minority = n // 3 if minority is None else minority
    for i in range(n):
        label = "rare" if i < minority else "common"
        text = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12)) + f" case{i % 5}"
        rows.append({
            "sample_id": f"s{i:03d}",
            "patient_id": f"p{i % n_groups if n_groups else i:03d}",
            "image_path": f"s{i:03d}.png",
            "findings": text,
            "impression": "see findings" if i % 2 else "",
            "tags": tags + (";nodule" if label == "rare" else ""),
            "label": label,
        })
    return rows


def experiment(path: Path, **keys: object) -> Path:
    """Write an experiment TOML from keyword values (tables as dicts)."""
    import json

    lines, tables = [], []
    for k, v in keys.items():
        if isinstance(v, dict):
            tables.append(f"[{k}]\n" + "\n".join(f"{a} = {json.dumps(b)}" for a, b in v.items()))
        else:
            lines.append(f"{k} = {json.dumps(v if not isinstance(v, Path) else str(v))}")
    path.write_text("\n".join(lines) + "\n\n" + "\n\n".join(tables) + "\n", encoding="utf-8")
    return path


#: rows of the 'rel' project's manifest (:func:`rel_project`)
REL_ROWS = 36


def rel_experiment(art: Path, classifiers: Sequence[str] = ("logistic",)) -> Path:
    """``art/exp.toml``: the 'rel' project's experiment (its tfidf_svd store, single fusion, no
    sampler, ``classifiers``, 3 folds x 1 repeat), its paths pointing into ``art``."""
    return experiment(
        art / "exp.toml", name="rel", dataset="rel", manifest=str(art / "manifests" / "rel.csv"),
        features_root=str(art / "features"), results_root=str(art / "results"),
        stores=["tfidf_svd"], fusions=["single"], samplers=["none"],
        classifiers=list(classifiers), n_jobs=1, cv={"folds": 3, "repeats": 1, "seed": 0},
    )


def rel_project(art: Path, classifiers: Sequence[str] = ("logistic",)) -> Path:
    """The 'rel' project built in ``art`` (in this process): manifest 'rel' of :data:`REL_ROWS`
    text rows, its tfidf_svd store and the cells of ``classifiers``. Returns ``art``."""
    from pipeline.dataset.build import build_manifest

    build_manifest("csv", path=write_csv_manifest(art / "src.csv", text_rows(REL_ROWS)),
                   name="rel", artifacts_root=art)
    assert run_in_process("extract", "--manifest", art / "manifests" / "rel.csv", "--encoder",
                          "tfidf_svd", "--no-progress", "--artifacts", art) == 0
    assert run_in_process("classify", "--config", rel_experiment(art, classifiers),
                          "--artifacts", art) == 0
    return art


def copy_project(base: Path, art: Path, classifiers: Sequence[str] = ("logistic",)) -> Path:
    """A copy of the project folder ``base`` at ``art`` (logs left out), its experiment
    rewritten to point at the copy. Returns ``art``."""
    shutil.copytree(base, art, ignore=shutil.ignore_patterns("logs"))
    rel_experiment(art, classifiers)
    return art


__all__ = ["REL_ROWS", "ROOT", "cmd", "copy_project", "env", "experiment", "out", "popen",
           "rel_experiment", "rel_project", "run", "run_in_process", "text_rows",
           "write_csv_manifest"]
