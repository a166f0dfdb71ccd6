"""Make ``torchvision`` (and therefore ``transformers``) importable on a CPU-only torch.

Why this exists
---------------
The project pins ``torch==2.13.0`` (a CPU build) and ``torchvision==0.28.0`` from PyPI.
That torchvision wheel is CUDA-linked, so its compiled ``_C`` extension does not load
against CPU torch and the ``torchvision::*`` custom operators are never registered.
``torchvision/__init__.py`` nevertheless imports ``torchvision._meta_registrations``,
which calls ``torch.library.register_fake("torchvision::nms")`` unconditionally and
dies with ``RuntimeError: operator torchvision::nms does not exist``. Because
``transformers`` imports torchvision when it is installed, that breaks it too.

What it does
------------
:func:`ensure_torchvision` imports torchvision normally. Only if that import fails
with exactly this error *and* torchvision reports that its C ops are missing
(``torchvision.extension._has_ops() is False``) does it drop the half-imported
modules, put an empty stub module in ``sys.modules['torchvision._meta_registrations']``
(those fake kernels only describe the missing C ops for ``torch.compile``) and
import torchvision again. Model definitions, weight enums and transforms then
work; ``torchvision.ops`` (nms, roi_align) and ``torchvision.io`` stay unusable,
which is why :mod:`extract.preprocess` reads images with PIL.

With a matching torchvision build (CUDA torch + CUDA torchvision, or CPU + CPU)
the first import succeeds and nothing is patched. Call :func:`ensure_torchvision`
before any ``import torchvision`` / ``import transformers``; it is idempotent and
does nothing at import time of this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_STUB_NAME = "torchvision._meta_registrations"
_STUB_DOC = (
    "Stub installed by extract.torch_compat: torchvision's compiled ops are missing "
    "(CUDA-linked torchvision wheel on CPU-only torch), so their fake-tensor "
    "registrations are skipped. torchvision.ops and torchvision.io are unavailable."
)


@dataclass(frozen=True)
class TorchvisionStatus:
    """Outcome of :func:`ensure_torchvision`."""

    available: bool  # torchvision could be imported (models + transforms usable)
    patched: bool  # the _meta_registrations stub was needed
    has_ops: bool  # torchvision's C ops (nms, roi_align, io decoders) are usable
    version: str


def _is_missing_ops_error(exc: BaseException) -> bool:
    extension = sys.modules.get("torchvision.extension")
    ops_missing = extension is not None and not extension._has_ops()
    return ops_missing and "torchvision::" in str(exc) and "does not exist" in str(exc)


def _purge_torchvision_modules() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def ensure_torchvision() -> TorchvisionStatus:
    """Import torchvision, patching around missing C ops only when that is the failure.

    Returns a :class:`TorchvisionStatus`; ``available`` is False when torchvision is not
    installed at all (transformers then works without it). Any other import error is
    re-raised unchanged, so a genuinely broken install is never hidden.
    """
    loaded = sys.modules.get("torchvision")
    if loaded is not None and hasattr(loaded, "models"):
        stub = sys.modules.get(_STUB_NAME)
        patched = getattr(stub, "__doc__", None) == _STUB_DOC
        return TorchvisionStatus(True, patched, loaded.extension._has_ops(), loaded.__version__)
    if importlib.util.find_spec("torchvision") is None:
        return TorchvisionStatus(False, False, False, "")
    try:
        tv = importlib.import_module("torchvision")
    except RuntimeError as exc:
        if not _is_missing_ops_error(exc):
            raise
        _purge_torchvision_modules()
        stub = types.ModuleType(_STUB_NAME, _STUB_DOC)
        sys.modules[_STUB_NAME] = stub
        try:
            tv = importlib.import_module("torchvision")
        except Exception:
            _purge_torchvision_modules()
            raise
        logger.info(
            "torchvision %s has no compiled ops for this torch build (%s); imported it with "
            "a stubbed _meta_registrations. Models/transforms work; torchvision.ops/io do not.",
            tv.__version__,
            exc,
        )
        return TorchvisionStatus(True, True, False, tv.__version__)
    return TorchvisionStatus(True, False, tv.extension._has_ops(), tv.__version__)


def import_transformers() -> types.ModuleType:
    """``import transformers`` after :func:`ensure_torchvision` (which it needs first)."""
    ensure_torchvision()
    return importlib.import_module("transformers")
