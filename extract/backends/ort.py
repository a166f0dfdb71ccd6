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
    inter-op thread, sequential execution, all graph optimisations, no spin-waiting."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.threads = int(threads or available_cores())
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
        """Outputs by name for ``feeds`` (only the session's own inputs are passed)."""
        wanted = {k: v for k, v in feeds.items() if k in self.input_names}
        try:
            values = self.session.run(None, wanted)
        except Exception as exc:  # onnxruntime's exception classes derive from Exception only
            raise OrtError(f"onnxruntime failed: {type(exc).__name__}: {exc}") from exc
        return {
            name: np.ascontiguousarray(v, dtype=np.float32)
            for name, v in zip(self.output_names, values, strict=True)
        }
