"""An ONNX Runtime CPU session for one exported encoder, with explicit thread settings."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class OrtError(RuntimeError):
    """ONNX Runtime could not load or run a graph (its own exceptions derive from Exception)."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; os.cpu_count() where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform (macOS, Windows)
        return os.cpu_count() or 1


def onnxruntime_version() -> str | None:
    """The installed ONNX Runtime version, or None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


class OrtSession:
    """``InferenceSession`` on the CPU provider: ``intra_op`` threads = the run's cores, one
    inter-op thread, sequential execution, all graph optimisations, no spin-waiting.

    ``micro_batch``: run a batch in slices of at most this many rows along axis 0 and
    concatenate the outputs (None = the whole batch in one call). The slices' outputs are
    bitwise identical to one call (every op of an encoder treats rows independently; checked by
    ``tests/extract/test_backends.py``); what changes is the working set: a slice of 4
    images keeps EfficientNet-Lite0's activations in the cores' L2 cache: on 2 AMD EPYC cores
    the forward pass ran at 361 vs 257 images/s (slices of 4 vs one 32-image call), and
    ``run_extract`` at 175 vs 147 (best of 4, interleaved)."""

    def __init__(self, path: str | Path, threads: int | None = None,
                 micro_batch: int | None = None) -> None:
        import onnxruntime as ort

        if micro_batch is not None and int(micro_batch) < 1:
            raise ValueError(f"micro_batch must be >= 1 (or None), got {micro_batch}")
        self.threads = int(threads or available_cores())
        self.micro_batch = None if micro_batch is None else int(micro_batch)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; our own log says what was chosen
        # No busy-waiting between ops: the spinning threads would take the cores the
        # DataLoader decode workers need (decode overlaps inference on the same cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's exception classes derive from Exception only
            raise OrtError(f"onnxruntime cannot load {path}: {type(exc).__name__}: {exc}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.version = ort.__version__

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for ``feeds`` (only the session's own inputs are passed), in slices
        of :attr:`micro_batch` rows when the batch is larger."""
        wanted = {k: v for k, v in feeds.items() if k in self.input_names}
        n = len(next(iter(wanted.values()))) if wanted else 0
        step = self.micro_batch or n
        if n <= step:
            return self._run(wanted)
        parts = [self._run({k: v[i : i + step] for k, v in wanted.items()})
                 for i in range(0, n, step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self.session.run(None, feeds)
        except Exception as exc:  # onnxruntime's exception classes derive from Exception only
            raise OrtError(f"onnxruntime failed: {type(exc).__name__}: {exc}") from exc
        return {
            name: np.ascontiguousarray(v, dtype=np.float32)
            for name, v in zip(self.output_names, values, strict=True)
        }
