"""Child process of test_crash_safe_bundle: write a small bundle (or a predictions file) and
SIGKILL itself at a chosen point. ``python _bundle_worker.py FOLDER MODE`` with MODE one of
``none``, ``model`` (half-way through the model file), ``swap`` (between the two renames of a
--force replacement), ``predictions`` (half-way through a predictions file at FOLDER)."""

from __future__ import annotations

import os
import signal
import sys


def small_bundle():  # noqa: ANN201
    import numpy as np

    from classify.bundle.card import ModelCard
    from classify.bundle.threshold import ThresholdChoice
    from classify.models.cell_pipeline import build_pipeline
    from classify.results.types import CellSpec

    spec = CellSpec("image", ("img",), ("image",), "single", "smote", "logistic", {})
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    pipe = build_pipeline(spec, (("img", 0, 4),), random_state=0).fit(X, y)
    card = ModelCard(name="m", bundle_schema=1, created="now",
                     cell={"label": spec.label, "key": "k", "spec": spec.to_dict()},
                     selection={}, stores=(), classes=("a", "b"), positive_label="b",
                     label_rule="manifest:label", threshold=ThresholdChoice(), cv={})
    return pipe, card


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(target: str, mode: str) -> None:
    from classify.bundle import io

    if mode == "predictions":
        import pipeline.helpers as helpers

        real = os.fsync
        helpers.os.fsync = lambda fd: (os.write(fd, b"half"), die(), real(fd))  # type: ignore
        from classify.bundle.predict import recover_interrupted

        recover_interrupted(target)
        helpers.atomic_write(target, "sample_id,probability\n" * 1000)
        return
    pipe, card = small_bundle()
    if mode == "model":
        import skops.io as sio

        real_dump = sio.dump

        def dump(obj, path):  # noqa: ANN001, ANN202
            real_dump(obj, path)
            with open(path, "r+b") as fh:
                fh.truncate(100)
            die()

        sio.dump = dump
    elif mode == "swap":
        calls = []
        real_replace = os.replace

        def replace(a, b):  # noqa: ANN001, ANN202
            if os.path.isdir(a):  # folder renames only (card files are replaced too)
                calls.append(a)
                if len(calls) == 2:  # the old bundle is aside, the new one not yet in place
                    die()
            real_replace(a, b)

        io.os.replace = replace  # type: ignore[attr-defined]
    io.write_bundle(target, pipe, card, overwrite=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
