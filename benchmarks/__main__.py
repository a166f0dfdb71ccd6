"""``python -m benchmarks [--quick] [--only image,text,...] [--out artifacts/bench]``.

Runs the benchmarks in one process (ratios are measured against baselines in the same
run), writes each table as CSV + Markdown under ``--out``, a combined ``summary.md``,
and prints the ratio table. On 2 CPU cores: the extraction, memory and reduced classify
benchmarks < 15 min, plus ``grid``, the full classify grid (its own target: < 15 min);
``--quick`` ~5 min (the grid on 1/5 of the rows, 3 splits). ``--only grid`` runs it alone.
``curve``: the grid's cost per classifier at n = 3,734 / 15,000 / 60,000 and a MIMIC-size
projection (``scale_grid.csv``, ~10 min; ``--only classify,curve`` to project with a freshly
measured parallel efficiency).
Exit code 0 even when a target is missed (the table says which); 1 on a crash.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

BENCHES = ("image", "text", "classify", "grid", "tasks", "curve", "memory", "verify", "scale")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (~5 min smoke run)")
    p.add_argument("--only", default=",".join(BENCHES),
                   help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--out", type=Path, default=Path("artifacts/bench"), help="results folder")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for demo data/stores (default <out>/work)")
    p.add_argument("--repeats", type=int, default=None, help="best-of-k timing repeats")
    p.add_argument("--profile", action="store_true",
                   help="always cProfile the image pipeline (otherwise only when a target is missed)")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask run of the classify grid")
    p.add_argument("--gpu-img-s", action="append", metavar="NAME=RATE",
                   help="override an assumed GPU forward throughput, e.g. resnet50=2500")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "tornado", "bokeh"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from benchmarks import (
        classify_grid,
        image_extract,
        memory,
        scale_grid,
        scale_model,
        store_verify,
        tasks,
        text_extract,
    )
    from benchmarks.common import (
        BenchConfig,
        ratio_table,
        render_markdown,
        render_text,
        write_table,
    )

    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    cfg = BenchConfig(quick=args.quick, out_dir=args.out, work_dir=args.work or args.out / "work",
                      repeats=args.repeats or (1 if args.quick else 2), profile=args.profile)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load0 = _load()
    if load0 > (os.cpu_count() or 1):
        print(f"WARNING: load average {load0:.1f} > {os.cpu_count()} CPUs: other processes are "
              "competing for the cores, timings will be noisy", flush=True)
    outcomes, costs = [], {}
    runners = {
        "image": lambda: image_extract.run(cfg),
        "text": lambda: text_extract.run(cfg),
        "classify": lambda: classify_grid.run(cfg, with_dask=False if args.no_dask else None),
        "grid": lambda: classify_grid.run_full(cfg),
        "tasks": lambda: tasks.run(cfg),
        "curve": lambda: scale_grid.run(cfg, costs),
        "memory": lambda: memory.run(cfg),
        "verify": lambda: store_verify.run(cfg),
        "scale": lambda: scale_model.run(cfg, costs, scale_model.assumptions_from(args)),
    }
    for name in BENCHES:
        if name not in only:
            continue
        print(f"== {name} ...", flush=True)
        outcome = runners[name]()
        costs.update(outcome.costs)
        outcomes.append(outcome)
        for table in outcome.tables:
            write_table(table, cfg.out_dir)
            print(render_text(table) + "\n", flush=True)
        print(f"   ({outcome.seconds:.0f} s)", flush=True)
    ratios = ratio_table([r for o in outcomes for r in o.ratios])
    write_table(ratios, cfg.out_dir)
    total = time.perf_counter() - t0
    mode = "quick" if cfg.quick else "full"
    summary = [f"# Benchmarks ({mode} run, {total:.0f} s, {os.cpu_count()} CPUs)", "",
               f"Load average at start {load0:.1f}, at end {_load():.1f} (timings are unreliable "
               "when it exceeds the CPU count: other processes share the cores).", "",
               render_markdown(ratios)]
    summary += [render_markdown(t) for o in outcomes for t in o.tables]
    (cfg.out_dir / "summary.md").write_text("\n".join(summary))
    print(render_text(ratios))
    print(f"\nwrote {cfg.out_dir}/summary.md and per-table CSV/Markdown ({mode}, {total:.0f} s)")
    return 0


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on every platform
        return float("nan")


if __name__ == "__main__":
    sys.exit(main())
