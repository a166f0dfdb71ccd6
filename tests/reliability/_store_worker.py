"""Subprocess used by the crash tests: writes deterministic rows to a store, slowly."""

from __future__ import annotations

import sys
import time

import numpy as np

from pipeline.store.feature_store import StoreWriter

PROV = {
    "encoder_key": "crash",
    "modality": "image",
    "architecture": "toy",
    "weights_name": "toy",
    "weights_sha256": "0",
    "preprocessing": {},
    "dim": 16,
    "layers": ["early"],
}


def vectors(ids: list[str]) -> dict[str, np.ndarray]:
    seeds = [int(i.split("-")[1]) for i in ids]
    x = np.stack([np.random.default_rng(s).normal(size=16) for s in seeds]).astype(np.float32)
    return {"X": x, "early": x[:, :4] * 2}


def main(path: str, n: int, batch: int, delay: float) -> None:
    ids = [f"id-{i}" for i in range(n)]
    with StoreWriter(path, PROV, lock_timeout=30) as w:
        todo = [i for i in ids if i not in w.done_ids]
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            w.add(chunk, vectors(chunk))
            w.flush()
            time.sleep(delay)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
