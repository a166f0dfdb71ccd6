"""Device selection for the extract stage: ``'auto'`` picks cuda > mps > cpu."""

from __future__ import annotations

import logging
import os

from pipeline.errors import ConfigError

logger = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> str:
    """Return a torch device string; ``'auto'`` prefers CUDA, then Apple MPS, then CPU.

    An explicit device that is not usable raises :class:`ConfigError` saying which exist.
    """
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device in ("auto", "", None):
        return "cuda" if cuda else "mps" if mps else "cpu"
    kind = str(device).split(":", 1)[0]
    usable = {"cpu": True, "cuda": cuda, "mps": mps}
    if kind not in usable:
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda[:N]' or 'mps'")
    if not usable[kind]:
        have = ", ".join(k for k, ok in usable.items() if ok)
        raise ConfigError(
            f"device {device!r} is not available on this machine (usable: {have}); use --device auto"
        )
    if kind == "cuda" and ":" in str(device):
        index = int(str(device).split(":", 1)[1])
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                "pick a smaller index or set CUDA_VISIBLE_DEVICES"
            )
    return str(device)


def default_num_workers() -> int:
    """min(4, CPUs available to this process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform (macOS, Windows)
        cpus = os.cpu_count() or 1
    return min(4, cpus)


def configure_determinism(device: str) -> None:
    """Deterministic kernels where it costs little: cuDNN without autotuning."""
    import torch

    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
