"""Inference backends for the frozen encoders: torch (the reference, and the GPU backend) and
ONNX Runtime (the CPU backend).

``auto`` picks ONNX Runtime on CPU and torch on CUDA/MPS (:func:`resolve_backend`). An
encoder runs on ONNX Runtime only after

1. it was exported with its taps as extra outputs (:mod:`.export`; cached per encoder,
   weights digest, input size, opset and exporter, with its own sha256), and
2. its outputs matched torch on a few real inputs of the run (:mod:`.verify`: minimum
   cosine >= 0.99999 for every output),

otherwise the run falls back to torch with a logged reason, never an error
(:mod:`.select`). The backend, its version and the check's figures go into the store
provenance (``inference``); a store is resumed with another backend only when that
check passed in the resuming run.
"""

from __future__ import annotations

from pipeline.errors import ConfigError

BACKENDS = ("auto", "torch", "onnxruntime")


def resolve_backend(requested: str, device: str) -> str:
    """``'torch'`` or ``'onnxruntime'`` for a requested backend on a torch device string.

    ``auto``: ONNX Runtime on CPU, torch on CUDA/MPS. ``onnxruntime`` on a GPU device is a
    :class:`ConfigError` (this pipeline runs ONNX Runtime on CPU only).
    """
    if requested not in BACKENDS:
        raise ConfigError(f"backend {requested!r} is not one of {', '.join(BACKENDS)}")
    on_cpu = str(device).split(":", 1)[0] == "cpu"
    if requested == "auto":
        return "onnxruntime" if on_cpu else "torch"
    if requested == "onnxruntime" and not on_cpu:
        raise ConfigError(
            f"backend 'onnxruntime' runs on CPU only here, but the device is {device!r}; use "
            "--device cpu, or --backend torch (or auto) on the GPU"
        )
    return requested
