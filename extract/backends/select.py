"""Choose a run's inference backend: export, verify against torch, fall back, guard resumes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract.backends import resolve_backend
from extract.backends.export import ExportedModel, ExportError, export_cached
from extract.backends.ort import OrtError, OrtSession, available_cores, onnxruntime_version
from extract.backends.verify import BackendCheck, compare_outputs
from pipeline.errors import ConfigError

logger = logging.getLogger(__name__)

#: Real inputs of the run that the candidate backend is checked on.
N_CHECK_INPUTS = 4


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run uses, why, and the evidence (the store's ``inference`` provenance)."""

    backend: str  # 'torch' | 'onnxruntime' | 'sklearn'
    requested: str
    reason: str
    version: str
    threads: int | None = None
    check: BackendCheck | None = None
    exported: ExportedModel | None = None
    resumed_from: str | None = None
    kept: dict[str, Any] | None = field(default=None, repr=False)  # record left unchanged

    def record(self) -> dict[str, Any]:
        if self.kept is not None:
            return dict(self.kept)
        out: dict[str, Any] = {
            "backend": self.backend,
            "version": self.version,
            "requested": self.requested,
            "reason": self.reason,
        }
        if self.threads is not None:
            out["threads"] = self.threads
        if self.exported is not None:
            out["onnx"] = self.exported.to_dict()
        if self.check is not None:
            out["check"] = self.check.to_dict()
        if self.resumed_from is not None:
            out["resumed_from"] = self.resumed_from
        return out


def torch_version() -> str:
    import torch

    return str(torch.__version__)


def select_backend(
    job: Any,
    *,
    requested: str,
    threads: int | None,
    sample: Any,
    stored: dict[str, Any] | None,
    cache_dir: Path,
) -> BackendChoice:
    """Pick and attach the backend of ``job`` (its ``encoder`` gets an ONNX Runtime session
    when that backend is used).

    ``sample`` holds a few real inputs of the run (None when nothing is pending);
    ``stored`` is the ``inference`` provenance of the store being resumed ({} for a store
    made before backends were recorded, i.e. torch; None when there is no store yet or it
    has no rows).
    Falls back to torch with a logged reason when the export or the check fails; raises
    :class:`ConfigError` only when resuming a store made with another backend whose check
    did not pass in this run.
    """
    encoder = job.encoder
    if not hasattr(encoder, "onnx_export_spec"):  # tfidf_svd: nothing to export
        return BackendChoice(job.backend, requested, "not a neural encoder", _sklearn_version())
    effective = resolve_backend(requested, job.device)
    stored_backend = None if stored is None else str(stored.get("backend", "torch"))
    mixed = stored_backend is not None and stored_backend != effective
    if sample is None:
        # Nothing to embed: the store's record (if any) stays true; no export or check.
        if stored is not None:
            return BackendChoice(stored_backend, requested, "nothing to embed", "", kept=stored)
        return _torch(requested, "nothing to embed", threads)
    if effective == "torch" and stored_backend != "onnxruntime":
        why = "requested" if requested == "torch" else f"auto on {job.device}"
        return _torch(requested, why, threads)

    n_threads = int(threads or available_cores())
    encoder.session = None
    reference = job.encode(sample).arrays
    try:
        exported = export_cached(job.key.split("@")[0], encoder.onnx_identity(),
                                 encoder.onnx_export_spec, cache_dir)
        encoder.session = OrtSession(exported.path, n_threads,
                                     micro_batch=getattr(encoder, "onnx_micro_batch", None))
        candidate = job.encode(sample).arrays
    except (ExportError, OrtError, ImportError, OSError) as exc:
        encoder.session = None
        reason = f"cannot run {job.key} on ONNX Runtime ({exc}); using torch"
        if stored_backend == "onnxruntime":
            raise ConfigError(_refusal(job, stored_backend, "torch", reason)) from exc
        logger.warning("%s", reason)
        return _torch(requested, reason, threads)
    check = compare_outputs(reference, candidate)
    ort_version = onnxruntime_version() or encoder.session.version
    if effective == "onnxruntime" and check.passed:
        logger.info("backend onnxruntime %s for %s (%d threads): check vs torch passed: %s",
                    ort_version, job.key, n_threads, check.render())
        if mixed:
            logger.warning("resuming %s (rows embedded with %s) with onnxruntime: allowed, the "
                           "check against torch passed (%s)", job.key, stored_backend,
                           check.render())
        return BackendChoice("onnxruntime", requested, "auto on cpu" if requested == "auto"
                             else "requested", ort_version, n_threads, check, exported,
                             stored_backend if mixed else None)
    encoder.session = None
    if check.passed:  # effective torch, store made with onnxruntime: the check allows it
        logger.warning("resuming %s (rows embedded with onnxruntime) with torch: allowed, the "
                       "check against torch passed (%s)", job.key, check.render())
        return _torch(requested, f"{requested} on {job.device}", threads, check, exported,
                      stored_backend)
    reason = (f"onnxruntime output differs from torch ({check.render()}; minimum cosine must be "
              f">= {check.threshold}); using torch")
    if stored_backend == "onnxruntime":
        raise ConfigError(_refusal(job, stored_backend, "torch", reason))
    logger.warning("%s: %s", job.key, reason)
    return _torch(requested, reason, threads, check, exported)


def _torch(requested: str, reason: str, threads: int | None, check: BackendCheck | None = None,
           exported: ExportedModel | None = None, resumed_from: str | None = None) -> BackendChoice:
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    return BackendChoice("torch", requested, reason, torch_version(), threads, check, exported,
                         resumed_from)


def _sklearn_version() -> str:
    from importlib import metadata

    return metadata.version("scikit-learn")


def _refusal(job: Any, stored: str | None, now: str, reason: str) -> str:
    return (
        f"store {job.key} holds rows embedded with {stored}, and this run would add rows with "
        f"{now}: resuming with another backend needs its check against torch to pass, and it "
        f"did not ({reason}). Fix: re-run with --backend {stored} on a machine where it passes, "
        "or delete the store to rebuild it with one backend"
    )
