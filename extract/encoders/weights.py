"""Weights handling for the encoders: offline policy, digests, safe loading, seeded random init."""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import MissingWeightsError

RANDOM_INIT = "random-init"
RANDOM_SEED = 0
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "TORCH_HUB_OFFLINE", "PIPELINE_OFFLINE")


def offline_mode() -> bool:
    """True when any of ``OFFLINE_ENV_VARS`` is set to a truthy value."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in OFFLINE_ENV_VARS
    )


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file (memoised on path, size and mtime)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def state_dict_sha256(module: Any) -> str:
    """sha256 over a module's state dict (names + bytes); identifies random-init weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


_SEEDED_INIT = threading.Lock()


def seeded_init(factory: Callable[[], Any]) -> Any:
    """Build a module with a fixed seed, without disturbing the global RNG state.

    torch's RNG is process-wide: two threads (e.g. two shard tasks of a threaded Dask
    worker) seeding and drawing at once would interleave, so builds hold a lock.
    """
    import torch

    with _SEEDED_INIT, torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return factory()


def random_fallback_message(name: str) -> str:
    """The sentence every missing-weights error ends with."""
    return (
        f" Or pass allow_random_weights=True (CLI --allow-random-weights) to use a seeded "
        f"random init for {name!r} (tests/benchmarks only; stored as '{name}+{RANDOM_INIT}')."
    )


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def load_weights_file(path: Path) -> dict[str, Any]:
    """A state dict from ``path`` with ``torch.load(weights_only=True)``: plain tensors only,
    never arbitrary pickled objects. A file that is not a plain weights file raises
    :class:`MissingWeightsError` naming it."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise MissingWeightsError(
            f"weights file {path} is not a plain PyTorch state dict (it holds pickled objects other "
            f"than tensors, or is damaged: {type(exc).__name__}); it was NOT loaded. Fix: delete it "
            "and put the official weights file there."
        ) from None
    if not isinstance(state, dict):
        raise MissingWeightsError(
            f"weights file {path} holds a {type(state).__name__}, not a state dict; delete it and "
            "put the official weights file there"
        )
    return state
