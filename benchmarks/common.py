"""Shared pieces of the benchmarks: result tables, ratios, timing, demo-shaped data.

Every benchmark returns a frozen :class:`BenchOutcome` (tables + target ratios +
per-item costs for the scale model); renderers take only those objects.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.helpers import text_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchTable:
    """One result table: ``rows`` are tuples aligned with ``columns``."""

    name: str  # file stem under artifacts/bench/
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ratio:
    """A measured ratio and its target (``ok`` None when there is no target)."""

    bench: str
    what: str
    value: float
    target: str = ""
    ok: bool | None = None


@dataclass(frozen=True)
class BenchOutcome:
    """What one benchmark measured."""

    name: str
    tables: tuple[BenchTable, ...]
    ratios: tuple[Ratio, ...] = ()
    costs: dict[str, float] = field(default_factory=dict)  # per-item costs for the scale model
    seconds: float = 0.0


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run (``quick`` ~2 min, full < 15 min on 2 cores)."""

    quick: bool
    out_dir: Path
    work_dir: Path
    repeats: int = 2
    profile: bool = False

    def size(self, quick: int, full: int) -> int:
        return quick if self.quick else full


def at_least(value: float, target: float) -> bool:
    return bool(math.isfinite(value) and value >= target)


def best_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Best wall time of ``repeats`` calls (this machine's timings are noisy: use the best)."""
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "NO", None: ""}[value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def render_markdown(table: BenchTable) -> str:
    """A GitHub Markdown table with a heading and notes."""
    lines = [f"### {table.title}", "", "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.rows]
    lines += [""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_text(table: BenchTable) -> str:
    """Fixed-width plain-text table (what ``python -m benchmarks`` prints)."""
    return text_table(table.columns, [[fmt(v) for v in row] for row in table.rows],
                      title=f"{table.title}\n{'-' * len(table.title)}", notes=table.notes)


def write_table(table: BenchTable, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / f"{table.name}.csv", out_dir / f"{table.name}.md"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(table.columns)
        w.writerows(table.rows)
    md_path.write_text(render_markdown(table))
    return csv_path, md_path


def ratio_table(ratios: Sequence[Ratio]) -> BenchTable:
    rows = tuple((r.bench, r.what, round(r.value, 3), r.target, r.ok) for r in ratios)
    return BenchTable("ratios", "Measured ratios (one run, same machine)",
                      ("benchmark", "ratio", "value", "target", "met"), rows)


# --------------------------------------------------------------------------- data


def demo_manifest(work_dir: Path, n_reports: int) -> Any:
    """The embedded OpenI demo (real reports, phantom images) limited to ``n_reports`` reports.

    Built once under ``work_dir`` (name ``bench<n>``) and reused.
    """
    from pipeline.dataset.build import build_manifest
    from pipeline.manifest import load_manifest

    name = f"bench{n_reports}"
    csv_path = work_dir / "manifests" / f"{name}.csv"
    if csv_path.is_file():
        return load_manifest(csv_path)
    return build_manifest("openi_demo", name=name, limit=n_reports, artifacts_root=work_dir,
                          n_jobs=1)


def synthetic_manifest(path: Path, n: int, *, seed: int = 0, positive_rate: float = 0.35) -> Any:
    """A label-only manifest (no images) of ``n`` samples, 2 per patient, demo class balance."""
    import pandas as pd

    from pipeline.manifest import Manifest, save_manifest

    rng = np.random.default_rng(seed)
    ids = [f"s{i:06d}" for i in range(n)]
    label = np.where(rng.random(n) < positive_rate, "abnormal", "normal")
    frame = pd.DataFrame({
        "sample_id": ids, "patient_id": [f"p{i // 2:06d}" for i in range(n)],
        "image_path": [f"{s}.png" for s in ids], "report_id": [f"p{i // 2:06d}" for i in range(n)],
        "findings": "", "impression": "", "report_text": "", "tags": "", "label": label,
        "label_source": "synthetic", "view": "",
    })
    manifest = Manifest(path.stem, frame, path.parent / "images", {"label_rule": None})
    save_manifest(manifest, path)
    return manifest


def synthetic_store(features_root: Path, dataset: str, key: str, ids: Sequence[str],
                    labels: Sequence[str], dim: int, *, seed: int, signal: float = 0.15,
                    modality: str = "image") -> Path:
    """A feature store with Gaussian features carrying a weak class signal."""
    from pipeline.store.feature_store import StoreWriter, store_path

    rng = np.random.default_rng(seed)
    y = (np.asarray(labels) == "abnormal").astype(np.float32)
    direction = rng.standard_normal(dim).astype(np.float32)
    X = rng.standard_normal((len(ids), dim)).astype(np.float32) + signal * y[:, None] * direction
    path = store_path(features_root, dataset, key)
    prov = {"encoder_key": key, "modality": modality, "architecture": "synthetic",
            "weights_name": "synthetic", "weights_sha256": "", "dim": dim, "layers": [],
            "preprocessing": {"seed": seed, "signal": signal}, "trained_on": [],
            "dataset": dataset}
    with StoreWriter(path, prov) as w:
        w.add(list(ids), {"X": X})
    return path
