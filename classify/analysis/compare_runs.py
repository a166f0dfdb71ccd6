"""Compare two saved benchmark runs cell by cell (``pipeline compare``).

A *run* is one of:

* a results directory (``artifacts/results/<dataset>``, holding ``cells/<key>/``),
  as written by :func:`classify.run.benchmark.run_benchmark`;
* a run manifest: a JSON file ``{"results_dir": ..., "cells": [key, ...]}`` (keys or
  objects with a ``"key"``; ``results_dir`` relative to the file, default its folder),
  selecting the cells of one run inside a shared results directory;
* a :class:`~classify.results.types.BenchmarkResult` in memory.

Cells are matched by their :attr:`CellSpec.label`
(``feature_set/fusion/sampler/classifier``). A results directory accumulates cells
of every run, so it may hold several keys for one label (e.g. before and after new
embeddings were added); the newest (``cell.json`` ``created``) is used and a warning
says how many were ignored. For each label in both runs the comparison lists
whether the cell key changed and *why* (store content, split plan, seed, label rule,
parameters, read from ``cell.json``), and the difference of mean scores B - A on the
splits both have. The difference is *paired* only when both cells used the same
split plan (same ``split_hash``): then ``(repeat, fold)`` denotes the same rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classify.results.cell_store import CellDamagedError, verify_cell
from classify.results.metrics import HEADLINE
from classify.results.types import BenchmarkResult, CellSpec
from pipeline.errors import ConfigError
from pipeline.helpers import text_table

log = logging.getLogger(__name__)

CELL_FILE = "cell.json"
#: Columns of :attr:`RunComparison.differences`.
DIFF_COLUMNS = ("cell", "key_a", "key_b", "changed", "metric", "mean_a", "mean_b", "mean_diff",
                "std_diff", "n_shared", "paired")


@dataclass(frozen=True)
class CellRef:
    """A cell of a run: label, key and the ``created`` time of its stored record."""

    label: str
    key: str
    created: str = ""


@dataclass(frozen=True)
class ChangedCell:
    """A label present in both runs under different keys, with the reasons found."""

    label: str
    key_a: str
    key_b: str
    changes: tuple[str, ...]


@dataclass(frozen=True)
class RunComparison:
    """Cell-by-cell comparison of run A and run B.

    Attributes:
        run_a, run_b: descriptions of the runs (paths or experiment names).
        n_a, n_b: cells in each run (after picking the newest key per label).
        only_a, only_b: cells whose label is in one run only.
        changed: labels in both runs with different keys (and why).
        unchanged: labels in both runs with the same key (identical stored result).
        differences: one row per (matched label, metric), columns :data:`DIFF_COLUMNS`:
            means over the shared ``(repeat, fold)`` splits, ``mean_diff`` = B - A,
            ``std_diff`` = std of the per-split differences (NaN if not paired),
            ``paired`` = both used the same split plan.
        metrics: metrics compared.
        warnings: e.g. duplicate keys per label, different split plans.
    """

    run_a: str
    run_b: str
    n_a: int
    n_b: int
    only_a: tuple[CellRef, ...]
    only_b: tuple[CellRef, ...]
    changed: tuple[ChangedCell, ...]
    unchanged: tuple[CellRef, ...]
    differences: pd.DataFrame = field(hash=False)
    metrics: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Cell:
    ref: CellRef
    doc: Mapping[str, Any] = field(hash=False)
    scores: pd.DataFrame | None = field(hash=False)
    score_path: Path | None = None


@dataclass(frozen=True)
class _Run:
    name: str
    cells: Mapping[str, _Cell] = field(hash=False)
    warnings: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- loading

def _read_doc(cell_dir: Path) -> dict[str, Any]:
    path = cell_dir / CELL_FILE
    try:
        verify_cell(cell_dir)
        return json.loads(path.read_text())
    except CellDamagedError as exc:
        raise ConfigError(f"result cell {cell_dir} failed verification: {exc}; the next "
                          "`pipeline classify` of its experiment moves it to quarantine and "
                          "recomputes it") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read cell record {path}: {exc}; delete the directory "
                          f"{cell_dir} so the next `pipeline classify` recomputes it") from exc


def _pick_newest(name: str, cells: Sequence[_Cell]) -> _Run:
    by_label: dict[str, list[_Cell]] = {}
    for c in cells:
        by_label.setdefault(c.ref.label, []).append(c)
    chosen, warnings = {}, []
    for label, group in by_label.items():
        group = sorted(group, key=lambda c: (c.ref.created, c.ref.key))
        chosen[label] = group[-1]
        if len(group) > 1:
            warnings.append(f"{name}: {len(group)} stored results for {label}; using the newest "
                            f"({group[-1].ref.key}), ignoring "
                            f"{', '.join(c.ref.key for c in group[:-1])}")
    return _Run(name, chosen, tuple(warnings))


def _from_dirs(name: str, dirs: Sequence[Path]) -> _Run:
    cells = []
    for d in dirs:
        doc = _read_doc(d)
        spec = CellSpec.from_dict(doc["spec"])
        cells.append(_Cell(CellRef(spec.label, str(doc.get("key", d.name)),
                                   str(doc.get("created", ""))), doc, None, d / "scores.csv"))
    return _pick_newest(name, cells)


def _from_benchmark(result: BenchmarkResult) -> _Run:
    cells = []
    for c in result.cells:
        doc: dict[str, Any] = {"spec": c.spec.to_dict(), "key": c.key}
        if c.path is not None and (Path(c.path) / CELL_FILE).is_file():
            doc = {**_read_doc(Path(c.path)), **doc}
        elif result.split is not None:
            doc.update(split_hash=result.split.hash, label_rule=result.label_rule,
                       dataset=result.dataset,
                       store_identities={s.encoder_key: s.identity for s in result.data.stores})
        cells.append(_Cell(CellRef(c.label, c.key, str(doc.get("created", ""))), doc, c.scores))
    return _pick_newest(f"{result.experiment} ({result.dataset})", cells)


def load_run(source: BenchmarkResult | Path | str) -> _Run:
    """Cells of a run given as a results directory, a run manifest or a BenchmarkResult."""
    if isinstance(source, BenchmarkResult):
        return _from_benchmark(source)
    path = Path(source)
    if path.is_dir():
        root = path / "cells" if (path / "cells").is_dir() else path
        dirs = sorted(p.parent for p in root.glob(f"*/{CELL_FILE}"))
        if not dirs:
            raise ConfigError(f"{path} holds no stored cells (no cells/<key>/{CELL_FILE}); pass "
                              "a results directory written by `pipeline classify` "
                              "(artifacts/results/<dataset>) or a run manifest JSON")
        return _from_dirs(str(path), dirs)
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"run manifest {path} is not valid JSON ({exc}); pass a results "
                              "directory instead") from exc
        if not isinstance(doc, Mapping) or "cells" not in doc:
            raise ConfigError(f"run manifest {path} has no 'cells' list; expected "
                              '{"results_dir": ..., "cells": [key, ...]}')
        results = Path(doc.get("results_dir") or path.parent)
        if not results.is_absolute():
            results = (path.parent / results).resolve()
        keys = [str(k["key"] if isinstance(k, Mapping) else k) for k in doc["cells"]]
        root = results / "cells" if (results / "cells").is_dir() else results
        missing = [k for k in keys if not (root / k / CELL_FILE).is_file()]
        if missing:
            raise ConfigError(f"run manifest {path}: cell(s) {', '.join(missing[:5])} not found "
                              f"under {root}; set 'results_dir' in the manifest to the results "
                              "directory of that run")
        return _from_dirs(str(path), [root / k for k in keys])
    raise ConfigError(f"run {path} does not exist or is not a results directory / run manifest "
                      "(.json); pass e.g. artifacts/results/<dataset>")


# ----------------------------------------------------------------------------- comparing

def key_changes(doc_a: Mapping[str, Any], doc_b: Mapping[str, Any]) -> tuple[str, ...]:
    """Human-readable reasons why two records of one label have different keys."""
    out = []
    sa = {k: v for k, v in dict(doc_a.get("spec", {})).items() if k != "feature_set"}
    sb = {k: v for k, v in dict(doc_b.get("spec", {})).items() if k != "feature_set"}
    for part in ("stores", "modalities", "fusion", "sampler", "classifier"):
        if sa.get(part) != sb.get(part):
            out.append(f"{part}: {sa.get(part)} -> {sb.get(part)}")
    pa, pb = dict(sa.get("params", {})), dict(sb.get("params", {}))
    for comp in sorted(set(pa) | set(pb)):
        if pa.get(comp) != pb.get(comp):
            out.append(f"{comp} params: {pa.get(comp, {})} -> {pb.get(comp, {})}")
    ia, ib = dict(doc_a.get("store_identities", {})), dict(doc_b.get("store_identities", {}))
    for store in sorted(set(ia) | set(ib)):
        if store in ia and store in ib and ia[store] != ib[store]:
            out.append(f"store {store} content changed")
    for fld, what in (("split_hash", "split plan changed"), ("seed", "seed"),
                      ("label_rule", "label rule"), ("dataset", "dataset")):
        if fld in doc_a and fld in doc_b and doc_a[fld] != doc_b[fld]:
            out.append(what if fld == "split_hash" else f"{what}: {doc_a[fld]} -> {doc_b[fld]}")
    return tuple(out) or ("key differs (results schema or a setting not recorded in cell.json)",)


def _scores(cell: _Cell) -> pd.DataFrame:
    if cell.scores is not None:
        return cell.scores
    if cell.score_path is None or not cell.score_path.is_file():
        raise ConfigError(f"scores of cell {cell.ref.key} ({cell.ref.label}) missing at "
                          f"{cell.score_path}; delete its directory so it is recomputed")
    return pd.read_csv(cell.score_path)


def _metric(scores: pd.DataFrame, metric: str) -> pd.Series:
    s = scores[scores["metric"] == metric]
    return s.set_index(["repeat", "fold"])["value"].astype(float).sort_index()


def compare_runs(run_a: BenchmarkResult | Path | str, run_b: BenchmarkResult | Path | str, *,
                 metrics: Sequence[str] | None = None) -> RunComparison:
    """Compare run A with run B (see the module docstring for what a run is)."""
    a, b = load_run(run_a), load_run(run_b)
    metrics = tuple(metrics) if metrics else HEADLINE
    warnings = list(a.warnings) + list(b.warnings)
    only_a = tuple(c.ref for lab, c in a.cells.items() if lab not in b.cells)
    only_b = tuple(c.ref for lab, c in b.cells.items() if lab not in a.cells)
    changed, unchanged, rows = [], [], []
    unpaired = []
    for label, ca in a.cells.items():
        cb = b.cells.get(label)
        if cb is None:
            continue
        is_changed = ca.ref.key != cb.ref.key
        if is_changed:
            changed.append(ChangedCell(label, ca.ref.key, cb.ref.key, key_changes(ca.doc, cb.doc)))
        else:
            unchanged.append(ca.ref)
        ha, hb = ca.doc.get("split_hash"), cb.doc.get("split_hash")
        paired = ha is not None and ha == hb
        if not paired:
            unpaired.append(label)
        sa, sb = _scores(ca), _scores(cb)
        for m in metrics:
            va, vb = _metric(sa, m), _metric(sb, m)
            shared = va.index.intersection(vb.index)
            va, vb = va.loc[shared], vb.loc[shared]
            ok = va.notna() & vb.notna()
            d = (vb - va)[ok]
            n = int(ok.sum())
            rows.append({
                "cell": label, "key_a": ca.ref.key, "key_b": cb.ref.key, "changed": is_changed,
                "metric": m,
                "mean_a": float(va[ok].mean()) if n else float("nan"),
                "mean_b": float(vb[ok].mean()) if n else float("nan"),
                "mean_diff": float(d.mean()) if n else float("nan"),
                "std_diff": float(d.std(ddof=1)) if paired and n > 1 else float("nan"),
                "n_shared": n, "paired": paired,
            })
    if unpaired:
        warnings.append(f"{len(unpaired)} matched cell(s) used different (or unrecorded) split "
                        "plans in A and B; their differences compare means over split indices "
                        "that are not the same rows (not paired): " + ", ".join(unpaired[:5])
                        + (" ..." if len(unpaired) > 5 else ""))
    diff = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    for w in warnings:
        log.warning(w)
    return RunComparison(run_a=a.name, run_b=b.name, n_a=len(a.cells), n_b=len(b.cells),
                         only_a=only_a, only_b=only_b, changed=tuple(changed),
                         unchanged=tuple(unchanged), differences=diff, metrics=metrics,
                         warnings=tuple(warnings))


# ----------------------------------------------------------------------------- rendering

def _lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return text_table(header, rows, indent="  ").split("\n")


def _f(x: float, fmt: str = ".4f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def render_comparison_of_runs(result: RunComparison, metrics: Sequence[str] | None = None,
                              *, show_unchanged: bool = False) -> str:
    """Plain-text report of :func:`compare_runs` (differences are B - A)."""
    metrics = [m for m in (metrics or ("roc_auc", "f1_weighted", "accuracy"))
               if m in result.metrics] or list(result.metrics[:3])
    out = ["Run comparison (differences are B - A)",
           f"  A: {result.run_a} ({result.n_a} cells)",
           f"  B: {result.run_b} ({result.n_b} cells)",
           f"  matched labels: {len(result.changed) + len(result.unchanged)} "
           f"({len(result.changed)} with a new key, {len(result.unchanged)} identical); "
           f"only in A: {len(result.only_a)}; only in B: {len(result.only_b)}", ""]
    for title, refs in (("Only in A", result.only_a), ("Only in B", result.only_b)):
        if refs:
            out.append(f"{title} ({len(refs)}):")
            out += _lines(("cell", "key"), [(r.label, r.key) for r in refs])
            out.append("")
    if result.changed:
        out.append(f"Same label, different key ({len(result.changed)}):")
        out += _lines(("cell", "key A", "key B", "why"),
                      [(c.label, c.key_a, c.key_b, "; ".join(c.changes)) for c in result.changed])
        out.append("")
    d = result.differences
    if not show_unchanged and len(d):
        d = d[d["changed"]]
    if len(d):
        header = ["cell", "splits", "paired"]
        for m in metrics:
            header += [f"{m} A", f"{m} B", f"d{m}"]
        rows = []
        for label, g in d.groupby("cell", sort=False):
            g = g.set_index("metric")
            first = g.iloc[0]
            row = [str(label), str(int(first["n_shared"])), "yes" if first["paired"] else "no"]
            for m in metrics:
                if m in g.index:
                    r = g.loc[m]
                    sd = f" ±{_f(r['std_diff'], '.4f')}" if np.isfinite(r["std_diff"]) else ""
                    row += [_f(r["mean_a"], ".3f"), _f(r["mean_b"], ".3f"),
                            f"{_f(r['mean_diff'], '+.4f')}{sd}"]
                else:
                    row += ["n/a"] * 3
            rows.append(row)
        out.append("Mean scores on shared splits (d = mean B - A ± std of per-split "
                   "differences, when paired):")
        out += _lines(header, rows)
        out.append("")
    elif not result.changed:
        out.append("No matched cell changed: every shared label has the same key "
                   "(identical stored results).")
        out.append("")
    if result.warnings:
        out.append("Warnings:")
        out += [f"  * {w}" for w in result.warnings]
    return "\n".join(out).rstrip() + "\n"
