"""The backend check: per-output minimum cosine and max abs difference against torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Below this minimum cosine (any output, any row) a backend is refused.
MIN_COSINE = 0.99999


@dataclass(frozen=True)
class OutputCheck:
    """How one output (``X`` or a tap) of a candidate backend compares with torch."""

    name: str
    min_cosine: float
    max_abs_diff: float


@dataclass(frozen=True)
class BackendCheck:
    """The check of a candidate backend against torch on ``n_inputs`` real inputs."""

    n_inputs: int
    outputs: tuple[OutputCheck, ...]
    threshold: float = MIN_COSINE

    @property
    def passed(self) -> bool:
        return bool(self.outputs) and all(
            np.isfinite(o.min_cosine) and o.min_cosine >= self.threshold for o in self.outputs
        )

    @property
    def min_cosine(self) -> float:
        return min((o.min_cosine for o in self.outputs), default=float("nan"))

    def to_dict(self) -> dict[str, Any]:
        """The provenance form (floats rounded to 9 significant digits)."""
        return {
            "n_inputs": self.n_inputs,
            "min_cosine_threshold": self.threshold,
            "passed": self.passed,
            "outputs": {
                o.name: {
                    "min_cosine": float(f"{o.min_cosine:.9g}"),
                    "max_abs_diff": float(f"{o.max_abs_diff:.6g}"),
                }
                for o in self.outputs
            },
        }

    def render(self) -> str:
        """One line for the log: ``X cos>=0.9999999 |d|<=1.1e-05, stage3 ...``."""
        parts = [
            f"{o.name} min cosine {o.min_cosine:.7f}, max |diff| {o.max_abs_diff:.2g}"
            for o in self.outputs
        ]
        return f"{'; '.join(parts)} on {self.n_inputs} inputs"


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row pair (float64); 1 where both rows are zero, 0 where only one is."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    out = np.where((na > 0) & (nb > 0), dot / np.maximum(na * nb, 1e-300), 0.0)
    return np.where((na == 0) & (nb == 0), 1.0, out)


def compare_outputs(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    *,
    threshold: float = MIN_COSINE,
) -> BackendCheck:
    """Compare every output of ``candidate`` with ``reference`` (same keys, same rows).

    A missing output, another shape or a non-finite value counts as cosine ``nan``
    (the check fails).
    """
    checks = []
    n = 0
    for name, ref in reference.items():
        ref = np.asarray(ref)
        n = max(n, len(ref))
        got = candidate.get(name)
        if got is None or np.shape(got) != ref.shape or not np.isfinite(got).all():
            checks.append(OutputCheck(name, float("nan"), float("nan")))
            continue
        got = np.asarray(got)
        cos = float(row_cosines(ref, got).min()) if len(ref) else float("nan")
        diff = float(np.abs(ref.astype(np.float64) - got).max()) if ref.size else 0.0
        checks.append(OutputCheck(name, cos, diff))
    return BackendCheck(n, tuple(checks), threshold)
