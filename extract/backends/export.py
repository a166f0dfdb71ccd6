"""ONNX export of an encoder (taps as extra outputs), cached once per identity with its own digest.

Cache layout (default ``<features_root>/../cache/onnx``, i.e. ``artifacts/cache/onnx``)::

    <name>-<key>.onnx    the graph with its weights
    <name>-<key>.json    identity, opset, exporter, sha256 of the .onnx file

``key`` is a sha256 of the identity (encoder, weights digest, input size, outputs, opset
and the exporting torch version). A cached file is used only when its sha256 matches
the sidecar; otherwise it is exported again. Writes are atomic (temp file, fsync, rename),
so concurrent runs at worst export the same file twice.

The exporter is torch's TorchScript-based ``torch.onnx.export(..., dynamo=False)``: the
dynamo exporter needs ``onnxscript``, which is not a dependency. It needs the ``onnx``
package.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.helpers import atomic_write

logger = logging.getLogger(__name__)

OPSET = 17


class ExportError(RuntimeError):
    """The encoder could not be exported (the caller falls back to torch)."""


@dataclass(frozen=True)
class ExportSpec:
    """What to trace: a module returning a tuple of tensors, example inputs, names and axes."""

    module: Any
    example: tuple[Any, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


@dataclass(frozen=True)
class ExportedModel:
    """An exported graph on disk and how it was obtained."""

    path: Path
    sha256: str
    key: str
    opset: int
    exporter: str
    cached: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "opset": self.opset,
            "exporter": self.exporter,
        }


def default_onnx_cache(features_root: str | Path) -> Path:
    """``<features_root>/../cache/onnx``: ``artifacts/cache/onnx`` for ``artifacts/features``."""
    return Path(features_root).resolve().parent / "cache" / "onnx"


def exporter_name() -> str:
    import torch

    return f"torch.onnx TorchScript exporter (torch {torch.__version__})"


def cache_key(identity: dict[str, Any], opset: int) -> str:
    payload = json.dumps({**identity, "opset": opset, "exporter": exporter_name()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def export_cached(
    name: str,
    identity: dict[str, Any],
    spec_factory: Callable[[], contextlib.AbstractContextManager[ExportSpec]],
    cache_dir: str | Path,
    *,
    opset: int = OPSET,
) -> ExportedModel:
    """The cached export of ``identity``, exporting it (via ``spec_factory``) when missing.

    Raises :class:`ExportError` when the export itself fails (any tracing/symbolic error).
    """
    from extract.encoders.weights import file_sha256

    key = cache_key(identity, opset)
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{_slug(name)}-{key}.onnx"
    sidecar = path.with_suffix(".json")
    if path.is_file() and sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text(encoding="utf-8")).get("onnx_sha256")
        except (OSError, ValueError):
            recorded = None
        digest = file_sha256(path)
        if recorded == digest:
            logger.info("ONNX export of %s from the cache: %s (sha256 %s...)", name, path,
                        digest[:12])
            return ExportedModel(path, digest, key, opset, exporter_name(), True, 0.0)
        logger.warning("cached ONNX file %s does not match its recorded sha256; exporting again",
                       path)
    started = time.perf_counter()
    with spec_factory() as spec:
        data = _export_bytes(spec, opset)
    atomic_write(path, data)
    digest = hashlib.sha256(data).hexdigest()
    meta = {"identity": identity, "opset": opset, "exporter": exporter_name(),
            "onnx_sha256": digest, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write(sidecar, json.dumps(meta, indent=1, sort_keys=True, default=str))
    seconds = time.perf_counter() - started
    logger.info("exported %s to ONNX in %.1f s: %s (%.0f MB, sha256 %s...)", name, seconds, path,
                len(data) / 1e6, digest[:12])
    return ExportedModel(path, digest, key, opset, exporter_name(), False, seconds)


def _export_bytes(spec: ExportSpec, opset: int) -> bytes:
    import torch

    buf = io.BytesIO()
    try:
        # Tracing emits TracerWarnings about Python control flow, and the TorchScript
        # exporter a deprecation notice; both are expected here and muted for this call only.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                spec.module,
                spec.example,
                buf,
                dynamo=False,
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamic_axes=spec.dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
            )
    # The exporter fails in many ways (tracing, missing symbolic functions, protobuf size,
    # onnx not installed); every one of them means "use torch for this encoder".
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}") from exc
    data = buf.getvalue()
    if not data:
        raise ExportError("the exporter produced an empty graph")
    return data
